"""Liveness, no change without a fault and the GATHER bound (RFC 0004 EVS-11-15), plus the
suite around the checkers: check_all, verdicts, reports and the run summary."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gcs.sim.checkers import (
    MAX_PROBLEMS,
    CheckParams,
    Verdict,
    check_all,
    check_gather_bound,
    check_liveness,
    check_no_spurious_change,
    format_report,
    overall,
    summarize,
)

from .histories import (
    HistoryBuilder,
    assert_fails,
    assert_valid,
    failing,
    partition_heal_run,
    ring,
)

S = 1_000_000_000


# ---------------------------------------------------------------------- 23 liveness


def test_liveness_passes_after_heal() -> None:
    h, params = partition_heal_run()
    verdict = check_liveness(h.build(), params)
    assert verdict.valid is True
    assert verdict.stats["common_ring"] == "1.16"


def test_liveness_is_unknown_without_its_parameters() -> None:
    h, _ = partition_heal_run()
    verdict = check_liveness(h.build())
    assert verdict.valid is None
    assert "quiet_from_ns" in verdict.note
    assert {v.name for v in check_all(h.build())}.isdisjoint({"liveness", "gather_bound"})


def test_expected_nodes_that_never_merge_fail_liveness() -> None:
    h = HistoryBuilder()
    h.boot(1, 2, 3)
    h.form(ring(8), {1, 2})
    params = CheckParams(
        quiet_from_ns=0, liveness_bound_ns=S, expected_live=frozenset({(1, 1), (2, 1), (3, 1)})
    )
    history = h.build()
    assert_fails(
        history,
        "liveness",
        "ended in different configurations",
        "3/1 in regular 3.4",
        params=params,
    )
    assert_fails(
        history,
        "liveness",
        "members {1,2}; expected exactly the live set {1,2,3}",
        params=params,
    )


def test_common_configuration_formed_too_late() -> None:
    h, params = partition_heal_run()
    late = replace(params, liveness_bound_ns=1)
    assert_fails(h.build(), "liveness", "installed after the liveness deadline", params=late)


def test_expected_node_that_crashed_fails_liveness() -> None:
    h, params = partition_heal_run()
    h.crash(2)
    assert_fails(
        h.build(), "liveness", "node 2/1 was expected live", "recorded Crash", params=params
    )


def test_submitted_message_never_originated_fails_liveness() -> None:
    h, params = partition_heal_run()
    msg = h.submit(2)
    history = h.build()
    assert_fails(
        history,
        "liveness",
        f"node 2/1 submitted message {msg}",
        "never originated",
        params=params,
    )
    cutoff = replace(params, submit_cutoff_ns=h.now_ns - 1)
    assert "liveness" not in failing(history, cutoff)


def test_message_of_the_common_ring_missing_somewhere_fails_liveness() -> None:
    h, params = partition_heal_run()
    m = h.send(1)
    h.deliver_everywhere(m, [1, 3])
    assert_fails(
        h.build(),
        "liveness",
        "ring 1.16 seq 2",
        "in the common configuration regular 1.16",
        "node 2/1 never delivered it",
        params=params,
    )


def test_own_message_never_delivered_fails_liveness() -> None:
    h, params = partition_heal_run()
    lost = h.send(3)
    h.deliver_everywhere(lost, [1, 2])
    assert_fails(
        h.build(),
        "liveness",
        "node 3/1 submitted",
        "its sender never delivered it",
        params=params,
    )


# ---------------------------------------------------------------------- loss-caused reformations


def settled_then_reformed(
    *,
    quiet_loss: float = 0.02,
    first: str = "token_loss",
    took_ns: int = S // 10,
    settle_ns: int = S // 10,
) -> tuple[HistoryBuilder, CheckParams]:
    """Nodes 1 and 2 merge with node 3 into 1.12 ``settle_ns`` after the heal; three seconds
    later, long after the deadline (quiet + 1 s), node 2 stops seeing the token (``first`` is
    its reason), the others follow it into GATHER, and all three form 1.16 with the same members
    ``took_ns`` later (RFC 0007 SIM-6.1-1)."""
    h = HistoryBuilder()
    h.boot(1, 2, 3)
    h.form(ring(8), {1, 2})
    h.fault("heal")
    quiet = h.now_ns
    h.at(quiet + settle_ns)
    h.form(ring(12), {1, 2, 3}, reason="merge")
    h.deliver_everywhere(h.send(1), [1, 2, 3])
    h.at(quiet + 3 * S)
    h.state(2, "operational", "gather", first)
    h.state(1, "operational", "gather", "join 2")
    h.state(3, "operational", "gather", "join 2")
    h.at(h.now_ns + took_ns)
    for node in (2, 1, 3):
        h.state(node, "gather", "commit", "commit 1.16")
        h.state(node, "commit", "recovery", "recovery 1.16")
        h.change(node, ring(16), {1, 2, 3}, reason=first if node == 2 else "join 2")
        h.state(node, "recovery", "operational", "installed 1.16")
    h.deliver_everywhere(h.send(3), [1, 2, 3])
    params = CheckParams(
        quiet_from_ns=quiet,
        liveness_bound_ns=S,
        expected_live=frozenset({(1, 1), (2, 1), (3, 1)}),
        quiet_loss=quiet_loss,
    )
    return h, params


@pytest.mark.req("SIM-6.1-1")
def test_loss_caused_reformation_after_settling_is_excused() -> None:
    h, params = settled_then_reformed()
    history = h.build()
    liveness = check_liveness(history, params)
    assert liveness.valid is True, liveness.summary()
    assert liveness.stats["excused_reformations"] == 1
    assert liveness.stats["common_ring"] == "1.16"
    assert check_no_spurious_change(history, params).valid is True
    assert_valid(history, params)


@pytest.mark.req("SIM-6.1-1")
def test_no_reformation_is_excused_in_a_lossless_quiet_period() -> None:
    h, params = settled_then_reformed(quiet_loss=0.0)
    history = h.build()
    assert_fails(
        history,
        "liveness",
        "regular 1.16, the final configuration",
        "installed after the liveness deadline",
        "the quiet period's network is lossless",
        params=params,
    )
    assert_fails(history, "no_spurious_change", "regular 1.16", "no fault", params=params)


@pytest.mark.req("SIM-6.1-1")
def test_a_reformation_not_rooted_in_token_loss_is_not_excused() -> None:
    h, params = settled_then_reformed(first="failure_to_receive")
    history = h.build()
    assert_fails(
        history, "liveness", "its root cause is failure_to_receive, not token_loss", params=params
    )
    assert "no_spurious_change" in failing(history, params)


@pytest.mark.req("SIM-6.1-1")
def test_a_reformation_slower_than_the_bound_is_not_excused() -> None:
    h, params = settled_then_reformed(took_ns=2 * S)
    assert_fails(h.build(), "liveness", "more than the bound", params=params)


@pytest.mark.req("SIM-6.1-1")
def test_excused_reformations_need_a_configuration_formed_in_time() -> None:
    """The chain of excused reformations must start from a convergence within the bound."""
    h, params = settled_then_reformed(settle_ns=2 * S)
    assert_fails(
        h.build(),
        "liveness",
        "installed after the liveness deadline",
        "no common configuration formed by the deadline was held until then",
        params=params,
    )


@pytest.mark.req("SIM-6.1-1")
def test_a_reformation_through_another_configuration_is_not_excused() -> None:
    """Split by the token loss and merged again: not "the same members again"."""
    h, params = settled_then_reformed()
    h.at(h.now_ns + S // 10)
    h.state(3, "operational", "gather", "token_loss")
    h.change(3, ring(20, 3), {3}, reason="token_loss")
    h.change(1, ring(20), {1, 2}, reason="token_loss")
    h.change(2, ring(20), {1, 2}, reason="join 1")
    h.at(h.now_ns + S // 10)
    h.form(ring(24), {1, 2, 3}, reason="merge")
    assert_fails(
        h.build(),
        "liveness",
        "the change from regular 1.16",
        "node 1/1 installed regular 1.20 after it",
        params=params,
    )


@pytest.mark.req("SIM-6.1-1")
def test_an_excused_reformation_still_owes_every_delivery() -> None:
    h, params = settled_then_reformed()
    lost = h.send(2)
    h.deliver_everywhere(lost, [1, 2])
    assert_fails(
        h.build(), "liveness", "ring 1.16 seq 2", "node 3/1 never delivered it", params=params
    )


# ---------------------------------------------------------------------- 24 no spurious change


def reformed_later(with_fault: bool) -> tuple[HistoryBuilder, CheckParams]:
    """After the common configuration 1.16, all three nodes form 1.20 two seconds later."""
    h, params = partition_heal_run()
    h.at(h.now_ns + 2 * S)
    if with_fault:
        h.fault("pause", node=1, duration_ns=S)
    h.form(ring(20), {1, 2, 3}, reason="token_loss")
    return h, params


def test_configuration_change_without_a_fault_after_settling() -> None:
    h, params = reformed_later(with_fault=False)
    assert_fails(
        h.build(),
        "no_spurious_change",
        "regular 1.20",
        "settled at",
        "no fault in between",
        params=params,
    )


def test_configuration_change_after_a_fault_is_explained() -> None:
    h, params = reformed_later(with_fault=True)
    verdict = check_no_spurious_change(h.build(), params)
    assert verdict.valid is True
    settled = verdict.stats["settled_at_ns"]
    assert isinstance(settled, int) and params.quiet_from_ns is not None
    assert params.quiet_from_ns < settled < h.now_ns - S  # when the last node installed 1.16


def test_a_configuration_from_before_the_quiet_period_may_still_react() -> None:
    """Node 1 is paused until the quiet period starts; the others only notice afterwards and
    the cluster re-forms. The old configuration 1.8 was common at quiet time, but it had not
    formed in the quiet period, so this change is the pause's doing, not a spurious one."""
    h = HistoryBuilder()
    h.boot(1, 2, 3)
    h.form(ring(8), {1, 2, 3})
    h.fault("pause", node=1, duration_ns=S)
    quiet = h.now_ns + S
    h.at(quiet + S // 5)
    h.form(ring(12), {1, 2, 3}, reason="token_loss")
    params = CheckParams(
        quiet_from_ns=quiet,
        liveness_bound_ns=S,
        expected_live=frozenset({(1, 1), (2, 1), (3, 1)}),
    )
    verdict = check_no_spurious_change(h.build(), params)
    assert verdict.valid is True
    assert verdict.stats["settled_at_ns"] == h.now_ns  # when the last node installed 1.12
    h.at(h.now_ns + S)
    h.form(ring(16), {1, 2, 3}, reason="token_loss")  # but this one is spurious
    assert_fails(h.build(), "no_spurious_change", "regular 1.16", params=params)


def test_isolated_node_may_settle_late_but_within_the_bound() -> None:
    h = HistoryBuilder()
    h.boot(1, 2, 3)
    h.form(ring(8), {1, 2})
    quiet = h.now_ns
    h.at(quiet + S // 2)
    h.change(3, ring(12, 3), {3})
    params = CheckParams(
        quiet_from_ns=quiet, liveness_bound_ns=S, expected_live=frozenset({(1, 1), (2, 1)})
    )
    assert "no_spurious_change" not in failing(h.build(), params)
    late = replace(params, liveness_bound_ns=S // 4)
    assert_fails(h.build(), "no_spurious_change", "regular 3.12 at node 3/1", params=late)


def test_no_spurious_change_needs_quiet_time() -> None:
    h, _ = partition_heal_run()
    assert check_no_spurious_change(h.build()).valid is None


# ---------------------------------------------------------------------- 25 gather bound


def test_gather_entries_in_a_row_are_bounded() -> None:
    h, params = partition_heal_run()
    for old, new in [("operational", "gather"), ("gather", "commit"), ("commit", "gather")]:
        h.state(2, old, new, "token_loss")
    h.state(2, "gather", "gather", "join")
    h.state(2, "gather", "gather", "join")
    history = h.build()
    verdict = check_gather_bound(history, params)
    assert verdict.valid is False and verdict.stats["max_consecutive_gather"] == 4
    assert "node 2/1 entered GATHER for the 4th time" in verdict.problems[0]
    h.state(2, "gather", "operational")
    h.state(2, "operational", "gather")
    assert check_gather_bound(h.build(), replace(params, gather_bound=4)).valid is True
    assert check_gather_bound(history).valid is None


# ---------------------------------------------------------------------- suite


def test_check_all_runs_everything_and_all_pass() -> None:
    h, params = partition_heal_run()
    verdicts = check_all(h.build(), params=params)
    names = [v.name for v in verdicts]
    assert len(names) == len(set(names)) == 21
    assert overall(verdicts) is True
    assert format_report(verdicts).count("PASS") == 21


def test_problems_are_capped_and_counted() -> None:
    h = HistoryBuilder()
    h.boot(1, 2)
    h.form(ring(8), {1, 2})
    for _ in range(MAX_PROBLEMS + 5):
        m = h.send(1)
        h.deliver(1, m)
        h.deliver(1, m)
    verdict = {v.name: v for v in check_all(h.build())}["no_duplicates"]
    assert verdict.problem_count == MAX_PROBLEMS + 5
    assert len(verdict.problems) == MAX_PROBLEMS
    assert "... and 5 more" in verdict.summary()


def test_overall_and_summary_lines() -> None:
    good = Verdict("a", True)
    bad = Verdict("b", False, ("x broke",), 1)
    unknown = Verdict("c", None, note="needs y")
    assert overall([good]) is True
    assert overall([good, unknown]) is None
    assert overall([unknown, bad]) is False
    assert bad.summary() == "FAIL b: 1 problem(s)\n  - x broke"
    assert unknown.summary() == "UNKNOWN c: needs y"


def test_a_checker_that_raises_is_reported_not_hidden() -> None:
    from gcs.sim.checkers import suite

    def broken(history: object, params: object) -> Verdict:
        raise RuntimeError("boom")

    h, params = partition_heal_run()
    original = suite.SAFETY_CHECKERS
    try:
        suite.SAFETY_CHECKERS = (*original, broken)
        verdicts = suite.check_all(h.build(), params=params)
    finally:
        suite.SAFETY_CHECKERS = original
    broken_verdict = next(v for v in verdicts if v.name == "broken")
    assert broken_verdict.valid is None and "RuntimeError: boom" in broken_verdict.note


def test_summary_counts_messages_configs_and_reasons() -> None:
    h, _ = partition_heal_run()
    stats = summarize(h.build())
    assert stats["messages_submitted"] == 9
    assert stats["messages_delivered"] == 9
    assert stats["mcasts_originated"] == 8
    assert stats["regular_installs"] == 12
    assert stats["transitional_installs"] == 9
    assert stats["view_changes_by_reason"] == {"join": 3, "merge": 3, "startup": 3, "token_loss": 3}
    assert stats["faults_by_kind"] == {"heal": 1, "partition": 1}


def test_valid_run_with_restart_and_leave() -> None:
    h = HistoryBuilder()
    h.boot(1, 2, 3)
    h.form(ring(8), {1, 2, 3})
    h.deliver_everywhere(h.send(3), [1, 2, 3])
    h.fault("restart", node=3)
    h.crash(3)
    h.form(ring(12), {1, 2}, reason="token_loss")
    h.boot(3, seq=16)
    h.form(ring(20), {1, 2, 3})
    h.deliver_everywhere(h.send(3), [1, 2, 3])
    h.leave(1)
    h.form(ring(24), {2, 3}, reason="leave 1")
    assert_valid(h.build())
