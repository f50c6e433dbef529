"""A small builder for synthetic histories, so checker tests read like the scenario they test.

Every call appends one event (or a few) at the builder's clock, which advances by ``step_ns``
per event unless ``at()`` sets it. The builder tracks each node's current incarnation and
configuration, so the fields a test does not care about get the values a correct core would
produce:

* ``conf`` derives ``left``/``joined`` from the members (RFC 0004 EVS-11-1, REC-7.1-1: corosync's);
* ``originate`` takes the next seq of the node's current regular ring;
* ``deliver`` copies sender, ids and safe from the Originate event and the configuration from
  the node's current one.

Any of these can be overridden, which is how tests build violations::

    h = HistoryBuilder()
    h.boot(1, 2, 3)                                  # start + startup singletons
    h.form(R8, {1, 2, 3})                            # trans {me} + regular {1,2,3} at each node
    m = h.send(1)                                    # submit + originate, returns the mcast
    h.deliver_everywhere(m, [1, 2, 3])
    history = h.build()

Also here: ``assert_valid`` / ``assert_fails`` / ``failing`` / ``verdicts`` (run ``check_all`` and
look at the outcome by checker name), ``partition_heal_run`` (a valid three-node run with a
partition, a heal and matching liveness parameters, to extend or corrupt) and ``big_history``
(a valid history of any size, for benchmarks).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gcs.history.events import (
    Conf,
    Crash,
    Deliver,
    Fault,
    History,
    Invariant,
    Leave,
    MsgId,
    Originate,
    Persist,
    Start,
    State,
    Submit,
)
from gcs.sim.checkers import CheckParams, Verdict, check_all, format_report
from gcs.wire.frames import RingId

__all__ = [
    "HistoryBuilder",
    "Mcast",
    "assert_fails",
    "assert_valid",
    "big_history",
    "failing",
    "partition_heal_run",
    "ring",
    "verdicts",
]

Proc = tuple[int, int]
Mcast = tuple[RingId, int]


def ring(seq: int, rep: int = 1) -> RingId:
    """A ring id; ``rep`` defaults to node 1, the usual representative."""
    return RingId(seq=seq, rep=rep)


@dataclass
class _Node:
    incarnation: int
    kind: str = ""
    ring_id: RingId | None = None
    members: frozenset[int] = frozenset()
    regular: frozenset[int] = frozenset()
    regular_ring: RingId | None = None
    counter: int = 0
    submitted: dict[MsgId, bool] = field(default_factory=dict)


class HistoryBuilder:
    """Appends events to a ``History`` with sensible defaults (see the module docstring)."""

    def __init__(self, step_ns: int = 1_000_000) -> None:
        self.history = History()
        self.now_ns = 0
        self.step_ns = step_ns
        self.nodes: dict[int, _Node] = {}
        self.origins: dict[Mcast, Originate] = {}
        self._next_seq: dict[RingId, int] = {}

    # ------------------------------------------------------------------ clock and lookup
    def at(self, time_ns: int) -> HistoryBuilder:
        """Set the clock: the next event happens at ``time_ns``."""
        self.now_ns = time_ns - self.step_ns
        return self

    def _tick(self) -> int:
        self.now_ns += self.step_ns
        return self.now_ns

    def proc(self, node: int) -> Proc:
        return (node, self.nodes[node].incarnation)

    def build(self) -> History:
        return self.history

    # ------------------------------------------------------------------ lifecycle
    def start(
        self, node: int, *, incarnation: int | None = None, stored_ring_seq: int | None = None
    ) -> Proc:
        """A new incarnation of ``node`` (the next one unless given)."""
        before = self.nodes.get(node)
        inc = incarnation if incarnation is not None else (before.incarnation + 1 if before else 1)
        self.nodes[node] = _Node(incarnation=inc)
        self.history.append(Start(self._tick(), node, inc, stored_ring_seq))
        return (node, inc)

    def boot(self, *nodes: int, seq: int = 4, stored_ring_seq: int | None = None) -> None:
        """Start each node and install its startup singleton ring ``(node, seq)``."""
        for node in nodes:
            self.start(node, stored_ring_seq=stored_ring_seq)
            self.regular(node, ring(seq, node), {node}, reason="startup")

    def crash(self, node: int) -> None:
        self.history.append(Crash(self._tick(), node, self.nodes[node].incarnation))

    def leave(self, node: int) -> None:
        self.history.append(Leave(self._tick(), node, self.nodes[node].incarnation))

    def fault(self, kind: str, node: int = 0, **detail: Any) -> None:
        inc = self.nodes[node].incarnation if node in self.nodes else 0
        self.history.append(Fault(self._tick(), kind, dict(detail), node, inc))

    def state(self, node: int, old: str, new: str, reason: str = "") -> None:
        proc = self.proc(node)
        self.history.append(State(self._tick(), proc[0], proc[1], old, new, reason))

    def persist(self, node: int, ring_seq: int) -> None:
        proc = self.proc(node)
        self.history.append(Persist(self._tick(), proc[0], proc[1], ring_seq))

    def invariant(self, node: int, message: str) -> None:
        proc = self.proc(node)
        self.history.append(Invariant(self._tick(), proc[0], proc[1], message))

    # ------------------------------------------------------------------ configurations
    def conf(
        self,
        node: int,
        kind: str,
        ring_id: RingId,
        members: Iterable[int],
        *,
        left: Iterable[int] | None = None,
        joined: Iterable[int] | None = None,
        reason: str = "join",
    ) -> Conf:
        """Install a configuration; ``left``/``joined`` default to the REC-7.1-1 rules."""
        state = self.nodes[node]
        new = frozenset(members)
        if kind == "transitional":
            default_left, default_joined = state.regular - new, frozenset[int]()
        else:
            previous = state.members if state.kind == "transitional" else frozenset[int]()
            default_left, default_joined = frozenset[int](), new - previous
        event = Conf(
            self._tick(),
            node,
            state.incarnation,
            kind,
            ring_id,
            tuple(sorted(new)),
            tuple(sorted(default_left if left is None else left)),
            tuple(sorted(default_joined if joined is None else joined)),
            reason,
        )
        self.history.append(event)
        state.kind, state.ring_id, state.members = kind, ring_id, new
        if kind == "regular":
            state.regular, state.regular_ring = new, ring_id
        return event

    def regular(self, node: int, ring_id: RingId, members: Iterable[int], **kw: Any) -> Conf:
        return self.conf(node, "regular", ring_id, members, **kw)

    def transitional(self, node: int, ring_id: RingId, members: Iterable[int]) -> Conf:
        return self.conf(node, "transitional", ring_id, members)

    def change(
        self,
        node: int,
        ring_id: RingId,
        members: Iterable[int],
        trans: Iterable[int] | None = None,
        *,
        reason: str = "join",
    ) -> None:
        """Transitional then regular at one node; ``trans`` defaults to old ∩ new members."""
        new = frozenset(members)
        moving = frozenset(trans) if trans is not None else self.nodes[node].regular & new
        self.transitional(node, ring_id, moving)
        self.regular(node, ring_id, new, reason=reason)

    def form(self, ring_id: RingId, members: Iterable[int], *, reason: str = "join") -> None:
        """Every member changes to ``ring_id``. Each one's transitional configuration holds the
        members whose current regular ring is its own (RFC 0004 REC-6.1-1 ``my_trans_memb``), worked
        out before anyone moves."""
        new = sorted(frozenset(members))
        came_from = {node: self.nodes[node].regular_ring for node in new}
        for node in new:
            moving = {q for q in new if came_from[q] == came_from[node]}
            self.change(node, ring_id, new, moving, reason=reason)

    # ------------------------------------------------------------------ messages
    def submit(self, node: int, *, safe: bool = False, size: int = 64) -> MsgId:
        state = self.nodes[node]
        state.counter += 1
        msg_id = MsgId(node, state.incarnation, state.counter)
        state.submitted[msg_id] = safe
        self.history.append(Submit(self._tick(), node, state.incarnation, msg_id, safe, size))
        return msg_id

    def originate(
        self,
        node: int,
        msg_ids: Iterable[MsgId] = (),
        *,
        ring_id: RingId | None = None,
        seq: int | None = None,
        safe: bool | None = None,
    ) -> Mcast:
        """Assign the next seq of the node's regular ring (or the given one) to an mcast."""
        state = self.nodes[node]
        ids = tuple(msg_ids)
        the_ring = ring_id if ring_id is not None else state.regular_ring
        assert the_ring is not None, "originate needs a ring"
        the_seq = seq if seq is not None else self._next_seq.get(the_ring, 1)
        self._next_seq[the_ring] = max(self._next_seq.get(the_ring, 1), the_seq + 1)
        is_safe = safe if safe is not None else any(state.submitted.get(m, False) for m in ids)
        event = Originate(self._tick(), node, state.incarnation, the_ring, the_seq, is_safe, ids)
        self.history.append(event)
        self.origins[(the_ring, the_seq)] = event
        return (the_ring, the_seq)

    def skip_seqs(self, ring_id: RingId, count: int) -> None:
        """Leave ``count`` seqs of ``ring_id`` unoriginated (recovery carriers use them)."""
        self._next_seq[ring_id] = self._next_seq.get(ring_id, 1) + count

    def send(self, node: int, *, safe: bool = False, count: int = 1) -> Mcast:
        """Submit ``count`` messages and originate them packed in one mcast."""
        ids = [self.submit(node, safe=safe) for _ in range(count)]
        return self.originate(node, ids, safe=safe)

    def deliver(
        self,
        node: int,
        mcast: Mcast,
        *,
        safe: bool | None = None,
        sender: int | None = None,
        msg_ids: Iterable[MsgId] | None = None,
        config: tuple[str, RingId] | None = None,
        corrupt: int = 0,
    ) -> Deliver:
        """Deliver ``mcast`` at ``node`` in its current configuration, copying the Originate."""
        state = self.nodes[node]
        origin = self.origins.get(mcast)
        kind, config_ring = config if config is not None else (state.kind, state.ring_id)
        assert config_ring is not None, "deliver needs a configuration"
        event = Deliver(
            self._tick(),
            node,
            state.incarnation,
            kind,
            config_ring,
            mcast[0],
            mcast[1],
            sender if sender is not None else (origin.node if origin else 0),
            safe if safe is not None else (origin.safe if origin else False),
            tuple(msg_ids) if msg_ids is not None else (origin.msg_ids if origin else ()),
            corrupt,
        )
        self.history.append(event)
        return event

    def deliver_everywhere(
        self, mcast: Mcast, nodes: Iterable[int], *, safe: bool | None = None
    ) -> None:
        for node in nodes:
            self.deliver(node, mcast, safe=safe)


# ---------------------------------------------------------------------- assertions


def verdicts(history: History, params: CheckParams | None = None) -> dict[str, Verdict]:
    """Every applicable checker's verdict, by checker name."""
    return {v.name: v for v in check_all(history, params=params or CheckParams())}


def assert_valid(history: History, params: CheckParams | None = None) -> None:
    """Every checker passes (a None verdict, "could not judge", is a failure here too)."""
    results = list(verdicts(history, params).values())
    bad = [v for v in results if v.valid is not True]
    assert not bad, "\n" + format_report(bad)


def assert_fails(
    history: History, name: str, *fragments: str, params: CheckParams | None = None
) -> Verdict:
    """Checker ``name`` fails, and one of its problems mentions every fragment."""
    verdict = verdicts(history, params)[name]
    assert verdict.valid is False, f"{name} should fail:\n{verdict.summary()}"
    assert verdict.problem_count >= 1
    assert any(all(f in problem for f in fragments) for problem in verdict.problems), (
        f"no problem of {name} mentions {fragments}:\n{verdict.summary()}"
    )
    return verdict


def failing(history: History, params: CheckParams | None = None) -> set[str]:
    """Names of the checkers that fail."""
    return {name for name, v in verdicts(history, params).items() if v.valid is False}


# ---------------------------------------------------------------------- a reusable scenario


def partition_heal_run() -> tuple[HistoryBuilder, CheckParams]:
    """A valid three-node run: form, send, partition node 3 away, heal, merge, send.

    Returns the builder (so a test can append more) and params whose liveness facts match.
    """
    h = HistoryBuilder()
    h.boot(1, 2, 3)
    h.form(ring(8), {1, 2, 3})
    for sender in (1, 2, 3, 1):
        h.deliver_everywhere(h.send(sender), [1, 2, 3])
    h.deliver_everywhere(h.send(2, safe=True), [1, 2, 3])
    h.fault("partition", groups=[[1, 2], [3]])
    lonely = h.send(3)
    h.deliver(3, lonely)
    h.change(1, ring(12), {1, 2}, reason="token_loss")
    h.change(2, ring(12), {1, 2}, reason="token_loss")
    h.change(3, ring(12, 3), {3}, reason="token_loss")
    h.deliver_everywhere(h.send(1), [1, 2])
    h.fault("heal")
    quiet = h.now_ns
    h.form(ring(16), {1, 2, 3}, reason="merge")
    h.deliver_everywhere(h.send(3, count=2), [1, 2, 3])
    params = CheckParams(
        quiet_from_ns=quiet,
        liveness_bound_ns=1_000_000_000,
        expected_live=frozenset({(1, 1), (2, 1), (3, 1)}),
        gather_bound=3,
    )
    return h, params


def big_history(messages: int, nodes: int = 5, seed: int = 0) -> tuple[History, CheckParams]:
    """A valid history of about ``messages`` workload messages for benchmarks.

    All nodes form one ring; senders are random; every tenth message is fragmented over three
    mcasts and every fourth is safe; a few single messages are packed together. Every 2,000
    messages the last node is partitioned away and merged back, so the history also holds
    transitional configurations, deliveries in them and view changes.
    """
    rng = random.Random(seed)
    everyone = list(range(1, nodes + 1))
    h = HistoryBuilder(step_ns=1_000)
    h.boot(*everyone)
    ring_seq = 8
    h.form(ring(ring_seq), everyone)
    sent = 0
    while sent < messages:
        batch = []
        for _ in range(min(20, messages - sent)):
            sender = rng.choice(everyone)
            sent += 1
            if sent % 10 == 0:
                msg = h.submit(sender)
                batch += [h.originate(sender), h.originate(sender), h.originate(sender, [msg])]
            else:
                batch.append(h.send(sender, safe=sent % 4 == 0, count=1 + (sent % 7 == 0)))
        for mcast in batch:
            h.deliver_everywhere(mcast, everyone)
        if sent % 2000 == 0 and sent < messages:
            ring_seq += 4
            h.fault("partition", groups=[everyone[:-1], everyone[-1:]])
            h.form(ring(ring_seq), everyone[:-1], reason="token_loss")
            h.change(everyone[-1], ring(ring_seq, everyone[-1]), everyone[-1:], reason="token_loss")
            ring_seq += 4
            h.fault("heal")
            h.form(ring(ring_seq), everyone, reason="merge")
    quiet = h.now_ns
    params = CheckParams(
        quiet_from_ns=quiet,
        liveness_bound_ns=10**9,
        expected_live=frozenset((n, 1) for n in everyone),
        gather_bound=5,
    )
    return h.build(), params
