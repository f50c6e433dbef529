"""Run directories: everything one simulated run produced, and enough to reproduce it.

Layout (Maelstrom's store; RFC 0007 §7, §8), one directory per (scenario, seed)::

    <out>/<scenario name>-seed<seed>/
        scenario.toml    the fully resolved scenario (every default written out)
        run.json         seed, history digest, verdict, exit code, format version
        history.jsonl    every event: submissions (sends), originations, deliveries,
                         configurations, membership states, faults
        results.json     one entry per checker: valid true/false/null, problems, stats
        summary.txt      the figures table (gcs.sim.report.figures.summary_text)
        throughput.png   throughput over time, fault periods shaded     (with matplotlib)
        latency.png      agreed and safe latency quantiles over time    (with matplotlib)
        membership.png   per-node ring and membership state over time   (with matplotlib)

``scenario.toml`` and the seed are all ``replay`` needs; the digest in ``run.json`` is what
it compares against. Nothing in a run directory depends on the wall clock, so writing the
same run twice gives the same files (PNGs included, for one matplotlib version).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcs.errors import ConfigError
from gcs.sim.report.figures import CounterProbe, figures, summary_text
from gcs.sim.run import Result
from gcs.sim.scenario import Scenario, load_scenario

__all__ = ["FORMAT", "RunRecord", "load_run", "run_dir_name", "write_run"]

FORMAT = 1


@dataclass(frozen=True, slots=True)
class RunRecord:
    """What a run directory says about its run."""

    path: Path
    scenario: Scenario
    seed: int
    digest: str
    exit_code: int
    failed: tuple[str, ...]  # checkers that failed (valid false), in checker order


def run_dir_name(scenario: Scenario, seed: int) -> str:
    """``<name>-seed<seed>``: stable, so re-running a seed overwrites its own directory."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in scenario.name) or "run"
    return f"{safe}-seed{seed}"


def _results(result: Result, probe: CounterProbe | None) -> dict[str, Any]:
    return {
        "valid": result.valid,
        "exit_code": result.exit_code,
        "checkers": [
            {
                "name": v.name,
                "valid": v.valid,
                "problem_count": v.problem_count,
                "problems": list(v.problems),
                "note": v.note,
                "stats": v.stats,
            }
            for v in result.verdicts
        ],
        "figures": figures(result, probe),
    }


def write_run(
    result: Result,
    out: str | Path,
    *,
    probe: CounterProbe | None = None,
    plots: bool = True,
) -> Path:
    """Write ``result`` under ``out`` and return its directory.

    Plots need the ``plot`` extra (matplotlib); without it they are skipped and everything
    else is written.
    """
    path = Path(out) / run_dir_name(result.scenario, result.seed)
    path.mkdir(parents=True, exist_ok=True)
    (path / "scenario.toml").write_text(result.scenario.to_toml())
    sha = hashlib.sha256()  # the same bytes Result.digest() hashes, computed once
    with (path / "history.jsonl").open("w") as out_file:
        for line in result.history.to_jsonl():
            out_file.write(line + "\n")
            sha.update(line.encode())
            sha.update(b"\n")
    meta = {
        "format": FORMAT,
        "seed": result.seed,
        "digest": sha.hexdigest(),
        "valid": result.valid,
        "exit_code": result.exit_code,
        "scenario": "scenario.toml",
        "replay": f"gcs simulate replay {path}",
    }
    (path / "run.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    results = _results(result, probe)
    (path / "results.json").write_text(
        json.dumps(results, indent=2, sort_keys=True, default=str) + "\n"
    )
    (path / "summary.txt").write_text(summary_text(result, probe, digest=sha.hexdigest()))
    if plots:
        try:
            from gcs.sim.report.plots import plot_run
        except ImportError:  # the plot extra is not installed
            return path
        plot_run(result, path)
    return path


def load_run(path: str | Path) -> RunRecord:
    """Read a run directory back (for ``replay`` and ``shrink``)."""
    path = Path(path)
    try:
        meta = json.loads((path / "run.json").read_text())
        results = json.loads((path / "results.json").read_text())
    except FileNotFoundError as exc:
        raise ConfigError(str(path), f"not a run directory (missing {exc.filename})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(str(path), f"unreadable run directory: {exc}") from None
    scenario = load_scenario(path / meta.get("scenario", "scenario.toml"))
    failed = tuple(c["name"] for c in results.get("checkers", []) if c.get("valid") is False)
    return RunRecord(
        path=path,
        scenario=scenario,
        seed=int(meta["seed"]),
        digest=str(meta["digest"]),
        exit_code=int(meta["exit_code"]),
        failed=failed,
    )
