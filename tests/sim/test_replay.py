"""Replay: a run directory reproduces its run exactly, and says so when it does not.

The digest stored in ``run.json`` is the SHA-256 of the whole history; ``replay`` re-runs the
recorded scenario and seed and compares. The event log printed by ``--trace`` interleaves the
history with the cores' trace events, one line per event, per node.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gcs.cli import main
from gcs.sim.replay import EventLog, replay
from gcs.sim.report.rundir import write_run
from gcs.sim.run import run
from gcs.sim.scenario import FaultStep, Scenario, Workload

SCENARIO = Scenario(
    name="replayed",
    nodes=3,
    duration_s=5.0,
    quiet_s=3.0,
    wire="unsealed",
    workload=Workload(rate=5.0, sizes=(64, 2000), safe=0.3),
    faults=(FaultStep(2.0, "crash", nodes=(2,), duration_s=1.0),),
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(run(SCENARIO, 9), tmp_path_factory.mktemp("runs"), plots=False)


@pytest.mark.req("SIM-8-2")
def test_replay_reproduces_the_digest(run_dir: Path) -> None:
    outcome = replay(run_dir)
    assert outcome.matches
    assert outcome.digest == json.loads((run_dir / "run.json").read_text())["digest"]
    assert outcome.result.exit_code == 0


def test_replay_cli_reports_an_exact_reproduction(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", "replay", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("seed 9\n")
    assert "reproduced exactly" in out


@pytest.mark.req("SIM-8-2")
def test_replay_detects_a_different_history(
    tmp_path: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for file in run_dir.iterdir():
        (tampered / file.name).write_bytes(file.read_bytes())
    meta = json.loads((tampered / "run.json").read_text())
    meta["digest"] = "0" * 64
    (tampered / "run.json").write_text(json.dumps(meta))
    assert main(["simulate", "replay", str(tampered)]) == 4
    assert "DIGEST MISMATCH" in capsys.readouterr().out


def test_trace_is_a_per_node_event_log(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "replay", str(run_dir), "--trace", "--node", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    log = [line for line in lines if line[:12].strip().replace(".", "").isdigit()]
    assert log, "no event lines"
    assert all(line.split()[1] in ("n2", "--") for line in log)
    text = "\n".join(log)
    assert "CRASH" in text and "START incarnation 2" in text
    assert "CONF regular" in text and "state gather -> commit" in text
    assert "FAULT crash" in text
    times = [float(line.split()[0]) for line in log]
    assert times == sorted(times)


def test_event_log_interleaves_core_traces() -> None:
    log = EventLog()
    result = run(SCENARIO, 9, trace=log, probes=[log.attach])
    lines = list(log.lines(result.history, messages=True))
    assert any(". token_loss" in line for line in lines)
    assert any("deliver regular" in line for line in lines)
    assert any("submit " in line for line in lines)
