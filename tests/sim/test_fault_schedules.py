"""Hypothesis chooses the fault schedule; every checker must pass on every schedule.

Unlike a seed sweep, a failure here shrinks: Hypothesis removes faults, moves them and shortens
them until the smallest schedule that still breaks a guarantee remains, and prints it as the
falsifying example (a list of ``FaultStep``), ready to paste into a scenario file.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gcs.sim.network import LinkParams
from gcs.sim.run import run
from gcs.sim.scenario import FaultStep, Scenario, Workload

NODES = 4
DURATION = 12.0

node = st.integers(min_value=1, max_value=NODES)
at = st.floats(min_value=1.5, max_value=DURATION - 1.0).map(lambda x: round(x, 2))
length = st.floats(min_value=0.1, max_value=4.0).map(lambda x: round(x, 2))
when = st.sampled_from(["", "", "gather", "commit", "recovery"])

fault_steps = st.one_of(
    st.builds(
        FaultStep,
        at_s=at,
        action=st.just("partition"),
        spec=st.sampled_from(["one", "halves", "majority", "bridge"]),
        duration_s=length,
        when=when,
    ),
    st.builds(
        FaultStep,
        at_s=at,
        action=st.just("crash"),
        nodes=st.tuples(node),
        duration_s=length,
        wipe=st.booleans(),
        when=when,
    ),
    st.builds(
        FaultStep, at_s=at, action=st.just("pause"), nodes=st.tuples(node), duration_s=length
    ),
    st.builds(
        FaultStep, at_s=at, action=st.just("leave"), nodes=st.tuples(node), duration_s=length
    ),
    st.builds(
        FaultStep,
        at_s=at,
        action=st.just("block"),
        nodes=st.tuples(node, node).filter(lambda p: p[0] != p[1]),
        duration_s=length,
    ),
    st.builds(
        FaultStep,
        at_s=at,
        action=st.sampled_from(["token_loss", "commit_token_loss", "loss"]),
        value=st.sampled_from([0.1, 0.3, 0.6]),
        duration_s=length,
    ),
    st.builds(
        FaultStep,
        at_s=at,
        action=st.sampled_from(["recovery_loss", "recovery_delay"]),
        spec=st.sampled_from(["resend", "token", "all"]),
        value=st.sampled_from([0.3, 0.6, 1.0]),
        delay_ms=st.sampled_from([20.0, 300.0]),
        duration_s=length,
        when=when,
    ),
)


def _scenario(steps: list[FaultStep]) -> Scenario:
    return Scenario(
        name="hypothesis",
        nodes=NODES,
        duration_s=DURATION,
        quiet_s=6.0,
        totem={"exclusion_penalty_max_ms": 4000, "token_retransmit_ms": 60},
        link=LinkParams(latency_ns=1_000_000, latency_max_ns=3_000_000, loss=0.01),
        workload=Workload(rate=6.0, batch=3, sizes=(64, 700, 2500), safe=0.3, start_s=1.0),
        faults=tuple(sorted(steps, key=lambda s: s.at_s)),
    )


@settings(max_examples=12, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(steps=st.lists(fault_steps, min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_any_fault_schedule_keeps_every_guarantee(steps: list[FaultStep], seed: int) -> None:
    result = run(_scenario(steps), seed)
    failing = [v for v in result.verdicts if v.valid is not True]
    assert not failing, (
        "\n".join(f"{v.name}: {v.valid} {list(v.problems[:3])}" for v in failing)
        + f"\nseed={seed}\n{result.scenario.to_toml()}"
    )


def _faults(result: object, kind: str, node: int) -> list[int]:
    events = result.history.events  # type: ignore[attr-defined]
    return [
        e.time_ns
        for e in events
        if type(e).__name__ == "Fault" and e.kind == kind and e.node == node
    ]


@pytest.mark.req("SIM-5.4-1")
def test_a_trigger_still_armed_at_the_end_never_fires() -> None:
    """SIM-5.4-1: node 2 crashes near the end, so the RECOVERY that would fire node 3's trigger
    comes after the end: the trigger is disarmed and no fault starts in the quiet phase (swarm
    seed 926 failed liveness because such a crash was judged as if the quiet phase had begun)."""
    steps = [
        FaultStep(at_s=1.0, action="crash", nodes=(3,), duration_s=1.0, when="recovery"),
        FaultStep(at_s=DURATION - 0.5, action="crash", nodes=(2,), duration_s=2.0),
    ]
    result = run(_scenario(steps), 3)
    assert _faults(result, "crash", 3) == []
    assert [v.name for v in result.verdicts if v.valid is not True] == []


@pytest.mark.req("SIM-5.4-1")
def test_a_late_trigger_moves_the_quiet_point_to_its_undo() -> None:
    """A triggered crash fires after its ``at_s``; its restart, not ``at_s + duration_s``, ends
    the fault phase, and the quiet phase is measured from there."""
    scenario = _scenario(
        [
            FaultStep(at_s=9.0, action="crash", nodes=(2,), duration_s=1.0),
            FaultStep(at_s=1.0, action="crash", nodes=(3,), duration_s=4.0, when="recovery"),
        ]
    )
    result = run(scenario, 3)
    (restart,) = _faults(result, "restart", 3)
    assert restart > int(DURATION * 1e9), "the triggered crash fired late, its restart after end"
    assert result.virtual_s * 1e9 >= restart + scenario.quiet_s * 1e9
    assert [v.name for v in result.verdicts if v.valid is not True] == []
