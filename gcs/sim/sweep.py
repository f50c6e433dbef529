"""Run a study: every case in parallel, one CSV row per run, summary and plots.

Reproducibility is the contract (RFC 0007 §10): the CSV is a pure function of the study file
(and the code), byte for byte. Rows are written in case order whatever order the runs finish
in, numbers are formatted to fixed significant digits, and nothing in the CSV depends on the
wall clock, the number of workers or the machine. Wall times go to ``timings.txt`` and the
console only.

Where the runs execute is a ``Mapper``: a function taking the job function and the jobs and
yielding the results as they complete. ``local_mapper`` uses a process pool; the Dask
distributed mapper (``gcs.cli.dask_sweep``, kept outside ``gcs.sim`` because its client runs
an asyncio loop) submits the same jobs to a cluster. Both call ``run_job`` on a ``Job``, so a
sweep gives the same CSV on one laptop or on a cluster.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcs.sim.report.figures import figures, format_number, probe_for
from gcs.sim.run import run
from gcs.sim.scenario import Scenario
from gcs.sim.study import Case, PlotSpec, Study

__all__ = [
    "Job",
    "JobResult",
    "Mapper",
    "SweepResult",
    "aggregate",
    "csv_text",
    "jobs_for",
    "local_mapper",
    "run_job",
    "run_sweep",
    "serial_mapper",
    "write_outputs",
]


@dataclass(frozen=True, slots=True)
class Job:
    """What a worker needs: picklable, self-contained (no file access)."""

    index: int
    scenario: Scenario
    seed: int


@dataclass(frozen=True, slots=True)
class JobResult:
    index: int
    figures: dict[str, Any]
    wall_s: float


Mapper = Callable[[Callable[[Job], JobResult], Sequence[Job]], Iterable[JobResult]]
Progress = Callable[[int, int], None]


def run_job(job: Job) -> JobResult:
    """Run one case and return its figures (in a worker process or a Dask worker)."""
    started = time.perf_counter()
    probe = probe_for(job.scenario)
    result = run(job.scenario, job.seed, probes=[probe])
    return JobResult(job.index, figures(result, probe), time.perf_counter() - started)


def jobs_for(cases: Sequence[Case]) -> list[Job]:
    return [Job(c.index, c.scenario, c.seed) for c in cases]


def serial_mapper(fn: Callable[[Job], JobResult], jobs: Sequence[Job]) -> Iterator[JobResult]:
    """Run in this process, one after another (tests, debugging, ``--jobs 1``)."""
    for job in jobs:
        yield fn(job)


def local_mapper(workers: int = 0) -> Mapper:
    """A process pool of ``workers`` (default: CPUs); results as they complete."""

    def mapper(fn: Callable[[Job], JobResult], jobs: Sequence[Job]) -> Iterator[JobResult]:
        count = workers or min(len(jobs), os.cpu_count() or 1)
        if count <= 1:
            yield from serial_mapper(fn, jobs)
            return
        # Longest first would be better for load balance, but sizes are unknown: the grid
        # order interleaves cheap and expensive cases well enough.
        with ProcessPoolExecutor(max_workers=count) as pool:
            futures = [pool.submit(fn, job) for job in jobs]
            for future in as_completed(futures):
                yield future.result()

    return mapper


@dataclass(frozen=True, slots=True)
class SweepResult:
    study: Study
    cases: tuple[Case, ...]
    results: tuple[JobResult, ...]  # in case order
    wall_s: float

    def header(self) -> list[str]:
        variant = ["variant"] if self.study.has_variants else []
        return [*variant, *self.study.grid_keys, "seed", *_columns(self.study)]

    def rows(self) -> list[list[str]]:
        out = []
        for case, result in zip(self.cases, self.results, strict=True):
            variant = [case.variant] if self.study.has_variants else []
            params = [format_number(v) for _, v in case.params]
            values = [format_number(result.figures[c]) for c in _columns(self.study)]
            out.append([*variant, *params, str(case.seed), *values])
        return out


def _columns(study: Study) -> tuple[str, ...]:
    return study.columns if "valid" in study.columns else ("valid", *study.columns)


def run_sweep(
    study: Study, mapper: Mapper | None = None, *, progress: Progress | None = None
) -> SweepResult:
    """Run every case of ``study`` through ``mapper`` (default: a local process pool)."""
    cases = study.cases()
    jobs = jobs_for(cases)
    started = time.perf_counter()
    done: dict[int, JobResult] = {}
    for result in (mapper or local_mapper())(run_job, jobs):
        done[result.index] = result
        if progress is not None:
            progress(len(done), len(jobs))
    missing = [job.index for job in jobs if job.index not in done]
    if missing:
        raise RuntimeError(f"sweep lost the results of cases {missing}")
    ordered = tuple(done[job.index] for job in jobs)
    return SweepResult(study, tuple(cases), ordered, time.perf_counter() - started)


def csv_text(sweep: SweepResult) -> str:
    """The CSV, as text: ``\\n`` line ends, minimal quoting, case order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(sweep.header())
    writer.writerows(sweep.rows())
    return buffer.getvalue()


# Two-sided 95% Student t quantiles by degrees of freedom (n - 1); 1.96 beyond 30.
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% confidence interval (Student t; 0 for one value)."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    t = _T95[n - 2] if n - 2 < len(_T95) else 1.96
    return mean, t * math.sqrt(var / n)


def aggregate(sweep: SweepResult) -> list[dict[str, Any]]:
    """Per variant and grid point: n, and mean and ci95 of every numeric column."""
    groups: dict[tuple[str, tuple[tuple[str, Any], ...]], list[JobResult]] = {}
    for case, result in zip(sweep.cases, sweep.results, strict=True):
        groups.setdefault((case.variant, case.params), []).append(result)
    out = []
    for (variant, params), results in groups.items():
        row: dict[str, Any] = {"variant": variant, **dict(params), "n": len(results)}
        row["pass"] = sum(1 for r in results if r.figures["valid"] == "pass")
        for column in _columns(sweep.study):
            numbers = [r.figures[column] for r in results]
            floats = [float(v) for v in numbers if isinstance(v, int | float)]
            if floats and len(floats) == len(numbers):
                row[f"{column}_mean"], row[f"{column}_ci95"] = mean_ci(floats)
        out.append(row)
    return out


def summary_csv(sweep: SweepResult) -> str:
    rows = aggregate(sweep)
    header: list[str] = []
    for row in rows:
        header += [k for k in row if k not in header]
    if not sweep.study.has_variants:
        header.remove("variant")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([format_number(row.get(k, "")) for k in header])
    return buffer.getvalue()


def _other_keys(study: Study, spec: PlotSpec) -> list[str]:
    """Grid keys neither on the x axis nor the series (nor zipped with them): label parts."""
    used = {spec.x, spec.series}
    return [k for keys, _ in study.grid if not used & set(keys) for k in keys]


def _points(sweep: SweepResult, spec: PlotSpec) -> list[tuple[str, float, float, float]]:
    """(label, x, mean, ci) for one plot: grouped by series value, other keys in the label."""
    points = []
    for row in aggregate(sweep):
        if spec.variants and row["variant"] not in spec.variants:
            continue
        x = float(row[spec.x]) if spec.x != "variant" else 0.0
        others = [f"{k}={format_number(row[k])}" for k in _other_keys(sweep.study, spec)]
        series = f"{spec.series}={format_number(row[spec.series])}" if spec.series else ""
        if spec.series == "variant":
            series = str(row["variant"])
        for metric in spec.y:
            if f"{metric}_mean" not in row:
                continue
            parts = [p for p in (metric if len(spec.y) > 1 else "", series, *others) if p]
            label = ", ".join(parts)
            points.append((label, x, row[f"{metric}_mean"], row[f"{metric}_ci95"]))
    return points


def write_outputs(sweep: SweepResult, out: Path, *, plots: bool = True) -> list[Path]:
    """results.csv, summary.csv, one PNG per plot spec, and timings.txt (wall clock)."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.csv", out / "summary.csv", out / "timings.txt"]
    written[0].write_text(csv_text(sweep))
    written[1].write_text(summary_csv(sweep))
    cpu = sum(r.wall_s for r in sweep.results)
    lines = [
        f"study {sweep.study.name}: {len(sweep.results)} runs in {sweep.wall_s:.1f} s wall "
        f"({cpu:.1f} s of run time; wall clock, not reproducible)",
        *(
            f"{case.index:>4} {case.variant} {dict(case.params)} seed {case.seed}: {r.wall_s:.2f} s"
            for case, r in zip(sweep.cases, sweep.results, strict=True)
        ),
    ]
    written[2].write_text("\n".join(lines) + "\n")
    if plots and sweep.study.plots:
        from gcs.sim.report.plots import plot_sweep

        for spec in sweep.study.plots:
            path = out / spec.file
            plot_sweep(
                _points(sweep, spec),
                path,
                x_label=spec.xlabel or spec.x,
                y_label=spec.ylabel or ", ".join(spec.y),
                title=spec.title or sweep.study.name,
                logx=spec.logx,
                logy=spec.logy,
            )
            written.append(path)
    return written
