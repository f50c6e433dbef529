"""Run directories: every artefact of a run is written, readable, and reproducible.

A run directory is what a researcher keeps and cites; these tests check that it holds what
issue 7 promises (resolved scenario, seed, history, per-checker results, a summary table,
plots) and that writing the same run twice gives the same bytes.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from gcs.cli import main
from gcs.sim.report.figures import COLUMNS, figures, probe_for
from gcs.sim.report.rundir import load_run, write_run
from gcs.sim.report.timeline import fault_periods, membership, reformations, view_changes
from gcs.sim.run import run
from gcs.sim.scenario import FaultStep, Scenario, Workload, load_scenario, parse_scenario
from gcs.sim.swarm import draw_scenario

ROOT = Path(__file__).parents[2]
SCENARIOS = ROOT / "simulations" / "scenarios"

CRASH = Scenario(
    name="small-crash",
    nodes=4,
    duration_s=8.0,
    quiet_s=3.0,
    wire="objects",
    totem={"token_ms": 500, "token_retransmit_ms": 100, "hold_ms": 80},
    workload=Workload(rate=5.0, batch=2, sizes=(64, 300), safe=0.3),
    faults=(
        FaultStep(2.0, "crash", nodes=(3,), duration_s=2.0),
        FaultStep(5.5, "partition", spec="one", nodes=(1,), duration_s=1.0),
    ),
)


@pytest.fixture(scope="module")
def crash_run() -> tuple[object, object]:
    probe = probe_for(CRASH)
    return run(CRASH, 4, probes=[probe]), probe


@pytest.mark.req("SIM-8-2")
def test_run_directory_holds_every_artefact_reproducibly(tmp_path: Path, crash_run: tuple) -> None:
    result, probe = crash_run
    path = write_run(result, tmp_path, probe=probe)
    assert path == tmp_path / "small-crash-seed4"
    for name in ("scenario.toml", "run.json", "history.jsonl", "results.json", "summary.txt"):
        assert (path / name).stat().st_size > 0, name
    for name in ("throughput.png", "latency.png", "membership.png"):
        assert (path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name

    meta = json.loads((path / "run.json").read_text())
    assert meta["seed"] == 4
    assert meta["digest"] == result.digest()
    assert meta["exit_code"] == 0

    lines = (path / "history.jsonl").read_text().splitlines()
    assert len(lines) == len(result.history)
    kinds = {json.loads(line)["type"] for line in lines}
    assert {"Submit", "Originate", "Deliver", "Conf", "Fault", "State"} <= kinds

    results = json.loads((path / "results.json").read_text())
    assert results["valid"] is True and results["exit_code"] == 0
    assert [c["name"] for c in results["checkers"]] == [v.name for v in result.verdicts]
    assert set(results["figures"]) == set(COLUMNS)

    summary = (path / "summary.txt").read_text()
    for needle in ("throughput", "token rotations", "retransmissions", "p99", "safe", "crash n3"):
        assert needle in summary, needle

    record = load_run(path)
    assert (record.seed, record.digest, record.exit_code) == (4, result.digest(), 0)
    assert record.scenario == CRASH

    # Nothing depends on the wall clock: writing the run again gives the same bytes, plots too.
    again = write_run(result, tmp_path / "again", probe=probe)
    for file in sorted(path.iterdir()):
        if file.name != "run.json":  # it names its own path in the replay command
            assert file.read_bytes() == (again / file.name).read_bytes(), file.name


def test_figures_measure_the_crash(crash_run: tuple) -> None:
    result, probe = crash_run
    row = figures(result, probe)
    assert row["valid"] == "pass"
    assert row["delivered"] > 0 and row["msgs_per_s"] > 0
    assert 0 < row["rotation_ms"] < 50
    # The crash is noticed after the token timeout (0.5 s); the survivors declare node 3 failed
    # when the consensus timeout (1.2 s) expires, and then the ring forms at once.
    assert 0.5 + 1.2 <= row["reform_crash_s"] < 2.5
    assert row["views_token_loss"] >= 1 and row["view_changes"] >= 2


def test_timeline_follows_the_history(crash_run: tuple) -> None:
    result, _ = crash_run
    intervals = membership(result.history)
    node3 = [i for i in intervals if i.node == 3]
    down = [i for i in node3 if i.state == "down"]
    assert len(down) == 1 and down[0].start_ns == 2_000_000_000
    assert down[0].end_ns == 4_000_000_000
    assert {i.state for i in intervals} >= {"operational", "gather", "commit", "recovery"}
    periods = {p.kind: p for p in fault_periods(result.history)}
    assert periods["crash"].end_ns - periods["crash"].start_ns == 2_000_000_000
    assert periods["partition"].end_ns - periods["partition"].start_ns == 1_000_000_000
    windows = reformations(result.history)
    assert [w.faults[0].split(" ")[0] for w in windows][:3] == ["crash", "restart", "partition"]
    assert sum(w.view_changes for w in windows) == len(view_changes(result.history))


def test_probes_do_not_change_the_history() -> None:
    short = CRASH.with_changes(duration_s=4.0, faults=CRASH.faults[:1])
    assert run(short, 2).digest() == run(short, 2, probes=[probe_for(short)]).digest()


@pytest.mark.req("SIM-2.1-1")
@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_resolved_scenarios_round_trip_exactly(path: Path) -> None:
    """scenario.toml must give back the very scenario that ran (replay depends on it)."""
    scenario = load_scenario(path)
    assert parse_scenario(tomllib.loads(scenario.to_toml())) == scenario


@pytest.mark.req("SIM-2.1-1")
def test_drawn_scenarios_round_trip_exactly() -> None:
    for seed in range(300):
        scenario = draw_scenario(seed)
        assert parse_scenario(tomllib.loads(scenario.to_toml())) == scenario, seed


def test_cli_run_writes_run_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "tiny.toml"
    scenario.write_text(CRASH.with_changes(name="tiny", duration_s=4.0).to_toml())
    code = main(
        [
            "simulate",
            "run",
            str(scenario),
            "--seeds",
            "2",
            "--jobs",
            "1",
            "--out",
            str(tmp_path),
            "--no-plots",
        ]
    )
    assert code == 0
    assert "2 seeds: 2 passed, 0 failed" in capsys.readouterr().out
    for seed in (1, 2):
        record = load_run(tmp_path / f"tiny-seed{seed}")
        assert record.seed == seed and record.exit_code == 0
        assert (tmp_path / f"tiny-seed{seed}" / "summary.txt").exists()
