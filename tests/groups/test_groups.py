"""Unit tests of the group layer (gcs.groups.state): one behaviour per test, on hand-made
streams."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gcs.groups.records import ANNOUNCE_GROUP, decode_announcement, encode_announcement
from gcs.groups.state import AnnounceNeeded, Emit, EmitMessages, GroupState, MemberClosed
from gcs.groups.views import Member, Message, View, ViewId, ViewReason
from gcs.totem.effects import (
    ChangeReason,
    ConfigId,
    Configuration,
    ConfigurationKind,
    Deliver,
    ReasonKind,
)
from gcs.wire.frames import Record, RecordFlags, RingId
from tests.groups.model import RingModel

R4 = RingId(seq=4, rep=1)
R8 = RingId(seq=8, rep=1)
REGULAR = ConfigurationKind.REGULAR
TRANSITIONAL = ConfigurationKind.TRANSITIONAL
JOIN = int(RecordFlags.JOIN)
LEAVE = int(RecordFlags.LEAVE)
DATA = int(RecordFlags.DATA)


def settled_state(node: int = 1, ring: RingId = R4, members: tuple[int, ...] = (1,)) -> GroupState:
    """A GroupState whose ring ``members`` all announced nothing: settled, no groups."""
    state = GroupState(node)
    out = state.on_configuration(
        Configuration(REGULAR, ring, members, (), members, ChangeReason(ReasonKind.STARTUP))
    )
    assert out == [AnnounceNeeded(ring)]
    for seq, sender in enumerate(members, start=1):
        data = encode_announcement(ring, {})
        state.on_deliver(deliver(ring, seq, sender, Record(ANNOUNCE_GROUP, 0, JOIN, data)))
    assert state.settled
    return state


def deliver(ring: RingId, seq: int, sender: int, *records: Record, trans: bool = False) -> Deliver:
    kind = TRANSITIONAL if trans else REGULAR
    return Deliver(ConfigId(kind, ring), ring, seq, sender, False, records)


def events(out: list[object]) -> list[object]:
    """The events of ``out`` in order, a batch of messages (``EmitMessages``) one by one."""
    emits = [e for o in out for e in (o.emits() if isinstance(o, EmitMessages) else [o])]
    return [o.event for o in emits if isinstance(o, Emit)]


def test_announcement_round_trip() -> None:
    data = encode_announcement(R8, {"b": {3, 1}, "a": {2}, "empty": set()})
    assert decode_announcement(data) == (R8, {"a": frozenset({2}), "b": frozenset({1, 3})})
    assert data == encode_announcement(R8, {"a": {2}, "b": {1, 3}}), "deterministic encoding"


@given(st.binary(max_size=64))
def test_malformed_announcements_never_raise(data: bytes) -> None:
    parsed = decode_announcement(data)
    assert parsed is None or isinstance(parsed[0], RingId)


def test_join_then_leave_in_one_ring() -> None:
    state = settled_state()
    state.add_local("g", 7)
    out = state.on_deliver(deliver(R4, 10, 1, Record("g", 7, JOIN, b"")))
    (view,) = events(out)
    assert isinstance(view, View)
    assert view.view_id == ViewId(R4, 10, 0)
    assert view.members == view.joined == (Member(1, 7),)
    assert view.reason.kind is ViewReason.JOIN and not view.transitional
    out = state.on_deliver(deliver(R4, 11, 1, Record("g", 7, DATA, b"hi")))
    assert [(o.handles, o.event) for o in out if isinstance(o, Emit)] == [
        ((7,), Message(Member(1, 7), b"hi", False, ViewId(R4, 10, 0), R4, 11))
    ]
    out = state.on_deliver(deliver(R4, 12, 1, Record("g", 7, LEAVE, b"")))
    assert out == [MemberClosed("g", 7)]
    assert "g" not in state.members


def test_pending_member_gets_nothing_before_its_view() -> None:
    state = settled_state(members=(1, 2))
    state.add_local("g", 7)
    state.on_deliver(deliver(R4, 10, 2, Record("g", 5, JOIN, b"")))
    out = state.on_deliver(deliver(R4, 11, 2, Record("g", 5, DATA, b"early")))
    assert events(out) == [], "member 7 has not joined yet"
    out = state.on_deliver(deliver(R4, 12, 1, Record("g", 7, JOIN, b"")))
    (view,) = events(out)
    assert isinstance(view, View) and view.members == (Member(1, 7), Member(2, 5))


@pytest.mark.req("API-3.3-1", "API-3.3-2")
def test_departed_node_members_leave_with_a_transitional_view() -> None:
    model = RingModel((1, 2, 3))
    model.settle()
    for node in (1, 2, 3):
        model.join(node, "g")
    model.settle()
    model.partition(0, {3}, [])
    log = model.nodes[1].logs[("g", 1)]
    trans, regular = log.events[-2:]
    assert isinstance(trans, View) and isinstance(regular, View)
    assert trans.transitional and not regular.transitional
    assert trans.left == (Member(3, 1),)
    assert trans.members == regular.members == (Member(1, 1), Member(2, 1))
    assert trans.reason.kind is ViewReason.NODE_DOWN and trans.reason.nodes == (3,)
    assert model.nodes[2].logs[("g", 1)].events[-2:] == [trans, regular], "same views at node 2"


@pytest.mark.req("API-3.3-1")
def test_clean_node_leave_is_reported_as_leave() -> None:
    state = settled_state(members=(1, 2))
    state.add_local("g", 7)
    state.on_deliver(deliver(R4, 10, 1, Record("g", 7, JOIN, b"")))
    state.on_deliver(deliver(R4, 11, 2, Record("g", 5, JOIN, b"")))
    leave = ChangeReason(ReasonKind.LEAVE, (2,))
    out = state.on_configuration(Configuration(TRANSITIONAL, R8, (1,), (2,), (), leave))
    (view,) = events(out)
    assert isinstance(view, View)
    assert view.reason.kind is ViewReason.LEAVE and view.left == (Member(2, 5),)
    assert view.view_id == ViewId(R8, 0, 1)


@pytest.mark.req("API-3.3-3")
def test_join_of_a_departed_node_is_not_resurrected() -> None:
    """A join delivered after the transitional configuration that removed its node."""
    state = settled_state(members=(1, 2))
    state.add_local("g", 7)
    state.on_deliver(deliver(R4, 10, 1, Record("g", 7, JOIN, b"")))
    state.on_configuration(
        Configuration(TRANSITIONAL, R8, (1,), (2,), (), ChangeReason(ReasonKind.TOKEN_LOSS, (2,)))
    )
    out = state.on_deliver(deliver(R4, 11, 2, Record("g", 5, JOIN, b""), trans=True))
    assert events(out) == []
    assert state.members["g"] == {Member(1, 7)}
    assert state.stale_records == 1


@pytest.mark.req("API-3.4-1", "API-3.4-2", "API-3.4-3")
def test_merge_settles_only_after_every_announcement() -> None:
    state = settled_state()
    state.add_local("g", 7)
    state.on_deliver(deliver(R4, 10, 1, Record("g", 7, JOIN, b"")))
    state.note_submitted(Record("g", 7, JOIN, b""))
    merge = ChangeReason(ReasonKind.MERGE)
    state.on_configuration(Configuration(TRANSITIONAL, R8, (1,), (), (), merge))
    out = state.on_configuration(Configuration(REGULAR, R8, (1, 2), (), (2,), merge))
    assert out == [AnnounceNeeded(R8)] and not state.settled
    mine = state.announcement()
    assert mine is not None
    theirs = Record(ANNOUNCE_GROUP, 0, JOIN, encode_announcement(R8, {"g": {5}}))
    assert events(state.on_deliver(deliver(R8, 1, 1, mine))) == []
    out = state.on_deliver(deliver(R8, 2, 2, theirs))
    (view,) = events(out)
    assert isinstance(view, View)
    assert view.view_id == ViewId(R8, 2, 0)
    assert view.members == (Member(1, 7), Member(2, 5)) and view.joined == (Member(2, 5),)
    assert view.reason.kind is ViewReason.NODE_UP and state.settled


@pytest.mark.req("API-3.4-2")
def test_stale_and_malformed_announcements() -> None:
    state = settled_state(members=(1, 2))
    merge = ChangeReason(ReasonKind.MERGE)
    state.on_configuration(Configuration(TRANSITIONAL, R8, (1, 2), (), (), merge))
    state.on_configuration(Configuration(REGULAR, R8, (1, 2, 3), (), (3,), merge))
    stale = Record(ANNOUNCE_GROUP, 0, JOIN, encode_announcement(R4, {"g": {5}}))
    state.on_deliver(deliver(R8, 1, 2, stale))
    assert state.stale_records == 1 and 2 in state.sync.waiting  # type: ignore[union-attr]
    state.on_deliver(deliver(R8, 2, 2, Record(ANNOUNCE_GROUP, 0, JOIN, b"\xff garbage")))
    assert state.ignored_records == 1
    assert 2 not in state.sync.waiting, "a malformed announcement counts as an empty one"  # type: ignore[union-attr]


def test_records_that_break_the_rules_are_ignored_and_counted() -> None:
    state = settled_state()
    state.on_deliver(deliver(R4, 5, 1, Record("g", 0, JOIN, b"")))  # handle 0 is reserved
    state.on_deliver(deliver(R4, 6, 1, Record(ANNOUNCE_GROUP, 3, LEAVE, b"")))
    assert state.ignored_records == 2
    assert state.members == {}


def _merged_pair() -> tuple[RingModel, Member, Member]:
    """Nodes 1 and 2, each with a member of ``g``, partitioned; both members then send once,
    and join a second member each, before the merge (records queued across the change)."""
    model = RingModel((1, 2))
    model.settle()
    one, two = model.join(1, "g"), model.join(2, "g")
    model.settle()
    model.partition(0, {2}, [])
    model.send(1, ("g", one.handle))
    model.send(2, ("g", two.handle))
    model.join(2, "g")
    model.merge(0, 1, [])
    return model, one, two


@pytest.mark.req("API-3.7-1")
def test_messages_of_the_other_side_wait_for_the_settling_view() -> None:
    """API-3.7-1: a record originated in a regular configuration that added nodes is held until the
    announcements are in, then delivered after the settling view, in stream order, at the same
    position at every member. Before the barrier node 1's member received node 2's message in
    its old view, which did not list the sender."""
    model, one, two = _merged_pair()
    comp = model.components[0]
    model.deliver(comp, [2, 2, 1])  # 2's message, 2's join, 1's message: all before announcements
    model.deliver(comp, [1, 2])  # the announcements: the layer settles
    logs = [model.nodes[1].logs[("g", one.handle)], model.nodes[2].logs[("g", two.handle)]]
    for log in logs:
        current: View | None = None
        for event in log.events:
            if isinstance(event, View):
                current = event
            else:
                assert current is not None and event.sender in current.members, (
                    f"{log.member} got {event.data!r} of {event.sender} in {current}"
                )
    tails = [log.events[-4:] for log in logs]
    assert _shape(tails[0]) == _shape(tails[1]), "the same views and messages, same positions"
    settling, m2, joined, m1 = tails[0]
    assert isinstance(settling, View) and settling.reason.kind is ViewReason.NODE_UP
    assert settling.members == (one, two), "the settling view: the members when the hold began"
    assert isinstance(m2, Message) and m2.sender == two and m2.view_id == settling.view_id
    assert isinstance(joined, View) and joined.reason.kind is ViewReason.JOIN
    assert joined.view_id.seq > 0 and len(joined.members) == 3, "the held join, at its position"
    assert isinstance(m1, Message) and m1.sender == one and m1.view_id == joined.view_id
    state = model.nodes[1].state
    assert state.settled and state.held_records == 3 and state.outside_view == 0


def _shape(events: list[View | Message]) -> list[object]:
    """Views by id and members (joined/left are relative to each member's previous view)."""
    return [
        (e.view_id, e.members) if isinstance(e, View) else (e.sender, e.data, e.view_id)
        for e in events
    ]


@pytest.mark.req("API-3.7-2")
def test_a_ring_change_before_the_round_completes_flushes_the_hold() -> None:
    """API-3.7-2: held records flushed by a transitional configuration reach only the members whose
    view lists their sender; the others count them (outside_view)."""
    model, one, two = _merged_pair()
    comp = model.components[0]
    model.deliver(comp, [2, 1])  # 2's message, 1's message: held
    model.partition(0, {2}, [])
    state = model.nodes[1].state
    assert not state.barrier and state.outside_view == 1
    got = [e for e in model.nodes[1].logs[("g", one.handle)].events if isinstance(e, Message)]
    assert [m.sender for m in got][-1] == one, "its own message, not node 2's"
    assert two not in [m.sender for m in got[-1:]]


@pytest.mark.req("API-3.5-2")
def test_a_record_delivered_in_a_transitional_configuration_names_its_view_apart() -> None:
    """API-3.5-2: node 3 delivers node 2's join in the regular configuration, node 1 (which lost
    node 3) in its transitional configuration: the members differ, so must the view ids
    (API-3.5-1)."""
    states = {n: settled_state(node=n, members=(1, 2, 3)) for n in (1, 3)}
    for state in states.values():
        state.add_local("g", 7)
        for seq, sender in ((10, 1), (11, 3)):
            state.on_deliver(deliver(R4, seq, sender, Record("g", 7, JOIN, b"")))
    join = Record("g", 9, JOIN, b"")
    (regular,) = events(states[3].on_deliver(deliver(R4, 12, 2, join)))
    lost = ChangeReason(ReasonKind.TOKEN_LOSS, (3,))
    states[1].on_configuration(Configuration(TRANSITIONAL, R8, (1, 2), (3,), (), lost))
    (trans,) = events(states[1].on_deliver(deliver(R4, 12, 2, join, trans=True)))
    assert isinstance(regular, View) and isinstance(trans, View)
    assert regular.view_id == ViewId(R4, 12, 0) and len(regular.members) == 3
    assert trans.members == (Member(1, 7), Member(2, 9)) and trans.transitional
    assert trans.view_id == ViewId(R4, 12, 0, ViewId(R8, 0, 1).derived())
