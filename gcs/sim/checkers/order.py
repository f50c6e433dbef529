"""Where and in what order messages are delivered: RFC 0004 EVS-11-4, EVS-11-7, EVS-11-8, EVS-11-10.

* ``check_delivery_location`` (EVS-11-4, [P §4.2], EVS Spec 1.3): a delivery happens in the
  incarnation's current configuration (the event repeats it) and an mcast originated on ring R
  is delivered only in regular configuration R or in the transitional configuration that
  follows R at that member. Being a member of R follows: the member installed R.
* ``check_total_order`` (EVS-11-7, EVS Specs 6.1-6.2): each incarnation delivers the mcasts of one
  origin ring in strictly increasing seq. Since seq names one mcast (``check_identity``), any
  two incarnations then deliver their common messages of R in the same relative order.
* ``check_agreed_prefix`` (EVS-11-8, EVS Spec 6.3, [P §7.2]): in a regular configuration,
  delivering seq s of R means every originated seq below s was delivered first. In a
  transitional configuration a process may skip only messages of senders outside it, and
  (``CheckParams.strict_transitional_gap``) only messages whose sender is in it may follow a
  gap: the others might depend causally on the missing message (RFC 0004 §7.2).
  Recovery carrier seqs have no Originate event and are never gaps.
* ``check_transitional_agreement`` (EVS-11-10, [P §7.2]): the members of one transitional
  configuration deliver the same sequence of old-ring messages in it; one that crashed while
  delivering it has a prefix of that sequence.
"""

from __future__ import annotations

from collections.abc import Sequence

from gcs.history.events import Deliver
from gcs.sim.checkers.index import (
    REGULAR,
    ConfigView,
    GapStep,
    HistoryIndex,
    Mcast,
    Source,
    as_index,
)
from gcs.sim.checkers.judges import judges
from gcs.sim.checkers.params import DEFAULT_PARAMS, CheckParams
from gcs.sim.checkers.verdict import Problems, Verdict, fmt_ids, fmt_mcast, fmt_proc, fmt_t

__all__ = [
    "check_agreed_prefix",
    "check_delivery_location",
    "check_total_order",
    "check_transitional_agreement",
]


def _describe(deliver: Deliver) -> str:
    return (
        f"{fmt_mcast(deliver.origin_ring, deliver.seq)} (sender {deliver.sender}, "
        f"{fmt_ids(deliver.msg_ids)}) at {fmt_t(deliver.time_ns)}"
    )


@judges("GUAR-5-7", "EVS-11-4")
def check_delivery_location(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Ring-R mcasts are delivered only in regular R or in the member's trans(R) (EVS-11-4)."""
    idx = as_index(history)
    problems = Problems("delivery_location")
    for view in idx.procs.values():
        who = f"node {fmt_proc(view.proc)}"
        for _, deliver, _ in view.loose:
            problems.add(
                f"{who} delivered {_describe(deliver)} before installing any configuration"
            )
        for config in view.configs:
            kind, ring_no, home = config.key.kind, config.ring_no, config.home
            ring_obj = config.event.ring_id
            for _, deliver, mcast in config.deliveries:
                if deliver.config_kind != kind or (
                    deliver.config_ring is not ring_obj
                    and idx.event_ring_no(deliver.config_ring) != ring_no
                ):
                    problems.add(
                        f"{who} delivered {_describe(deliver)} reporting configuration "
                        f"{deliver.config_kind} {deliver.config_ring}, but it was in {config.key}"
                    )
                if mcast[0] != home:
                    allowed = idx.rings[home] if home >= 0 else "(none)"
                    problems.add(
                        f"{who} delivered {_describe(deliver)} in {config.key}, where only "
                        f"messages originated on ring {allowed} may be delivered"
                    )
    return problems.verdict()


@judges("GUAR-5-1", "EVS-11-7")
def check_total_order(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Per incarnation and origin ring, delivered seqs strictly increase (EVS-11-7)."""
    idx = as_index(history)
    problems = Problems("total_order")
    for view in idx.procs.values():
        last: dict[int, Deliver] = {}
        for (_, deliver, mcast), config in view.deliveries():
            before = last.get(mcast[0])
            if before is not None and deliver.seq <= before.seq:
                where = "no configuration" if config is None else str(config.key)
                problems.add(
                    f"node {fmt_proc(view.proc)} delivered {_describe(deliver)} in {where} "
                    f"after {_describe(before)}: seqs of one ring must strictly increase"
                )
            last[mcast[0]] = deliver
    return problems.verdict()


@judges("GUAR-5-1", "EVS-11-8")
def check_agreed_prefix(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """No gaps in regular configs; in transitional ones only the allowed gaps (EVS-11-8)."""
    idx = as_index(history)
    problems = Problems("agreed_prefix")
    skipped = 0
    for proc, steps in idx.gap_steps().items():
        for step in steps:
            if step.config.key.kind == REGULAR:
                if step.new_gaps:
                    problems.add(
                        f"node {fmt_proc(proc)} delivered {_describe(step.deliver)} in "
                        f"{step.config.key} without first delivering "
                        f"{_gap_text(idx, step.mcast[0], step.new_gaps)}"
                    )
                continue
            skipped += len(step.new_gaps)
            _check_transitional_gap(idx, step, params, problems)
    return problems.verdict({"transitional_gaps": skipped})


def _gap_text(idx: HistoryIndex, ring_no: int, gaps: Sequence[int]) -> str:
    parts = [idx.mcast_long((ring_no, seq)) for seq in gaps[:4]]
    more = f" and {len(gaps) - 4} more" if len(gaps) > 4 else ""
    return "; ".join(parts) + more


def _check_transitional_gap(
    idx: HistoryIndex, step: GapStep, params: CheckParams, problems: Problems
) -> None:
    """EVS Spec 6.3 and RFC 0004 §7.2 for one delivery that follows a gap.

    The senders allowed after a gap form the *deliver set*: the transitional members, plus,
    after an abandoned recovery attempt, the obligation set of RFC 0004 §7.3 (members of the old
    ring that an earlier attempt had already recovered everything from). The history does
    not record that set, so after an abandoned attempt only old-ring membership is required;
    otherwise the deliver set is exactly the transitional membership.
    """
    config, deliver = step.config, step.deliver
    who = f"node {fmt_proc(config.proc)}"
    for seq in step.new_gaps:
        sender = idx.sender_of((step.mcast[0], seq))
        if sender is not None and sender in config.members:
            problems.add(
                f"{who} skipped {_gap_text(idx, step.mcast[0], [seq])} in {config.key} "
                f"(delivering {_describe(deliver)} after it), but its sender {sender} is a "
                f"member of that transitional configuration"
            )
    if not params.strict_transitional_gap or deliver.sender in config.members:
        return
    prev = config.prev_regular
    owner = idx.procs[config.proc]
    if prev is not None and owner.abandoned_recovery(prev.pos, config.pos):
        if deliver.sender in prev.members:
            return
        allowed = f"a member of the old ring {prev.key.ring}"
    else:
        allowed = "a member of that transitional configuration (no recovery was abandoned)"
    problems.add(
        f"{who} delivered {_describe(deliver)} in {config.key} after the gap at "
        f"{_gap_text(idx, step.mcast[0], step.gaps[:1])}, but sender {deliver.sender} is not "
        f"{allowed}"
    )


@judges("GUAR-5-8", "EVS-11-10")
def check_transitional_agreement(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Members of one transitional configuration deliver one sequence in it (EVS-11-10)."""
    idx = as_index(history)
    problems = Problems("transitional_agreement")
    compared = 0
    for key, views in idx.configs.items():
        if key.kind == REGULAR or len(views) < 2:
            continue
        sequences = {id(v): [m for _, _, m in v.deliveries] for v in views}
        complete = [v for v in views if v.next is not None]
        ref = complete[0] if complete else max(views, key=lambda v: len(sequences[id(v)]))
        for view in views:
            if view is ref:
                continue
            compared += 1
            mine, theirs = sequences[id(view)], sequences[id(ref)]
            exact = view.next is not None and ref.next is not None
            if exact and mine == theirs:
                continue
            if not exact and (mine == theirs[: len(mine)] or theirs == mine[: len(theirs)]):
                continue
            problems.add(_disagreement(idx, view, ref, mine, theirs, exact))
    return problems.verdict({"pairs_compared": compared})


def _disagreement(
    idx: HistoryIndex,
    view: ConfigView,
    ref: ConfigView,
    mine: list[Mcast],
    theirs: list[Mcast],
    exact: bool,
) -> str:
    at = next((i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b), None)
    if at is None:
        at = min(len(mine), len(theirs))

    def item(seq: list[Mcast]) -> str:
        return idx.mcast_text(seq[at]) if at < len(seq) else "nothing more"

    kind = "the same sequence" if exact else "prefixes of one sequence"
    return (
        f"{view.key}: node {fmt_proc(view.proc)} (installed {fmt_t(view.time_ns)}) delivered "
        f"{len(mine)} mcast(s) in it and node {fmt_proc(ref.proc)} delivered {len(theirs)}; "
        f"they must be {kind}, but at position {at} node {fmt_proc(view.proc)} has "
        f"{item(mine)} and node {fmt_proc(ref.proc)} has {item(theirs)}"
    )
