"""RFC 0004 §8.4 (one-way links) and the rules it relies on: MEM-3.3-4 (a doomed commit),
MEM-3.3-1/MEM-3.3-5 (joins from the change that parted us), MEM-8.4-1 (going alone),
MEM-8.4-2 (kept out), MEM-8.4-3 (probes)."""

from __future__ import annotations

import pytest

from gcs.sim.report.oneway import one_way_faults
from gcs.sim.run import run
from gcs.sim.scenario import load_scenario
from gcs.totem.config import TotemConfig
from gcs.totem.effects import MembState, Multicast
from gcs.wire.frames import MembMergeDetect, RingId

from .test_spec_membership import gathering, join, joins_sent
from .tracing import MS, TRACES_DIR, Cluster, operational, visible

S = 1_000_000_000


# ---------------------------------------------------------------------- MEM-8.4-1


@pytest.mark.req("MEM-8.4-1", "MEM-3.2-3")
def test_a_ring_mate_giving_up_on_me_alone_sends_me_alone() -> None:
    """MEM-8.4-1, MEM-3.2-3: a ring-mate's join failing me and nobody else I count on makes me
    fail every node I counted on (I go alone); failing others too, it is symmetric exclusion
    (only the sender is failed); from an outsider, likewise."""
    core, now = gathering()
    assert core.proc_set == {1, 2, 3}
    (out,) = joins_sent(visible(core.receive(now, 2, join(2, {1, 2, 3, 4}, {1}))))
    assert core.fail_set == {2, 3, 4} and out.fail_set == {2, 3, 4} and 2 in core.suspects
    core, now = gathering()
    joins_sent(visible(core.receive(now, 2, join(2, {1, 2, 3, 4}, {1, 3}))))
    assert core.fail_set == {2}
    core, now = gathering()
    joins_sent(visible(core.receive(now, 4, join(4, {1, 3, 4}, {1}))))
    assert core.fail_set == {4}


@pytest.mark.req("MEM-8.4-1")
def test_a_node_going_alone_is_not_failed_for_it() -> None:
    """MEM-8.4-1: a join failing every node of its proc_set but its sender is the sender's
    decision about itself: the receiver fails nobody for it (it will time the sender out, or
    take a ring-mate's word on it)."""
    core, now = gathering()
    assert visible(core.receive(now, 2, join(2, {1, 2, 3}, {1, 3}))) == []
    assert core.fail_set == set() and core.state is MembState.GATHER
    (out,) = joins_sent(visible(core.receive(now, 3, join(3, {1, 2, 3}, {2}))))
    assert core.fail_set == {2} and out.fail_set == {2} and core.adopted_from == {2: 3}


# ---------------------------------------------------------------------- MEM-8.4-3


@pytest.mark.req("MEM-8.4-3", "MEM-3.3-1")
def test_evidence_of_another_ring_is_answered_by_a_probe() -> None:
    """MEM-8.4-3, MEM-3.3-1: in OPERATIONAL a merge-detect makes the node send its join to the
    nodes outside its ring and stay OPERATIONAL, at most once per join interval; the other
    side's join then starts the change, with the reason merge; a join that is no answer (from
    a ring-mate) gives the reason join."""
    core, now = operational(nodes=(1, 2, 3, 4), down=(4,))
    other = MembMergeDetect(4, RingId(seq=40, rep=4))
    (probe,) = [e for e in visible(core.receive(now, 4, other)) if isinstance(e, Multicast)]
    assert probe.dests == (4,) and probe.frame == join(1, {1, 2, 3, 4}, ring_seq=8)
    assert core.state is MembState.OPERATIONAL and core.probed == 4
    assert visible(core.receive(now + 10 * MS, 4, other)) == []  # within the join interval
    later = now + core.config.join_timeout_ns
    assert len(joins_sent(visible(core.receive(later, 4, other)))) == 1
    joins_sent(visible(core.receive(later, 4, join(4, {1, 2, 3, 4}, ring_seq=40))))
    assert core.state is MembState.GATHER and str(core.gather_reason) == "merge 4"
    assert core.probed is None and {4} <= core.heard


# ---------------------------------------------------------------------- MEM-3.3-5


@pytest.mark.req("MEM-3.3-1", "MEM-3.3-5")
def test_joins_from_the_change_a_node_went_alone_in_are_stale() -> None:
    """MEM-3.3-1, MEM-3.3-5: a node that went alone records the nodes it left with the seq of
    the ring the change began from; their joins carrying no higher seq were sent during that
    change and are dropped as stale, a higher one (they installed a ring since) counts. A node
    excluded by a consensus timeout (here a crash) is not recorded: its first joins count."""
    c = Cluster((1, 2, 3))
    c.drops.append(lambda s, d, f: s == 1 and d == 2 and c.world.now >= 40 * MS)
    c.start()
    c.run_until(3000 * MS)
    core = c.core(1)
    assert core.members == (1,) and core.parted == {2: 8, 3: 8}
    now = c.world.now
    assert visible(core.receive(now, 3, join(3, {1, 2, 3}, ring_seq=8))) == []
    assert core.statistics().drops["join_stale"] == 1
    joins_sent(visible(core.receive(now, 3, join(3, {2, 3}, ring_seq=12))))
    assert core.state is MembState.GATHER
    c = Cluster((1, 2, 3))
    c.start()
    c.at(30 * MS, lambda: c.world.crash(3))
    c.run_until(3000 * MS)
    core = c.core(1)
    assert core.members == (1, 2) and core.parted == {}
    joins_sent(visible(core.receive(c.world.now, 3, join(3, {1, 2, 3}, ring_seq=8))))
    assert core.state is MembState.GATHER


# ---------------------------------------------------------------------- a one-way link


@pytest.mark.req("MEM-8.4-1", "MEM-8.4-2", "MEM-8.4-3", "MEM-3.3-4")
def test_a_one_way_link_costs_one_change_and_the_excluded_node_is_kept_out() -> None:
    """MEM-8.4-1, MEM-8.4-2, MEM-8.4-3, MEM-3.3-4: ring {1,2,3}, 1 -> 2 dropped from 40 ms. 2
    loses the token and fails 1 (it never hears it); 3 takes 2's word and keeps 1 out; 1,
    committing a ring of all three, abandons the attempt on 2's verdict and goes alone. Then
    nothing changes: 1's merge-detects and probes are ignored by 3 and lost to 2, 2's
    merge-detects only make 1 probe. Once 1 -> 2 works again, 2 hears 1 and the three merge
    within a merge interval."""
    c = Cluster((1, 2, 3))
    heal_ns = 6000 * MS
    c.drops.append(lambda s, d, f: s == 1 and d == 2 and 40 * MS <= c.world.now < heal_ns)
    c.start()
    c.run_until(heal_ns - MS)
    assert c.core(3).kept_out(1, c.world.now) and not c.core(2).kept_out(1, c.world.now)
    until = c.core(3).kept_out_until[1]
    assert until > heal_ns and not c.core(3).kept_out(1, until)
    assert until - c.core(3).config.exclusion_penalty_max_ns < 3000 * MS  # from installation
    # After the start-up singleton and the first ring 1.8 of all three:
    majority = [conf for conf in c.configurations(3) if conf[0] == "regular"][2:]
    assert [conf[2] for conf in majority] == [(2, 3)], majority
    alone = [conf for conf in c.configurations(1) if conf[0] == "regular"][2:]
    assert [conf[2] for conf in alone] == [(1,)], alone
    assert c.core(1).statistics().drops.get("join_kept_out", 0) == 0
    assert c.core(3).statistics().drops["merge_kept_out"] > 0
    c.run_until(heal_ns + 1000 * MS)
    for node in (1, 2, 3):
        assert c.configurations(node)[-1][:3] == ("regular", c.configurations(2)[-1][1], (1, 2, 3))


@pytest.mark.req("MEM-8.4-2")
def test_without_hysteresis_nothing_is_kept_out() -> None:
    """MEM-8.4-2: with exclusion_hysteresis off, no node is kept out."""
    c = Cluster((1, 2, 3), exclusion_hysteresis=False)
    c.drops.append(lambda s, d, f: s == 1 and d == 2 and c.world.now >= 40 * MS)
    c.start()
    c.run_until(4000 * MS)
    assert all(not c.core(n).kept_out_until for n in (1, 2, 3))


@pytest.mark.req("MEM-8.4-1", "MEM-8.4-2", "MEM-8.4-3", "SIM-7.2-3")
def test_the_asymmetric_scenario_costs_one_change_per_one_way_fault() -> None:
    """MEM-8.4-1, MEM-8.4-2, MEM-8.4-3 (RFC 0007 SIM-7.2-3): the shipped asymmetric scenario,
    seed 1 (two one-way faults in a five-node ring): each costs the nodes that are neither end
    one configuration; the excluded end settles within 2 x (token + consensus) of the block;
    one ring of all forms within 1 s of the unblock. Before §8.4: 4 configurations, never
    settled, 3.1 s (RFC 0004 §8.4)."""
    scenario = load_scenario(
        TRACES_DIR.parents[1] / "simulations" / "scenarios" / "asymmetric.toml"
    )
    scenario = scenario.with_changes(wire="objects")
    result = run(scenario, 1)
    assert result.valid, [v for v in result.verdicts if v.valid is not True]
    cfg = TotemConfig(node_id=1, nodes=(1,))
    bound = 2 * (cfg.token_timeout_ns + cfg.consensus_timeout_ns)
    faults = one_way_faults(result.history)
    assert len(faults) == 2
    for fault in faults:
        assert fault.majority_views == 1, fault
        assert fault.settled and fault.settle_ns is not None and fault.settle_ns <= bound, fault
        assert fault.merge_ns is not None and fault.merge_ns <= S, fault
