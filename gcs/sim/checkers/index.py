"""One pass over a history that every checker shares.

A history is a flat list of events in global (virtual time, record) order. The checkers ask
questions that need it regrouped: each incarnation's configurations with the mcasts delivered
in each one, who originated ring R's seq s, which incarnation of node n installed
configuration X. ``build_index`` answers all of these in one O(n) pass, so that running every
checker over a 10^5-event history stays well under a second (brief §10: the checkers run after
every simulated run).

Vocabulary (brief §10 preamble, §4.3):

* a *proc* is one process incarnation ``(node, incarnation)``; a restart is a new proc;
* an *mcast* is ``(origin ring, seq)``: one seq of one ring. Deliveries and originations are
  per mcast; a packed mcast carries several message ids, a fragment-only mcast carries none;
* a configuration is keyed by ``ConfigKey``: a regular configuration by its ring id, a
  transitional one by (new ring id, previous regular ring id), because one transitional
  configuration exists per old ring that merges into the new ring.

Positions are indexes into ``history.events``; within one proc they are in stream order, so
"p delivered x before it originated y" is a comparison of two positions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from gcs.sim.checkers.verdict import Proc, fmt_proc, fmt_t
from gcs.sim.history import (
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
from gcs.wire.frames import RingId

__all__ = [
    "REGULAR",
    "TRANSITIONAL",
    "ConfigKey",
    "ConfigView",
    "HistoryIndex",
    "Mcast",
    "OriginRecord",
    "ProcView",
    "RingWalk",
    "Source",
    "all_deliveries",
    "as_index",
    "build_index",
    "walk_deliveries",
]

REGULAR = "regular"
TRANSITIONAL = "transitional"

Mcast = tuple[RingId, int]  # (origin ring, seq)


@dataclass(frozen=True, slots=True)
class ConfigKey:
    """The identity of a configuration (ARCHITECTURE.md decision 4, refined for merges).

    ``prev`` is None for regular configurations. For a transitional configuration it is the
    previous regular ring of the members moving together, which tells apart the transitional
    configurations of the different old rings that merge into one new ring.
    """

    kind: str
    ring: RingId
    prev: RingId | None = None

    def __str__(self) -> str:
        if self.kind == TRANSITIONAL:
            return f"transitional {self.ring} (from {self.prev})"
        return f"{self.kind} {self.ring}"


@dataclass(eq=False, slots=True)
class ConfigView:
    """One incarnation's installation of one configuration, and what it delivered in it."""

    proc: Proc
    pos: int
    event: Conf
    key: ConfigKey
    index: int
    prev_regular: ConfigView | None
    members: frozenset[int]
    deliveries: list[tuple[int, Deliver]] = field(default_factory=list)
    next: ConfigView | None = None

    @property
    def time_ns(self) -> int:
        return self.event.time_ns

    def label(self) -> str:
        return f"{self.key} at node {fmt_proc(self.proc)} ({fmt_t(self.event.time_ns)})"

    def next_regular(self) -> ConfigView | None:
        """The next regular configuration this incarnation installed after this one."""
        view = self.next
        while view is not None and view.key.kind != REGULAR:
            view = view.next
        return view


@dataclass(eq=False, slots=True)
class ProcView:
    """Everything one incarnation recorded, regrouped."""

    proc: Proc
    first_pos: int
    start: Start | None = None
    start_pos: int | None = None
    extra_starts: int = 0
    end: Crash | Leave | None = None
    end_pos: int | None = None
    after_end: int = 0
    after_end_first: int | None = None
    configs: list[ConfigView] = field(default_factory=list)
    loose: list[tuple[int, Deliver]] = field(default_factory=list)
    originates: list[tuple[int, Originate, ConfigView | None]] = field(default_factory=list)
    submits: dict[MsgId, tuple[int, Submit]] = field(default_factory=dict)
    duplicate_submits: list[tuple[int, Submit]] = field(default_factory=list)
    delivered: dict[Mcast, tuple[int, ConfigView | None]] = field(default_factory=dict)
    states: list[State] = field(default_factory=list)
    persists: list[tuple[int, Persist]] = field(default_factory=list)

    @property
    def node(self) -> int:
        return self.proc[0]

    @property
    def ended(self) -> bool:
        return self.end is not None

    def ended_before_next_regular(self, view: ConfigView) -> bool:
        """True if this incarnation crashed or left without installing a regular config
        after ``view``: EVS obligations that wait for "the next regular configuration" are
        void for it (EVS Specs 3 and 7.1: "... or fails")."""
        return self.end is not None and view.next_regular() is None


@dataclass(frozen=True, slots=True)
class OriginRecord:
    """One Originate event: which incarnation assigned the seq, and where in its stream."""

    proc: Proc
    pos: int
    event: Originate


class HistoryIndex:
    """The regrouped history (see the module docstring). Built by ``build_index``."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.procs: dict[Proc, ProcView] = {}
        self.start_order: list[Proc] = []
        self.origins: dict[Mcast, list[OriginRecord]] = {}
        self.msg_origins: dict[MsgId, list[OriginRecord]] = {}
        self.configs: dict[ConfigKey, list[ConfigView]] = {}
        self.installs: dict[tuple[ConfigKey, int], ConfigView] = {}
        self.faults: list[Fault] = []
        self.invariants: list[Invariant] = []
        self.persist_seen = False
        self.orig_seqs: dict[RingId, list[int]] = {}
        self.end_ns = 0

    def origin(self, mcast: Mcast) -> OriginRecord | None:
        """The (first) Originate of this mcast, or None if nobody originated it."""
        records = self.origins.get(mcast)
        return records[0] if records else None

    def sender_of(self, mcast: Mcast) -> int | None:
        record = self.origin(mcast)
        return None if record is None else record.proc[0]

    def installer(self, key: ConfigKey, node: int) -> ConfigView | None:
        """The (first) installation of configuration ``key`` by any incarnation of ``node``."""
        return self.installs.get((key, node))


Source = History | HistoryIndex
_ProcEvent = (
    Start | Crash | Leave | Submit | Originate | Deliver | Conf | State | Persist | Invariant
)


def as_index(source: Source) -> HistoryIndex:
    """Checkers accept a History or an already built index (``check_all`` builds it once)."""
    if isinstance(source, HistoryIndex):
        return source
    return build_index(source)


def build_index(history: History) -> HistoryIndex:
    """Regroup ``history`` in one pass (O(n), plus sorting each ring's originated seqs)."""
    idx = HistoryIndex(history)
    procs = idx.procs
    for pos, event in enumerate(history.events):
        idx.end_ns = max(idx.end_ns, event.time_ns)
        if isinstance(event, Fault):
            idx.faults.append(event)
            continue
        proc = (event.node, event.incarnation)
        view = procs.get(proc)
        if view is None:
            view = procs[proc] = ProcView(proc=proc, first_pos=pos)
        if view.end is not None:
            view.after_end += 1
            if view.after_end_first is None:
                view.after_end_first = pos
        _add_event(idx, view, pos, event)
    idx.orig_seqs = _originated_seqs(idx)
    return idx


def _add_event(idx: HistoryIndex, view: ProcView, pos: int, event: _ProcEvent) -> None:
    match event:
        case Deliver():
            _add_delivery(view, pos, event)
        case Conf():
            _add_config(idx, view, pos, event)
        case Originate():
            _add_originate(idx, view, pos, event)
        case Submit():
            if event.msg_id in view.submits:
                view.duplicate_submits.append((pos, event))
            else:
                view.submits[event.msg_id] = (pos, event)
        case Start():
            _add_start(idx, view, pos, event)
        case Crash() | Leave():
            if view.end is None:
                view.end, view.end_pos = event, pos
        case State():
            view.states.append(event)
        case Persist():
            view.persists.append((pos, event))
            idx.persist_seen = True
        case Invariant():
            idx.invariants.append(event)


def all_deliveries(view: ProcView) -> Iterator[tuple[int, Deliver, ConfigView | None]]:
    """Every delivery of one incarnation in stream order, with its configuration (None for a
    delivery recorded before the incarnation installed any configuration)."""
    for pos, deliver in view.loose:
        yield pos, deliver, None
    for config in view.configs:
        for pos, deliver in config.deliveries:
            yield pos, deliver, config


def _add_delivery(view: ProcView, pos: int, event: Deliver) -> None:
    config = view.configs[-1] if view.configs else None
    if config is None:
        view.loose.append((pos, event))
    else:
        config.deliveries.append((pos, event))
    view.delivered.setdefault((event.origin_ring, event.seq), (pos, config))


def _add_config(idx: HistoryIndex, view: ProcView, pos: int, event: Conf) -> None:
    prev_regular = next((c for c in reversed(view.configs) if c.key.kind == REGULAR), None)
    if event.kind == REGULAR:
        key = ConfigKey(REGULAR, event.ring_id)
    else:
        prev_ring = None if prev_regular is None else prev_regular.event.ring_id
        key = ConfigKey(event.kind, event.ring_id, prev_ring)
    config = ConfigView(
        proc=view.proc,
        pos=pos,
        event=event,
        key=key,
        index=len(view.configs),
        prev_regular=prev_regular,
        members=frozenset(event.members),
    )
    if view.configs:
        view.configs[-1].next = config
    view.configs.append(config)
    idx.configs.setdefault(key, []).append(config)
    idx.installs.setdefault((key, view.node), config)


def _add_originate(idx: HistoryIndex, view: ProcView, pos: int, event: Originate) -> None:
    record = OriginRecord(view.proc, pos, event)
    idx.origins.setdefault((event.ring_id, event.seq), []).append(record)
    for msg_id in event.msg_ids:
        idx.msg_origins.setdefault(msg_id, []).append(record)
    current = view.configs[-1] if view.configs else None
    view.originates.append((pos, event, current))


def _add_start(idx: HistoryIndex, view: ProcView, pos: int, event: Start) -> None:
    if view.start is None:
        view.start, view.start_pos = event, pos
        idx.start_order.append(view.proc)
    else:
        view.extra_starts += 1


def _originated_seqs(idx: HistoryIndex) -> dict[RingId, list[int]]:
    seqs: dict[RingId, list[int]] = {}
    for ring, seq in idx.origins:
        seqs.setdefault(ring, []).append(seq)
    for values in seqs.values():
        values.sort()
    return seqs


@dataclass(eq=False, slots=True)
class RingWalk:
    """Progress of one incarnation through the originated seqs of one origin ring."""

    orig: list[int]
    ptr: int = 0
    delivered: set[int] = field(default_factory=set)
    gaps: list[int] = field(default_factory=list)


def walk_deliveries(
    idx: HistoryIndex, view: ProcView
) -> Iterator[tuple[ConfigView, int, Deliver, list[int], RingWalk]]:
    """Each delivery of ``view`` (inside a configuration), with the gaps it jumps over.

    A *gap* is a seq of the delivery's origin ring that has an Originate event, is lower
    than the delivered seq and was not delivered before it. Recovery carrier seqs have no
    Originate, so they are never gaps. Yields ``(config, pos, deliver, new_gaps, walk)``;
    ``walk.gaps`` accumulates every gap seen so far on that ring by this incarnation. Shared by
    the agreed-prefix rule (§10.11) and send-after-deliver causality (§10.14).
    """
    walks: dict[RingId, RingWalk] = {}
    for config in view.configs:
        for pos, deliver in config.deliveries:
            walk = walks.get(deliver.origin_ring)
            if walk is None:
                walk = RingWalk(idx.orig_seqs.get(deliver.origin_ring, []))
                walks[deliver.origin_ring] = walk
            orig, seq = walk.orig, deliver.seq
            new_gaps: list[int] = []
            while walk.ptr < len(orig) and orig[walk.ptr] < seq:
                if orig[walk.ptr] not in walk.delivered:
                    new_gaps.append(orig[walk.ptr])
                walk.ptr += 1
            if walk.ptr < len(orig) and orig[walk.ptr] == seq:
                walk.ptr += 1
            walk.delivered.add(seq)
            walk.gaps.extend(new_gaps)
            yield config, pos, deliver, new_gaps, walk
