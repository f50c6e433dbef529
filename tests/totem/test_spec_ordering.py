"""RFC 0003 requirements, one core driven by hand (or a small scripted cluster).

Each test names the requirement identifiers it checks in its docstring.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gcs.errors import InvariantViolation
from gcs.history import events as h
from gcs.totem.config import TotemConfig
from gcs.totem.effects import Deliver, MembState, Multicast, Send
from gcs.totem.flow import FlowState, allowance, byte_allowance, update_token
from gcs.totem.invariants import invariant
from gcs.totem.node import Node
from gcs.totem.timers import Timer
from gcs.wire.frames import Mcast, MembJoin, OrfToken, Record, RingId, RtrEntry

from .tracing import MS, Cluster, advance, next_token, operational, prefix, visible

R8 = RingId(seq=8, rep=1)


def mcast(
    seq: int, sender: int = 2, ring: RingId = R8, data: bytes = b"x", safe: bool = False
) -> Mcast:
    return Mcast(sender, ring, seq, safe, (Record("g", 1, 16 if safe else 0, data),))


def sent_tokens(effects: list[object]) -> list[OrfToken]:
    return [e.frame for e in effects if isinstance(e, Send) and isinstance(e.frame, OrfToken)]


def originated(effects: list[object], me: int = 1) -> list[Mcast]:
    return [
        e.frame
        for e in effects
        if isinstance(e, Multicast) and isinstance(e.frame, Mcast) and e.frame.sender == me
    ]


# ---------------------------------------------------------------------- §3 state and input


@pytest.mark.req("ORD-3.1-1", "ORD-3.1-2")
def test_each_ring_starts_from_fresh_state() -> None:
    """ORD-3.1-1, ORD-3.1-2: after a change, the new ring's queue holds only its own mcasts,
    numbered from 1, its token_seq restarted, and nothing of the old ring is delivered as the
    new ring's."""
    c = Cluster()
    c.start()
    for k in range(5):
        c.submit(20 * MS + k * MS, 1 + k % 3, b"old%d" % k)
    c.at(40 * MS, lambda: c.world.crash(3))
    c.run_until(2600 * MS)
    core = c.core(1)
    assert core.state is MembState.OPERATIONAL and core.ring.ring_id.seq == 12
    old_token_seq = 0
    for event in c.world.history.events:
        if isinstance(event, h.Deliver) and event.node == 1 and event.origin_ring == R8:
            old_token_seq = max(old_token_seq, event.seq)
    assert old_token_seq == 5
    assert all(m.ring_id == core.ring.ring_id for m in core.ring.queue.values())
    c.submit(2600 * MS, 1, b"new")
    c.run_until(2700 * MS)
    new = [d for d in c.deliveries(1) if d[1] == "1.12"]
    assert new and new[0][2] == 1 + len([m for m in core.ring.queue.values() if m.encapsulated])
    assert core.ring.token_seq < 1000


@pytest.mark.req("ORD-3.2-1")
def test_due_timers_fire_before_a_frame_is_handled() -> None:
    """ORD-3.2-1: a join arriving after the JOIN deadline is handled after the timer's own
    re-broadcast."""
    core, _ = prefix("ring-formation", 3)
    assert core.state is MembState.GATHER and core.proc_set == {1, 2}
    due = core.timers.get(Timer.JOIN)
    assert due is not None and core.next_deadline_ns == due
    effects = visible(core.receive(due + 10 * MS, 3, MembJoin(3, frozenset({3}), frozenset(), 4)))
    joins = [e.frame for e in effects if isinstance(e, Multicast)]
    assert [sorted(j.proc_set) for j in joins] == [[1, 2], [1, 2, 3]]


@pytest.mark.req("ORD-3.2-2")
def test_frames_that_must_be_discarded() -> None:
    """ORD-3.2-2: frames before start-up completes, from itself, from unconfigured nodes, with
    a spoofed sender, and after leaving are discarded without effect."""
    node = Node(TotemConfig(node_id=1, nodes=(1, 2, 3), join_jitter_ns=0), random.Random(0))
    node.start(0, None)
    join = MembJoin(2, frozenset({2}), frozenset(), 4)
    assert visible(node.receive(1, 2, join)) == []
    node.on_persisted(2, 4)
    assert visible(node.receive(3, 1, MembJoin(1, frozenset({1}), frozenset(), 4))) == []
    assert visible(node.receive(4, 9, join)) == []
    assert visible(node.receive(5, 3, join)) == []  # says it is from 2, comes from 3
    drops = node.statistics().drops
    assert drops["frame_while_starting"] == 1 and drops["bad_source"] == 2
    assert drops["spoofed_sender"] == 1
    node.leave(6)
    assert visible(node.receive(7, 2, join)) == [] and node.next_deadline_ns is None


@pytest.mark.req("ORD-3.3-1")
def test_mcasts_in_recovery() -> None:
    """ORD-3.3-1: in RECOVERY only mcasts of the ring being formed are stored, and nothing is
    delivered; others (the old ring's, a foreign ring's) are discarded."""
    core, now = prefix("ring-formation", 10)
    assert core.state is MembState.RECOVERY
    assert core.recovery is not None
    new_ring = core.recovery.ring
    assert visible(core.receive(now, 2, mcast(1, ring=new_ring.ring_id))) == []
    assert 1 in new_ring.queue
    foreign = mcast(1, ring=RingId(seq=100, rep=2))
    assert visible(core.receive(now, 2, foreign)) == []
    assert core.state is MembState.RECOVERY


@pytest.mark.req("ORD-3.3-2", "ORD-7.1-2")
def test_mcasts_of_the_installed_ring_in_gather_and_commit() -> None:
    """ORD-3.3-2, ORD-7.1-2: in GATHER an mcast of the installed ring is stored and delivered in
    the old regular configuration; in COMMIT it is discarded."""
    gather, now = prefix("token-loss-gather", 23)
    assert gather.state is MembState.GATHER and gather.ring.ring_id == R8
    (d,) = [e for e in visible(gather.receive(now, 2, mcast(1))) if isinstance(e, Deliver)]
    assert (str(d.config), d.seq, d.sender) == ("regular:1.8", 1, 2)
    commit, now = prefix("token-loss-gather", 25)
    assert commit.state is MembState.COMMIT
    assert visible(commit.receive(now, 2, mcast(1))) == []
    assert 1 not in commit.ring.queue


@pytest.mark.req("ORD-3.3-3", "MEM-8.4-3")
def test_foreign_mcasts() -> None:
    """ORD-3.3-3: an mcast of a ring with a higher seq is evidence of another ring (a merge:
    RFC 0004 MEM-8.4-3 answers it with a probe join, and the join of the other side starts the
    change, reason merge); one of a ring with a lower or equal seq is discarded."""
    core, now = operational(nodes=(1, 2, 3, 4), down=(4,))
    assert core.members == (1, 2, 3)
    stale = visible(core.receive(now, 4, mcast(1, sender=4, ring=RingId(seq=4, rep=4))))
    assert stale == [] and core.state is MembState.OPERATIONAL
    effects = visible(core.receive(now, 4, mcast(1, sender=4, ring=RingId(seq=40, rep=4))))
    assert core.state is MembState.OPERATIONAL
    (join,) = [e.frame for e in effects if isinstance(e, Multicast)]
    assert isinstance(join, MembJoin) and join.proc_set == {1, 2, 3, 4}
    answer = MembJoin(4, frozenset({1, 2, 3, 4}), frozenset(), 40)
    visible(core.receive(now, 4, answer))
    assert core.state is MembState.GATHER and str(core.gather_reason) == "merge 4"


@pytest.mark.req("ORD-3.3-4", "ORD-3.3-5")
def test_storing_mcasts() -> None:
    """ORD-3.3-4, ORD-3.3-5: mcasts from non-members and far beyond the window are discarded,
    duplicates are counted and not delivered twice, and an mcast retransmitted by a node other
    than its sender is accepted."""
    core, now = operational(nodes=(1, 2, 3, 4), down=(4,))
    assert visible(core.receive(now, 4, mcast(1, sender=4))) == []
    far = 1 + 2 * core.config.sort_window + 1
    assert visible(core.receive(now, 2, mcast(far))) == []
    assert core.statistics().drops["mcast_out_of_window"] == 2
    first = visible(core.receive(now, 3, mcast(1, sender=2)))
    assert [type(e) for e in first] == [Deliver]
    assert visible(core.receive(now, 2, mcast(1, sender=2))) == []
    assert core.statistics().mcasts_duplicate == 1


# ---------------------------------------------------------------------- §4 the token


@pytest.mark.req("ORD-4.1-1", "ORD-4.1-2")
def test_token_acceptance() -> None:
    """ORD-4.1-1, ORD-4.1-2: a token with an old token_seq or of another ring is discarded and
    does not re-arm the token-loss timer; an accepted one arms it at now + token_timeout_ns
    and the forwarded copy's retransmission at now + token_retransmit_ns."""
    core, now = operational()
    loss = core.timers.get(Timer.TOKEN_LOSS)
    stale = next_token(core, token_seq=core.ring.token_seq)
    other = next_token(core, ring_id=RingId(seq=8, rep=2))
    assert visible(core.receive(now + MS, 3, stale)) == []
    assert visible(core.receive(now + MS, 3, other)) == []
    assert core.timers.get(Timer.TOKEN_LOSS) == loss
    assert core.statistics().drops["token_duplicate"] == 1
    at = now + 2 * MS
    (send,) = visible(core.receive(at, 3, next_token(core)))
    assert isinstance(send, Send) and send.dest == 2
    assert core.timers.get(Timer.TOKEN_LOSS) == at + core.config.token_timeout_ns
    assert core.timers.get(Timer.TOKEN_RETRANSMIT) == at + core.config.token_retransmit_ns


@pytest.mark.req("ORD-4.2-1", "ORD-4.7-1", "ORD-4.4-1")
def test_processing_order_of_one_visit() -> None:
    """ORD-4.2-1, ORD-4.7-1, ORD-4.4-1: on one visit the node first retransmits what is
    requested, then originates, then forwards the token to its successor, then delivers."""
    core, now = operational()
    core.receive(now, 2, mcast(1))
    core.submit(now, Record("g", 1, 0, b"mine"))
    token = next_token(core, seq=1, aru=0, aru_id=3, rtr=(RtrEntry(R8, 1),))
    effects = visible(core.receive(now + MS, 3, token))
    kinds = [type(e).__name__ for e in effects]
    assert kinds == ["Multicast", "Multicast", "Send", "Deliver"]
    retransmit, mine, send, deliver = effects
    assert isinstance(retransmit, Multicast) and retransmit.frame == mcast(1)
    assert isinstance(mine, Multicast) and isinstance(mine.frame, Mcast) and mine.frame.seq == 2
    assert isinstance(send, Send) and send.dest == 2
    assert isinstance(send.frame, OrfToken) and send.frame.rtr == () and send.frame.seq == 2
    assert isinstance(deliver, Deliver) and deliver.seq == 2


@pytest.mark.req("ORD-4.4-1")
def test_rtr_entries_of_other_rings_and_stale_ones_are_removed() -> None:
    """ORD-4.4-1: entries for another ring and entries at or below safe_upto leave the list;
    an entry for a seq the node does not hold stays, in place."""
    core, now = operational()
    for s in (1, 2):
        core.receive(now, 2, mcast(s))
    for k in range(2):  # aru 2 on two visits: safe_upto becomes 2
        core.receive(now + (k + 1) * MS, 3, next_token(core, seq=2))
    assert core.ring.safe_upto == 2
    rtr = (RtrEntry(RingId(seq=4, rep=2), 7), RtrEntry(R8, 1), RtrEntry(R8, 3))
    token = next_token(core, seq=3, aru=2, aru_id=3, rtr=rtr)
    effects = visible(core.receive(now + 3 * MS, 3, token))
    (out,) = sent_tokens(effects)
    assert out.rtr == (RtrEntry(R8, 3),)
    assert not [e for e in effects if isinstance(e, Multicast)]


@pytest.mark.req("ORD-4.5-1", "ORD-4.5-2", "ORD-4.5-3")
def test_holes_are_requested_after_miss_count_and_again_at_once() -> None:
    """ORD-4.5-1, ORD-4.5-2, ORD-4.5-3: seq 1 is requested on the fifth visit it is missing;
    while the request is on the token it is not added again; once it is gone (served, but
    the retransmission lost) it is requested at the next visit; counts are cleared when the
    node has everything."""
    core, now = operational()
    t = now
    outs = []
    for _ in range(5):
        t += MS
        (out,) = sent_tokens(visible(core.receive(t, 3, next_token(core, seq=1, aru=0, aru_id=3))))
        outs.append(out)
    assert [len(o.rtr) for o in outs] == [0, 0, 0, 0, 1]
    t += MS
    listed = next_token(core, seq=1, aru=0, aru_id=3, rtr=(RtrEntry(R8, 1),))
    (out,) = sent_tokens(visible(core.receive(t, 3, listed)))
    assert out.rtr == (RtrEntry(R8, 1),)
    t += MS
    (out,) = sent_tokens(visible(core.receive(t, 3, next_token(core, seq=1, aru=0, aru_id=3))))
    assert out.rtr == (RtrEntry(R8, 1),)
    core.receive(t, 2, mcast(1))
    t += MS
    core.receive(t, 3, next_token(core, seq=1, aru=0, aru_id=1))
    assert core.ring.miss_counts == {}


@pytest.mark.req("ORD-5-1", "ORD-5-2")
def test_aru_rule() -> None:
    """ORD-5-1, ORD-5-2: a node lowers the aru to what it has and names itself; it leaves a
    lower aru alone when another node is named; the named node (or anyone, when nobody is)
    raises it to its own my_aru, and a full aru has aru_id 0."""
    core, now = operational()
    for s in (1, 2, 3):
        core.receive(now, 2, mcast(s))
    (out,) = sent_tokens(core.receive(now + MS, 3, next_token(core, seq=5, aru=5, aru_id=0)))
    assert (out.aru, out.aru_id) == (3, 1)
    (out,) = sent_tokens(core.receive(now + 2 * MS, 3, next_token(core, seq=5, aru=2, aru_id=3)))
    assert (out.aru, out.aru_id) == (2, 3)
    for s in (4, 5):
        core.receive(now + 2 * MS, 2, mcast(s))
    (out,) = sent_tokens(core.receive(now + 3 * MS, 3, next_token(core, seq=5, aru=2, aru_id=1)))
    assert (out.aru, out.aru_id) == (5, 0)
    (out,) = sent_tokens(core.receive(now + 4 * MS, 3, next_token(core, seq=5, aru=4, aru_id=0)))
    assert (out.aru, out.aru_id) == (5, 0)


@pytest.mark.req("ORD-4.9-1", "ORD-4.9-2", "ORD-4.9-3", "ORD-4.9-4")
def test_token_hold_and_hold_cancel() -> None:
    """ORD-4.9-1, ORD-4.9-2, ORD-4.9-3, ORD-4.9-4: on an idle ring the representative holds the
    token (no retransmission armed, the hold timer instead); a non-representative that has seen
    the idle count sets hold_flag, and a submit there multicasts token_hold_cancel, which makes
    the representative release the token at once."""
    c = Cluster()
    c.start()
    c.run_until(200 * MS)
    rep, other = c.core(1), c.core(2)
    assert rep.ring.holding is not None
    assert not rep.timers.armed(Timer.TOKEN_RETRANSMIT) and rep.timers.armed(Timer.HOLD)
    assert rep.ring.seq_unchanged > rep.config.seqno_unchanged_const
    assert other.ring.hold_flag
    effects = visible(other.submit(200 * MS, Record("g", 1, 0, b"wake")))
    (cancel,) = [e for e in effects if isinstance(e, Multicast)]
    assert type(cancel.frame).__name__ == "TokenHoldCancel" and cancel.dests == (1, 3)
    assert not other.ring.hold_flag
    released = visible(rep.receive(201 * MS, 2, cancel.frame))
    assert [type(e) for e in released] == [Send]
    assert rep.ring.holding is None and rep.ring.seq_unchanged == 0
    assert not rep.timers.armed(Timer.HOLD) and rep.timers.armed(Timer.TOKEN_RETRANSMIT)


@pytest.mark.req("ORD-4.9-2", "ORD-4.9-3")
def test_hold_timer_and_submit_release_the_token() -> None:
    """ORD-4.9-2, ORD-4.9-3: the hold timer is armed at hold_timeout_ns; a submit at the
    representative releases the held token at once."""
    c = Cluster()
    c.start()
    c.run_until(200 * MS)
    rep = c.core(1)
    held_at = rep.timers.get(Timer.HOLD)
    assert held_at is not None and held_at - rep.config.hold_timeout_ns <= 200 * MS
    effects = visible(rep.submit(200 * MS, Record("g", 1, 0, b"go")))
    assert [type(e) for e in effects] == [Send] and rep.ring.holding is None


@pytest.mark.req("ORD-4.9-2")
def test_a_visit_that_originated_forwards_the_token() -> None:
    """ORD-4.9-2: the representative holds the token only if its visit originated nothing. A
    safe record submitted at the representative while the hold timer's release goes round is
    originated on the token's return and the token keeps turning, so every member delivers it
    within a few rotations; it used to be held with it for another hold period (safe RTT p99
    ~183 ms with 10 ms gaps on loopback)."""
    c = Cluster()
    c.start()
    c.run_until(200 * MS)
    rep = c.core(1)
    released_at = rep.timers.get(Timer.HOLD)
    assert released_at is not None and rep.ring.holding is not None
    c.run_until(released_at + MS)  # the hold timer let the token go; node 2 has it
    assert rep.ring.holding is None
    c.submit(released_at + MS, 1, b"safe", safe=True)
    c.run_until(released_at + 20 * MS)  # ~3 ms per rotation: enough for several
    for node in (1, 2, 3):
        safe = [d for d in c.deliveries(node) if d[4]]
        assert len(safe) == 1, f"node {node} has not delivered the safe record: {safe}"
    assert rep.ring.holding is None, "an active ring turns freely (ORD-4.9-1 resets the count)"


@pytest.mark.req("ORD-4.11-1")
def test_timers_fire_in_the_specified_order() -> None:
    """ORD-4.11-1: JOIN and CONSENSUS due at once: the JOIN handler runs first (a join with an
    empty fail set), then CONSENSUS (the late nodes failed)."""
    core, _ = prefix("ring-formation", 4)
    assert core.proc_set == {1, 2, 3} and core.timers.armed(Timer.CONSENSUS)
    late = (core.timers.get(Timer.CONSENSUS) or 0) + MS
    effects = visible(core.on_timeout(late))
    joins = [e.frame for e in effects if isinstance(e, Multicast)]
    assert isinstance(joins[0], MembJoin) and isinstance(joins[1], MembJoin)
    assert [sorted(j.fail_set) for j in joins] == [[], [2, 3]]


# ---------------------------------------------------------------------- §6 flow control


@pytest.mark.req("ORD-6-1")
def test_allowance_formula() -> None:
    """ORD-6-1: min(max_messages, window - fcc), then the backlog share (paper numerator, at
    least 1), never negative, in signed arithmetic."""
    flow = FlowState()
    assert (
        allowance(window_size=50, max_messages=17, fcc=0, backlog=0, my_backlog=0, flow=flow) == 17
    )
    assert (
        allowance(window_size=50, max_messages=17, fcc=40, backlog=0, my_backlog=0, flow=flow) == 10
    )
    assert (
        allowance(window_size=50, max_messages=17, fcc=60, backlog=0, my_backlog=5, flow=flow) == 0
    )
    share = allowance(window_size=50, max_messages=17, fcc=0, backlog=90, my_backlog=10, flow=flow)
    assert share == 50 * 10 // 100
    tiny = allowance(
        window_size=50, max_messages=17, fcc=0, backlog=10_000, my_backlog=1, flow=flow
    )
    assert tiny == 1
    flow = FlowState(my_trc=0, my_pbl=10)
    assert (
        allowance(window_size=50, max_messages=17, fcc=0, backlog=20, my_backlog=10, flow=flow)
        == 17
    )


@pytest.mark.req("ORD-6-3")
def test_token_fcc_and_backlog_update() -> None:
    """ORD-6-3: each node replaces its own previous contribution to fcc and backlog."""
    flow = FlowState()
    assert update_token(10, 30, 4, 6, flow) == (14, 36)
    assert (flow.my_trc, flow.my_pbl) == (4, 6)
    assert update_token(14, 36, 1, 0, flow) == (11, 30)
    assert update_token(0, 0, 0, 0, FlowState(my_trc=5, my_pbl=5)) == (0, 0)


@pytest.mark.req("ORD-6-2")
def test_retransmissions_come_out_of_the_allowance_first() -> None:
    """ORD-6-2: with max_messages 2 and two requests it can serve, a node retransmits both and
    originates nothing on that visit."""
    core, now = operational(max_messages=2)
    for s in (1, 2):
        core.receive(now, 2, mcast(s))
    core.submit(now, Record("g", 1, 0, b"waits"))
    token = next_token(core, seq=2, aru=0, aru_id=3, rtr=(RtrEntry(R8, 1), RtrEntry(R8, 2)))
    effects = visible(core.receive(now + MS, 3, token))
    assert [e.frame.seq for e in effects if isinstance(e, Multicast)] == [1, 2]  # type: ignore[union-attr]
    assert not originated(effects)
    (out,) = sent_tokens(effects)
    assert out.fcc == 2


@pytest.mark.req("ORD-6-4")
def test_byte_allowance_formula() -> None:
    """ORD-6-4: the backlog share of window_bytes (at least one byte), or all of it when the
    node or the ring has no backlog."""
    flow = FlowState(my_pbl=4)
    assert byte_allowance(window_bytes=1000, backlog=0, my_backlog=0, flow=flow) == 1000
    assert byte_allowance(window_bytes=1000, backlog=4, my_backlog=4, flow=flow) == 1000
    assert byte_allowance(window_bytes=1000, backlog=12, my_backlog=4, flow=flow) == 333
    assert byte_allowance(window_bytes=10, backlog=10_000, my_backlog=1, flow=FlowState()) == 1


@pytest.mark.req("ORD-6-4")
@pytest.mark.parametrize(("ring_backlog", "expected"), [(0, 5), (10, 3)])
def test_large_frames_are_limited_by_bytes_as_well_as_mcasts(
    ring_backlog: int, expected: int
) -> None:
    """ORD-6-4: with 65,000-byte frames a node stops originating once its byte allowance is used
    (the mcast that crosses it still goes): five mcasts of ~64 KB for the whole 256 KiB, three
    for half of it when the ring has as much queued elsewhere; it used to send all ten, up to
    max_messages = 17 a visit (ORD-6-1 alone)."""
    core, now = operational(frame_payload_bytes=65_000, window_bytes=256 * 1024)
    for _ in range(40):  # four records of 16,021 bytes fill one frame: ten mcasts queued
        core.submit(now, Record("g", 1, 0, bytes(16_000)))
    assert core.sendq.backlog == 10
    token = next_token(core, backlog=ring_backlog)
    effects = visible(core.receive(now + MS, 3, token))
    assert len(originated(effects)) == expected
    (out,) = sent_tokens(effects)
    assert out.fcc == expected


@pytest.mark.req("ORD-6-4")
def test_three_senders_with_large_frames_release_bounded_bursts() -> None:
    """ORD-6-4: three senders with 65,000-byte frames and 20,000 queued 64 B records each. A
    member never gets more than the default subscriber_queue (10,000 events) delivered at one
    instant, so a reader that reads between two turns of its event loop is not cut off as a
    slow consumer; before the byte allowance one visit released 17 frames, about 13,000
    records (in the ring bench: 8 of 8 runs cut a reader off)."""
    c = Cluster(frame_payload_bytes=65_000)
    c.start()
    c.run_until(100 * MS)
    for node in (1, 2, 3):
        core = c.core(node)
        for _ in range(20_000):
            core.submit(100 * MS, Record("g", 1, 0, bytes(64)))
    c.run_until(600 * MS)
    at_once: Counter[tuple[int, int]] = Counter()
    for e in c.world.history.events:
        if isinstance(e, h.Deliver):
            at_once[e.node, e.time_ns] += len(e.msg_ids)
    assert sum(at_once.values()) == 3 * 3 * 20_000
    assert max(at_once.values()) <= 10_000, max(at_once.values())


@pytest.mark.req("ORD-6-1")
def test_sort_window_limits_origination() -> None:
    """ORD-6-1: a node never originates beyond released + sort_window."""
    core, now = operational(sort_window=4)
    for _ in range(6):  # too large to share an mcast: one mcast each
        core.submit(now, Record("g", 1, 0, bytes(1000)))
    effects = visible(core.receive(now + MS, 3, next_token(core, seq=2, aru=0, aru_id=3)))
    assert [m.seq for m in originated(effects)] == [3, 4]


# ---------------------------------------------------------------------- §7.4 GC, §11 invariants


@pytest.mark.req("ORD-7.4-1")
def test_garbage_collection() -> None:
    """ORD-7.4-1: mcasts that are safe and delivered are released on the next token; nothing is
    released in GATHER."""
    core, now = operational()
    for s in (1, 2, 3):
        core.receive(now, 2, mcast(s))
    core.receive(now + MS, 3, next_token(core, seq=3))
    assert core.ring.queue.released == 0 and len(core.ring.queue) == 3
    core.receive(now + 2 * MS, 3, next_token(core, seq=3))
    assert core.ring.queue.released == 3 and len(core.ring.queue) == 0
    core.receive(now + 2 * MS, 2, mcast(4))
    advance(core, now + 2 * MS + core.config.token_timeout_ns)
    assert core.state is MembState.GATHER
    assert 4 in core.ring.queue and core.ring.queue.released == 3


@pytest.mark.req("ORD-11-1", "ORD-11-2", "ORD-11-3")
def test_invariant_checks_raise_with_their_id() -> None:
    """ORD-11-1, ORD-11-2, ORD-11-3: the checks raise InvariantViolation naming the requirement."""
    invariant(True, "ORD-11-2", "fine")
    with pytest.raises(InvariantViolation, match=r"^ORD-11-1: "):
        invariant(False, "ORD-11-1", "rtr list of 31 entries")


@pytest.mark.req("ORD-11-1", "ORD-11-2", "ORD-11-3")
def test_invariants_hold_under_loss() -> None:
    """ORD-11-1, ORD-11-2, ORD-11-3: on a lossy ring with a two-entry rtr list and a small per-visit
    budget, no token carries more than rtr_max entries or an aru above its seq, no visit sends
    more than max_messages mcasts, and no core raises InvariantViolation."""
    c = Cluster(subject=1, rtr_max=2, max_messages=4, window_size=12)
    c.world.network.set_all(loss=0.03)
    c.start()
    tokens: list[OrfToken] = []
    c.watchers.append(lambda s, d, f: tokens.append(f) if isinstance(f, OrfToken) else None)
    for k in range(300):
        c.submit(100 * MS + k * MS, 1 + k % 3, b"%04d" % k + bytes(900))
    c.run_until(1500 * MS)
    assert not [e for e in c.world.history.events if isinstance(e, h.Invariant)]
    assert len(c.deliveries(1)) == 300
    assert tokens and max(len(t.rtr) for t in tokens) <= 2
    assert any(t.rtr for t in tokens)
    assert all(t.aru <= t.seq for t in tokens)
    assert c.recorder is not None
    for step in c.recorder.steps:
        frame = step["input"].get("frame") or {}
        if frame.get("type") == "orf_token":
            sent = [
                e
                for e in step["expect"]
                if e["type"] == "multicast" and e["frame"]["type"] == "mcast"
            ]
            assert len(sent) <= 4


@pytest.mark.req("ORD-9-2", "ORD-9-1")
def test_accelerated_ring_sends_new_mcasts_after_the_token() -> None:
    """ORD-9-2: with accelerated = true, the visit's retransmissions still precede the token,
    its new mcasts follow it (in order), and deliveries come last. ORD-9-1: with the default
    false, new mcasts precede the token (test_processing_order_of_one_visit)."""
    core, now = operational(accelerated=True)
    core.receive(now, 2, mcast(1))
    core.submit(now, Record("g", 1, 0, bytes(1000)))
    core.submit(now, Record("g", 1, 0, bytes(1000)))
    token = next_token(core, seq=1, aru=0, aru_id=3, rtr=(RtrEntry(R8, 1),))
    effects = visible(core.receive(now + MS, 3, token))
    kinds = [type(e).__name__ for e in effects]
    assert kinds == ["Multicast", "Send", "Multicast", "Multicast", "Deliver", "Deliver"]
    assert [m.seq for m in originated(effects)] == [2, 3]
    (out,) = sent_tokens(effects)
    assert out.seq == 3


@pytest.mark.req("ORD-6.1-1")
def test_adaptive_window_halves_once_per_rotation_and_grows_back() -> None:
    """ORD-6.1-1: a loss signal halves the window at most once per rotation, never below
    window_min; clean visits add one back up to window_size."""
    from gcs.totem.flow import FlowState, adapt_window

    flow = FlowState()

    def visit(token_seq: int, loss: bool) -> int:
        return adapt_window(
            flow, window_size=50, window_min=8, loss_seen=loss, token_seq=token_seq, ring_size=5
        )

    assert visit(0, False) == 50
    assert visit(1, True) == 25
    assert visit(2, True) == 25  # same rotation: no second cut
    assert visit(6, True) == 12
    assert visit(11, True) == 8
    assert visit(16, True) == 8  # the floor
    assert [visit(17 + i, False) for i in range(3)] == [9, 10, 11]


@pytest.mark.req("ORD-6.1-1")
def test_adaptive_window_keeps_every_guarantee_under_loss() -> None:
    """ORD-6.1-1: with the adaptive window on, a lossy run passes every checker and the window
    really shrank below window_size at some node."""
    from gcs.sim.network import LinkParams
    from gcs.sim.run import build_world, run
    from gcs.sim.scenario import Scenario, Workload

    scenario = Scenario(
        name="adaptive",
        nodes=4,
        duration_s=6.0,
        quiet_s=3.0,
        totem={"adaptive_window": True, "token_retransmit_ms": 30},
        link=LinkParams(latency_ns=1 * MS, latency_max_ns=2 * MS, loss=0.05),
        workload=Workload(rate=60.0, batch=4, sizes=(64, 400), safe=0.2, start_s=0.5),
    )
    result = run(scenario, 3)
    assert result.valid is True, [v for v in result.verdicts if v.valid is not True]
    world = build_world(scenario, 3)
    for node in scenario.node_ids:
        world.at(0, world.start, node)
    from gcs.sim.workloads.messages import install_workload

    install_workload(world, scenario)
    smallest = 50
    for step in range(40):
        world.run_until((500 + 100 * step) * MS)
        for host in world.hosts.values():
            if host.core is not None and host.core.ring.flow.window:
                smallest = min(smallest, host.core.ring.flow.window)
    assert smallest < 50
