"""State-transfer machines on the toy ring: every member runs ``gcs.transfer.machine.Transfer``.

Each member's application is a ``LogApp``: its state is the list of application messages it
applied, so "nothing lost, nothing applied twice" and "every replica converged" are list
comparisons. Protocol sends become records in the member's node queue (directed chunks as
group-layer point-to-point records), so they are ordered with everything else exactly as on a
ring; ``Cancel`` removes a stream's records that were not delivered yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cbor2

from gcs.groups.records import ANNOUNCE_GROUP, encode_directed
from gcs.groups.state import Emit, EmitMessages, Output
from gcs.groups.views import Member, Message
from gcs.transfer.machine import (
    CHUNK_BYTES,
    MAGIC,
    Action,
    Cancel,
    Deliver,
    Fail,
    Install,
    Installed,
    Merge,
    Send,
    Snapshot,
    Stream,
    Transfer,
    encode_chunk,
    escape,
)
from gcs.wire.frames import Record, RecordFlags
from tests.groups.model import LocalLog
from tests.quorum.model import QuorumModel, QuorumNode

DATA = int(RecordFlags.DATA)
SAFE = int(RecordFlags.SAFE)


@dataclass
class LogApp:
    """A replicated log: the state is every application message applied, in order."""

    applied: list[bytes] = field(default_factory=list)
    merges: list[list[tuple[tuple[Member, ...], list[bytes]]]] = field(default_factory=list)
    installs: int = 0

    def snapshot(self) -> bytes:
        return bytes(cbor2.dumps(self.applied))

    def install(self, state: bytes) -> None:
        self.applied = list(cbor2.loads(state))
        self.installs += 1

    def merge(self, sides: Sequence[tuple[tuple[Member, ...], bytes]]) -> bytes:
        """Keep the longest log (ties: the first side); remember what was merged."""
        decoded = [(holders, list(cbor2.loads(state))) for holders, state in sides]
        self.merges.append(decoded)
        best = max(decoded, key=lambda side: len(side[1]))
        return bytes(cbor2.dumps(best[1]))


@dataclass
class Replica:
    member: Member
    machine: Transfer
    app: LogApp
    installed: str = ""
    events: list[object] = field(default_factory=list)
    failed: str = ""


class TransferNode(QuorumNode):
    replicas: dict[int, Replica]
    chunk_bytes: int

    def apply(self, outputs: list[Output]) -> None:
        rest: list[Output] = []
        for out in (
            o for b in outputs for o in (b.emits() if isinstance(b, EmitMessages) else [b])
        ):
            if isinstance(out, Emit):
                for handle in out.handles:
                    replica = self.replicas.get(handle)
                    if replica is not None:
                        self.run(replica, replica.machine.feed(out.event))
                        continue
                    rest.append(Emit(out.group, (handle,), out.event))
            else:
                rest.append(out)
        super().apply(rest)

    def run(self, replica: Replica, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Deliver):
                replica.events.append(action.event)
                event = action.event
                if isinstance(event, Message):
                    replica.app.applied.append(event.data)
            elif isinstance(action, Snapshot):
                data = replica.app.snapshot()
                self.run(replica, replica.machine.snapshot_taken(action.key, data))
            elif isinstance(action, Install):
                replica.app.install(action.state)
            elif isinstance(action, Merge):
                replica.app.install(replica.app.merge(action.sides))
            elif isinstance(action, Installed):
                replica.installed = action.how
            elif isinstance(action, Fail):
                replica.failed = action.reason
            elif isinstance(action, Send):
                self.send_protocol(replica, action.data, action.safe)
            elif isinstance(action, Stream):
                self.stream(replica, action)
            elif isinstance(action, Cancel):
                mark = MAGIC + b"\x02" + action.key  # the chunks of that stream, nothing else
                self.queue = type(self.queue)(r for r in self.queue if mark not in r.data)

    def send_protocol(self, replica: Replica, data: bytes, safe: bool) -> None:
        flags = DATA | (SAFE if safe else 0)
        self.submit(Record("g", replica.member.handle, flags, data))

    def stream(self, replica: Replica, stream: Stream) -> None:
        size = self.chunk_bytes
        count = max(1, -(-len(stream.data) // size))
        targets: Sequence[Member | None] = stream.to if stream.to is not None else (None,)
        for dest in targets:
            for i in range(count):
                piece = stream.data[i * size : (i + 1) * size]
                msg = encode_chunk(stream.key, stream.owner, dest, i, count, piece)
                if dest is None:
                    self.send_protocol(replica, msg, stream.safe)
                else:
                    data = encode_directed("g", dest, msg)
                    self.submit(Record(ANNOUNCE_GROUP, replica.member.handle, DATA, data))


class TransferModel(QuorumModel):
    """A toy ring whose members of group "g" run state transfer."""

    def __init__(self, node_ids: tuple[int, ...], chunk_bytes: int = 7, **options: object) -> None:
        super().__init__(node_ids, **options)
        for node in self.nodes.values():
            node.__class__ = TransferNode
            assert isinstance(node, TransferNode)
            node.replicas = {}
            node.chunk_bytes = chunk_bytes or CHUNK_BYTES
        self.primary = False

    def add(self, node: int, *, primary: bool = False, lineage: bytes | None = None) -> Replica:
        model = self.nodes[node]
        assert isinstance(model, TransferNode)
        handle = next(model.handles)
        member = Member(node, handle)
        model.state.add_local("g", handle, primary=primary, tails=primary)
        model.logs[("g", handle)] = LocalLog(member, "g")
        replica = Replica(member, Transfer(member, primary=primary, lineage=lineage), LogApp())
        model.replicas[handle] = replica
        model.submit(Record("g", handle, int(RecordFlags.JOIN), b""))
        return replica

    def write(self, replica: Replica, payload: bytes, safe: bool = True) -> None:
        node = self.nodes[replica.member.node]
        flags = DATA | (SAFE if safe else 0)
        node.submit(Record("g", replica.member.handle, flags, escape(payload)))

    def replicas(self) -> list[Replica]:
        out: list[Replica] = []
        for node in self.nodes.values():
            assert isinstance(node, TransferNode)
            out.extend(node.replicas.values())
        return out

    def drain(self, comp_index: int | None = None, rounds: int = 10_000) -> None:
        comps = self.components if comp_index is None else [self.components[comp_index]]
        for comp in comps:
            for _ in range(rounds):
                if not any(self.nodes[n].queue for n in comp.nodes):
                    break
                self.deliver(comp, list(comp.nodes))
