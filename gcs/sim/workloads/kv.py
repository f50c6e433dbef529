"""The ``kv`` workload: a replicated key-value store on the real group layer, in the simulator.

Each simulated node runs what an application process would run on top of its core: the group layer
(``gcs.groups.state.GroupState`` with the scenario's quorum rules), one primary-component member of
group ``kv``, the state-transfer machine (``gcs.transfer.machine.Transfer``) and a store
(``gcs.sim.workloads.kvlog.KvReplica``). ``KvHost`` is the world's host with those pieces attached:
it feeds the core's configurations and deliveries to the group layer, the group layer's events to
the machine, the machine's actions to the store and back to the core as records — the same
composition ``gcs.Node`` + ``gcs.join_with_state`` make over asyncio, minus the sockets.

Writes are safe workload messages (their bytes name their ``MsgId``, so the ring-level
checkers judge them like any workload), sent at the scenario's rate by nodes whose replica holds
the state. A replica acknowledges a write when it applies its own. The store survives crashes
(its "disk" is kept per node and is not wiped by the nemesis, which wipes the gcs state
directory): a restarted replica restores it and rejoins as a holder of its old lineage, so a
merge — not a blind overwrite — reconciles it. The ``kv`` and ``quorum`` checkers
(``gcs.sim.checkers.kv``, ``gcs.sim.checkers.quorum``) judge the ``KvLog`` after the run.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

from gcs.errors import MessageTooLarge, SendQueueFull
from gcs.groups.records import ANNOUNCE_GROUP, encode_directed
from gcs.groups.state import AnnounceNeeded, Emit, GroupState, Output
from gcs.groups.views import Member, Message
from gcs.history import events as h
from gcs.quorum.primary import LmsTimer, PersistQuorum
from gcs.quorum.rules import Quorum, QuorumRules
from gcs.sim.checkers.kv import check_kv_acked, check_kv_converged, check_kv_history
from gcs.sim.checkers.quorum import check_quorum, check_quorum_agreement
from gcs.sim.checkers.verdict import Verdict as CheckerVerdict
from gcs.sim.scenario import Scenario
from gcs.sim.workloads.kvlog import (
    Ack,
    Apply,
    Final,
    Install,
    KvLog,
    KvReplica,
    Verdict,
    VerdictEnd,
)
from gcs.sim.world import Host, World
from gcs.totem.effects import Configuration, ConfigurationKind, Deliver, Effect
from gcs.transfer.machine import (
    MAGIC,
    Action,
    Cancel,
    Fail,
    Installed,
    Merge,
    Send,
    Snapshot,
    Stream,
    Transfer,
    encode_chunk,
)
from gcs.transfer.machine import Deliver as Give
from gcs.transfer.machine import Install as Replace
from gcs.wire.frames import Record, RecordFlags, RingId

__all__ = ["GROUP", "KvHost", "KvWorkload", "install_kv"]

GROUP = "kv"
CHUNK_BYTES = 512
"""Snapshot chunks stay below a frame, so only workload records are ever fragmented."""
MS = 1_000_000
S = 1_000_000_000
_KIND = int(RecordFlags.KIND_MASK)
_DATA, _JOIN = int(RecordFlags.DATA), int(RecordFlags.JOIN)
_POSITION = int(RecordFlags.FRAGMENT_MASK)
_WHOLE, _FIRST, _LAST = int(RecordFlags.WHOLE), int(RecordFlags.FIRST), int(RecordFlags.LAST)


def is_write(record: Record) -> bool:
    """A workload write (as opposed to group-layer and state-transfer records)."""
    return (
        record.group == GROUP
        and record.flags & _KIND == _DATA
        and not record.data.startswith(MAGIC)
    )


@dataclass(slots=True)
class KvDisk:
    """What a node's replica keeps across crashes."""

    state: bytes | None = None
    lineage: bytes | None = None
    meta: bytes | None = None
    expected_votes: int | None = None


def install_kv(world: World, scenario: Scenario) -> KvWorkload:
    """The kv workload of ``scenario`` in ``world`` (before it starts)."""
    w = scenario.workload
    workload = KvWorkload(world, scenario.quorum_rules(), w.keys)
    world.workload_filter = is_write
    workload.install(w.rate, w.sizes, int(w.start_s * S), int(scenario.duration_s * S))
    return workload


class KvWorkload:
    """The workload's shared parts: rules, the log, each node's disk, the arrival processes."""

    def __init__(self, world: World, rules: QuorumRules, keys: int) -> None:
        self.world = world
        self.rules = rules
        self.keys = keys
        self.log = KvLog(two_node=rules.two_node, last_man_standing=rules.last_man_standing)
        self.disks: dict[int, KvDisk] = {n: KvDisk() for n in world.nodes}

    def install(self, rate: float, sizes: tuple[int, ...], start_ns: int, end_ns: int) -> None:
        """Put ``KvHost``s in the world (before it starts) and schedule each node's writes."""
        world = self.world
        for node in world.nodes:
            host = KvHost(world, node)
            host.workload = self
            world.hosts[node] = host
            rng = world.seeds.child("workload").rng(f"kv/{node}")
            if rate > 0:
                world.at(start_ns, self._arrival, node, rng, rate, sizes, end_ns)

    def _arrival(
        self, node: int, rng: random.Random, rate: float, sizes: tuple[int, ...], end_ns: int
    ) -> None:
        world = self.world
        if world.now >= end_ns:
            return
        host = world.hosts[node]
        size = sizes[0] if len(sizes) == 1 else rng.choice(sizes)
        if isinstance(host, KvHost) and host.kv is not None:
            host.kv.write(size)
        gap = max(1, int(rng.expovariate(rate) * S))
        world.at(world.now + gap, self._arrival, node, rng, rate, sizes, end_ns)

    def verdicts(self) -> list[CheckerVerdict]:
        """Finish the log and judge it: quorum, quorum agreement, and the store's checkers."""
        self.finish()
        log = self.log
        return [
            check_quorum(log),
            check_quorum_agreement(log),
            check_kv_history(log),
            check_kv_acked(log),
            check_kv_converged(log),
        ]

    def finish(self) -> None:
        """Record every live replica's final state for the convergence check."""
        for host in self.world.hosts.values():
            if isinstance(host, KvHost) and host.kv is not None and host.core is not None:
                kv = host.kv
                verdict = kv.groups.quorum
                self.log.finals.append(
                    Final(
                        host.node_id,
                        host.incarnation,
                        kv.replica.version,
                        kv.replica.chain,
                        kv.installed,
                        None if verdict is None else verdict.ring_id,
                        verdict is not None and verdict.quorate and not verdict.pending,
                    )
                )


class KvNode:
    """One incarnation's application on one host (see the module docstring)."""

    def __init__(self, host: KvHost, workload: KvWorkload) -> None:
        self.host = host
        self.workload = workload
        self.incarnation = host.incarnation
        disk = workload.disks[host.node_id]
        self.groups = GroupState(host.node_id, workload.rules, disk.expected_votes)
        handle = ((host.store.boots & ((1 << 44) - 1)) << 20) | 1
        self.member = Member(host.node_id, handle)
        self.replica = KvReplica(workload.keys)
        restored = disk.state is not None
        if disk.state is not None:
            self.replica.install(disk.state)
        self.machine = Transfer(
            self.member,
            primary=True,
            lineage=disk.lineage if restored else None,
            restore=disk.meta if restored else None,
        )
        self.installed = restored
        self.control: deque[Record] = deque()
        self.data: deque[tuple[Record, bool, h.MsgId | None]] = deque()
        self.announce = False
        self.draining = False
        self.retry_armed = False
        self.verdict: Quorum | None = None
        self.groups.add_local(GROUP, handle, primary=True, tails=True)
        self.control.append(Record(GROUP, handle, _JOIN, b""))

    # ------------------------------------------------------------------ the core's effects

    def on_configuration(self, conf: Configuration) -> None:
        if conf.kind is ConfigurationKind.TRANSITIONAL:
            self._end_verdict()
        self._outputs(self.groups.on_configuration(conf))

    def on_deliver(self, deliver: Deliver) -> None:
        self._outputs(self.groups.on_deliver(deliver))

    def _outputs(self, outputs: list[Output]) -> None:
        for out in outputs:
            if type(out) is Emit:
                if out.group == GROUP and self.member.handle in out.handles:
                    self._act(self.machine.feed(out.event))
            elif type(out) is AnnounceNeeded:
                self.announce = True
            elif type(out) is LmsTimer:
                world = self.host.world
                world.at(world.now + out.delay_ns, self.host.lms_due, self.incarnation, out.ring_id)
            elif type(out) is PersistQuorum:
                self.workload.disks[self.host.node_id].expected_votes = out.expected_votes
        self._note_verdict()

    def _note_verdict(self) -> None:
        tracker = self.groups.quorum_tracker
        verdict = None if tracker is None else tracker.verdict
        if verdict is None or verdict is self.verdict:
            return
        self.verdict = verdict
        w = self.host.world
        self.workload.log.events.append(
            Verdict(
                w.now,
                self.host.node_id,
                self.incarnation,
                verdict.ring_id,
                verdict.members,
                verdict.quorate,
                verdict.total_votes,
                verdict.expected_votes,
            )
        )

    def _end_verdict(self) -> None:
        w = self.host.world
        self.workload.log.events.append(VerdictEnd(w.now, self.host.node_id, self.incarnation))

    # ------------------------------------------------------------------ the machine's actions

    def _act(self, actions: list[Action]) -> None:
        for action in actions:
            kind = type(action)
            if kind is Give:
                self._give(action.event)  # type: ignore[union-attr]
            elif kind is Snapshot:
                data = self.replica.snapshot()
                self._act(self.machine.snapshot_taken(action.key, data))  # type: ignore[union-attr]
            elif kind is Replace:
                self.replica.install(action.state)  # type: ignore[union-attr]
                self._log_install("transfer")
            elif kind is Merge:
                self.replica.install(KvReplica.merge(action.sides))  # type: ignore[union-attr]
                self._log_install("merge")
            elif kind is Installed:
                self.installed = True
            elif kind is Send:
                send = action
                assert isinstance(send, Send)
                record = Record(GROUP, self.member.handle, _DATA, send.data)
                self.data.append((record, send.safe, None))
            elif kind is Stream:
                assert isinstance(action, Stream)
                self._stream(action)
            elif kind is Cancel:
                assert isinstance(action, Cancel)
                mark = MAGIC + b"\x02" + action.key
                self.data = deque(item for item in self.data if mark not in item[0].data)
            elif kind is Fail:
                pass  # a needer's buffer limit: not reached by this workload

    def _give(self, event: object) -> None:
        if type(event) is not Message:
            return
        msg_id = h.decode_payload(event.data)
        if msg_id is None:
            return
        self.replica.apply(msg_id)
        w = self.host.world
        node, inc = self.host.node_id, self.incarnation
        version, chain = self.replica.version, self.replica.chain
        self.workload.log.events.append(Apply(w.now, node, inc, version, msg_id, chain))
        if event.sender == self.member:
            self.workload.log.events.append(Ack(w.now, node, inc, msg_id, version))

    def _log_install(self, how: str) -> None:
        w = self.host.world
        replica = self.replica
        event = Install(
            w.now, self.host.node_id, self.incarnation, replica.version, replica.chain, how
        )
        self.workload.log.events.append(event)

    def _stream(self, stream: Stream) -> None:
        data = stream.data
        count = max(1, -(-len(data) // CHUNK_BYTES))
        targets: tuple[Member | None, ...] = stream.to if stream.to is not None else (None,)
        for dest in targets:
            for i in range(count):
                piece = data[i * CHUNK_BYTES : (i + 1) * CHUNK_BYTES]
                msg = encode_chunk(stream.key, stream.owner, dest, i, count, piece)
                if dest is None:
                    record = Record(GROUP, self.member.handle, _DATA, msg)
                else:
                    direct = encode_directed(GROUP, dest, msg)
                    record = Record(ANNOUNCE_GROUP, self.member.handle, _DATA, direct)
                self.data.append((record, stream.safe, None))

    # ------------------------------------------------------------------ sending

    def write(self, size: int) -> None:
        """The application writes: a safe workload message, once this replica has the state."""
        if not self.installed or self.host.world.now < self.host.paused_until:
            return
        host = self.host
        msg_id = h.MsgId(host.node_id, host.incarnation, host.counter + len(self._writes()) + 1)
        data = h.encode_payload(msg_id, size)
        host.world.payload_ids[data] = msg_id
        self.data.append((Record(GROUP, self.member.handle, _DATA, data), True, msg_id))
        self.drain()

    def _writes(self) -> list[h.MsgId]:
        return [m for _, _, m in self.data if m is not None]

    def drain(self) -> None:
        """Submit what may go: control first (joins, announcements, LMS), then data."""
        if self.draining:
            return
        self.draining = True
        try:
            self._drain()
        finally:
            self.draining = False

    def _drain(self) -> None:
        host = self.host
        if self.announce:
            record = self.groups.announcement()
            if record is not None and not self._submit(record, False):
                return self._retry()
            self.announce = False
        while self.control:
            if not self._submit(self.control[0], False):
                return self._retry()
            self.groups.note_submitted(self.control.popleft())
        while self.data and host.window_open and host.core is not None:
            record, safe, msg_id = self.data[0]
            if not self._submit(record, safe, msg_id):
                return self._retry()
            self.data.popleft()
        return None

    def _submit(self, record: Record, safe: bool, msg_id: h.MsgId | None = None) -> bool:
        """Hand one record to the core; a write is recorded as submitted before its effects."""
        host = self.host
        core = host.core
        w = host.world
        if core is None or w.now < host.paused_until:
            return False
        try:
            effects = core.submit(host.clock.local(w.now), record, safe=safe)
        except (SendQueueFull, MessageTooLarge):
            return False
        if msg_id is not None:
            host.counter = msg_id.counter
            size = len(record.data)
            w.record(h.Submit(w.now, host.node_id, host.incarnation, msg_id, safe, size))
        host._execute(effects)
        return True

    def _retry(self) -> None:
        if not self.retry_armed:
            self.retry_armed = True
            w = self.host.world
            w.at(w.now + MS, self.host.kick, self.incarnation)


@dataclass(slots=True, eq=False)
class KvHost(Host):
    """A host that runs the key-value service on its core (see the module docstring)."""

    kv: KvNode | None = None
    workload: KvWorkload | None = field(default=None, repr=False)

    def _execute(self, effects: list[Effect]) -> None:
        kv = self.kv
        stale = kv is None or kv.incarnation != self.incarnation
        if self.core is not None and self.workload is not None and stale:
            self.kv = KvNode(self, self.workload)
        Host._execute(self, effects)
        if self.kv is not None and self.core is not None:
            self.kv.drain()

    def _execute_rare(self, effect: Effect) -> None:
        Host._execute_rare(self, effect)
        if type(effect) is Configuration and self.kv is not None:
            self.kv.on_configuration(effect)

    def _note_delivery(self, effect: Deliver) -> None:
        Host._note_delivery(self, effect)
        if self.kv is not None and effect.records:
            self.kv.on_deliver(effect)

    def _down(self) -> None:
        kv = self.kv
        if kv is not None and self.workload is not None:
            disk = self.workload.disks[self.node_id]
            if kv.installed:
                disk.state, disk.lineage = kv.replica.snapshot(), kv.machine.lineage
                disk.meta = kv.machine.export()
            kv._end_verdict()
        self.kv = None
        Host._down(self)

    def kick(self, incarnation: int) -> None:
        kv = self.kv
        if kv is not None and kv.incarnation == incarnation and self.core is not None:
            kv.retry_armed = False
            kv.drain()

    def lms_due(self, incarnation: int, ring: RingId) -> None:
        kv = self.kv
        if kv is None or kv.incarnation != incarnation or self.core is None:
            return
        record = kv.groups.lms_record(ring)
        if record is not None:
            kv.control.append(record)
            kv.drain()
