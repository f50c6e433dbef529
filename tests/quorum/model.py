"""The toy ring of tests/groups/model.py with quorum rules: GroupStates that judge quorum."""

from __future__ import annotations

import itertools

from gcs.groups.state import GroupState, Output
from gcs.groups.views import Member, View
from gcs.quorum.primary import LmsTimer, PersistQuorum
from gcs.quorum.rules import Quorum, QuorumOptions, QuorumRules
from gcs.totem.effects import ChangeReason, Configuration, ReasonKind
from gcs.wire.frames import Record, RecordFlags, RingId
from tests.groups.model import REGULAR, Component, LocalLog, ModelNode, RingModel


class QuorumNode(ModelNode):
    """A model node that also records LMS windows and persisted expected votes."""

    lms: list[LmsTimer]
    persisted: list[int]

    def apply(self, outputs: list[Output]) -> None:
        rest: list[Output] = []
        for out in outputs:
            if isinstance(out, LmsTimer):
                self.lms.append(out)
            elif isinstance(out, PersistQuorum):
                self.persisted.append(out.expected_votes)
            else:
                rest.append(out)
        super().apply(rest)


class QuorumModel(RingModel):
    def __init__(self, node_ids: tuple[int, ...], **options: object) -> None:
        self.rules = QuorumRules.build(node_ids, None, QuorumOptions(**options))  # type: ignore[arg-type]
        self.nodes = {}
        for n in node_ids:
            node = QuorumNode(n, GroupState(n, self.rules))
            node.lms, node.persisted = [], []
            self.nodes[n] = node
        self.next_ring_seq = 4
        self.components = []
        self.payloads = itertools.count(1)
        self.left = {}
        self.history = []
        for n in node_ids:
            ring = RingId(seq=self.next_ring_seq, rep=n)
            self.components.append(Component(ring, (n,)))
            startup = Configuration(REGULAR, ring, (n,), (), (n,), ChangeReason(ReasonKind.STARTUP))
            self.nodes[n].apply(self.nodes[n].state.on_configuration(startup))

    def join_with(
        self, node: int, group: str, *, primary: bool = False, quorum_events: bool = True
    ) -> Member:
        model = self.nodes[node]
        handle = next(model.handles)
        model.state.add_local(group, handle, primary=primary, quorum_events=quorum_events)
        model.logs[(group, handle)] = LocalLog(Member(node, handle), group)
        model.submit(Record(group, handle, int(RecordFlags.JOIN), b""))
        return Member(node, handle)

    def events(self, member: Member, group: str = "g") -> list[object]:
        return list(self.nodes[member.node].logs[(group, member.handle)].events)

    def fire_lms(self, node: int) -> None:
        """The LMS window of ``node`` elapsed: submit what its group layer asks for."""
        model = self.nodes[node]
        assert isinstance(model, QuorumNode)
        for timer in model.lms:
            record = model.state.lms_record(timer.ring_id)
            if record is not None:
                model.submit(record)
        model.lms.clear()

    def drain_all(self) -> None:
        """Deliver in every component until every queue is empty."""
        for comp in self.components:
            while any(self.nodes[n].queue for n in comp.nodes):
                self.deliver(comp, list(comp.nodes))

    def component_of(self, node: int) -> Component:
        return next(c for c in self.components if node in c.nodes)


def quorums(events: list[object]) -> list[Quorum]:
    return [e for e in events if isinstance(e, Quorum)]


def data_of(events: list[object]) -> list[bytes]:
    return [e.data for e in events if hasattr(e, "sender")]  # type: ignore[attr-defined]


def views(events: list[object]) -> list[View]:
    return [e for e in events if isinstance(e, View)]
