"""RFC 0004 §2-§4 and §8: states, joins, leaves, merges, consensus, failure to receive,
exclusion hysteresis and the pause guard."""

from __future__ import annotations

import random

import pytest

from gcs.history import events as h
from gcs.totem import membership
from gcs.totem.config import FailToRecvMode, TotemConfig
from gcs.totem.effects import MembState, Multicast, Trace
from gcs.totem.node import Node
from gcs.totem.timers import Timer
from gcs.wire.frames import MembJoin, MembLeave, MembMergeDetect, RingId

from .tracing import MS, Cluster, advance, next_token, operational, prefix, visible

S = 1_000_000_000


def join(sender: int, proc: set[int], fail: set[int] = frozenset(), ring_seq: int = 8) -> MembJoin:  # type: ignore[assignment]
    return MembJoin(sender, frozenset(proc), frozenset(fail), ring_seq)


def joins_sent(effects: list[object]) -> list[MembJoin]:
    return [e.frame for e in effects if isinstance(e, Multicast) and isinstance(e.frame, MembJoin)]


def gathering(**overrides: object) -> tuple[Node, int]:
    """Node 1 of ring {1,2,3} in a cluster configured as {1,2,3,4}, just after token loss."""
    core, now = operational(nodes=(1, 2, 3, 4), down=(4,), **overrides)  # type: ignore[arg-type]
    loss = core.timers.get(Timer.TOKEN_LOSS)
    assert loss is not None
    advance(core, loss)
    assert core.state is MembState.GATHER and core.proc_set == {1, 2, 3}
    assert core.statistics().pauses_detected == 0
    now = loss
    return core, now


@pytest.mark.req("MEM-2.1-1")
def test_states() -> None:
    """MEM-2.1-1: the states of RFC 0004 §2.1, and nothing else."""
    assert {s.name for s in MembState} == {
        "STARTING",
        "OPERATIONAL",
        "GATHER",
        "COMMIT",
        "RECOVERY",
        "LEFT",
        "FAILED",
    }


# ---------------------------------------------------------------------- §3.2 the join rules


@pytest.mark.req("MEM-3.2-1")
def test_join_sanity() -> None:
    """MEM-3.2-1: joins naming unconfigured nodes, or whose sender is not in its proc_set, or
    whose sender is not its source, are discarded."""
    core, now = gathering()
    assert visible(core.receive(now, 2, join(2, {2, 9}))) == []
    assert visible(core.receive(now, 2, join(2, {1, 3}))) == []
    assert visible(core.receive(now, 3, join(2, {1, 2, 3, 4}))) == []
    assert core.statistics().drops["join_insane"] == 2
    assert core.proc_set == {1, 2, 3}


@pytest.mark.req("MEM-3.2-3", "MEM-3.3-2", "MEM-4.1-1")
def test_join_rules() -> None:
    """MEM-3.2-3, MEM-3.3-2, MEM-4.1-1: equal sets count towards consensus (and are checked
    for it, without a restart); a subset is ignored; a ring-mate's fail set is merged in full;
    a sender already failed is ignored; an outsider's fail set only for nodes outside my ring;
    a join naming me as failed fails its sender (symmetric exclusion) and makes it a suspect."""
    core, now = gathering()
    assert visible(core.receive(now, 2, join(2, {1, 2, 3}))) == []
    assert core.consensus == {1, 2} and 2 in core.heard
    assert visible(core.receive(now, 2, join(2, {1, 2}))) == []
    (out,) = joins_sent(visible(core.receive(now, 2, join(2, {1, 2, 3}, {3}))))
    assert (out.proc_set, out.fail_set) == ({1, 2, 3}, {3})
    assert core.consensus == {1}  # restarted
    assert visible(core.receive(now, 3, join(3, {1, 2, 3, 4}))) == []
    (out,) = joins_sent(visible(core.receive(now, 4, join(4, {1, 2, 3, 4}, {2}))))
    assert (out.proc_set, out.fail_set) == ({1, 2, 3, 4}, {3})
    (out,) = joins_sent(visible(core.receive(now, 4, join(4, {1, 2, 3, 4}, {1, 3}))))
    assert out.fail_set == {3, 4} and 4 in core.suspects


@pytest.mark.req("MEM-3.2-2")
def test_ring_id_seq_is_learnt_from_every_sane_join() -> None:
    """MEM-3.2-2: even a join that is then ignored raises token_ring_id_seq, and the next
    commit token proposes a ring seq 4 above it."""
    core, now = operational()
    assert visible(core.receive(now, 2, join(2, {1, 2, 3}, {1}, ring_seq=100))) == []
    assert core.statistics().drops["join_excludes_me"] == 1
    assert core.token_ring_id_seq == 100
    now = core.timers.get(Timer.TOKEN_LOSS) or 0
    advance(core, now)
    core.receive(now, 2, join(2, {1, 2, 3}, {3}, ring_seq=8))
    effects = visible(core.receive(now, 2, join(2, {1, 2, 3}, {3})))
    (persist,) = [e for e in effects if type(e).__name__ == "PersistRingSeq"]
    assert persist.seq == 104  # type: ignore[attr-defined]


@pytest.mark.req("MEM-3.3-1", "MEM-8.2-2")
def test_joins_in_operational() -> None:
    """MEM-3.3-1, MEM-8.2-2: joins from a penalised node, naming me as failed, or stale from a
    ring-mate are ignored; any other starts a change with the ring's members plus the join's."""
    core, now = operational(nodes=(1, 2, 3, 4), down=(4,))
    core.penalties[4] = membership.Penalty(until_ns=now + S, count=1, last_ns=now)
    assert visible(core.receive(now, 4, join(4, {4}, ring_seq=4))) == []
    assert visible(core.receive(now, 2, join(2, {2}, {1}))) == []
    assert visible(core.receive(now, 2, join(2, {2}, ring_seq=4))) == []
    drops = core.statistics().drops
    assert (drops["join_penalized"], drops["join_excludes_me"], drops["join_stale"]) == (1, 1, 1)
    assert core.state is MembState.OPERATIONAL
    del core.penalties[4]
    (out,) = joins_sent(visible(core.receive(now, 4, join(4, {4}, ring_seq=4))))
    assert core.state is MembState.GATHER and out.proc_set == {1, 2, 3, 4}
    assert str(core.gather_reason) == "join 4" and core.heard == {4}


@pytest.mark.req("MEM-3.3-3", "MEM-3.3-4")
def test_joins_in_commit() -> None:
    """MEM-3.3-3, MEM-3.3-4: in COMMIT a join from a member of the proposed ring is acted on if
    its ring_seq is at least the proposed ring's seq (its sender abandoned the attempt), or if
    it is a ring-mate's join sent since we left our ring that fails a proposed member (its
    sender can never accept the proposal); any other join is discarded."""
    core, now = prefix("token-loss-gather", 25)
    assert core.state is MembState.COMMIT and core.commit is not None
    assert core.commit.ring_id.seq == 12 and core.commit.members == (1, 2, 3)
    assert visible(core.receive(now, 2, join(2, {1, 2, 3}, {3}, ring_seq=4))) == []
    assert visible(core.receive(now, 2, join(2, {1, 2, 3}, ring_seq=8))) == []
    assert core.state is MembState.COMMIT
    (out,) = joins_sent(visible(core.receive(now, 2, join(2, {1, 2, 3}, {3}, ring_seq=8))))
    assert core.state is MembState.GATHER and out.fail_set == {3}
    core, now = prefix("token-loss-gather", 25)
    (out,) = joins_sent(visible(core.receive(now, 2, join(2, {1, 2, 3}, {3}, ring_seq=12))))
    assert core.state is MembState.GATHER and out.fail_set == {3}


# ---------------------------------------------------------------------- §3.4 leaves


@pytest.mark.req("MEM-3.4-1")
def test_leave_sends_a_leave_and_stops() -> None:
    """MEM-3.4-1: leave multicasts memb_leave (proc_set without me, fail_set {me}, my ring's
    seq) to every configured peer, then the node is LEFT with no timer; in STARTING it sends
    nothing."""
    core, now = operational()
    (out,) = visible(core.leave(now))
    assert isinstance(out, Multicast) and out.dests == (2, 3)
    assert out.frame == MembLeave(1, frozenset({2, 3}), frozenset({1}), 8)
    assert core.state is MembState.LEFT and core.next_deadline_ns is None
    assert visible(core.on_timeout(now + S)) == []
    starting = Node(TotemConfig(node_id=1, nodes=(1, 2), join_jitter_ns=0), random.Random(0))
    starting.start(0, None)
    assert visible(starting.leave(0)) == [] and starting.state is MembState.LEFT


@pytest.mark.req("MEM-3.4-2", "MEM-8.2-2")
def test_receiving_leaves() -> None:
    """MEM-3.4-2, MEM-8.2-2: insane or spoofed leaves are discarded; a leave from a non-member
    only clears its penalty; in GATHER a leave fails its sender at once."""
    core, now = operational(nodes=(1, 2, 3, 4), down=(4,))
    core.penalties[4] = membership.Penalty(until_ns=now + S, count=1, last_ns=now)
    assert visible(core.receive(now, 3, MembLeave(2, frozenset({1, 3}), frozenset({2}), 8))) == []
    assert visible(core.receive(now, 2, MembLeave(2, frozenset({1, 3}), frozenset(), 8))) == []
    assert core.statistics().drops["leave_insane"] == 2
    assert visible(core.receive(now, 4, MembLeave(4, frozenset({1}), frozenset({4}), 4))) == []
    assert 4 not in core.penalties and core.state is MembState.OPERATIONAL
    now = core.timers.get(Timer.TOKEN_LOSS) or 0
    advance(core, now)
    assert core.state is MembState.GATHER
    (out,) = joins_sent(
        visible(core.receive(now, 3, MembLeave(3, frozenset({1, 2}), frozenset({3}), 8)))
    )
    assert out.fail_set == {3}


# ---------------------------------------------------------------------- §3.5, §4


@pytest.mark.req("MEM-3.5-1", "MEM-3.5-2", "MEM-8.2-2", "MEM-8.4-3")
def test_merge_detect() -> None:
    """MEM-3.5-1, MEM-3.5-2, MEM-8.2-2, MEM-8.4-3: merge-detects from ring-mates or for my own
    ring are ignored, as are those from a penalised node; one from an outsider is answered with
    a probe (my join to the nodes outside my ring) and the node stays in its ring."""
    core, now = operational(nodes=(1, 2, 3, 4), down=(4,))
    mine = core.ring.ring_id
    assert visible(core.receive(now, 2, MembMergeDetect(2, RingId(seq=99, rep=2)))) == []
    assert visible(core.receive(now, 4, MembMergeDetect(4, mine))) == []
    core.penalties[4] = membership.Penalty(until_ns=now + S, count=1, last_ns=now)
    assert visible(core.receive(now, 4, MembMergeDetect(4, RingId(seq=4, rep=4)))) == []
    assert core.statistics().drops["merge_penalized"] == 1
    del core.penalties[4]
    effects = visible(core.receive(now, 4, MembMergeDetect(4, RingId(seq=4, rep=4))))
    (probe,) = [e for e in effects if isinstance(e, Multicast)]
    assert probe.dests == (4,) and probe.frame == join(1, {1, 2, 3, 4}, ring_seq=8)
    assert core.state is MembState.OPERATIONAL


@pytest.mark.req("MEM-8.2-2", "ORD-4.10-1")
def test_merge_timer_skips_penalised_outsiders() -> None:
    """MEM-8.2-2, ORD-4.10-1: the representative sends no merge-detect to a penalised node but
    keeps the timer armed."""
    core, now = operational(nodes=(1, 2, 3, 4), down=(4,))
    due = core.timers.get(Timer.MERGE)
    assert due is not None
    core.penalties[4] = membership.Penalty(until_ns=due + S, count=1, last_ns=now)
    core.timers.cancel(Timer.TOKEN_LOSS, Timer.TOKEN_RETRANSMIT)
    assert visible(core.on_timeout(due)) == []
    assert core.timers.get(Timer.MERGE) == due + core.config.merge_timeout_ns
    del core.penalties[4]
    (out,) = visible(core.on_timeout(due + core.config.merge_timeout_ns))
    assert (
        isinstance(out, Multicast) and isinstance(out.frame, MembMergeDetect) and out.dests == (4,)
    )


@pytest.mark.req("MEM-4.3-2", "MEM-4.3-1")
def test_join_timer_rebroadcasts_and_counts_rounds() -> None:
    """MEM-4.3-2, MEM-4.3-1: each JOIN expiry in GATHER re-sends the join and counts a round;
    after join_backoff_after rounds the interval doubles."""
    core, _ = gathering()
    cfg = core.config
    for k in range(cfg.join_backoff_after + 1):
        due = core.timers.get(Timer.JOIN)
        assert due is not None
        assert len(joins_sent(visible(core.on_timeout(due)))) == 1
        assert core.join_round == k + 1
    assert core.timers.get(Timer.JOIN) == due + 2 * cfg.join_timeout_ns


@pytest.mark.req("MEM-4.3-4", "MEM-4.3-1")
def test_a_node_heard_for_the_first_time_ends_the_join_backoff() -> None:
    """MEM-4.3-4, MEM-4.3-1: node 1 has gathered long enough for its joins to back off (a
    partition: nobody answers). When a partition heals without changing its sets, the first
    join from node 2 (heard for the first time in this change, with the same sets) makes node 1
    send its join at once and return to the base interval; a second join from node 2 does not.
    Found by the big-ring scenario (seed 3 at commit 536bbfb): a node whose single backed-off
    join after a heal was lost to one peer was failed by that peer's consensus timeout while it
    had already committed, and ended alone in a singleton ring."""
    core, now = gathering(consensus_timeout_ns=10 * S)
    cfg = core.config
    for _ in range(cfg.join_backoff_after + 3):
        now = core.timers.get(Timer.JOIN) or 0
        core.on_timeout(now)
    assert core.timers.get(Timer.JOIN) == now + 8 * cfg.join_timeout_ns
    now += MS
    (out,) = joins_sent(visible(core.receive(now, 2, join(2, {1, 2, 3}))))
    assert (out.proc_set, out.fail_set) == ({1, 2, 3}, set())
    assert core.join_round == 0 and core.timers.get(Timer.JOIN) == now + cfg.join_timeout_ns
    assert core.consensus == {1, 2}
    assert joins_sent(visible(core.receive(now + MS, 2, join(2, {1, 2, 3})))) == []


# ---------------------------------------------------------------------- §8.1 failure to receive


@pytest.mark.req("MEM-8.1-1", "MEM-8.1-2", "MEM-8.2-1")
def test_laggard_is_excluded_by_the_others() -> None:
    """MEM-8.1-1, MEM-8.1-2, MEM-8.2-1: node 3 never receives node 1's mcast; once the aru has
    been stuck with aru_id 3 for fail_to_recv_ns, nodes 1 and 2 exclude it (the first of them
    to notice reports failure_to_receive 3, the other may be moved by its join) and record a
    first, zero-length penalty (so node 3 may come back at once, and does)."""
    c = Cluster(fail_to_recv_ns=300 * MS)
    c.drops.append(lambda s, d, f: d == 3 and type(f).__name__ == "Mcast")
    c.start()
    c.submit(30 * MS, 1, b"lost on the way to 3")
    c.run_until(2000 * MS)
    regular = [
        conf
        for node in (1, 2)
        for conf in c.configurations(node)
        if conf[:2] == ("regular", "1.12")
    ]
    assert [conf[2] for conf in regular] == [(1, 2), (1, 2)]
    assert "failure_to_receive 3" in {conf[3] for conf in regular}  # the first to notice
    detector = 1 if regular[0][3] == "failure_to_receive 3" else 2
    penalty = c.core(detector).penalties[3]
    assert penalty.count == 0 and penalty.until_ns == penalty.last_ns
    first_gather = min(
        e.time_ns
        for e in c.world.history.events
        if isinstance(e, h.State) and e.node in (1, 2) and e.new == "gather" and e.time_ns > 20 * MS
    )
    # Detected on the first visit after fail_to_recv_ns; an idle ring may hold the token (the
    # representative served the request, so the outgoing rtr list is empty) for one hold period.
    hold = c.core(1).config.hold_timeout_ns
    assert 330 * MS <= first_gather < 330 * MS + hold + 20 * MS


@pytest.mark.req("MEM-8.1-3")
def test_laggard_excludes_itself_in_corosync_mode() -> None:
    """MEM-8.1-3: with fail_to_recv_mode = self_exclude the laggard fails everyone else after
    fail_to_recv_const stuck visits and forms a one-member ring."""
    c = Cluster(fail_to_recv_mode=FailToRecvMode.SELF_EXCLUDE, fail_to_recv_const=10)
    c.drops.append(lambda s, d, f: d == 3 and type(f).__name__ == "Mcast")
    c.start()
    c.submit(30 * MS, 1, b"lost on the way to 3")
    c.run_until(2000 * MS)
    assert ("regular", "3.12", (3,), "failure_to_receive 3") in c.configurations(3)
    assert ("transitional", "1.16", (1, 2), "token_loss") in c.configurations(1)


# ---------------------------------------------------------------------- §8.2 hysteresis


@pytest.mark.req("MEM-8.2-1")
def test_penalty_formula() -> None:
    """MEM-8.2-1: a first exclusion of a live node costs nothing; repeats within the memory
    window double from exclusion_penalty_ns up to the maximum; nodes that left are exempt; a
    repeat after the window starts over; with hysteresis off nothing is recorded."""
    core, now = operational()
    cfg = core.config
    core.fail_set, core.suspects, core.left_nodes = {2, 3}, {2, 3}, {3}
    durations = []
    for k in range(7):
        t = now + k * S
        membership.penalize_excluded(core, t)
        durations.append(core.penalties[2].until_ns - t)
    assert durations[:4] == [
        0,
        cfg.exclusion_penalty_ns,
        2 * cfg.exclusion_penalty_ns,
        4 * cfg.exclusion_penalty_ns,
    ]
    assert max(durations) <= cfg.exclusion_penalty_max_ns
    assert 3 not in core.penalties
    late = now + 6 * S + 2 * cfg.exclusion_penalty_max_ns + 1
    membership.penalize_excluded(core, late)
    assert core.penalties[2].count == 0
    off, _ = operational(exclusion_hysteresis=False)
    off.fail_set, off.suspects = {2}, {2}
    membership.penalize_excluded(off, now)
    assert off.penalties == {}


@pytest.mark.req("MEM-8.2-2")
def test_penalised_node_joins_normally_in_gather() -> None:
    """MEM-8.2-2: in GATHER a penalised node's join is handled like any other."""
    core, now = gathering()
    core.penalties[4] = membership.Penalty(until_ns=now + S, count=1, last_ns=now)
    (out,) = joins_sent(visible(core.receive(now, 4, join(4, {4}, ring_seq=4))))
    assert out.proc_set == {1, 2, 3, 4}


# ---------------------------------------------------------------------- §8.3 the pause guard


@pytest.mark.req("MEM-8.3-1", "MEM-8.3-2", "MEM-8.3-3")
def test_pause_guard() -> None:
    """MEM-8.3-1, MEM-8.3-2, MEM-8.3-3: a wake-up more than token_timeout_ns/2 after the
    earliest deadline records a pause; joins are then discarded for join_timeout_ns (their
    ring seq is still learnt), and a token loss is reported as a pause."""
    core, _ = operational()
    cfg = core.config
    due = core.next_deadline_ns
    assert due is not None
    late = due + cfg.token_timeout_ns // 2 + 1
    effects = core.on_timeout(late)
    assert any(isinstance(e, Trace) and e.event == "pause_detected" for e in effects)
    assert core.distrust_joins_until_ns == late + cfg.join_timeout_ns
    assert visible(core.receive(late + 1, 2, join(2, {1, 2, 3}, {3}, ring_seq=40))) == []
    assert core.statistics().drops["join_after_pause"] == 1 and core.token_ring_id_seq == 40
    loss = core.timers.get(Timer.TOKEN_LOSS)
    assert loss is not None
    core.on_timeout(loss)
    assert core.state is MembState.GATHER and str(core.gather_reason) == "pause"


@pytest.mark.req("MEM-8.3-4")
def test_a_ring_that_survives_a_pause_forgets_it() -> None:
    """MEM-8.3-4: a pause is recorded, but the next token is accepted in time: a later token
    loss is reported as token loss, not as the pause."""
    core, _ = operational()
    due = core.next_deadline_ns
    assert due is not None
    late = due + core.config.token_timeout_ns // 2 + 1
    core.on_timeout(late)
    assert core.pause_seen
    core.receive(late + 1, 3, next_token(core))
    assert not core.pause_seen
    loss = core.timers.get(Timer.TOKEN_LOSS)
    assert loss is not None
    advance(core, loss)  # every timer on time: no second pause
    assert core.state is MembState.GATHER and str(core.gather_reason) == "token_loss"


@pytest.mark.req("MEM-8.3-1")
def test_no_pause_when_on_time() -> None:
    """MEM-8.3-1: a wake-up at most token_timeout_ns/2 late is not a pause."""
    core, _ = operational()
    due = core.next_deadline_ns
    assert due is not None
    core.on_timeout(due + core.config.token_timeout_ns // 2)
    assert core.statistics().pauses_detected == 0


@pytest.mark.req("MEM-4.3-3", "MEM-4.3-1")
def test_join_jitter_comes_from_the_injected_generator() -> None:
    """MEM-4.3-3, MEM-4.3-1: with jitter, the join interval is join_timeout_ns plus a draw in
    [0, join_jitter_ns) from the node's own generator: the same seed gives the same intervals,
    another seed other ones."""

    def intervals(seed: int) -> list[int]:
        cfg = TotemConfig(node_id=1, nodes=(1, 2, 3))
        node = Node(cfg, random.Random(seed))
        node.start(0, None)
        node.on_persisted(0, 4)
        node.receive(0, 2, join(2, {2, 3}, ring_seq=4))  # P = {1,2,3}: no consensus alone
        out, now = [], 0
        for _ in range(8):
            due = node.timers.get(Timer.JOIN)
            assert due is not None
            out.append(due - now)
            advance(node, due)
            now = due
        return out

    a, b = intervals(1), intervals(1)
    assert a == b
    assert intervals(2) != a
    cfg = TotemConfig(node_id=1, nodes=(1, 2, 3))
    assert all(cfg.join_timeout_ns <= d < cfg.join_timeout_ns + cfg.join_jitter_ns for d in a)


# ---------------------------------------------------------------------- node-list changes


@pytest.mark.req("MEM-3.2-4", "MEM-3.2-6")
def test_a_node_dropped_from_the_list_is_failed_out_and_its_frames_dropped() -> None:
    """MEM-3.2-4: ring {1,2,3} gathering; node 3 leaves the list, node 4 is listed still.
    MEM-3.2-6: node 3's frames are heard until the consensus fails it out; node 5's are not."""
    core, now = gathering()
    core.set_nodes((1, 2, 4))
    # A ring-mate that has not applied the change yet still names node 3: not insane.
    core.receive(now, 2, join(2, {1, 2, 3}))
    assert core.statistics().drops.get("join_insane", 0) == 0
    due = core.timers.get(Timer.JOIN)
    assert due is not None
    sent = joins_sent(advance(core, due))
    assert sent and all(3 in j.fail_set and j.proc_set == {1, 2, 3} for j in sent), sent
    # Node 3 is still a member of the installed ring: heard (MEM-3.2-6), and failed all the same.
    core.receive(now, 3, join(3, {1, 2, 3}))
    assert core.statistics().drops.get("bad_source", 0) == 0
    assert 3 in core.fail_set
    core.receive(now, 5, join(5, {5}))
    assert core.statistics().drops.get("bad_source") == 1
    # A node outside both the list and the ring stays unnameable.
    core.receive(now, 2, join(2, {1, 2, 5}))
    assert core.statistics().drops.get("join_insane") == 1


@pytest.mark.req("MEM-3.2-4")
def test_a_node_added_to_the_list_is_heard() -> None:
    core, now = operational(nodes=(1, 2, 3))
    core.receive(now, 4, join(4, {4}))
    assert core.statistics().drops.get("bad_source") == 1
    core.set_nodes((1, 2, 3, 4))
    sent = joins_sent(core.receive(now, 4, join(4, {4}, ring_seq=0)))
    assert core.statistics().drops.get("bad_source") == 1
    assert core.state is MembState.GATHER and 4 in core.proc_set, sent


@pytest.mark.req("MEM-3.2-5")
def test_a_learning_node_accepts_the_nodes_a_listed_node_names() -> None:
    """MEM-3.2-5: node 4 lists only itself and node 1; node 1's join names 2 and 3."""
    core, now = operational(node=4, nodes=(1, 4), down=(1,), until_ns=5 * S)
    core.receive(now, 2, join(2, {1, 2, 3, 4}))
    assert core.statistics().drops.get("bad_source") == 1, "node 2 is not listed yet"
    core.receive(now, 5, join(5, {5, 6}))
    core.set_learning(True)
    core.receive(now, 1, join(1, {1, 2, 3, 4}))
    assert core.config.nodes == (1, 2, 3, 4)
    assert {1, 2, 3} <= core.proc_set
    core.receive(now, 2, join(2, {1, 2, 3, 4}))
    assert core.statistics().drops.get("bad_source") == 2, "only node 5's join was refused"
    core.set_learning(False)
    core.receive(now, 1, join(1, {1, 2, 3, 4, 7}))
    assert 7 not in core.config.nodes and core.statistics().drops.get("join_insane") == 1
