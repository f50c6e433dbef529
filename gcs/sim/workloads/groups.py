"""The ``groups`` workload: group members on every node join, leave and send, judged by group.

Each host incarnation runs the group layer (``gcs.sim.layer.GroupLayer``: the group layer's one
driver, the one the embedded node and the daemon run) with members of groups ``g1``..``g3``: at
start it joins a member to each group; until the end of the fault phase a churn process (its own
seed stream, ``groups/node/<n>/<incarnation>``) makes members leave and new ones join, several
per group and node at times. Messages arrive as in the ``messages`` workload, from the same seed
streams (``gcs.sim.workloads.messages``), and go round-robin to the node's members that are in a
view, so every member sends; one in ten is a point-to-point message (``send_to``) to a member of
the sender's view. Each is queued by the group driver under flow control as ``group.send``
queues it. The ring-level checkers judge the ring as usual (the group layer's own records and
point-to-point messages are not workload messages, ``gcs.history.events.application_record``).

Every event a member receives is kept as a ``gcs.sim.checkers.groups.MemberEvent`` (with the
message's position in the ring's order, the configuration the ring delivered it in and when),
and ``verdicts`` judges them with the group-level checkers (RFC 0006 API-3.7-1 and the rest, RFC
0007 SIM-6-3). Quorum rules apply when the scenario has a ``[quorum]`` table or ``votes``.
"""

from __future__ import annotations

import random
import struct
from collections import deque
from dataclasses import dataclass

from gcs.groups.records import ANNOUNCE_GROUP, decode_directed, directed_record
from gcs.groups.views import Member, Message, View
from gcs.history import events as h
from gcs.quorum.rules import Quorum
from gcs.sim.checkers.groups import GroupRun, MemberEvent, Position, check_groups
from gcs.sim.checkers.verdict import Verdict
from gcs.sim.layer import GroupLayer
from gcs.sim.scenario import Scenario
from gcs.sim.workloads.messages import install_workload
from gcs.sim.world import Host, World
from gcs.totem.effects import Configuration, ConfigurationKind, Deliver
from gcs.wire.frames import Record, RecordFlags

__all__ = ["GROUPS", "GroupWorkload", "MemberNode", "install_groups"]

GROUPS = ("g1", "g2", "g3")
S = 1_000_000_000
MS = 1_000_000
CHURN_MEAN_S = 3.0
"""Mean time between two churn steps of one incarnation (a leave, or a join)."""
MAX_PER_GROUP = 2
"""A node keeps at most this many members of one group."""
DIRECTED = 0.1
"""The share of sends that go point-to-point."""
_DATA = int(RecordFlags.DATA)
_KIND = int(RecordFlags.KIND_MASK)
_P2P = struct.Struct(">4sIIQ")  # tag, node, incarnation, counter


@dataclass(slots=True)
class _Local:
    """One member of this incarnation: its group, and whether it is in a view (may send)."""

    group: str
    member: Member
    active: bool = False
    leaving: bool = False
    """Its leave is queued: it may not send any more (``group.send`` raises ``NotMember``)."""
    closed: bool = False


class GroupWorkload:
    """The members of every host incarnation, what they sent and what they received."""

    def __init__(self, world: World, scenario: Scenario) -> None:
        self.world = world
        self.rules = scenario.quorum_rules() if scenario.quorum or scenario.votes else None
        self.end_ns = int(scenario.duration_s * S)
        self.events: list[MemberEvent] = []
        self.sent: dict[tuple[str, Member], list[bytes]] = {}
        self.layers: list[MemberNode] = []
        self.stored_votes: dict[int, int] = {}

    def send(self, world: World, node: int, size: int, safe: bool) -> bool:
        """A ``messages.Sender``: the node's next member in a view sends."""
        layer = world.hosts[node].upper
        return isinstance(layer, MemberNode) and layer.send(size, safe)

    def run(self) -> GroupRun:
        """The run as the group checkers read it (after the world ran)."""
        live: set[tuple[str, Member]] = set()
        # Members on a live node that the newest list does not list end alone by design
        # (RFC 0008 §3.7): they are not among the open members the others must see.
        for host in self.world.expected_live():
            layer = host.upper
            if isinstance(layer, MemberNode):
                live.update((m.group, m.member) for m in layer.locals.values() if not m.closed)
        delivered = {
            (layer.host.node_id, layer.incarnation): frozenset(layer.seen) for layer in self.layers
        }
        return GroupRun(self.events, self.sent, delivered, frozenset(live))

    def verdicts(self) -> list[Verdict]:
        return check_groups(self.run())


def install_groups(world: World, scenario: Scenario) -> GroupWorkload:
    """The groups workload of ``scenario`` in ``world`` (before it starts)."""
    workload = GroupWorkload(world, scenario)
    world.workload_filter = h.application_record
    world.layer_factory = lambda host: MemberNode(host, workload)
    install_workload(world, scenario, workload.send)
    return workload


class _Tag:
    """A multicast's ``SendTag``: its payload counts as sent once it reached the core."""

    __slots__ = ("key", "payload", "workload")

    def __init__(self, workload: GroupWorkload, key: tuple[str, Member], payload: bytes) -> None:
        self.workload, self.key, self.payload = workload, key, payload

    def sent(self) -> None:
        self.workload.sent.setdefault(self.key, []).append(self.payload)

    def refused(self, error: Exception) -> None:
        """Too large or the node closed: it was never sent."""

    def delivered(self) -> None:
        """Self-delivery is judged on what the member received, not here."""


_Seen = tuple[Position, tuple[int, ...], bool, int]
"""Where the ring put a message: its position, its configuration's members, whether that
configuration was transitional, and when the ring delivered it at this node."""


class MemberNode(GroupLayer):
    """One incarnation's members of groups ``g1``..``g3`` (see the module docstring)."""

    def __init__(self, host: Host, workload: GroupWorkload) -> None:
        super().__init__(host, workload.rules, workload.stored_votes.get(host.node_id))
        self.workload = workload
        workload.layers.append(self)
        name = f"node/{host.node_id}/{host.incarnation}"
        self.rng: random.Random = host.world.seeds.child("groups").rng(name)
        self.boot = (host.store.boots & ((1 << 44) - 1)) << 20
        self.handles = 0
        self.messages = 0
        """Payloads made by this incarnation: the counter of their ids (submission order)."""
        self.locals: dict[int, _Local] = {}
        self.turn: deque[int] = deque()
        """Handles in round-robin order of sending."""
        self.config: tuple[int, ...] = ()
        self.seen: dict[bytes, _Seen] = {}
        for group in GROUPS:
            self.join(group)
        self._schedule_churn()

    # ------------------------------------------------------------------ members

    def join(self, group: str) -> None:
        self.handles += 1
        handle = self.boot | self.handles
        self.locals[handle] = _Local(group, Member(self.host.node_id, handle))
        self.turn.append(handle)
        self.driver.join(group, handle)

    def leave(self, handle: int) -> None:
        local = self.locals[handle]
        local.active, local.leaving = False, True
        self.driver.leave(local.group, handle)

    def _schedule_churn(self) -> None:
        w = self.host.world
        at = w.now + max(MS, int(self.rng.expovariate(1 / CHURN_MEAN_S) * S))
        if at < self.workload.end_ns:
            w.at(at, self._churn)

    def _churn(self) -> None:
        if self.host.upper is not self or self.host.core is None:
            return  # this incarnation ended
        group = self.rng.choice(GROUPS)
        mine = sum(1 for m in self.locals.values() if m.group == group and not m.closed)
        active = [h for h, m in self.locals.items() if m.active]
        if active and (self.rng.random() < 0.5 or mine >= MAX_PER_GROUP):
            self.leave(self.rng.choice(active))
        elif mine < MAX_PER_GROUP:
            self.join(group)
        self.drain()
        self._schedule_churn()

    # ------------------------------------------------------------------ the host's calls

    def on_deliver(self, now_ns: int, deliver: Deliver) -> None:
        """Note where and when the ring put each message, then hand it to the group layer."""
        config = self.config
        transitional = deliver.config.kind is ConfigurationKind.TRANSITIONAL
        ring, seen, now = deliver.origin, self.seen, self.host.world.now
        for index, record in enumerate(deliver.records):
            if record.flags & _KIND != _DATA:
                continue
            payload = record.data
            if record.group == ANNOUNCE_GROUP:
                parsed = decode_directed(payload) if record.handle else None
                if parsed is None:
                    continue
                payload = parsed[2]
            seen[payload] = ((ring.seq, ring.rep, deliver.seq, index), config, transitional, now)
        super().on_deliver(now_ns, deliver)

    # ------------------------------------------------------------------ the driver's calls

    def on_ring(self, configuration: Configuration) -> None:
        self.config = configuration.members

    def on_event(
        self, group: str, handles: tuple[int, ...], event: View | Message | Quorum
    ) -> None:
        if isinstance(event, Quorum):
            return
        now = self.host.world.now
        node, incarnation = self.host.node_id, self.incarnation
        position = config = ring_ns = None
        transitional = False
        if isinstance(event, Message):
            position, config, transitional, ring_ns = self.seen[event.data]
        events = self.workload.events
        for handle in handles:
            local = self.locals[handle]
            if isinstance(event, View):
                local.active = not (local.closed or local.leaving)
            events.append(
                MemberEvent(
                    now,
                    node,
                    incarnation,
                    group,
                    local.member,
                    event,
                    position,
                    config,
                    transitional,
                    ring_ns,
                )
            )

    def on_member_closed(self, group: str, handle: int) -> None:
        local = self.locals[handle]
        local.closed, local.active = True, False
        now, node = self.host.world.now, self.host.node_id
        self.workload.events.append(
            MemberEvent(now, node, self.incarnation, group, local.member, None)
        )

    def on_persist_quorum(self, expected_votes: int) -> None:
        self.workload.stored_votes[self.host.node_id] = expected_votes

    # ------------------------------------------------------------------ sending

    def send(self, size: int, safe: bool) -> bool:
        """One workload message from the next member in a view; True if it reached the core."""
        host = self.host
        if host.world.now < host.paused_until:
            return False
        handle = self._next_sender()
        if handle is None:
            return False
        local = self.locals[handle]
        self.messages += 1
        if self.rng.random() < DIRECTED:
            return self._send_to(local, handle, size, safe)
        msg_id = h.MsgId(host.node_id, host.incarnation, self.messages)
        data = h.encode_payload(msg_id, size)
        host.world.payload_ids[data] = msg_id
        tag = _Tag(self.workload, (local.group, local.member), data)
        sent = self.driver.send(Record(local.group, handle, _DATA, data), safe, tag)
        self._retry_if_blocked()
        return sent

    def _send_to(self, local: _Local, handle: int, size: int, safe: bool) -> bool:
        """A point-to-point message to a member of the sender's view (``send_to``)."""
        view = self.state.local[local.group].last_view
        if view is None:
            return False
        to = self.rng.choice(view.members)
        head = _P2P.pack(b"p2p:", self.host.node_id, self.incarnation, self.messages)
        payload = head + bytes(max(0, size - len(head)))
        sent = self.driver.send(directed_record(local.group, handle, to, payload), safe)
        self._retry_if_blocked()
        return sent

    def _next_sender(self) -> int | None:
        """The next member in a view, round robin; members whose stream ended drop out."""
        for _ in range(len(self.turn)):
            handle = self.turn[0]
            local = self.locals[handle]
            if local.closed:
                self.turn.popleft()
                continue
            self.turn.rotate(-1)
            if local.active:
                return handle
        return None
