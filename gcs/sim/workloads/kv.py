"""The ``kv`` workload: a replicated key-value store on the real group layer, in the simulator.

Each simulated node runs what an application process would run on top of its core: the group
layer (``gcs.sim.layer.GroupLayer``, the group layer's one driver, with the scenario's quorum
rules), one primary-component member of group ``kv``, the state-transfer machine
(``gcs.transfer.machine.Transfer``) and a store (``gcs.sim.workloads.kvlog.KvReplica``).
``KvNode`` is that application, one per host incarnation: it feeds its member's events to the
machine, and executes the machine's actions on the store and as records sent through the group
layer — the same composition ``gcs.Node`` + ``gcs.join_with_state`` make over asyncio, minus
the sockets.

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
from dataclasses import dataclass
from typing import assert_never

from gcs.groups.records import directed_record
from gcs.groups.state import NodeListEvent
from gcs.groups.views import Member, Message, View
from gcs.history import events as h
from gcs.quorum.rules import Quorum, QuorumRules
from gcs.sim.checkers.kv import check_kv_acked, check_kv_converged, check_kv_history
from gcs.sim.checkers.nodelist import (
    check_node_list_agreement,
    check_node_list_chain,
    check_node_list_durable,
)
from gcs.sim.checkers.quorum import check_quorum, check_quorum_agreement
from gcs.sim.checkers.verdict import Verdict as CheckerVerdict
from gcs.sim.layer import GroupLayer
from gcs.sim.scenario import Scenario
from gcs.sim.workloads.kvlog import (
    Ack,
    Apply,
    Final,
    Install,
    KvLog,
    KvReplica,
    NodesHeld,
    Verdict,
    VerdictEnd,
)
from gcs.sim.world import Host, World
from gcs.totem.effects import Configuration, ConfigurationKind, Deliver
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
from gcs.wire.frames import Record, RecordFlags

__all__ = ["GROUP", "KvNode", "KvWorkload", "install_kv", "is_write"]

GROUP = "kv"
CHUNK_BYTES = 512
"""Snapshot chunks stay below a frame, so only workload records are ever fragmented."""
S = 1_000_000_000
_KIND = int(RecordFlags.KIND_MASK)
_DATA = int(RecordFlags.DATA)


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
    workload.install(w.rate, w.sizes, int(w.start_s * S), int(scenario.duration_s * S))
    return workload


class KvWorkload:
    """The workload's shared parts: rules, the log, each node's disk, the arrival processes."""

    def __init__(self, world: World, rules: QuorumRules, keys: int) -> None:
        self.world = world
        self.rules = rules
        self.keys = keys
        self.log = KvLog(
            two_node=rules.two_node,
            last_man_standing=rules.last_man_standing,
            node_changes=rules.node_changes,
        )
        self.disks: dict[int, KvDisk] = {n: KvDisk() for n in world.nodes}

    def install(self, rate: float, sizes: tuple[int, ...], start_ns: int, end_ns: int) -> None:
        """Run a ``KvNode`` above every host incarnation and schedule each node's writes."""
        world = self.world
        world.workload_filter = is_write
        world.layer_factory = lambda host: KvNode(host, self)
        for node in world.nodes:
            rng = world.seeds.child("workload").rng(f"kv/{node}")
            if rate > 0:
                world.at(start_ns, self._arrival, node, rng, rate, sizes, end_ns)

    def _arrival(
        self, node: int, rng: random.Random, rate: float, sizes: tuple[int, ...], end_ns: int
    ) -> None:
        world = self.world
        if world.now >= end_ns:
            return
        kv = world.hosts[node].upper
        size = sizes[0] if len(sizes) == 1 else rng.choice(sizes)
        if isinstance(kv, KvNode):
            kv.write(size)
        gap = max(1, int(rng.expovariate(rate) * S))
        world.at(world.now + gap, self._arrival, node, rng, rate, sizes, end_ns)

    def verdicts(self) -> list[CheckerVerdict]:
        """Finish the log and judge it: quorum, quorum agreement, and the store's checkers."""
        self.finish()
        log = self.log
        return [
            check_quorum(log),
            check_quorum_agreement(log),
            check_node_list_chain(log),
            check_node_list_agreement(log),
            check_node_list_durable(log),
            check_kv_history(log),
            check_kv_acked(log),
            check_kv_converged(log),
        ]

    def finish(self) -> None:
        """Record every live replica's final state for the convergence check."""
        for host in self.world.hosts.values():
            kv = host.upper
            if isinstance(kv, KvNode) and host.core is not None:
                verdict = kv.state.quorum
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


class KvNode(GroupLayer):
    """One incarnation's application on one host (see the module docstring)."""

    def __init__(self, host: Host, workload: KvWorkload) -> None:
        disk = workload.disks[host.node_id]
        kept = host.store.ring_seq is not None  # the state directory survived (not wiped)
        super().__init__(host, workload.rules, disk.expected_votes)
        self.workload = workload
        if workload.rules.node_changes:
            self._log_nodes("start", kept)
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
        self.writes = 0
        """The counter of this incarnation's last write (``MsgId``)."""
        self.verdict: Quorum | None = None
        self.driver.join(GROUP, handle, primary=True, tails=True)

    # ------------------------------------------------------------------ the ring, the verdicts

    def on_configuration(self, now_ns: int, configuration: Configuration) -> None:
        super().on_configuration(now_ns, configuration)
        self._note_verdict()

    def on_deliver(self, now_ns: int, deliver: Deliver) -> None:
        super().on_deliver(now_ns, deliver)
        self._note_verdict()

    def on_ring(self, configuration: Configuration) -> None:
        if configuration.kind is ConfigurationKind.TRANSITIONAL:
            self._end_verdict()

    def _note_verdict(self) -> None:
        tracker = self.state.quorum_tracker
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
                0 if tracker is None else tracker.nodes.version,
            )
        )

    def _end_verdict(self) -> None:
        w = self.host.world
        self.workload.log.events.append(VerdictEnd(w.now, self.host.node_id, self.incarnation))

    # ------------------------------------------------------------------ the group layer's calls

    def on_event(
        self, group: str, handles: tuple[int, ...], event: View | Message | Quorum
    ) -> None:
        if group == GROUP and self.member.handle in handles:
            self._act(self.machine.feed(event))

    def on_member_closed(self, group: str, handle: int) -> None:
        """Never for the kv member while its incarnation runs: it does not leave."""

    def on_persist_quorum(self, expected_votes: int) -> None:
        self.workload.disks[self.host.node_id].expected_votes = expected_votes

    def on_node_list(self, event: NodeListEvent) -> None:
        if event.refused is None:
            self._log_nodes("adopted" if event.change is None else "applied", True)
        super().on_node_list(event)

    def _log_nodes(self, how: str, disk_kept: bool) -> None:
        nodes = self.state.nodes
        if nodes is None:
            return
        entries = tuple((e.node_id, e.votes) for e in nodes.entries)
        w = self.host.world
        self.workload.log.events.append(
            NodesHeld(
                w.now, self.host.node_id, self.incarnation, nodes.version, entries, how, disk_kept
            )
        )

    def down(self) -> None:
        """The incarnation ends: the replica's state and its lineage stay on the disk."""
        if self.installed:
            disk = self.workload.disks[self.host.node_id]
            disk.state, disk.lineage = self.replica.snapshot(), self.machine.lineage
            disk.meta = self.machine.export()
        self._end_verdict()

    # ------------------------------------------------------------------ the machine's actions

    def _act(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case Give(event=event):
                    self._give(event)
                case Snapshot(key=key):
                    self._act(self.machine.snapshot_taken(key, self.replica.snapshot()))
                case Replace(state=state):
                    self.replica.install(state)
                    self._log_install("transfer")
                case Merge(sides=sides):
                    self.replica.install(KvReplica.merge(sides))
                    self._log_install("merge")
                case Installed():
                    self.installed = True
                case Send(data=data, safe=safe):
                    self.driver.send(Record(GROUP, self.member.handle, _DATA, data), safe)
                case Stream():
                    self._stream(action)
                case Cancel(key=key):
                    self._cancel(key)
                case Fail():
                    pass  # a needer's buffer limit: not reached by this workload
                case _:
                    assert_never(action)

    def _cancel(self, key: bytes) -> None:
        """Withdraw the chunks of round ``key`` still waiting to be sent."""
        mark = MAGIC + b"\x02" + key
        self.driver.withdraw(lambda record, _: mark in record.data)

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
        handle = self.member.handle
        for dest in targets:
            for i in range(count):
                piece = data[i * CHUNK_BYTES : (i + 1) * CHUNK_BYTES]
                msg = encode_chunk(stream.key, stream.owner, dest, i, count, piece)
                if dest is None:
                    record = Record(GROUP, handle, _DATA, msg)
                else:
                    record = directed_record(GROUP, handle, dest, msg)
                self.driver.send(record, stream.safe)

    # ------------------------------------------------------------------ sending

    def write(self, size: int) -> None:
        """The application writes: a safe workload message, once this replica has the state."""
        host = self.host
        if not self.installed or host.world.now < host.paused_until:
            return
        self.writes += 1
        msg_id = h.MsgId(host.node_id, host.incarnation, self.writes)
        data = h.encode_payload(msg_id, size)
        host.world.payload_ids[data] = msg_id
        self.driver.send(Record(GROUP, self.member.handle, _DATA, data), True)
        self._retry_if_blocked()
