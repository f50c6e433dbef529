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

from gcs.build import build_info
from gcs.sim.run import run
from gcs.sim.scenario import load_scenario
from gcs.sim.swarm import draw_scenario

ROOT = Path(__file__).parents[2]
PROGRAM = """
import sys
from gcs.build import build_info
from gcs.sim.run import run
from gcs.sim.scenario import load_scenario
from gcs.sim.swarm import draw_scenario
kind, arg, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
scenario = draw_scenario(seed) if kind == "swarm" else load_scenario(arg)
print(build_info().describe())
print(run(scenario, seed).digest())
"""


def _digest_in_subprocess(
    kind: str, arg: str, seed: int, hash_seed: str, *, pure: bool | None = None
) -> str:
    return _build_and_digest(kind, arg, seed, hash_seed, pure=pure)[1]


def _build_and_digest(
    kind: str, arg: str, seed: int, hash_seed: str, *, pure: bool | None = None
) -> tuple[str, str]:
    """(build description, history digest) of one run in a fresh interpreter; ``pure`` forces
    the pure-Python modules (GCS_PURE=1) or the installed build (GCS_PURE=0)."""
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    if pure is not None:
        env["GCS_PURE"] = "1" if pure else "0"
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, kind, arg, str(seed)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    lines = out.stdout.strip().splitlines()
    return lines[-2], lines[-1]


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


# Swarm scenarios (sealed datagrams through the real channel and codec, random faults), one
# named scenario (its default wire) with a partition and a merge, and one with two links in
# active mode (every datagram twice: the replay window's copies, RFC 0010 LNK-6-2, in both
# builds) and single-link cuts; each runs in seconds.
CROSS_BUILD_RUNS = (
    ("swarm", "-", 4),
    ("swarm", "-", 5),
    ("swarm", "-", 8),
    ("run", str(ROOT / "simulations" / "scenarios" / "partition-merge.toml"), 2),
    ("run", str(ROOT / "simulations" / "scenarios" / "link-cut-active.toml"), 1),
)


@pytest.mark.req("SIM-8-3")
@pytest.mark.parametrize(("kind", "arg", "seed"), CROSS_BUILD_RUNS)
def test_compiled_and_pure_builds_give_the_same_history(kind: str, arg: str, seed: int) -> None:
    """SIM-8-3, one source, two builds: the compiled hot path (mypyc) and the pure-Python
    modules it is compiled from produce the same history digest for the same seed. Without a
    compiled build installed this skips, unless GCS_REQUIRE_COMPILED=1 (CI), where it fails."""
    if not _compiled_installed():
        if os.environ.get("GCS_REQUIRE_COMPILED") == "1":
            pytest.fail(f"no compiled build installed: {build_info().describe()}")
        pytest.skip(f"no compiled build to compare with: {build_info().describe()}")
    compiled_build, compiled = _build_and_digest(kind, arg, seed, "0", pure=False)
    pure_build, pure = _build_and_digest(kind, arg, seed, "0", pure=True)
    assert compiled_build.startswith("compiled"), compiled_build
    assert pure_build.startswith("pure"), pure_build
    assert compiled == pure, f"{kind} {arg} seed {seed}: compiled {compiled} != pure {pure}"


def _compiled_installed() -> bool:
    info = build_info()
    return info.compiled or info.reason.startswith("GCS_PURE")  # in use, or set aside by GCS_PURE
