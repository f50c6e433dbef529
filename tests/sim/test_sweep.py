"""Sweeps: a study's CSV is a pure function of the study file, wherever it runs.

The same study gives byte-identical CSVs run serially, on a local process pool and on a Dask
distributed cluster (``distributed.LocalCluster``: worker processes on loopback), and the
summary and plots are written next to it. Study files are checked before anything runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gcs.cli import main
from gcs.cli.dask_sweep import dask_mapper
from gcs.errors import ConfigError
from gcs.sim.study import load_study, parse_study
from gcs.sim.sweep import csv_text, local_mapper, run_sweep, serial_mapper, write_outputs

STUDY = """
name = "tiny"
seeds = 2
columns = ["delivered", "msgs_per_s", "rotation_ms", "agreed_p50_ms", "view_changes",
           "reform_crash_s"]

[base]
nodes = 3
duration_s = 4.0
quiet_s = 2.0
wire = "objects"
workload = { rate = 10, sizes = [64] }
faults = [{ at_s = 1.5, action = "crash", nodes = [2], duration_s = 1.5 }]

[[variants]]
name = "hold"

[[variants]]
name = "no hold"
totem = { token_hold = false }

[grid]
"totem.token_ms+totem.consensus_ms" = [[300, 360], [600, 720]]

[[plots]]
file = "reform.png"
x = "totem.token_ms"
y = ["reform_crash_s"]
series = "variant"
"""


@pytest.fixture(scope="module")
def study_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("study") / "study.toml"
    path.write_text(STUDY)
    return path


@pytest.fixture(scope="module")
def serial_csv(study_file: Path) -> str:
    return csv_text(run_sweep(load_study(study_file), serial_mapper))


@pytest.mark.req("SIM-10-1")
def test_csv_rows_follow_the_case_order(serial_csv: str) -> None:
    lines = serial_csv.splitlines()
    assert lines[0] == (
        "variant,totem.token_ms,totem.consensus_ms,seed,valid,delivered,msgs_per_s,"
        "rotation_ms,agreed_p50_ms,view_changes,reform_crash_s"
    )
    keys = [line.split(",")[:4] for line in lines[1:]]
    assert keys == [
        [variant, token, consensus, seed]
        for variant in ("hold", "no hold")
        for token, consensus in (("300", "360"), ("600", "720"))
        for seed in ("1", "2")
    ]
    assert all(line.split(",")[4] == "pass" for line in lines[1:])
    # The crash is declared after token + consensus timeouts: larger timers, slower reform.
    reform = {
        (k[0], k[1]): float(line.split(",")[-1]) for k, line in zip(keys, lines[1:], strict=True)
    }
    assert reform[("hold", "600")] > reform[("hold", "300")] + 0.5


@pytest.mark.req("SIM-10-1")
def test_process_pool_gives_the_same_csv(study_file: Path, serial_csv: str) -> None:
    assert csv_text(run_sweep(load_study(study_file), local_mapper(2))) == serial_csv


@pytest.mark.req("SIM-10-1")
def test_dask_local_cluster_gives_the_same_csv(study_file: Path, serial_csv: str) -> None:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        mapper = dask_mapper(cluster.scheduler_address)
        assert csv_text(run_sweep(load_study(study_file), mapper)) == serial_csv


def test_cli_sweep_writes_csv_summary_plots_and_timings(
    tmp_path: Path, study_file: Path, serial_csv: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["simulate", "sweep", str(study_file), "--jobs", "2", "--out", str(out)]) == 0
    assert (out / "results.csv").read_text() == serial_csv
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("variant,totem.token_ms,totem.consensus_ms,n,pass,")
    assert "reform_crash_s_ci95" in summary[0]
    assert len(summary) == 1 + 4
    assert (out / "reform.png").read_bytes()[:4] == b"\x89PNG"
    assert "wall" in (out / "timings.txt").read_text()
    assert "8 runs" in capsys.readouterr().out


def test_plots_are_deterministic(tmp_path: Path, study_file: Path) -> None:
    sweep = run_sweep(load_study(study_file), serial_mapper)
    write_outputs(sweep, tmp_path / "a")
    write_outputs(sweep, tmp_path / "b")
    for name in ("results.csv", "summary.csv", "reform.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param('nme = "typo"', "unknown study key", marks=pytest.mark.req("SIM-2.1-2")),
        ('columns = ["throughput"]', "columns"),
        ("seeds = 0", "seeds"),
        ('[grid]\n"network.loss" = []', "non-empty"),
        ('[grid]\n"a+b" = [[1]]', "list of 2"),
        ('[grid]\n"network.loss" = [2.0]', "probability"),
        ('[grid]\nnodes = [3]\n[[plots]]\nx = "loss"\ny = ["msgs_per_s"]', "not a grid key"),
        ('[grid]\nnodes = [3]\n[[plots]]\nx = "nodes"\ny = ["speed"]', "not a column"),
    ],
)
def test_bad_study_files_are_rejected_before_running(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_study(__import__("tomllib").loads(text), Path("."))
