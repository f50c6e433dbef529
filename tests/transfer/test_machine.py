"""The state-transfer machine (gcs.transfer.machine) on the toy ring: joins, failover, merges,
primary-component groups, malformed input (RFC 0008 §5)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcs.groups.views import Member, Message, Reason, View, ViewId, ViewReason
from gcs.transfer.machine import MAGIC, Transfer, escape
from gcs.wire.frames import Record, RecordFlags, RingId
from tests.transfer.harness import Replica, TransferModel

DATA = int(RecordFlags.DATA)


def founded(nodes: tuple[int, ...] = (1,), **options: object) -> tuple[TransferModel, Replica]:
    model = TransferModel(nodes, **options)
    first = model.add(nodes[0])
    model.settle()
    assert first.installed == "found"
    return model, first


@pytest.mark.req("XFR-5.3-1")
def test_a_joiner_gets_the_state_at_the_cut_then_the_rest() -> None:
    """XFR-5.3-1: snapshot at the cut, then exactly the messages after it, once each."""
    model, first = founded((1, 2))
    for i in range(5):
        model.write(first, f"a{i}".encode())
    model.drain()
    joiner = model.add(2)
    for i in range(5):
        model.write(first, f"b{i}".encode())  # queued behind nothing: around the cut
    model.settle()
    for i in range(3):
        model.write(joiner, f"c{i}".encode())
    model.settle()
    assert joiner.installed == "transfer"
    assert joiner.app.applied == first.app.applied
    assert len(first.app.applied) == len(set(first.app.applied)) == 13
    assert isinstance(joiner.events[0], View), "the joiner's application starts with a view"


@pytest.mark.req("XFR-5.2-2")
def test_the_lowest_holder_provides_to_every_needer() -> None:
    """XFR-5.2-2: one deterministic provider streams to all needers of the round."""
    model, first = founded((1, 2, 3, 4))
    model.write(first, b"x")
    model.drain()
    second = model.add(2)
    model.settle()
    third, fourth = model.add(3), model.add(4)
    model.settle()
    replicas = [first, second, third, fourth]
    assert all(r.app.applied == [b"x"] for r in replicas)
    assert [r.installed for r in replicas] == ["found", "transfer", "transfer", "transfer"]
    assert first.machine.rounds >= 2


@pytest.mark.req("XFR-5.4-1")
def test_another_member_takes_over_when_the_provider_fails() -> None:
    """XFR-5.4-1: the provider leaves mid-transfer; the next round has a new provider."""
    model = TransferModel((1, 2, 3), chunk_bytes=3)
    first, second = model.add(1), model.add(2)
    model.settle()
    for i in range(20):
        model.write(first, f"m{i}".encode())
    model.settle()
    joiner = model.add(3)
    comp = model.components[0]
    for _ in range(6):  # joins, HELLOs and the first chunks: not the whole snapshot
        model.deliver(comp, [1, 2, 3])
    assert joiner.installed == ""
    model.partition(0, {1}, [])  # the provider (lowest holder) is cut off
    model.drain()
    assert joiner.installed == "transfer"
    assert joiner.app.applied == second.app.applied
    assert len(joiner.app.applied) == 20


@pytest.mark.req("XFR-5.5-1")
def test_a_healed_partition_merges_both_sides() -> None:
    """XFR-5.5-1: each side's state reaches the merge hook, in order; all install the result."""
    model = TransferModel((1, 2, 3, 4))
    replicas = [model.add(n) for n in (1, 2, 3, 4)]
    model.settle()
    model.partition(0, {3, 4}, [])
    model.write(replicas[0], b"left-1")
    model.write(replicas[0], b"left-2")
    model.write(replicas[2], b"right-1")
    model.drain()
    model.merge(0, 1, [])
    model.settle()
    merges = [r.app.merges for r in replicas]
    assert all(m == merges[0] and len(m) == 1 for m in merges), "same inputs, same order"
    sides = merges[0][0]
    assert [holders for holders, _ in sides] == [
        (replicas[0].member, replicas[1].member),
        (replicas[2].member, replicas[3].member),
    ]
    assert all(r.app.applied == [b"left-1", b"left-2"] for r in replicas)
    assert all(r.installed in ("found", "merge") for r in replicas)


@pytest.mark.req("QRM-4.1-1", "XFR-5.5-1")
def test_primary_mode_minority_applies_nothing_and_merge_takes_the_majority() -> None:
    """QRM-4.1-1, XFR-5.5-1: only the quorate side changes; the merge restores one history."""
    model = TransferModel((1, 2, 3))
    replicas = [model.add(n, primary=True) for n in (1, 2, 3)]
    model.settle()
    model.partition(0, {3}, [])
    model.write(replicas[0], b"majority")
    model.write(replicas[2], b"minority")
    model.drain()
    assert replicas[2].app.applied == []
    assert replicas[0].app.applied == [b"majority"]
    model.merge(0, 1, [])
    model.settle()
    assert all(r.app.applied == [b"majority"] for r in replicas)


@pytest.mark.req("XFR-5.6-1")
def test_messages_that_look_like_protocol_are_escaped() -> None:
    """XFR-5.6-1: any application payload round-trips, even one starting with MAGIC."""
    model, first = founded((1, 2))
    tricky = MAGIC + b"\x01not a hello"
    model.write(first, tricky)
    model.settle()
    assert first.app.applied == [tricky]
    assert escape(b"plain") == b"plain"


@pytest.mark.req("XFR-5.6-1")
def test_malformed_protocol_messages_are_ignored_and_counted() -> None:
    """XFR-5.6-1: broken HELLOs, DONEs and chunks never raise."""
    model, first = founded((1, 2))
    bad = [
        MAGIC + b"\x01\xff\xff",
        MAGIC + b"\x01" + b"\x83\x01\x02\x03",
        MAGIC + b"\x02short",
        MAGIC + b"\x09" + b"\x80",
        MAGIC + b"\x03" + b"\x81\x05",
    ]
    for data in bad:
        model.nodes[1].submit(Record("g", first.member.handle, DATA, data))
    model.settle()
    assert first.machine.ignored == len(bad)
    assert first.app.applied == []


@pytest.mark.req("XFR-5.5-1")
def test_a_restored_holder_merges_instead_of_being_overwritten() -> None:
    """XFR-5.5-1: a member that restored a state joins as a holder of its own lineage."""
    model, first = founded((1, 2))
    model.write(first, b"live")
    model.settle()
    restored = model.add(2, lineage=b"from disk")
    restored.app.applied = [b"old-1", b"old-2"]
    model.settle()
    assert first.app.merges and restored.app.merges
    assert first.app.applied == restored.app.applied == [b"old-1", b"old-2"]


@pytest.mark.req("XFR-5.3-3")
def test_needer_buffer_limit_fails_the_transfer() -> None:
    """XFR-5.3-3: a needer that would buffer more than its limit fails instead of growing."""
    machine = Transfer(Member(1, 1), buffer_limit=10)
    members = (Member(1, 1), Member(2, 2))
    view_id = ViewId(RingId(seq=4, rep=1), 0, 0)
    view = View(view_id, members, (Member(1, 1),), (), False, Reason(ViewReason.JOIN))
    machine.feed(view)
    msg = Message(Member(2, 2), b"x" * 11, False, view.view_id)
    actions = machine.feed(msg)
    assert any(type(a).__name__ == "Fail" for a in actions)


# ---------------------------------------------------------------------- properties

OPS = st.lists(
    st.tuples(
        st.sampled_from(["write", "deliver", "partition", "merge", "join"]),
        st.integers(0, 20),
        st.sets(st.integers(1, 4), min_size=1, max_size=3),
    ),
    max_size=25,
)


def _check_linear(replicas: list[Replica]) -> None:
    logs = sorted((r.app.applied for r in replicas), key=len)
    for shorter, longer in itertools.pairwise(logs):
        assert longer[: len(shorter)] == shorter, f"diverged: {shorter} vs {longer}"


@pytest.mark.req("XFR-5.3-1", "XFR-5.4-1", "XFR-5.5-1", "QRM-4.1-4")
@settings(max_examples=80, deadline=None)
@given(OPS, st.booleans())
def test_replicas_converge_under_random_faults(
    ops: list[tuple[str, int, set[int]]], primary: bool
) -> None:
    """XFR-5.3-1, XFR-5.4-1, XFR-5.5-1, QRM-4.1-4: one history, no duplicates, convergence."""
    model = TransferModel((1, 2, 3, 4), chunk_bytes=5)
    replicas = [model.add(1, primary=primary), model.add(2, primary=primary)]
    model.settle()
    written = 0
    for op, pick, nodes in ops:
        comps = model.components
        comp = comps[pick % len(comps)]
        if op == "write":
            candidates = [r for r in replicas if r.member.node in comp.nodes and r.installed]
            if candidates:
                model.write(candidates[pick % len(candidates)], f"w{written}".encode())
                written += 1
        elif op == "deliver":
            for _ in range(pick % 4 + 1):
                model.deliver(comp, list(comp.nodes))
        elif op == "partition" and len(comp.nodes) > 1 and not set(comp.nodes) <= nodes:
            model.partition(comps.index(comp), nodes, list(comp.nodes))
        elif op == "merge" and len(comps) > 1:
            model.merge(0, 1, [])
        elif op == "join" and len(replicas) < 6:
            node = sorted(nodes)[0]
            replicas.append(model.add(node, primary=primary))
        for r in replicas:
            assert len(r.app.applied) == len(set(r.app.applied)), "applied twice"
        if primary:
            _check_linear([r for r in replicas if r.installed])
    model.settle()
    model.settle()
    logs = {tuple(r.app.applied) for r in replicas}
    assert len(logs) == 1, f"not converged: {logs}"
    assert all(r.installed for r in replicas)


# ---------------------------------------------------------------------- one machine, by hand

A, B = Member(1, 1), Member(2, 1)
RING = RingId(seq=8, rep=1)


def _view(members: tuple[Member, ...], joined: tuple[Member, ...], seq: int, **kw: object) -> View:
    return View(
        ViewId(RING, seq, 0),
        members,
        joined,
        (),
        bool(kw.get("transitional")),
        Reason(ViewReason.JOIN),
    )


def _hello(sender: Member, key: bytes, lineage: bytes) -> Message:
    import cbor2

    body = MAGIC + b"\x01" + cbor2.dumps([key, True, lineage], canonical=True)
    return Message(sender, body, True, ViewId(RING, 3, 0))


def _quorum(members: tuple[int, ...]) -> object:
    from gcs.quorum.rules import Quorum, QuorumReason

    return Quorum(RING, True, members, len(members), len(members), 1, QuorumReason.MAJORITY)


@pytest.mark.req("XFR-5.2-1")
def test_a_view_that_adds_members_restarts_the_round_with_them() -> None:
    """XFR-5.2-1: the round in progress fails; the next starts at the view, joiner included."""
    old = Transfer(A, lineage=b"L")
    old.feed(_view((A,), (A,), 1))
    first_key = old.round.key if old.round else None
    joiner = Transfer(B)
    view = _view((A, B), (B,), 2)
    old.feed(view)
    joiner.feed(view)
    assert old.failed_rounds == 1 and first_key is not None
    assert old.round is not None and joiner.round is not None
    assert old.round.key == joiner.round.key != first_key, "both start the same round, here"


@pytest.mark.req("XFR-5.5-2")
def test_a_failed_merge_round_drops_what_it_buffered_in_primary_mode() -> None:
    """XFR-5.5-2: sides must not apply the same messages to diverged states."""
    machine = Transfer(A, primary=True, lineage=b"side-a")
    view = _view((A, B), (B,), 2)
    machine.feed(view)
    machine.feed(_quorum((1, 2)))  # type: ignore[arg-type]
    assert machine.round is not None
    key = machine.round.key
    machine.feed(_hello(A, key, b"side-a"))
    actions = machine.feed(_hello(B, key, b"side-b"))
    assert machine.round is not None and machine.round.phase.value == "merge"
    assert any(type(a).__name__ == "Snapshot" for a in actions), "A is its side's owner"
    machine.feed(Message(B, b"write during the merge", True, view.view_id))
    out = machine.feed(_view((A,), (), 3, transitional=True))
    given = [a.event for a in out if type(a).__name__ == "Deliver"]
    assert not [e for e in given if isinstance(e, Message)], "dropped, not applied"
    assert [e for e in given if isinstance(e, View)], "views are kept"
    later = machine.feed(Message(B, b"before the next round", True, view.view_id))
    assert not later and machine.dropped >= 1, "nothing is applied until a round completes"


@pytest.mark.req("QRM-4.2-1", "XFR-5.5-1")
def test_the_next_primary_applies_what_one_member_of_the_last_applied() -> None:
    """QRM-4.2-1, XFR-5.5-1: swarm seed 208 on the toy ring. Node 3 applies a safe write in the
    quorate ring; nodes 1 and 2 get it only in their transitional configurations, which lead
    into minorities. When 1 and 2 form the next primary without 3, the write is in its tail and
    is applied there: the histories of all three agree."""
    from gcs.totem.effects import (
        ChangeReason,
        ConfigId,
        Configuration,
        ConfigurationKind,
        Deliver,
        ReasonKind,
    )

    model = TransferModel((1, 2, 3))
    replicas = [model.add(n, primary=True) for n in (1, 2, 3)]
    model.settle()
    comp = model.components[0]
    model.write(replicas[0], b"m")
    record = model.nodes[1].queue.popleft()
    comp.seq += 1
    regular = ConfigId(ConfigurationKind.REGULAR, comp.ring)
    node3 = model.nodes[3]
    node3.apply(node3.state.on_deliver(Deliver(regular, comp.ring, comp.seq, 1, True, (record,))))
    assert replicas[2].app.applied == [b"m"], "node 3 applied it in the quorate ring"
    reason = ChangeReason(ReasonKind.TOKEN_LOSS)
    singles = {}
    for n in (1, 2):
        ring = model._new_ring((n,))
        node = model.nodes[n]
        trans = Configuration(ConfigurationKind.TRANSITIONAL, ring, (n,), (), (), reason)
        node.apply(node.state.on_configuration(trans))
        late = Deliver(
            ConfigId(ConfigurationKind.TRANSITIONAL, ring), comp.ring, comp.seq, 1, True, (record,)
        )
        node.apply(node.state.on_deliver(late))
        alone = Configuration(ConfigurationKind.REGULAR, ring, (n,), (), (), reason)
        node.apply(node.state.on_configuration(alone))
        singles[n] = ring
    assert replicas[0].app.applied == replicas[1].app.applied == [], "not quorate alone"
    from tests.groups.model import Component

    model.components = [Component(singles[1], (1,)), Component(singles[2], (2,))]
    model.merge(0, 1, [])
    model.settle()
    assert [r.app.applied for r in replicas] == [[b"m"]] * 3


@pytest.mark.req("XFR-5.5-1")
def test_a_merge_completes_where_the_last_chunk_is_delivered_for_its_owner_too() -> None:
    """XFR-5.5-1: an owner does not use its own snapshot early (kv swarm seed 485): the merge
    must complete at the same stream position at every member."""
    from gcs.transfer.machine import Stream, encode_chunk

    machine = Transfer(A, primary=True, lineage=b"side-a")
    view = _view((A, B), (B,), 2)
    machine.feed(view)
    machine.feed(_quorum((1, 2)))  # type: ignore[arg-type]
    assert machine.round is not None
    key = machine.round.key
    machine.feed(_hello(A, key, b"side-a"))
    machine.feed(_hello(B, key, b"side-b"))
    streams = [a for a in machine.snapshot_taken(key, b"state-a") if isinstance(a, Stream)]
    assert len(streams) == 1
    theirs = machine._wrap(b"state-b")

    def chunk(owner: Member, data: bytes) -> Message:
        return Message(owner, encode_chunk(key, owner, None, 0, 1, data), True, view.view_id)

    machine.feed(chunk(B, theirs))
    assert machine.round is not None, "still waiting for its own chunk"
    done = machine.feed(chunk(A, streams[0].data))
    assert machine.round is None
    assert any(type(a).__name__ == "Installed" for a in done)
