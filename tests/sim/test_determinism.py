"""A seed is a complete description of a run: same seed, same history, in any process.

Python salts ``hash()`` of str per process; the simulator must not depend on it (nor on set
iteration order of strings, ids, or the wall clock). Two fresh interpreters with different
``PYTHONHASHSEED`` must produce the same history digest (FoundationDB's unseed check).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gcs.sim.run import run
from gcs.sim.scenario import load_scenario
from gcs.sim.swarm import draw_scenario

ROOT = Path(__file__).parents[2]
PROGRAM = """
import sys
from gcs.sim.run import run
from gcs.sim.scenario import load_scenario
from gcs.sim.swarm import draw_scenario
kind, arg, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
scenario = draw_scenario(seed) if kind == "swarm" else load_scenario(arg)
print(run(scenario, seed).digest())
"""


def _digest_in_subprocess(kind: str, arg: str, seed: int, hash_seed: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, kind, arg, str(seed)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.req("SIM-8-1", "SIM-2.2-1")
def test_same_seed_same_digest_across_processes() -> None:
    scenario = str(ROOT / "simulations" / "scenarios" / "crash-restart.toml")
    first = _digest_in_subprocess("run", scenario, 7, "1")
    second = _digest_in_subprocess("run", scenario, 7, "12345")
    assert first == second
    assert len(first) == 64


@pytest.mark.req("SIM-8-1", "SIM-2.2-1")
def test_swarm_scenario_is_a_function_of_the_seed() -> None:
    first = _digest_in_subprocess("swarm", "-", 11, "3")
    second = _digest_in_subprocess("swarm", "-", 11, "99")
    assert first == second
    assert draw_scenario(11) == draw_scenario(11)


def test_different_seeds_differ() -> None:
    scenario = load_scenario(ROOT / "simulations" / "scenarios" / "lossy.toml")
    short = scenario.with_changes(duration_s=4.0, quiet_s=2.0)
    assert run(short, 1).digest() != run(short, 2).digest()
