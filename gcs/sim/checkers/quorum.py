"""Quorum checkers: one quorate partition at a time, one verdict per configuration (RFC 0008 §7).

They read the quorum verdicts the ``kv`` workload's nodes reached (``gcs.sim.workloads.kvlog``), not
the rules: a checker that recomputed verdicts would share the code's mistakes.

``quorum`` (QRM-3.6-1). A node is *in* a quorate configuration from the verdict until it leaves
the configuration (its next verdict, transitional configuration, crash or leave). Each quorate
ring thus covers an interval of virtual time, from its first member's verdict to its last
member's departure. Two quorate rings whose intervals overlap must share a member: otherwise two
disjoint partitions were quorate at the same virtual time. (A member still in an old quorate
configuration while the others formed a new one is not a second partition: it shares members
with the new one, and it cannot deliver anything in the old one that the new one's members did
not deliver too.) ``two_node`` makes both halves of a split quorate by design (corosync relies on
fencing), so the checker does not judge runs that enable it.

``quorum_agreement`` (QRM-3.2-1). The members of a ring reach the same verdicts: per ring, each
node's sequence of verdicts (a ``last_man_standing`` record can change it inside the ring) is a
prefix of the longest one.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from gcs.sim.checkers.judges import judges
from gcs.sim.checkers.verdict import Problems, Verdict, fmt_t
from gcs.sim.workloads.kvlog import KvLog, VerdictEnd
from gcs.sim.workloads.kvlog import Verdict as QuorumVerdict
from gcs.wire.frames import RingId

__all__ = ["check_quorum", "check_quorum_agreement"]

Proc = tuple[int, int]
T = TypeVar("T")


@dataclass(slots=True)
class _Span:
    ring: RingId
    members: tuple[int, ...]
    start: int
    end: int


def _spans(log: KvLog) -> dict[RingId, _Span]:
    """Each quorate ring's interval: from the first verdict to the last departure."""
    end_of_run = max((e.time_ns for e in log.events), default=0)
    open_: dict[Proc, QuorumVerdict] = {}
    spans: dict[RingId, _Span] = {}

    def close(proc: Proc, at: int) -> None:
        verdict = open_.pop(proc, None)
        if verdict is None or not verdict.quorate:
            return
        span = spans.get(verdict.ring_id)
        if span is None:
            spans[verdict.ring_id] = _Span(verdict.ring_id, verdict.members, verdict.time_ns, at)
        else:
            span.start = min(span.start, verdict.time_ns)
            span.end = max(span.end, at)

    for event in log.events:
        if isinstance(event, QuorumVerdict):
            proc = (event.node, event.incarnation)
            close(proc, event.time_ns)
            open_[proc] = event
        elif isinstance(event, VerdictEnd):
            close((event.node, event.incarnation), event.time_ns)
    for proc in list(open_):
        close(proc, end_of_run)
    return spans


@judges("QRM-3.6-1")
def check_quorum(log: KvLog) -> Verdict:
    problems = Problems("quorum")
    if log.two_node:
        return problems.unknown("two_node: both halves of a split are quorate by design")
    spans = sorted(_spans(log).values(), key=lambda s: s.start)
    for a, b in itertools.combinations(spans, 2):
        if b.start > a.end:
            continue
        if not set(a.members) & set(b.members):
            problems.add(
                f"rings {a.ring} {list(a.members)} and {b.ring} {list(b.members)} were both "
                f"quorate between {fmt_t(max(a.start, b.start))} and {fmt_t(min(a.end, b.end))} "
                "with no common member"
            )
    stats = {"quorate_rings": len(spans)}
    return problems.verdict(stats)


def verdict_prefixes(
    log: KvLog, problems: Problems, value: Callable[[QuorumVerdict], T], what: str
) -> int:
    """Within each ring, the sequence of ``value`` at each member's verdicts (repeats folded)
    must be a prefix of the longest one: members decide alike, some merely decide less.
    Adds a problem per member that disagrees; returns the number of rings seen."""
    per_ring: dict[RingId, dict[Proc, list[T]]] = {}
    for event in log.events:
        if isinstance(event, QuorumVerdict):
            seqs = per_ring.setdefault(event.ring_id, {})
            seq = seqs.setdefault((event.node, event.incarnation), [])
            current = value(event)
            if not seq or seq[-1] != current:
                seq.append(current)
    for ring, seqs in per_ring.items():
        longest = max(seqs.values(), key=len)
        for proc, seq in seqs.items():
            if longest[: len(seq)] != seq:
                problems.add(
                    f"ring {ring}: {proc[0]}/{proc[1]} reached {seq} where others reached "
                    f"{longest} ({what})"
                )
    return len(per_ring)


@judges("QRM-3.2-1")
def check_quorum_agreement(log: KvLog) -> Verdict:
    problems = Problems("quorum_agreement")
    rings = verdict_prefixes(
        log,
        problems,
        lambda v: (v.quorate, v.total_votes, v.expected_votes),
        "quorate, votes, expected",
    )
    return problems.verdict({"rings": rings})
