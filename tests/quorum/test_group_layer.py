"""Quorum in the group layer: where verdicts sit in streams, primary-component members,
point-to-point records, announcements with quorum state (RFC 0008 §3.3-§4, §6)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcs.groups.records import (
    ANNOUNCE_GROUP,
    decode_announcement,
    decode_announcement_ext,
    encode_announcement,
    encode_directed,
)
from gcs.groups.state import GroupState
from gcs.groups.views import Member, Message, View, ViewReason
from gcs.quorum.primary import encode_lms
from gcs.quorum.rules import Quorum, QuorumOptions, QuorumRules
from gcs.totem.effects import ChangeReason, ReasonKind
from gcs.wire.frames import Record, RecordFlags, RingId
from tests.groups.model import Component
from tests.quorum.model import QuorumModel, data_of, quorums, views

DATA = int(RecordFlags.DATA)


def three(**options: object) -> tuple[QuorumModel, list[Member]]:
    model = QuorumModel((1, 2, 3), **options)
    members = [model.join_with(n, "g", primary=True) for n in (1, 2, 3)]
    model.settle()
    return model, members


@pytest.mark.req("QRM-3.2-1", "QRM-3.2-2", "QRM-3.3-1")
def test_verdict_follows_the_views_of_its_change() -> None:
    """QRM-3.2-1, QRM-3.2-2, QRM-3.3-1: same verdict at every member, after the views."""
    model, (a, b, c) = three()
    assert {model.nodes[n].state.quorum for n in (1, 2, 3)} == {model.nodes[1].state.quorum}
    before = {m: len(model.events(m)) for m in (a, b, c)}
    model.partition(0, {3}, [])
    after = {m: model.events(m)[before[m] :] for m in (a, b, c)}
    for m in (a, b, c):
        kinds = [type(e).__name__ for e in after[m]]
        assert kinds == ["View", "View", "Quorum"], kinds
        trans, regular, verdict = after[m]
        assert isinstance(trans, View) and trans.transitional
        assert isinstance(regular, View) and not regular.transitional
        assert isinstance(verdict, Quorum) and verdict.ring_id == regular.view_id.ring
    assert after[a][2] == after[b][2] and after[a][2].quorate  # type: ignore[union-attr]
    assert not after[c][2].quorate  # type: ignore[union-attr]


@pytest.mark.req("QRM-4.1-1")
def test_primary_members_receive_messages_only_when_quorate() -> None:
    """QRM-4.1-1: delivered in a quorate regular configuration: received; otherwise not."""
    model, (a, b, c) = three()
    plain = model.join_with(3, "g", quorum_events=False)
    model.settle()
    model.partition(0, {3}, [])
    model.send(3, ("g", c.handle))
    model.send(1, ("g", a.handle))
    model.deliver(model.component_of(3), [3])
    model.deliver(model.component_of(1), [1])
    assert data_of(model.events(c)) == []
    assert len(data_of(model.events(plain))) == 1, "a plain member on the same node gets it"
    assert len(data_of(model.events(a))) == len(data_of(model.events(b))) == 1
    assert model.nodes[3].state.quorum_tracker.filtered == 1  # type: ignore[union-attr]


@pytest.mark.req("QRM-4.1-2", "QRM-4.1-3")
def test_transitional_messages_wait_for_the_next_verdict() -> None:
    """QRM-4.1-2, QRM-4.1-3: held with the views after them; passed on only into a quorate ring."""
    model, (a, _, c) = three()
    plain = model.join_with(3, "g", quorum_events=False)
    model.settle()
    marks = {m: len(model.events(m)) for m in (a, c, plain)}
    model.send(1, ("g", a.handle))
    model.send(3, ("g", c.handle))
    model.partition(0, {3}, [1, 3])
    kinds_a = [type(e).__name__ for e in model.events(a)[marks[a] :]]
    assert kinds_a == ["View", "Message", "View", "Quorum"], kinds_a
    assert [type(e).__name__ for e in model.events(c)[marks[c] :]] == ["View", "View", "Quorum"]
    assert [type(e).__name__ for e in model.events(plain)[marks[plain] :]] == [
        "View",
        "Message",
        "View",
    ], "plain members are not held"


@pytest.mark.req("QRM-3.3-1", "QRM-3.3-2", "QRM-4.1-2")
def test_pending_verdict_is_reached_at_the_last_announcement() -> None:
    """QRM-3.3-1, QRM-3.3-2, QRM-4.1-2: wait_for_all needs the other side's state; a pending
    marker sits at the configuration change, the verdict where the last announcement is; what
    was delivered before the group layer settled is not passed to primary members."""
    model, (a, _, _) = three(wait_for_all=True)
    plain = model.join_with(1, "g", quorum_events=False)
    model.settle()
    model.partition(0, {3}, [])
    mark = len(model.events(a))
    model.send(1, ("g", a.handle))  # queued before the merge: ahead of node 1's announcement
    model.merge(0, 1, [])
    pending = model.nodes[1].state.quorum
    assert pending is not None and pending.pending and not pending.quorate
    model.settle()
    tail = model.events(a)[mark:]
    kinds = [type(e).__name__ for e in tail]
    assert kinds == ["Quorum", "View", "Quorum"], kinds
    marker, view, verdict = tail
    assert isinstance(marker, Quorum) and marker.pending and not marker.quorate
    assert isinstance(view, View) and view.reason.kind is ViewReason.NODE_UP
    assert isinstance(verdict, Quorum) and verdict.quorate and not verdict.pending
    assert verdict.members == (1, 2, 3)
    assert len(data_of(model.events(plain))) == 1, "plain members are not filtered"


@pytest.mark.req("QRM-4.1-2")
def test_old_ring_messages_are_dropped_before_a_merge() -> None:
    """QRM-4.1-2: a transitional configuration that leads into a merge passes nothing on, even
    though the merge is quorate (the other side may have gone on without this node)."""
    model, (a, _, c) = three()
    model.partition(0, {3}, [])
    model.send(3, ("g", c.handle))
    marks = {m: len(model.events(m)) for m in (a, c)}
    model.merge(0, 1, [3])  # node 3's old-ring message is delivered in its transitional config
    model.settle()
    assert data_of(model.events(c)[marks[c] :]) == []
    assert quorums(model.events(c))[-1].quorate


@pytest.mark.req("QRM-4.1-2")
def test_abandoned_verdict_drops_what_it_held() -> None:
    """QRM-4.1-2: a configuration whose verdict never arrived counts as not quorate."""
    model, (a, _, _) = three(wait_for_all=True)
    plain = model.join_with(1, "g", quorum_events=False)
    model.settle()
    model.partition(0, {3}, [])
    model.send(1, ("g", a.handle))
    model.merge(0, 1, [])
    comp = model.components[-1]
    model.deliver(comp, [1])  # node 1's data record, before any announcement
    mark = data_of(model.events(a))
    model.partition(len(model.components) - 1, {3}, [])
    assert data_of(model.events(a)) == mark == []
    assert len(data_of(model.events(plain))) == 1


@pytest.mark.req("QRM-3.5-2")
def test_wait_for_all_blocks_the_first_quorum() -> None:
    """QRM-3.5-2: no quorum until every node was in one configuration."""
    model = QuorumModel((1, 2, 3), wait_for_all=True)
    a = model.join_with(1, "g")
    model.join_with(2, "g")
    model.merge(0, 1, [])
    comp = model.components[-1]
    while any(model.nodes[n].queue for n in comp.nodes):
        model.deliver(comp, list(comp.nodes))
    first = quorums(model.events(a))[-1]
    assert not first.quorate and first.reason.value == "wait_for_all"
    model.settle()
    assert quorums(model.events(a))[-1].quorate


@pytest.mark.req("QRM-3.5-3", "QRM-3.5-5")
def test_last_man_standing_lowers_expected_votes_where_its_record_is() -> None:
    """QRM-3.5-3, QRM-3.5-5: the lowest member proposes; every member lowers at the record."""
    model = QuorumModel((1, 2, 3, 4, 5), last_man_standing=True, wait_for_all=True)
    members = [model.join_with(n, "g") for n in (1, 2, 3, 4, 5)]
    model.settle()
    model.partition(0, {4, 5}, [])
    node1 = model.nodes[1]
    assert [t.ring_id for t in node1.lms] == [model.component_of(1).ring]  # type: ignore[attr-defined]
    assert not model.nodes[2].lms  # type: ignore[attr-defined]
    model.fire_lms(1)
    comp = model.component_of(1)
    model.deliver(comp, [1])
    for m in members[:3]:
        last = quorums(model.events(m))[-1]
        assert last.quorate and last.expected_votes == 3 and last.quorum == 2
        assert model.nodes[m.node].persisted == [3]  # type: ignore[attr-defined]
    assert quorums(model.events(members[3]))[-1].expected_votes == 5
    index = model.components.index(comp)
    model.partition(index, {1}, [])
    assert quorums(model.events(members[1]))[-1].quorate, "2 of the lowered 3"
    assert not quorums(model.events(members[0]))[-1].quorate


@pytest.mark.req("QRM-3.5-3")
def test_stale_lms_record_changes_nothing() -> None:
    """QRM-3.5-3: a record for another ring (or outside a regular configuration) is ignored."""
    model = QuorumModel((1, 2, 3), last_man_standing=True, wait_for_all=True)
    model.join_with(1, "g")
    model.settle()
    model.partition(0, {3}, [])
    old = RingId(seq=4, rep=1)
    node = model.nodes[1]
    node.submit(Record(ANNOUNCE_GROUP, 0, DATA, encode_lms(old)))
    assert node.state.lms_record(old) is None
    before = node.state.quorum
    model.deliver(model.component_of(1), [1])
    assert node.state.quorum == before and node.state.stale_records >= 1


@pytest.mark.req("P2P-6-1", "P2P-6-2")
def test_directed_message_reaches_only_its_destination() -> None:
    """P2P-6-1, P2P-6-2: delivered to the one member, in order; dropped if it is gone."""
    model = QuorumModel((1, 2, 3))
    a, b, c = (model.join_with(n, "g", quorum_events=False) for n in (1, 2, 3))
    model.settle()
    node1 = model.nodes[1]
    node1.submit(Record(ANNOUNCE_GROUP, a.handle, DATA, encode_directed("g", c, b"to c")))
    model.send(1, ("g", a.handle))
    model.deliver(model.components[0], [1, 1])
    got = [e for e in model.events(c) if isinstance(e, Message)]
    assert [(m.data, m.to, m.sender) for m in got[:1]] == [(b"to c", c, a)]
    assert got[1].to is None, "then the multicast, in order"
    assert [e for e in model.events(b) if isinstance(e, Message) and e.to is not None] == []
    model.leave(3, ("g", c.handle))
    model.deliver(model.components[0], [3])
    node1.submit(Record(ANNOUNCE_GROUP, a.handle, DATA, encode_directed("g", c, b"late")))
    model.deliver(model.components[0], [1])
    assert model.nodes[3].state.undeliverable == 1


@pytest.mark.req("P2P-6-2")
def test_malformed_control_records_are_ignored_and_counted() -> None:
    """P2P-6-2: broken records never raise; every node counts them."""
    model = QuorumModel((1, 2))
    a = model.join_with(1, "g", quorum_events=False)
    model.settle()
    bad = [b"", b"\x01\x00", b"\x09junk", encode_directed("g", a, b"x")[:9], b"\x02short"]
    for data in bad:
        model.nodes[2].submit(Record(ANNOUNCE_GROUP, 7, DATA, data))
    model.deliver(model.components[0], [2] * len(bad))
    for n in (1, 2):
        assert model.nodes[n].state.ignored_records == len(bad)


@pytest.mark.req("QRM-3.4-1")
def test_announcement_carries_quorum_state() -> None:
    """QRM-3.4-1: the optional map round-trips; the four-element form still decodes."""
    ring = RingId(seq=8, rep=1)
    data = encode_announcement(ring, {"g": {3}}, [3, False, True])
    assert decode_announcement(data) == (ring, {"g": frozenset({3})})
    parsed = decode_announcement_ext(data)
    assert parsed is not None and parsed[2] == {"quorum": [3, False, True]}
    plain = encode_announcement(ring, {"g": {3}})
    assert decode_announcement_ext(plain) == (ring, {"g": frozenset({3})}, {})


def test_primary_mode_needs_quorum_rules() -> None:
    state = GroupState(1)
    try:
        state.add_local("g", 1, primary=True)
    except ValueError:
        pass
    else:
        raise AssertionError("primary mode without rules must be refused")
    rules = QuorumRules.build((1,), None, QuorumOptions())
    GroupState(1, rules).add_local("g", 1, primary=True)


# ---------------------------------------------------------------------- properties

OPS = st.lists(
    st.tuples(
        st.sampled_from(["send", "deliver", "partition", "merge"]),
        st.integers(0, 10),
        st.sets(st.integers(1, 5), min_size=1, max_size=4),
    ),
    max_size=30,
)


@pytest.mark.req("QRM-3.2-1", "QRM-3.6-1", "QRM-4.1-3")
@settings(max_examples=60, deadline=None)
@given(OPS, st.booleans())
def test_quorum_properties_over_random_partitions(
    ops: list[tuple[str, int, set[int]]], atb: bool
) -> None:
    """QRM-3.2-1, QRM-3.6-1, QRM-4.1-3: agreement, one quorate component, views never filtered."""
    model = QuorumModel((1, 2, 3, 4, 5), expected_votes=6 if atb else None, auto_tie_breaker=atb)
    primary = {n: model.join_with(n, "g", primary=True) for n in range(1, 6)}
    plain = {n: model.join_with(n, "g", quorum_events=False) for n in range(1, 6)}
    model.settle()
    for op, pick, nodes in ops:
        comps = model.components
        comp = comps[pick % len(comps)]
        if op == "send":
            sender = comp.nodes[pick % len(comp.nodes)]
            model.send(sender, ("g", primary[sender].handle), safe=True)
        elif op == "deliver":
            model.deliver(comp, list(comp.nodes))
        elif op == "partition" and len(comp.nodes) > 1 and not set(comp.nodes) <= nodes:
            model.partition(comps.index(comp), nodes, list(comp.nodes))
        elif op == "merge" and len(comps) > 1:
            model.merge(0, 1, [])
        verdicts = [model.nodes[c.nodes[0]].state.quorum for c in model.components]
        for c in model.components:
            assert len({model.nodes[n].state.quorum for n in c.nodes}) == 1, "agreement"
        assert sum(1 for v in verdicts if v is not None and v.quorate) <= 1
    model.settle()
    for n in range(1, 6):
        mine, other = model.events(primary[n]), model.events(plain[n])
        # The primary member joined first: its stream starts with its own join's view (API-3.7-1
        # replays joins delivered while unsettled at their positions); from the plain
        # member's first view on, both see the same views.
        first = views(other)[0].view_id
        ours = views(mine)
        start = next(i for i, v in enumerate(ours) if v.view_id == first)
        assert ours[start:] == views(other), "views are held, never dropped"
        got, seen = data_of(mine), data_of(other)
        it = iter(seen)
        assert all(d in it for d in got), "filtering keeps the order and invents nothing"


@pytest.mark.req("QRM-3.4-3")
def test_a_minority_leaving_a_quorate_ring_is_no_authority() -> None:
    """QRM-3.4-3: after last_man_standing lowered expected votes, a node that left alone, and
    went straight into a merge, must not lend them (or its cleared wait_for_all) to the node it
    meets there while the rest of its old ring goes on quorate (swarm seed 16's split brain)."""
    model = QuorumModel((1, 2, 3, 4), last_man_standing=True, wait_for_all=True)
    for n in (1, 2, 3, 4):
        model.join_with(n, "g")
    model.settle()
    model.partition(0, {4}, [])
    model.fire_lms(1)
    model.deliver(model.component_of(1), [1])
    assert model.nodes[2].state.quorum.expected_votes == 3  # type: ignore[union-attr]
    old, lone = model.component_of(1), model.component_of(4)
    reason = ChangeReason(ReasonKind.TOKEN_LOSS)
    left_ring, merged_ring = model._new_ring((2, 3)), model._new_ring((1, 4))
    model._configure(old, left_ring, (2, 3), reason, [])  # {2, 3} goes on
    model._configure(old, merged_ring, (1, 4), reason, [])  # node 1 moves alone into {1, 4}
    model._configure(lone, merged_ring, (1, 4), reason, [])
    model.components = [Component(left_ring, (2, 3)), Component(merged_ring, (1, 4))]
    model.drain_all()
    assert model.nodes[2].state.quorum.quorate  # type: ignore[union-attr]
    verdict = model.nodes[1].state.quorum
    assert verdict is not None and not verdict.quorate, verdict


@pytest.mark.req("QRM-4.2-1")
def test_tails_reach_members_that_resolve_them() -> None:
    """QRM-4.2-1: a transitional configuration's messages that may not be passed on reach a
    member that asked for tails, marked uncommitted; other primary members never see them."""
    model = QuorumModel((1, 2, 3))
    members = [model.join_with(n, "g", primary=True) for n in (1, 2, 3)]
    node3 = model.nodes[3]
    handle = next(node3.handles)
    node3.state.add_local("g", handle, primary=True, tails=True)
    from gcs.groups.views import Member as M
    from tests.groups.model import LocalLog

    node3.logs[("g", handle)] = LocalLog(M(3, handle), "g")
    node3.submit(Record("g", handle, int(RecordFlags.JOIN), b""))
    model.settle()
    model.send(3, ("g", members[2].handle))
    model.partition(0, {3}, [3])  # node 3's message arrives in its transitional config only
    resolving = [e for e in model.events(M(3, handle)) if isinstance(e, Message)]
    assert [m.uncommitted for m in resolving] == [True]
    assert data_of(model.events(members[2])) == []
    try:
        GroupState(1).add_local("g", 1, tails=True)
    except ValueError:
        pass
    else:
        raise AssertionError("tails without primary mode must be refused")
