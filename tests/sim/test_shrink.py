"""Shrinking a failing run's fault schedule against a deliberately injected bug.

``forget_ring_seq`` (from ``test_mutations``) makes a restarted core ignore its persisted ring
seq, so ring ids go backwards after any crash-and-restart: the ``ring_ids`` checker fails. A
schedule of six fault steps of which only a crash matters must shrink to that one crash (and
the crash to one node and a short duration). Shrinking runs in-process, so the mutation's
``mock.patch`` applies to every candidate run, through the function and through the CLI.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from gcs.cli import main
from gcs.sim.report.rundir import write_run
from gcs.sim.run import run
from gcs.sim.scenario import FaultStep, Scenario, Workload, parse_scenario
from gcs.sim.shrink import failing_checkers, shrink
from tests.sim.test_mutations import forget_ring_seq

SIX_STEPS = Scenario(
    name="six-faults",
    nodes=4,
    duration_s=10.0,
    quiet_s=3.0,
    wire="objects",
    workload=Workload(rate=5.0, batch=2, sizes=(64, 300), safe=0.3),
    faults=(
        FaultStep(1.5, "pause", nodes=(2,), duration_s=0.3),
        FaultStep(2.0, "loss", value=0.05, duration_s=1.0),
        FaultStep(3.0, "crash", nodes=(3, 4), duration_s=2.0),
        FaultStep(5.5, "token_loss", value=0.2, duration_s=1.0),
        FaultStep(7.0, "pause", nodes=(1,), duration_s=0.2),
        FaultStep(8.0, "clock", nodes=(4,), value=1.02),
    ),
)


@pytest.mark.pure_python
@pytest.mark.req("SIM-9-2")
def test_six_fault_steps_shrink_to_one_crash() -> None:
    assert failing_checkers(run(SIX_STEPS, 1)) == []  # the real core passes
    with forget_ring_seq():
        outcome = shrink(SIX_STEPS, 1)
        assert outcome.checker == "ring_ids"
        assert outcome.steps_before == 6
        assert outcome.steps_after == 1
        (step,) = outcome.shrunk.faults
        assert step.action == "crash" and len(step.nodes) == 1
        assert step.duration_s < 2.0
        # The shrunk scenario, written and read back, still fails the same checker.
        again = parse_scenario(tomllib.loads(outcome.shrunk.to_toml()))
        assert "ring_ids" in failing_checkers(run(again, 1))
    assert outcome.runs < 40
    assert failing_checkers(run(outcome.shrunk, 1)) == []


def test_a_passing_run_cannot_be_shrunk() -> None:
    quick = SIX_STEPS.with_changes(duration_s=6.0, faults=SIX_STEPS.faults[:2])
    with pytest.raises(ValueError, match="does not fail"):
        shrink(quick, 1)


@pytest.mark.pure_python
def test_shrink_cli_writes_a_minimal_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    three = SIX_STEPS.with_changes(faults=SIX_STEPS.faults[::2])  # pause, crash, token loss
    with forget_ring_seq():
        run_dir = write_run(run(three, 2), tmp_path, plots=False)
        out = tmp_path / "minimal.toml"
        assert main(["simulate", "shrink", str(run_dir), "--out", str(out)]) == 0
        shrunk = parse_scenario(tomllib.loads(out.read_text()))
        assert [step.action for step in shrunk.faults] == ["crash"]
        assert "ring_ids" in failing_checkers(run(shrunk, 2))
    text = capsys.readouterr().out
    assert "3 -> 1 fault steps" in text and "--seed 2" in text
