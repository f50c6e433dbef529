"""The kv workload and the quorum/kv checkers of the simulator (RFC 0008 §7).

Runs are judged by every checker; the checkers are judged on doctored logs (a split brain, a
lost acknowledgement, diverged replicas, two quorate partitions), so a checker that passes
everything would fail here.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from gcs.errors import ConfigError
from gcs.history.events import MsgId
from gcs.sim.checkers.kv import check_kv_acked, check_kv_converged, check_kv_history
from gcs.sim.checkers.quorum import check_quorum, check_quorum_agreement
from gcs.sim.run import run
from gcs.sim.scenario import parse_scenario
from gcs.sim.swarm import draw_scenario
from gcs.sim.workloads.kvlog import (
    GENESIS,
    Ack,
    Apply,
    Final,
    Install,
    KvLog,
    Verdict,
    VerdictEnd,
    chain_step,
)
from gcs.wire.frames import RingId

R1, R2, R3 = RingId(seq=8, rep=1), RingId(seq=8, rep=3), RingId(seq=12, rep=1)
M = [MsgId(1, 1, n) for n in range(1, 6)]


def kv_scenario(**quorum: object) -> dict[str, object]:
    return {
        "name": "kv",
        "nodes": 5,
        "duration_s": 14.0,
        "quiet_s": 8.0,
        "workload": {"kind": "kv", "rate": 20.0, "sizes": [64, 3000]},
        "quorum": dict(quorum),
        "faults": [
            {"at_s": 3.0, "action": "partition", "spec": "majority", "duration_s": 3.0},
            {"at_s": 8.0, "action": "crash", "nodes": [1], "duration_s": 2.0},
        ],
    }


@pytest.mark.req("QRM-3.6-1", "QRM-4.1-4", "XFR-5.5-1")
@pytest.mark.parametrize(
    "quorum",
    [{}, {"wait_for_all": True, "last_man_standing": True, "last_man_standing_window_ms": 500}],
    ids=["votes", "lms"],
)
def test_kv_runs_pass_every_checker(quorum: dict[str, object]) -> None:
    """QRM-3.6-1, QRM-4.1-4, XFR-5.5-1: partition, crash and restart under the kv workload."""
    result = run(parse_scenario(kv_scenario(**quorum)), 3)
    failed = [v.summary() for v in result.verdicts if v.valid is not True]
    assert not failed, "\n".join(failed)
    names = {v.name for v in result.verdicts}
    assert {"quorum", "quorum_agreement", "kv_history", "kv_acked", "kv_converged"} <= names
    stats = {v.name: v.stats for v in result.verdicts}
    assert stats["kv_acked"]["acknowledged"] > 50, "the store took writes"


def test_kv_swarm_draws_on_top_of_the_messages_draw() -> None:
    plain, kv = draw_scenario(11), draw_scenario(11, kind="kv")
    assert kv.workload.kind == "kv" and kv == draw_scenario(11, kind="kv")
    assert replace(kv, workload=plain.workload, quorum={}, votes=()) == plain
    assert all("two_node" not in draw_scenario(s, kind="kv").quorum for s in range(1, 60))


def test_kv_scenarios_round_trip_and_name_bad_keys() -> None:
    scenario = parse_scenario({**kv_scenario(wait_for_all=True), "votes": [2, 1, 1, 1, 1]})
    import tomllib

    again = parse_scenario(tomllib.loads(scenario.to_toml()))
    assert again == scenario
    with pytest.raises(ConfigError) as info:
        parse_scenario({**kv_scenario(), "quorum": {"expected_votes": 2}})
    assert info.value.field == "quorum.expected_votes"
    with pytest.raises(ConfigError) as info:
        parse_scenario({**kv_scenario(), "votes": [1, 1]})
    assert info.value.field == "votes"


# ---------------------------------------------------------------------- doctored logs


def _applies(node: int, msgs: list[MsgId], start: int = 1) -> list[Apply]:
    chain, out = GENESIS, []
    for version, msg in enumerate(msgs, start):
        chain = chain_step(chain, msg)
        out.append(Apply(version * 10, node, 1, version, msg, chain))
    return out


def test_kv_history_catches_two_histories_and_double_applies() -> None:
    good = KvLog(events=[*_applies(1, M[:3]), *_applies(2, M[:3])])
    assert check_kv_history(good).valid
    forked = KvLog(events=[*_applies(1, M[:3]), *_applies(2, [M[0], M[3], M[4]])])
    verdict = check_kv_history(forked)
    assert verdict.valid is False and "two histories" in verdict.problems[0]
    twice = KvLog(events=_applies(1, [M[0], M[1], M[0]]))
    assert check_kv_history(twice).valid is False
    bad_install = KvLog(events=[*_applies(1, M[:3]), Install(99, 2, 1, 2, b"x" * 16, "merge")])
    assert check_kv_history(bad_install).valid is False


def test_kv_acked_catches_a_lost_acknowledged_write() -> None:
    applies = _applies(1, M[:3])
    final = Final(1, 1, 3, applies[-1].chain, True, R1, True)
    kept = KvLog(events=[*applies, Ack(30, 1, 1, M[2], 3)], finals=[final])
    assert check_kv_acked(kept).valid
    lost = KvLog(events=[*applies, Ack(30, 1, 1, M[4], 3)], finals=[final])
    assert check_kv_acked(lost).valid is False


def test_kv_converged_catches_diverged_replicas() -> None:
    a = Final(1, 1, 3, b"a" * 16, True, R1, True)
    b = Final(2, 1, 2, b"b" * 16, True, R1, True)
    assert check_kv_converged(KvLog(finals=[a, replace(b, version=3, chain=a.chain)])).valid
    assert check_kv_converged(KvLog(finals=[a, b])).valid is False
    assert check_kv_converged(KvLog(finals=[a, replace(b, installed=False)])).valid is False


@pytest.mark.req("QRM-3.6-1")
def test_quorum_checker_catches_two_quorate_partitions() -> None:
    """QRM-3.6-1: overlapping quorate rings without a common member are a violation."""
    split = KvLog(
        events=[
            Verdict(10, 1, 1, R1, (1, 2), True, 2, 4),
            Verdict(11, 3, 1, R2, (3, 4), True, 2, 4),
            VerdictEnd(50, 1, 1),
            VerdictEnd(50, 3, 1),
        ]
    )
    verdict = check_quorum(split)
    assert verdict.valid is False and "no common member" in verdict.problems[0]
    successive = KvLog(
        events=[
            Verdict(10, 1, 1, R1, (1, 2), True, 2, 3),
            VerdictEnd(20, 1, 1),
            Verdict(30, 3, 1, R3, (3, 4), True, 2, 3),
        ]
    )
    assert check_quorum(successive).valid, "disjoint but one after the other"
    assert check_quorum(KvLog(two_node=True)).valid is None


@pytest.mark.req("QRM-3.2-1")
def test_quorum_agreement_catches_members_that_disagree() -> None:
    """QRM-3.2-1: members of one ring must reach the same verdicts."""
    agree = KvLog(events=[Verdict(1, 1, 1, R1, (1, 2), True, 2, 3)] * 2)
    assert check_quorum_agreement(agree).valid
    disagree = KvLog(
        events=[Verdict(1, 1, 1, R1, (1, 2), True, 2, 3), Verdict(1, 2, 1, R1, (1, 2), False, 2, 3)]
    )
    assert check_quorum_agreement(disagree).valid is False
