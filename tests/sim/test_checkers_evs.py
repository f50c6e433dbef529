"""Virtual synchrony (RFC 0004 EVS-11-9), self-delivery (EVS-11-11), causality (EVS-11-12) and
safe delivery (EVS-11-13)."""

from __future__ import annotations

from gcs.sim.checkers import CheckParams, check_safe, check_self_delivery

from .histories import HistoryBuilder, assert_fails, assert_valid, failing, ring

R8, R12 = ring(8), ring(12)


def three_formed() -> HistoryBuilder:
    h = HistoryBuilder()
    h.boot(1, 2, 3)
    h.form(R8, {1, 2, 3})
    return h


# ---------------------------------------------------------------------- 12 virtual synchrony


def test_nodes_moving_together_deliver_the_same_set() -> None:
    """Nodes 1 and 2 both go from 1.8 to trans(1.12 from 1.8); node 2 lacks the last message
    (no gap, so agreed order is happy). Only virtual synchrony sees it."""
    h = three_formed()
    a, b = h.send(1), h.send(3)
    h.deliver_everywhere(a, [1, 2, 3])
    h.deliver_everywhere(b, [1, 3])
    h.form(R12, {1, 2})
    h.change(3, ring(12, 3), {3})
    history = h.build()
    assert failing(history) == {"virtual_synchrony"}
    assert_fails(
        history,
        "virtual_synchrony",
        "nodes 1/1 and 2/1",
        "from regular 1.8",
        "to transitional 1.12 (from 1.8)",
        "only 1/1 delivered [ring 1.8 seq 2 [3/1/1]",
    )


def test_different_sets_in_a_transitional_config_are_caught() -> None:
    h = three_formed()
    gap, mine = h.send(3), h.send(1)
    for node in (1, 2):
        h.transitional(node, R12, {1, 2})
    h.deliver(1, mine)  # node 2 does not: both then install 1.12
    for node in (1, 2):
        h.regular(node, R12, {1, 2})
    h.crash(3)
    assert_fails(
        h.build(),
        "virtual_synchrony",
        "from transitional 1.12 (from 1.8) to regular 1.12",
        "ring 1.8 seq 2",
    )
    assert gap == (R8, 1)


def test_nodes_going_to_different_configs_may_differ() -> None:
    h = three_formed()
    a = h.send(3)
    h.deliver(3, a)
    h.form(R12, {1, 2})
    h.change(3, ring(12, 3), {3})
    assert "virtual_synchrony" not in failing(h.build())


# ---------------------------------------------------------------------- 13 self-delivery


def test_sender_that_moves_on_must_have_delivered_its_own() -> None:
    h = three_formed()
    m = h.send(2)
    h.deliver(1, m)
    h.deliver(3, m)
    h.form(R12, {1, 2, 3})
    assert_fails(
        h.build(),
        "self_delivery",
        "node 2/1 originated ring 1.8 seq 1 [2/1/1]",
        "installed regular 1.12",
    )


def test_sender_that_crashed_is_excused() -> None:
    h = three_formed()
    h.send(2)
    h.crash(2)
    verdict = check_self_delivery(h.build())
    assert verdict.valid is True
    assert verdict.stats["excused_by_failure"] == 1


def test_end_of_run_obligation_applies_to_expected_live_nodes() -> None:
    h = three_formed()
    h.send(2)  # nobody delivers it before the run ends
    history = h.build()
    pending = check_self_delivery(history)
    assert pending.valid is True and pending.stats["pending_at_end"] == 1
    live = CheckParams(expected_live=frozenset({(1, 1), (2, 1), (3, 1)}))
    verdict = check_self_delivery(history, live)
    assert verdict.valid is False
    assert "had still not delivered it when the run ended" in verdict.problems[0]


def test_fragment_mcasts_are_self_delivered_too() -> None:
    h = three_formed()
    first = h.originate(1)  # a fragment without ids
    last = h.originate(1, [h.submit(1)])
    h.deliver_everywhere(last, [1, 2, 3])
    h.deliver_everywhere(first, [2, 3])
    h.form(R12, {1, 2, 3})
    assert_fails(h.build(), "self_delivery", "ring 1.8 seq 1 [no message ids: fragment]")


# ---------------------------------------------------------------------- 14 causal


def test_sender_must_originate_in_counter_order() -> None:
    """Node 1 submits m1 then m2 but originates m2 first: every receiver then delivers m2
    before m1. Per-ring order is fine (seqs increase), so only the FIFO rule catches it."""
    h = three_formed()
    m1, m2 = h.submit(1), h.submit(1)
    second = h.originate(1, [m2])
    first = h.originate(1, [m1])
    for mcast in (second, first):
        h.deliver_everywhere(mcast, [1, 2, 3])
    history = h.build()
    assert failing(history) == {"causal"}
    assert_fails(history, "causal", "node 1/1 originated message 1/1/1", "after its message 1/1/2")


def test_receiver_must_not_skip_an_earlier_message_of_the_same_sender() -> None:
    h = three_formed()
    m1, m2 = h.send(3), h.send(3)
    h.deliver_everywhere(m1, [2, 3])
    h.deliver_everywhere(m2, [2, 3])
    h.transitional(1, R12, {1, 3})
    h.deliver(1, m2)  # skipped m1 of the same sender
    h.regular(1, R12, {1, 3})
    relaxed = CheckParams(strict_transitional_gap=False)
    assert_fails(
        h.build(),
        "causal",
        "node 1/1 delivered ring 1.8 seq 2 [3/1/2]",
        "same sender's earlier ring 1.8 seq 1 [3/1/1]",
        "(FIFO)",
        params=relaxed,
    )


def test_send_after_deliver_is_causal() -> None:
    """Node 2 delivers x (from 3) and then sends y. Node 1, alone in its transitional
    configuration, skips x but delivers y. With the relaxed gap rule (the paper's obligation
    set) agreed order allows that; causality does not."""
    h = three_formed()
    x = h.send(3)
    h.deliver_everywhere(x, [2, 3])
    y = h.send(2)
    h.deliver_everywhere(y, [2, 3])
    h.transitional(1, R12, {1})
    h.deliver(1, y)
    h.regular(1, R12, {1})
    for node in (2, 3):
        h.change(node, ring(12, 2), {2, 3})
    relaxed = CheckParams(strict_transitional_gap=False)
    history = h.build()
    assert failing(history, relaxed) == {"causal"}
    assert_fails(
        history,
        "causal",
        "node 1/1 delivered ring 1.8 seq 2 [2/1/1]",
        "without ring 1.8 seq 1 [3/1/1]",
        "send-after-deliver",
        params=relaxed,
    )


def test_concurrent_messages_may_be_skipped() -> None:
    """y was sent before its sender delivered x: skipping x is not a causal violation."""
    h = three_formed()
    x, y = h.send(3), h.send(2)
    h.deliver_everywhere(x, [2, 3])
    h.deliver_everywhere(y, [2, 3])
    h.transitional(1, R12, {1, 2})
    h.deliver(1, y)
    h.regular(1, R12, {1, 2})
    h.crash(2)
    h.crash(3)
    assert "causal" not in failing(h.build())


# ---------------------------------------------------------------------- 15 safe


def safe_delivered_by_two_of_three() -> HistoryBuilder:
    """Node 1 sends m safe; nodes 1 and 2 deliver it as safe in 1.8; node 3 never does."""
    h = three_formed()
    h.deliver_everywhere(h.send(1), [1, 2, 3])
    m = h.send(1, safe=True)
    h.deliver_everywhere(m, [1, 2])
    return h


def test_safe_message_missing_at_a_partitioned_but_alive_member() -> None:
    h = safe_delivered_by_two_of_three()
    h.fault("partition", groups=[[1, 2], [3]])
    h.form(R12, {1, 2})
    h.change(3, ring(12, 3), {3})
    history = h.build()
    assert failing(history) == {"safe"}
    assert_fails(
        history,
        "safe",
        "ring 1.8 seq 2 [1/1/2]",
        "as safe in regular 1.8",
        "member 3/1 never delivered it",
        "installed regular 3.12",
        "EVS Spec 7.1",
    )


def test_safe_message_missing_at_a_member_that_crashed_is_excused() -> None:
    h = safe_delivered_by_two_of_three()
    h.crash(3)
    h.form(R12, {1, 2})
    verdict = check_safe(h.build())
    assert verdict.valid is True
    assert verdict.stats["excused_by_failure"] == 1


def test_safe_delivery_in_the_transitional_config_satisfies_the_member() -> None:
    h = safe_delivered_by_two_of_three()
    m = (R8, 2)
    h.transitional(3, ring(12, 3), {3})
    h.deliver(3, m)
    h.regular(3, ring(12, 3), {3})
    h.form(R12, {1, 2})
    assert_valid(h.build())


def test_safe_in_regular_needs_every_member_to_have_installed_it() -> None:
    h = HistoryBuilder()
    h.boot(1, 2, 3)
    h.change(1, R8, {1, 2, 3}, trans={1})
    h.change(2, R8, {1, 2, 3}, trans={2})
    h.crash(3)  # never installed 1.8
    m = h.send(1, safe=True)
    h.deliver_everywhere(m, [1, 2])
    assert_fails(h.build(), "safe", "member 3 of {1,2,3} never installed regular 1.8", "7.2")


def test_safe_message_delivered_without_the_guarantee() -> None:
    h = three_formed()
    m = h.send(2, safe=True)
    h.deliver_everywhere(m, [1, 2])
    h.deliver(3, m, safe=False)
    assert_fails(h.build(), "safe", "node 3/1", "without the safe guarantee")


def test_safe_member_still_in_the_config_at_the_end() -> None:
    h = safe_delivered_by_two_of_three()
    history = h.build()
    verdict = check_safe(history)
    assert verdict.valid is True and verdict.stats["pending_at_end"] == 1
    live = CheckParams(expected_live=frozenset({(1, 1), (2, 1), (3, 1)}))
    assert check_safe(history, live).valid is False
