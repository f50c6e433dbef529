"""Delivery location (RFC 0004 EVS-11-4), total order (EVS-11-7), acyclicity (EVS-11-14), agreed
prefix (EVS-11-8) and transitional agreement (EVS-11-10)."""

from __future__ import annotations

from gcs.sim.checkers import CheckParams, check_acyclic, check_total_order

from .histories import HistoryBuilder, Mcast, assert_fails, assert_valid, failing, ring, verdicts

R8, R12 = ring(8), ring(12)


def three_formed() -> HistoryBuilder:
    h = HistoryBuilder()
    h.boot(1, 2, 3)
    h.form(R8, {1, 2, 3})
    return h


# ---------------------------------------------------------------------- 8 location


def test_old_ring_message_after_the_new_regular_is_misplaced() -> None:
    h = three_formed()
    late = h.send(1)
    h.deliver_everywhere(late, [1, 2])
    h.form(R12, {1, 2, 3})
    h.deliver(3, late)  # in regular 1.12: too late, trans(1.8) is over
    assert_fails(
        h.build(), "delivery_location", "node 3/1", "ring 1.8 seq 1", "in regular 1.12", "1.12"
    )


def test_delivery_reporting_another_configuration_is_misplaced() -> None:
    h = three_formed()
    m = h.send(1)
    h.deliver(1, m)
    h.deliver(2, m, config=("transitional", R8))
    assert_fails(h.build(), "delivery_location", "node 2/1", "reporting configuration")


def test_delivery_before_any_configuration_is_misplaced() -> None:
    h = three_formed()
    m = h.send(1)
    h.deliver_everywhere(m, [1, 2, 3])
    h.start(4)
    h.deliver(4, m, config=("regular", R8))
    assert_fails(h.build(), "delivery_location", "node 4/1", "before installing any")


def test_transitional_delivery_of_the_old_ring_is_in_place() -> None:
    h = three_formed()
    m = h.send(1)
    h.deliver(1, m)
    h.transitional(2, R12, {2})
    h.deliver(2, m)
    h.regular(2, R12, {2})
    assert "delivery_location" not in failing(h.build())


# ---------------------------------------------------------------------- 9 total order


def test_two_messages_swapped_at_one_node_break_total_order() -> None:
    h = three_formed()
    a, b = h.send(1), h.send(2)
    h.deliver_everywhere(a, [1, 2])
    h.deliver_everywhere(b, [1, 2])
    h.deliver(3, b)
    h.deliver(3, a)
    history = h.build()
    assert_fails(history, "total_order", "node 3/1", "ring 1.8 seq 1", "after ring 1.8 seq 2")
    assert check_total_order(history).problem_count == 1


def test_total_order_is_per_ring() -> None:
    """After a change, the new ring starts again at seq 1: that is not a regression."""
    h = three_formed()
    for _ in range(3):
        h.deliver_everywhere(h.send(1), [1, 2, 3])
    h.form(R12, {1, 2, 3})
    h.deliver_everywhere(h.send(2), [1, 2, 3])
    assert_valid(h.build())


# ---------------------------------------------------------------------- 11 agreed prefix


def test_gap_in_a_regular_configuration_is_reported() -> None:
    h = three_formed()
    a, b, c = h.send(1), h.send(2), h.send(3)
    h.deliver_everywhere(a, [1, 2, 3])
    h.deliver_everywhere(b, [1, 2])
    h.deliver_everywhere(c, [1, 2, 3])
    assert_fails(
        h.build(),
        "agreed_prefix",
        "node 3/1",
        "ring 1.8 seq 3",
        "without first delivering",
        "ring 1.8 seq 2 [2/1/1]",
    )


def test_recovery_seqs_are_not_gaps() -> None:
    """Seqs used by recovery carriers have no Originate: the new ring's seq space has holes."""
    h = three_formed()
    h.form(R12, {1, 2, 3})
    h.skip_seqs(R12, 5)
    m = h.send(2)
    assert m == (R12, 6)
    h.deliver_everywhere(m, [1, 2, 3])
    assert_valid(h.build())


def partitioned_with_gap(skipped_sender: int) -> tuple[HistoryBuilder, Mcast, Mcast]:
    """Node 1 goes alone into 1.12 having missed seq 2 of 1.8 (sent by ``skipped_sender``) and
    delivers seq 3 (sent by itself) in its transitional configuration."""
    h = three_formed()
    a = h.send(1)
    h.deliver_everywhere(a, [1, 2, 3])
    gap = h.send(skipped_sender)
    mine = h.send(1)
    h.deliver_everywhere(gap, [2, 3])
    h.deliver_everywhere(mine, [2, 3])
    h.transitional(1, R12, {1})
    h.deliver(1, mine)
    h.regular(1, R12, {1})
    for node in (2, 3):
        h.change(node, ring(12, 2), {2, 3})
    return h, gap, mine


def test_transitional_may_skip_messages_of_departed_senders() -> None:
    h, _, _ = partitioned_with_gap(skipped_sender=3)
    assert_valid(h.build())


def test_transitional_must_not_skip_a_members_message() -> None:
    h, _, _ = partitioned_with_gap(skipped_sender=1)
    assert_fails(
        h.build(), "agreed_prefix", "node 1/1 skipped", "ring 1.8 seq 2", "sender 1 is a member"
    )


def test_only_members_messages_may_follow_a_gap() -> None:
    h = three_formed()
    gap, theirs = h.send(3), h.send(2)
    h.deliver_everywhere(gap, [2, 3])
    h.deliver_everywhere(theirs, [2, 3])
    h.transitional(1, R12, {1})
    h.deliver(1, theirs)  # from 2, not in trans {1}, after the gap at seq 1
    h.regular(1, R12, {1})
    history = h.build()
    assert_fails(
        history, "agreed_prefix", "node 1/1", "ring 1.8 seq 2", "after the gap", "sender 2 is not"
    )
    relaxed = CheckParams(strict_transitional_gap=False)
    assert "agreed_prefix" not in failing(history, relaxed)


def test_after_an_abandoned_recovery_the_obligation_set_may_follow_a_gap() -> None:
    """RFC 0004 §7.3: a node that gave up a recovery attempt must still deliver, in the
    transitional configuration it finally installs, the old-ring messages of the members of
    that attempt (the obligation set), gaps or not. The history shows the attempt only as a
    RECOVERY -> GATHER state change, which is enough to relax the rule."""
    h = three_formed()
    gap, theirs = h.send(3), h.send(2)
    h.deliver_everywhere(gap, [2, 3])
    h.deliver_everywhere(theirs, [2, 3])
    h.state(1, "operational", "gather", "token_loss")
    h.state(1, "gather", "commit", "commit 1.12")
    h.state(1, "commit", "recovery", "recovery 1.12")
    h.state(1, "recovery", "gather", "token_loss")  # the attempt with node 2 failed
    h.state(1, "gather", "commit", "commit 1.16")
    h.state(1, "commit", "recovery", "recovery 1.16")
    h.transitional(1, ring(16), {1})
    h.deliver(1, theirs)
    h.regular(1, ring(16), {1})
    h.state(1, "recovery", "operational", "installed 1.16")
    h.crash(2)
    h.crash(3)
    assert "agreed_prefix" not in failing(h.build())


# ---------------------------------------------------------------------- 16 transitional agreement


def test_members_of_a_transitional_config_deliver_one_sequence() -> None:
    """Node 2 crashes while delivering in trans(1.12 from 1.8) with a sequence that is not a
    prefix of node 1's. Only transitional agreement can see it: node 2 never reaches 1.12, so
    virtual synchrony has nothing to compare, and its gap is a legal one (sender 3 left)."""
    h = three_formed()
    x, y, z = h.send(1), h.send(3), h.send(2)
    h.deliver(3, x)
    h.deliver(3, y)
    h.deliver(3, z)
    for node in (1, 2):
        h.transitional(node, R12, {1, 2})
    h.deliver(1, x)
    h.deliver(1, y)
    h.deliver(1, z)
    h.deliver(2, x)
    h.deliver(2, z)  # skips y (its sender 3 is not in the transitional configuration)
    h.crash(2)
    h.regular(1, R12, {1, 2})
    h.change(3, ring(12, 3), {3})
    history = h.build()
    assert failing(history) == {"transitional_agreement"}
    assert_fails(
        history,
        "transitional_agreement",
        "transitional 1.12 (from 1.8)",
        "position 1",
        "node 2/1 has ring 1.8 seq 3",
        "node 1/1 has ring 1.8 seq 2",
    )


def test_a_member_that_crashed_mid_transitional_may_have_a_prefix() -> None:
    h = three_formed()
    x, y = h.send(1), h.send(2)
    for node in (1, 2):
        h.transitional(node, R12, {1, 2})
    h.deliver(1, x)
    h.deliver(1, y)
    h.deliver(2, x)
    h.crash(2)
    h.regular(1, R12, {1, 2})
    h.crash(3)
    assert "transitional_agreement" not in failing(h.build())


# ---------------------------------------------------------------------- 10 acyclicity


def test_three_node_cycle_is_found() -> None:
    """A configuration change and two mcasts ordered differently by three nodes:
    node 1: trans(1.12) -> a; node 2: a -> b; node 3: b -> trans(1.12). Every pair of nodes
    agrees on the order of the events they share, so the pairwise total-order check passes;
    only the global graph shows the cycle trans -> a -> b -> trans."""
    h = three_formed()
    a, b = h.send(1), h.send(2)
    h.deliver(2, a)
    h.deliver(2, b)
    h.deliver(3, b)
    for node in (1, 3):
        h.transitional(node, R12, {1, 3})
    h.deliver(1, a)
    for node in (1, 3):
        h.regular(node, R12, {1, 3})
    h.change(2, ring(12, 2), {2})
    history = h.build()
    result = verdicts(history)
    assert result["total_order"].valid is True
    assert result["acyclic"].valid is False
    problem = result["acyclic"].problems[0]
    assert "cycle of length 3" in problem
    for fragment in ("node 1/1", "node 2/1", "node 3/1", "transitional 1.12 (from 1.8)"):
        assert fragment in problem, problem


def test_long_cycle_is_found_without_recursion() -> None:
    """Node 1 delivers seqs 1..3000 of ring 1.8; node 2 delivers 3000 and then 1: a cycle of
    3,000 events, far past Python's recursion limit, so the search must be iterative."""
    h = HistoryBuilder(step_ns=1)
    h.boot(1, 2)
    h.form(R8, {1, 2})
    mcasts = [h.send(1) for _ in range(3000)]
    for m in mcasts:
        h.deliver(1, m)
    h.deliver(2, mcasts[-1])
    h.deliver(2, mcasts[0])
    verdict = check_acyclic(h.build())
    assert verdict.valid is False
    assert "cycle of length 3000" in verdict.problems[0]


def test_acyclic_passes_on_a_run_with_changes() -> None:
    h = three_formed()
    for sender in (1, 2, 3):
        h.deliver_everywhere(h.send(sender), [1, 2, 3])
    h.form(R12, {1, 2})
    h.change(3, ring(12, 3), {3})
    h.form(ring(16), {1, 2, 3}, reason="merge")
    h.deliver_everywhere(h.send(3), [1, 2, 3])
    assert check_acyclic(h.build()).valid is True
