"""Property tests: random interleavings of joins, leaves, messages and ring changes.

Several ``GroupState`` instances are fed by ``RingModel`` (nodes of a component get the same
stream). Whatever the interleaving, the promises of RFC 0006 §3 must hold on what the local
members saw (API-3.5-1, API-3.6-1, API-3.6-3, API-3.6-4, and sender-in-view, API-3.7-1 and
API-3.7-2), and once
everything is merged and delivered every node must agree on every group.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gcs.groups.views import Member, Message, View, ViewId
from gcs.wire.frames import RecordFlags
from tests.groups.model import LocalLog, RingModel

GROUPS = ("a", "b", "c")


def _step(model: RingModel, data: st.DataObject) -> None:
    nodes = sorted(model.nodes)
    op = data.draw(
        st.sampled_from(
            [
                "join",
                "join",
                "leave",
                "send",
                "send",
                "deliver",
                "deliver",
                "deliver",
                "partition",
                "merge",
            ]
        ),
        label="op",
    )
    if op == "join":
        model.join(data.draw(st.sampled_from(nodes)), data.draw(st.sampled_from(GROUPS)))
    elif op in ("leave", "send"):
        node = data.draw(st.sampled_from(nodes))
        active = model.active_members(node)
        if active:
            key = data.draw(st.sampled_from(active))
            if op == "leave":
                model.leave(node, key)
            else:
                model.send(node, key, safe=data.draw(st.booleans()))
    elif op == "deliver":
        comp = data.draw(st.sampled_from(model.components))
        senders = data.draw(st.lists(st.sampled_from(comp.nodes), max_size=6))
        model.deliver(comp, senders, pack=data.draw(st.integers(1, 3)))
    elif op == "partition":
        big = [i for i, c in enumerate(model.components) if len(c.nodes) > 1]
        if big:
            index = data.draw(st.sampled_from(big))
            comp = model.components[index]
            split = data.draw(
                st.sets(st.sampled_from(comp.nodes), min_size=1, max_size=len(comp.nodes) - 1)
            )
            trans = data.draw(st.lists(st.sampled_from(comp.nodes), max_size=3))
            model.partition(index, split, trans)
    elif len(model.components) > 1:
        first, second = data.draw(
            st.lists(st.integers(0, len(model.components) - 1), min_size=2, max_size=2, unique=True)
        )
        trans = data.draw(st.lists(st.sampled_from(nodes), max_size=3))
        model.merge(first, second, trans)


def _logs(model: RingModel) -> list[LocalLog]:
    return [log for node in model.nodes.values() for log in node.logs.values()]


def _check_streams(model: RingModel) -> None:
    views: dict[tuple[str, ViewId], tuple[tuple[Member, ...], bool]] = {}
    for log in _logs(model):
        current: View | None = None
        for event in log.events:
            if isinstance(event, View):
                key = (log.group, event.view_id)
                seen = views.setdefault(key, (event.members, event.transitional))
                assert seen == (event.members, event.transitional), (
                    f"view {event.view_id} differs between members: {seen} vs {event}"
                )
                if current is None:
                    assert log.member in event.members, "a member's first view lists it"
                current = event
            else:
                assert current is not None, f"{log.member} got a message before any view"
                assert event.view_id == current.view_id, "a message carries its view's id"
                departed = current.transitional and event.sender in current.left
                assert event.sender in current.members or departed, (
                    f"API-3.7-1: {log.member} got a message of {event.sender} in {current}"
                )


def _segments(log: LocalLog) -> dict[tuple[ViewId, ViewId], list[bytes]]:
    """Messages delivered between each pair of consecutive views of one member."""
    out: dict[tuple[ViewId, ViewId], list[bytes]] = {}
    current: ViewId | None = None
    messages: list[bytes] = []
    for event in log.events:
        if isinstance(event, View):
            if current is not None:
                out[(current, event.view_id)] = messages
            current, messages = event.view_id, []
        else:
            messages.append(event.data)
    return out


def _check_virtual_synchrony(model: RingModel) -> None:
    """Members that go from view V to view V' together delivered the same messages in V."""
    by_transition: dict[tuple[str, ViewId, ViewId], list[bytes]] = {}
    for log in _logs(model):
        for (v, v_next), messages in _segments(log).items():
            key = (log.group, v, v_next)
            expected = by_transition.setdefault(key, messages)
            assert expected == messages, (
                f"{log.member} delivered {messages} in {v}, others {expected}"
            )


def _check_settled(model: RingModel) -> None:
    states = [node.state for node in model.nodes.values()]
    assert all(s.settled for s in states)
    first = states[0].members
    for state in states[1:]:
        assert state.members == first, "every node agrees on every group once settled"
    for node in model.nodes.values():
        mine = {
            Member(node.node_id, handle)
            for (group, handle), log in node.logs.items()
            if not log.closed
        }
        listed = {m for members in first.values() for m in members if m.node == node.node_id}
        assert listed == mine, "a node's open local members are exactly its members in the views"
        for (group, _), log in node.logs.items():
            if log.closed:
                continue
            last = [e for e in log.events if isinstance(e, View)][-1]
            assert set(last.members) == first[group]
            assert not last.transitional


@pytest.mark.req("API-3.2-1", "API-3.5-1", "API-3.6-3")
@given(st.data())
def test_random_histories_keep_the_promises(data: st.DataObject) -> None:
    count = data.draw(st.integers(2, 4), label="nodes")
    model = RingModel(tuple(range(1, count + 1)))
    for _ in range(data.draw(st.integers(0, 60), label="steps")):
        _step(model, data)
    _check_streams(model)
    _check_virtual_synchrony(model)
    model.settle()
    _check_streams(model)
    _check_virtual_synchrony(model)
    _check_settled(model)


@given(st.data())
def test_members_see_messages_between_their_join_and_leave(data: st.DataObject) -> None:
    """In one ring, a member's messages are exactly its group's messages between its first
    view and its leave, in the ring's order."""
    model = RingModel((1, 2, 3))
    model.settle()
    comp = model.components[0]
    for _ in range(data.draw(st.integers(1, 30))):
        node = data.draw(st.sampled_from((1, 2, 3)))
        active = model.active_members(node)
        choice = data.draw(st.sampled_from(["join", "send", "send", "leave"]))
        if choice == "join" or not active:
            model.join(node, "g")
        elif choice == "send":
            model.send(node, data.draw(st.sampled_from(active)))
        else:
            model.leave(node, data.draw(st.sampled_from(active)))
        model.deliver(comp, data.draw(st.lists(st.sampled_from((1, 2, 3)), max_size=4)))
    model.settle()
    position = {(ring, seq, index): i for i, (ring, seq, index, _, _) in enumerate(model.history)}
    for log in _logs(model):
        first = next(e for e in log.events if isinstance(e, View))
        start = position[(first.view_id.ring, first.view_id.seq, first.view_id.index)]
        end = next(
            (
                i
                for i, (_, _, _, sender, r) in enumerate(model.history)
                if sender == log.member.node
                and r.handle == log.member.handle
                and r.group == log.group
                and r.flags & RecordFlags.KIND_MASK == RecordFlags.LEAVE
            ),
            len(model.history),
        )
        expected = [
            r.data
            for _, _, _, _, r in model.history[start + 1 : end]
            if r.group == log.group and r.flags & RecordFlags.KIND_MASK == RecordFlags.DATA
        ]
        assert [e.data for e in log.events if isinstance(e, Message)] == expected
