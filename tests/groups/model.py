"""A toy ring that feeds several ``GroupState`` instances the way the core would.

It is not Totem: it only produces streams with the properties the group layer relies on — every
node of a component receives the same configurations and deliveries in the same order; each
sender's records arrive in the order it submitted them (FIFO); a record still queued at a
configuration change is originated in the next ring; a partition gives each side a transitional
then a regular configuration; a merge gives each side its own transitional configuration and a
regular configuration that lists the other side as joined. Records a node submits when its group
layer asks for an announcement go to the back of its queue, as in the runtime.

Everything each node's local members receive is logged, so tests can check the promises of
RFC 0006 §3 on the logs.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

from gcs.groups.state import (
    AnnounceNeeded,
    Emit,
    EmitMessages,
    GroupState,
    MemberClosed,
    Output,
)
from gcs.groups.views import Member, Message, View
from gcs.totem.effects import (
    ChangeReason,
    ConfigId,
    Configuration,
    ConfigurationKind,
    Deliver,
    ReasonKind,
)
from gcs.wire.frames import Record, RecordFlags, RingId

REGULAR = ConfigurationKind.REGULAR
TRANSITIONAL = ConfigurationKind.TRANSITIONAL


@dataclass
class LocalLog:
    """What one local member saw: its events in order, and whether its stream ended."""

    member: Member
    group: str
    events: list[View | Message] = field(default_factory=list)
    closed: bool = False


@dataclass
class ModelNode:
    node_id: int
    state: GroupState
    queue: deque[Record] = field(default_factory=deque)
    logs: dict[tuple[str, int], LocalLog] = field(default_factory=dict)
    handles: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def apply(self, outputs: list[Output]) -> None:
        for out in (o for batch in outputs for o in _one_by_one(batch)):
            if isinstance(out, Emit):
                for handle in out.handles:
                    log = self.logs[(out.group, handle)]
                    assert not log.closed, f"event after close for {log.member}"
                    log.events.append(out.event)
            elif isinstance(out, MemberClosed):
                self.logs[(out.group, out.handle)].closed = True
            elif isinstance(out, AnnounceNeeded):
                self.announce()

    def announce(self) -> None:
        record = self.state.announcement()
        if record is not None:
            self.submit(record)

    def submit(self, record: Record) -> None:
        self.queue.append(record)
        self.state.note_submitted(record)


@dataclass
class Component:
    ring: RingId
    nodes: tuple[int, ...]
    seq: int = 0


class RingModel:
    """Nodes, components and the streams they deliver (see the module docstring)."""

    def __init__(self, node_ids: tuple[int, ...]) -> None:
        self.nodes = {n: ModelNode(n, GroupState(n)) for n in node_ids}
        self.next_ring_seq = 4
        self.components: list[Component] = []
        self.payloads = itertools.count(1)
        self.left: dict[int, set[tuple[str, int]]] = {}
        self.history: list[tuple[RingId, int, int, int, Record]] = []
        """Every delivered record: (origin ring, seq, index in the mcast, sender, record)."""
        for n in node_ids:
            ring = RingId(seq=self.next_ring_seq, rep=n)
            self.components.append(Component(ring, (n,)))
            startup = Configuration(REGULAR, ring, (n,), (), (n,), ChangeReason(ReasonKind.STARTUP))
            self.nodes[n].apply(self.nodes[n].state.on_configuration(startup))

    # ------------------------------------------------------------------ application actions

    def join(self, node: int, group: str) -> Member:
        model = self.nodes[node]
        handle = next(model.handles)
        model.state.add_local(group, handle)
        model.logs[(group, handle)] = LocalLog(Member(node, handle), group)
        model.submit(Record(group, handle, int(RecordFlags.JOIN), b""))
        return Member(node, handle)

    def active_members(self, node: int) -> list[tuple[str, int]]:
        """Members that may send or leave: in a view, not closed, no leave submitted."""
        model = self.nodes[node]
        # As the API does (NotMember after leave()): a leave sent but held by the group layer
        # (RFC 0006 API-3.7-1) has left the queue without closing the stream yet.
        leaving = self.left.get(node, set())
        return [
            key
            for key, log in model.logs.items()
            if not log.closed and log.events and key not in leaving
        ]

    def leave(self, node: int, key: tuple[str, int]) -> None:
        model = self.nodes[node]
        self.left.setdefault(node, set()).add(key)
        model.submit(Record(key[0], key[1], int(RecordFlags.LEAVE), b""))

    def send(self, node: int, key: tuple[str, int], safe: bool = False) -> None:
        data = f"m{next(self.payloads)}".encode()
        flags = int(RecordFlags.DATA) | (int(RecordFlags.SAFE) if safe else 0)
        self.nodes[node].submit(Record(key[0], key[1], flags, data))

    # ------------------------------------------------------------------ the ring

    def deliver(
        self,
        comp: Component,
        senders: list[int],
        pack: int = 1,
        trans: tuple[RingId, tuple[int, ...]] | None = None,
    ) -> None:
        """Originate and deliver, in ``comp``, the next records of each sender in ``senders``.

        ``trans``: deliver in that transitional configuration, to those nodes only (old-ring
        messages after a change; the seqs still come from the old ring, shared by both sides).
        """
        config = ConfigId(TRANSITIONAL, trans[0]) if trans else ConfigId(REGULAR, comp.ring)
        recipients = trans[1] if trans else comp.nodes
        for sender in senders:
            queue = self.nodes[sender].queue
            if not queue:
                continue
            records = tuple(queue.popleft() for _ in range(min(pack, len(queue))))
            comp.seq += 1
            safe = all(r.flags & int(RecordFlags.SAFE) for r in records)
            effect = Deliver(config, comp.ring, comp.seq, sender, safe, records)
            self.history.extend((comp.ring, comp.seq, i, sender, r) for i, r in enumerate(records))
            for n in recipients:
                self.nodes[n].apply(self.nodes[n].state.on_deliver(effect))

    def _configure(
        self,
        comp: Component,
        new_ring: RingId,
        members: tuple[int, ...],
        reason: ChangeReason,
        trans_senders: list[int],
    ) -> None:
        """Move ``comp`` into ``new_ring`` (whose members may include other components)."""
        left = tuple(n for n in comp.nodes if n not in members)
        trans_members = tuple(n for n in comp.nodes if n in members)
        joined = tuple(n for n in members if n not in trans_members)
        trans_conf = Configuration(TRANSITIONAL, new_ring, trans_members, left, (), reason)
        for n in trans_members:
            self.nodes[n].apply(self.nodes[n].state.on_configuration(trans_conf))
        # Old-ring messages delivered in the transitional configuration (senders that stay).
        senders = [s for s in trans_senders if s in trans_members]
        self.deliver(comp, senders, trans=(new_ring, trans_members))
        regular = Configuration(REGULAR, new_ring, members, (), joined, reason)
        for n in trans_members:
            self.nodes[n].apply(self.nodes[n].state.on_configuration(regular))

    def _new_ring(self, members: tuple[int, ...]) -> RingId:
        self.next_ring_seq += 4
        return RingId(seq=self.next_ring_seq, rep=min(members))

    def partition(self, index: int, split: set[int], trans_senders: list[int]) -> None:
        comp = self.components.pop(index)
        sides = [
            tuple(n for n in comp.nodes if n in split),
            tuple(n for n in comp.nodes if n not in split),
        ]
        for side in sides:
            if not side:
                continue
            ring = self._new_ring(side)
            reason = ChangeReason(
                ReasonKind.TOKEN_LOSS, tuple(n for n in comp.nodes if n not in side)
            )
            self._configure(comp, ring, side, reason, trans_senders)
            self.components.append(Component(ring, side))

    def merge(self, first: int, second: int, trans_senders: list[int]) -> None:
        a, b = self.components[first], self.components[second]
        members = tuple(sorted(a.nodes + b.nodes))
        ring = self._new_ring(members)
        reason = ChangeReason(ReasonKind.MERGE)
        for comp in (a, b):
            self._configure(comp, ring, members, reason, trans_senders)
        self.components = [c for c in self.components if c is not a and c is not b]
        self.components.append(Component(ring, members))

    def settle(self) -> None:
        """Merge everything and deliver until every queue is empty."""
        while len(self.components) > 1:
            self.merge(0, 1, [])
        comp = self.components[0]
        while any(self.nodes[n].queue for n in comp.nodes):
            self.deliver(comp, list(comp.nodes))


def _one_by_one(out: Output) -> list[Output]:
    """``out``, with a batch of messages (``EmitMessages``) as one ``Emit`` each."""
    return list(out.emits()) if isinstance(out, EmitMessages) else [out]
