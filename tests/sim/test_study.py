"""The shipped studies: complete, consistent with their study files, and regenerable.

Each directory under ``simulations/studies`` holds a study file, its committed output (CSV,
summary, one PNG per plot) and a README with the question, setup and result. The committed
CSV must be what the study file produces with the current code: a quick test re-runs a cheap
case of each study and compares its row byte for byte; a slow test regenerates a whole study.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from gcs.sim.study import Study, load_study
from gcs.sim.sweep import SweepResult, csv_text, jobs_for, run_job, run_sweep

STUDIES = Path(__file__).parents[2] / "simulations" / "studies"
NAMES = ("ring-size", "loss", "token-timeout", "partition-merge", "asymmetric", "oneway")

# One cheap case per study (index into the case order), re-run by the quick test.
CHEAP_CASE = {
    "ring-size": 16,  # agreed only, 3 nodes, seed 1
    "loss": None,  # every case saturates five nodes for 2 s: covered by the slow test
    "token-timeout": 0,  # pause_guard on, token 200 ms, seed 1
    "partition-merge": 0,  # 3 nodes, seed 1
    "asymmetric": 0,  # hysteresis on, 5 s block, seed 1
    "oneway": 0,  # the asymmetric scenario, seed 1
}


def _study(name: str) -> Study:
    return load_study(STUDIES / name / "study.toml")


def test_every_study_directory_is_listed() -> None:
    assert sorted(p.name for p in STUDIES.iterdir() if p.is_dir()) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_study_outputs_match_the_study_file(name: str) -> None:
    study = _study(name)
    directory = STUDIES / name
    readme = (directory / "README.md").read_text()
    for heading in ("**Question.**", "**Setup**", "**Result.**", "**Reproduce.**"):
        assert heading in readme, heading
    assert "wall time" in readme.lower()
    rows = list(csv.reader((directory / "results.csv").read_text().splitlines()))
    empty = SweepResult(study, (), (), 0.0)
    assert rows[0] == empty.header()
    cases = study.cases()
    assert len(rows) == 1 + len(cases)
    seed = rows[0].index("seed")
    assert [row[seed] for row in rows[1:]] == [str(case.seed) for case in cases]
    assert (directory / "summary.csv").exists()
    for plot in study.plots:
        assert (directory / plot.file).read_bytes()[:4] == b"\x89PNG", plot.file
        assert plot.file in readme, f"README does not show {plot.file}"


@pytest.mark.parametrize("name", [n for n in NAMES if CHEAP_CASE[n] is not None])
def test_a_committed_row_is_reproduced(name: str) -> None:
    study = _study(name)
    index = CHEAP_CASE[name]
    assert index is not None
    case = study.cases()[index]
    result = run_job(jobs_for([case])[0])
    single = SweepResult(study, (case,), (result,), 0.0)
    committed = (STUDIES / name / "results.csv").read_text().splitlines()
    assert csv_text(single).splitlines()[1] == committed[1 + index]


@pytest.mark.slow
def test_partition_merge_study_regenerates_byte_identically() -> None:
    study = _study("partition-merge")
    assert csv_text(run_sweep(study)) == (STUDIES / "partition-merge" / "results.csv").read_text()
