"""The node list as replicated state (RFC 0008 §3.7): the change record, where it applies, the
quorum that follows it, persistence before effect, and merges of lists."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pycddl
import pytest

from gcs.errors import ConfigError, NodeListRefused
from gcs.groups.records import ANNOUNCE_GROUP
from gcs.groups.state import Emit, NodeListEvent, Output
from gcs.quorum.nodelist import (
    ChangeOp,
    NodeChange,
    NodeEntry,
    NodeList,
    PersistNodes,
    change_is_safe,
    check_change,
    decode_change,
    encode_change,
    list_from_wire,
    list_to_wire,
)
from gcs.quorum.rules import Quorum, QuorumOptions, QuorumRules
from gcs.wire.frames import Record, RecordFlags, RingId
from tests.quorum.model import QuorumModel, QuorumNode

VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "node-list-records.json"
SAFE_DATA = int(RecordFlags.DATA) | int(RecordFlags.SAFE)


class Recording(QuorumNode):
    """A model node that keeps every output in order (to judge persist-before-effect)."""

    outputs: list[Output]

    def apply(self, outputs: list[Output]) -> None:
        self.outputs.extend(outputs)
        super().apply([o for o in outputs if not isinstance(o, PersistNodes | NodeListEvent)])


def cluster(n: int = 3) -> QuorumModel:
    model = QuorumModel(tuple(range(1, n + 1)), node_changes=True)
    for node in model.nodes.values():
        node.__class__ = Recording
        node.outputs = []  # type: ignore[attr-defined]
    for node_id in model.nodes:
        model.join_with(node_id, "g")
    model.settle()
    return model


def outputs(model: QuorumModel, node: int) -> list[Output]:
    return model.nodes[node].outputs  # type: ignore[attr-defined, no-any-return]


def add(model: QuorumModel, by: int, node: int, votes: int = 1) -> None:
    entry = NodeEntry(node, votes, (f"10.0.0.{node}:5405",))
    model.nodes[by].submit(model.nodes[by].state.node_change_record(ChangeOp.ADD, entry))


def versions(model: QuorumModel) -> dict[int, int]:
    return {n: m.state.nodes.version for n, m in model.nodes.items()}  # type: ignore[union-attr]


# ---------------------------------------------------------------------- the record


def _change(v: dict[str, object]) -> NodeChange:
    ring = v["ring"]
    assert isinstance(ring, list)
    op = ChangeOp.ADD if v["op"] == "add" else ChangeOp.REMOVE
    entry = NodeEntry(int(v["node"]), int(v["votes"]), tuple(v["addresses"]))  # type: ignore[call-overload, arg-type]
    return NodeChange(RingId(seq=ring[0], rep=ring[1]), int(v["base"]), op, entry)  # type: ignore[call-overload]


VECTOR_DOC = json.loads(VECTORS.read_text())


@pytest.mark.req("QRM-3.7-2")
@pytest.mark.parametrize("vector", VECTOR_DOC["valid"], ids=lambda v: v["name"])
def test_change_record_vectors_byte_for_byte(vector: dict[str, object]) -> None:
    change = _change(vector)
    assert encode_change(change).hex() == vector["hex"]
    assert decode_change(bytes.fromhex(str(vector["hex"]))) == change


@pytest.mark.req("QRM-3.7-2")
@pytest.mark.parametrize("vector", VECTOR_DOC["invalid"], ids=lambda v: v["name"])
def test_malformed_change_records_are_refused(vector: dict[str, str]) -> None:
    assert decode_change(bytes.fromhex(vector["hex"])) is None


def _cddl_accepts(data: bytes) -> bool:
    text = (VECTORS.parents[1] / "messages.cddl").read_text()
    for leaf in ("node-add", "node-remove"):
        try:
            pycddl.Schema(f"gcs-root = {leaf}\n{text}").validate_cbor(data)
        except (pycddl.ValidationError, ValueError):
            continue
        return True
    return False


@pytest.mark.req("QRM-3.7-2")
def test_change_record_vectors_and_the_cddl_agree() -> None:
    for vector in VECTOR_DOC["valid"]:
        assert _cddl_accepts(bytes.fromhex(vector["hex"])[1:]), vector["name"]
    for vector in VECTOR_DOC["invalid"]:
        refused = not _cddl_accepts(bytes.fromhex(vector["hex"])[1:])
        assert refused == vector["cddl_refuses"], vector["name"]


def test_announced_list_round_trips_and_refuses_disorder() -> None:
    nodes = NodeList(3, (NodeEntry(1, 1, ("a:1",)), NodeEntry(5, 0, ())))
    assert list_from_wire(list_to_wire(nodes)) == nodes
    assert list_from_wire([3, [[5, 1, []], [1, 1, []]]]) is None
    assert list_from_wire([3, [[1, 0, []]]]) is None, "no votes at all"
    assert list_from_wire("nodes") is None


# ---------------------------------------------------------------------- the overlap rule


def _disjoint_majorities(common: list[int], extra: int, add: bool) -> bool:
    """Brute force: a majority of the smaller list and of the larger one that share no node."""
    before = sum(common) + (0 if add else extra)
    after = sum(common) + (extra if add else 0)
    need_b, need_a = before // 2 + 1, after // 2 + 1
    for mask in itertools.product((0, 1, 2), repeat=len(common)):
        a = sum(v for v, m in zip(common, mask, strict=True) if m == 1)  # side under `before`
        b = sum(v for v, m in zip(common, mask, strict=True) if m == 2)  # side under `after`
        a += 0 if add else extra
        b += extra if add else 0
        if a >= need_b and b >= need_a:
            return True
    return False


@pytest.mark.req("QRM-3.7-3")
@pytest.mark.parametrize("add", [True, False])
def test_overlap_rule_is_sound_by_brute_force(add: bool) -> None:
    for votes in itertools.product((1, 2), repeat=4):
        common = list(votes)
        for extra in range(4):
            before = sum(common) + (0 if add else extra)
            after = sum(common) + (extra if add else 0)
            safe = change_is_safe(before, after, extra)
            disjoint = _disjoint_majorities(common, extra, add)
            if safe:
                assert not disjoint, (common, extra)  # sound for any votes
            if set(common) == {1}:
                assert safe == (not disjoint), (common, extra)  # exact with one vote each


@pytest.mark.req("QRM-3.7-3")
def test_check_change_refuses_unsafe_and_impossible_changes() -> None:
    nodes = NodeList.bootstrap({1: 1, 2: 1, 3: 1})
    ring = RingId(seq=8, rep=1)
    refuse = [
        (ChangeOp.ADD, NodeEntry(2, 1), "listed"),
        (ChangeOp.REMOVE, NodeEntry(7, 0), "not_listed"),
        (ChangeOp.ADD, NodeEntry(4, 3), "unsafe_votes"),
    ]
    for op, entry, why in refuse:
        assert check_change(nodes, NodeChange(ring, 0, op, entry)) == why
    assert check_change(nodes, NodeChange(ring, 0, ChangeOp.ADD, NodeEntry(4, 1))) is None
    alone = NodeList.bootstrap({1: 1, 2: 0})
    assert check_change(alone, NodeChange(ring, 0, ChangeOp.REMOVE, NodeEntry(1, 0))) == (
        "no_votes_left"
    )


@pytest.mark.req("QRM-3.7-8")
def test_node_changes_refuse_fixed_list_options() -> None:
    for options in ({"auto_tie_breaker": True}, {"two_node": True}):
        with pytest.raises(ConfigError, match="node_changes"):
            QuorumRules.build((1, 2), None, QuorumOptions(node_changes=True, **options))  # type: ignore[arg-type]
    assert not QuorumRules.build((1, 2, 3), None, QuorumOptions(node_changes=True)).static


# ---------------------------------------------------------------------- applying it


@pytest.mark.req("QRM-3.7-1", "QRM-3.7-2", "QRM-3.7-5")
def test_change_applies_at_every_member_and_quorum_follows() -> None:
    model = cluster(3)
    add(model, 1, 4)
    model.drain_all()
    assert versions(model) == {1: 1, 2: 1, 3: 1}
    for node in (1, 2, 3):
        state = model.nodes[node].state
        assert state.nodes is not None and state.nodes.ids == (1, 2, 3, 4)
        verdict = state.quorum
        assert verdict is not None and verdict.quorate
        assert (verdict.expected_votes, verdict.quorum, verdict.total_votes) == (4, 3, 3)
    events = [o for o in outputs(model, 2) if isinstance(o, NodeListEvent)]
    assert [(e.refused, e.sender, e.nodes.version) for e in events] == [(None, 1, 1)]


@pytest.mark.req("QRM-3.7-4")
def test_the_list_is_stored_before_anything_it_causes() -> None:
    """A driver executes outputs in order: the write comes before the new verdict reaches anyone."""
    model = cluster(3)
    for node in (1, 2, 3):
        outputs(model, node).clear()
    add(model, 1, 4)
    model.drain_all()
    for node in (1, 2, 3):
        seen = outputs(model, node)
        kinds = [type(o).__name__ for o in seen]
        assert "PersistNodes" in kinds, kinds
        first_persist = kinds.index("PersistNodes")
        verdicts = [
            i for i, o in enumerate(seen) if isinstance(o, Emit) and isinstance(o.event, Quorum)
        ]
        assert verdicts and min(verdicts) > first_persist, kinds
        stored = seen[first_persist]
        assert isinstance(stored, PersistNodes) and stored.nodes.version == 1


@pytest.mark.req("QRM-3.7-1", "QRM-3.7-2", "QRM-3.7-5")
def test_removing_a_dead_node_shrinks_expected_votes() -> None:
    model = cluster(3)
    model.partition(0, {3}, [])
    side = model.component_of(1)
    model.nodes[1].submit(model.nodes[1].state.node_change_record(ChangeOp.REMOVE, NodeEntry(3, 0)))
    model.deliver(side, [1])
    for node in (1, 2):
        verdict = model.nodes[node].state.quorum
        assert verdict is not None and verdict.quorate and verdict.expected_votes == 2
    assert versions(model) == {1: 1, 2: 1, 3: 0}


@pytest.mark.req("QRM-3.7-1", "QRM-3.7-2")
def test_a_minority_cannot_change_the_list() -> None:
    """The submitter refuses; a record forged past that check is not applied by anyone."""
    model = cluster(4)
    model.partition(0, {1, 2}, [])
    for node in (1, 3):
        with pytest.raises(NodeListRefused) as info:
            model.nodes[node].state.node_change_record(ChangeOp.ADD, NodeEntry(5, 1))
        assert info.value.reason == "not_quorate"
    for node in (1, 3):
        ring = model.component_of(node).ring
        forged = NodeChange(ring, 0, ChangeOp.ADD, NodeEntry(5 + node, 1))
        model.nodes[node].submit(Record(ANNOUNCE_GROUP, 0, SAFE_DATA, encode_change(forged)))
        model.deliver(model.component_of(node), [node])
    assert versions(model) == {1: 0, 2: 0, 3: 0, 4: 0}
    refused = [o for o in outputs(model, 2) if isinstance(o, NodeListEvent)]
    assert [e.refused for e in refused] == ["not_quorate"]


@pytest.mark.req("QRM-3.7-2")
def test_a_record_for_another_ring_or_version_does_not_apply() -> None:
    model = cluster(3)
    node = model.nodes[1]
    ring = model.component_of(1).ring
    for change in (
        NodeChange(RingId(seq=1, rep=1), 0, ChangeOp.ADD, NodeEntry(4, 1)),
        NodeChange(ring, 5, ChangeOp.ADD, NodeEntry(4, 1)),
    ):
        node.submit(Record(ANNOUNCE_GROUP, 0, SAFE_DATA, encode_change(change)))
    unsafe = NodeChange(ring, 0, ChangeOp.ADD, NodeEntry(4, 1))
    node.submit(Record(ANNOUNCE_GROUP, 0, int(RecordFlags.DATA), encode_change(unsafe)))
    model.drain_all()
    assert versions(model) == {1: 0, 2: 0, 3: 0}
    assert node.state.ignored_records == 1, "the record sent without SAFE"


@pytest.mark.req("QRM-3.7-2")
def test_members_that_deliver_it_in_the_transitional_configuration_apply_it() -> None:
    """Delivered only after the ring broke (in the transitional configuration that follows the
    quorate ring it names): the members that move on together apply it; node 3, which never
    received it, does not, and neither side is quorate under its list."""
    model = cluster(3)
    add(model, 1, 4)
    model.partition(0, {3}, [1])
    assert versions(model) == {1: 1, 2: 1, 3: 0}
    for node in (1, 2, 3):
        verdict = model.nodes[node].state.quorum
        assert verdict is not None and not verdict.quorate
    assert model.nodes[1].state.quorum.expected_votes == 4  # type: ignore[union-attr]


@pytest.mark.req("QRM-3.7-6", "QRM-3.7-4")
def test_a_merge_brings_the_newer_list_to_the_stale_side() -> None:
    model = cluster(3)
    model.partition(0, {3}, [])
    add(model, 1, 4)
    model.deliver(model.component_of(1), [1])
    assert versions(model) == {1: 1, 2: 1, 3: 0}
    outputs(model, 3).clear()
    model.settle()
    assert versions(model) == {1: 1, 2: 1, 3: 1}
    stored = [o for o in outputs(model, 3) if isinstance(o, PersistNodes)]
    assert [p.nodes.version for p in stored] == [1]
    verdict = model.nodes[3].state.quorum
    assert verdict is not None and verdict.quorate and verdict.expected_votes == 4


@pytest.mark.req("QRM-3.7-7")
def test_two_lists_of_one_version_at_a_merge_are_not_quorate() -> None:
    model = cluster(3)
    model.partition(0, {3}, [])
    add(model, 1, 4)
    model.deliver(model.component_of(1), [1])
    # Node 3 holds another version 1 (as after a crash of a quorum before it persisted).
    tracker = model.nodes[3].state.quorum_tracker
    assert tracker is not None
    tracker.nodes = NodeList(1, (*tracker.nodes.entries, NodeEntry(9, 1)))
    model.settle()
    for node in (1, 2, 3):
        verdict = model.nodes[node].state.quorum
        assert verdict is not None and not verdict.quorate
        assert model.nodes[node].state.quorum_tracker.node_conflicts == 1  # type: ignore[union-attr]
