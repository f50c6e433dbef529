"""Every shipped scenario, run through the simulator and judged by every checker.

The default suite runs two seeds of each scenario (a bounded sample); the ``slow`` sweep runs
``GCS_SWEEP_SEEDS`` seeds of each (default 20). A failure prints the seed and the problems, so
``gcs simulate run <file> --seed S --trace`` replays it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gcs.sim.run import Result, run
from gcs.sim.scenario import load_scenario
from gcs.sim.swarm import draw_scenario

SCENARIOS = sorted((Path(__file__).parents[2] / "simulations" / "scenarios").glob("*.toml"))
QUICK = [p for p in SCENARIOS if p.stem != "big-ring"]


def _explain(result: Result) -> str:
    lines = [f"seed {result.seed} of {result.scenario.name}: {result.valid}"]
    for verdict in result.verdicts:
        if verdict.valid is not True:
            lines.append(f"  {verdict.name}: {verdict.valid}")
            lines.extend(f"    {p}" for p in verdict.problems[:5])
    lines.append(f"replay: gcs simulate run <scenario> --seed {result.seed} --trace")
    return "\n".join(lines)


@pytest.mark.parametrize("path", QUICK, ids=lambda p: p.stem)
def test_scenario_sample(path: Path) -> None:
    """Two seeds per scenario: every checker passes and the workload was really delivered."""
    scenario = load_scenario(path)
    for seed in (1, 2):
        result = run(scenario, seed)
        assert result.valid is True, _explain(result)
        assert result.metrics.delivered_messages > 0
        assert result.virtual_s >= scenario.duration_s


def test_big_ring_forms_and_survives() -> None:
    """Thirty-two nodes form one ring, survive a crash and a partition, and merge again."""
    scenario = load_scenario(next(p for p in SCENARIOS if p.stem == "big-ring"))
    result = run(scenario, 1)
    assert result.valid is True, _explain(result)


def test_swarm_sample() -> None:
    """A handful of swarm seeds (scenario drawn from the seed) in the default suite."""
    for seed in range(1, 5):
        result = run(draw_scenario(seed), seed)
        assert result.valid is True, _explain(result)


def _sweep_seeds() -> int:
    return int(os.environ.get("GCS_SWEEP_SEEDS", "20"))


@pytest.mark.slow
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_sweep(path: Path) -> None:
    scenario = load_scenario(path)
    for seed in range(3, 3 + _sweep_seeds()):
        result = run(scenario, seed)
        assert result.valid is True, _explain(result)


@pytest.mark.slow
def test_swarm_sweep() -> None:
    for seed in range(1000, 1000 + 4 * _sweep_seeds()):
        result = run(draw_scenario(seed), seed)
        assert result.valid is True, _explain(result)
