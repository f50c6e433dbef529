"""``gcs simulate run|swarm|sweep|replay|shrink``: deterministic simulations, judged and kept.

Output is built for replay: the seed is printed before anything else, every failing seed gets
the exact command that reproduces it, and the exit code says what happened (0 every checker
passed on every seed, 1 some checker failed, 3 some run could not be judged, 2 usage error,
4 a replay did not reproduce its recorded digest). Seeds run in parallel worker processes;
results do not depend on the number of workers. ``--out DIR`` keeps a run directory per seed
(``gcs.sim.report.rundir``); ``sweep`` runs a study file (``gcs.sim.study``) into a CSV and plots;
``replay`` and ``shrink`` work from a run directory. Progress bars (rich) go to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcs.sim.replay import EventLog
from gcs.sim.report.figures import probe_for
from gcs.sim.report.rundir import run_dir_name, write_run
from gcs.sim.run import Probe, Result, run
from gcs.sim.scenario import Scenario, load_scenario
from gcs.sim.swarm import draw_scenario
from gcs.sim.world import World

__all__ = ["register"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="run deterministic simulations of a cluster and check every guarantee",
        description="Deterministic discrete-event simulation of gcs clusters (RFC 0007).",
    )
    sub = parser.add_subparsers(dest="simulate_command", metavar="SUBCOMMAND", required=True)
    run_p = sub.add_parser("run", help="run a scenario file over one or many seeds")
    run_p.add_argument("scenario", help="scenario TOML file (see simulations/README.md)")
    _seed_args(run_p)
    run_p.set_defaults(func=_cmd_run)
    swarm_p = sub.add_parser("swarm", help="draw the scenario itself from each seed")
    _seed_args(swarm_p)
    swarm_p.add_argument("--nodes", type=int, default=0, help="fix the cluster size")
    swarm_p.add_argument(
        "--workload",
        choices=("groups", "messages", "kv"),
        default="groups",
        help="groups (the default): group members on every node join, leave and send through "
        "the group layer, judged also by the group-level checkers (RFC 0006 API-3.7-1); messages: "
        "the ring-level workload alone, without the group layer; kv: a replicated key-value "
        "store with quorum rules drawn per seed, judged also by the quorum and kv checkers "
        "(RFC 0008 §7)",
    )
    swarm_p.add_argument("--show", action="store_true", help="print each drawn scenario")
    swarm_p.set_defaults(func=_cmd_swarm)
    _register_tools(sub)


def _seed_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=None, help="first (or only) seed")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds to run")
    parser.add_argument("--jobs", type=int, default=0, help="worker processes (default: CPUs)")
    parser.add_argument("--trace", action="store_true", help="print every node's events")
    parser.add_argument(
        "--wire",
        choices=("sealed", "unsealed", "objects"),
        default=None,
        help="override how frames cross the simulated network",
    )
    parser.add_argument(
        "--out", default=None, help="write a run directory per seed under this directory"
    )
    parser.add_argument(
        "--no-plots", action="store_true", help="with --out: skip the PNG plots (faster)"
    )


@dataclass(frozen=True, slots=True)
class _Job:
    kind: str  # "run" | "swarm"
    path: str
    seed: int
    wire: str | None
    nodes: int
    out: str | None = None
    plots: bool = True
    workload: str = "groups"
    """The swarm's workload kind (``run`` takes its workload from the scenario file)."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    seed: int
    exit_code: int
    summary: str
    failures: tuple[str, ...]
    checker_results: tuple[tuple[str, bool | None], ...]
    wall_s: float
    scenario_toml: str
    digest: str = ""
    """SHA-256 of the run's history (``Result.digest``): equal digests, identical runs."""


def _scenario_for(job: _Job) -> Scenario:
    if job.kind == "swarm":
        scenario = draw_scenario(job.seed, nodes=job.nodes, kind=job.workload)
    else:
        scenario = load_scenario(job.path)
    if job.wire is not None:
        scenario = scenario.with_changes(wire=job.wire)
    return scenario


def _execute(job: _Job, extra: Sequence[Probe] = ()) -> _Outcome:
    started = time.perf_counter()
    scenario = _scenario_for(job)
    probe = probe_for(scenario)
    try:
        result = run(scenario, job.seed, probes=[probe, *extra])
        if job.out is not None:
            write_run(result, job.out, probe=probe, plots=job.plots)
    except Exception:  # a simulator bug: report it against the seed, keep the sweep going
        lines = traceback.format_exc().strip().splitlines()
        return _Outcome(
            job.seed, 1, "simulator error", tuple(lines[-6:]), (), 0.0, scenario.to_toml()
        )
    return _outcome(result, time.perf_counter() - started)


def _outcome(result: Result, wall_s: float) -> _Outcome:
    m = result.metrics
    summary = (
        f"{m.delivered_messages} msgs  {m.msgs_per_s:.0f} msg/s  "
        f"agreed p50/p99 {m.agreed_latency_ms['50']:.1f}/{m.agreed_latency_ms['99']:.1f} ms  "
        f"safe p50/p99 {m.safe_latency_ms['50']:.1f}/{m.safe_latency_ms['99']:.1f} ms  "
        f"rot {m.token_rotations_per_s:.0f}/s  retrans {m.retransmissions}  "
        f"views {sum(m.view_changes.values())}"
    )
    failures = tuple(
        f"{v.name}: {problem}"
        for v in result.verdicts
        if v.valid is not True
        for problem in (v.problems[:3] or ("could not judge",))
    )
    return _Outcome(
        seed=result.seed,
        exit_code=result.exit_code,
        summary=summary,
        failures=failures,
        checker_results=tuple((v.name, v.valid) for v in result.verdicts),
        wall_s=wall_s,
        scenario_toml=result.scenario.to_toml() if result.exit_code else "",
        digest=result.digest(),
    )


def _cmd_run(args: argparse.Namespace) -> int:
    load_scenario(args.scenario)  # fail fast, in this process, on a bad file
    return _run_jobs(args, "run", args.scenario, 0)


def _cmd_swarm(args: argparse.Namespace) -> int:
    return _run_jobs(args, "swarm", "", args.nodes)


def _run_jobs(args: argparse.Namespace, kind: str, path: str, nodes: int) -> int:
    first = args.seed if args.seed is not None else 1
    count = args.seeds if args.seeds is not None else 1
    seeds = list(range(first, first + count))
    workload = getattr(args, "workload", "groups")
    jobs = [
        _Job(kind, path, seed, args.wire, nodes, args.out, not args.no_plots, workload)
        for seed in seeds
    ]
    if args.trace or len(jobs) == 1:
        print(f"seed {jobs[0].seed}" if len(jobs) == 1 else f"seeds {first}..{first + count - 1}")
    if args.trace:
        return _trace_one(jobs[0])
    if kind == "swarm" and getattr(args, "show", False):
        for job in jobs:
            print(f"# seed {job.seed}\n{_scenario_for(job).to_toml()}")
    started = time.perf_counter()
    outcomes = list(_map(jobs, args.jobs))
    return _report(args, kind, path, outcomes, time.perf_counter() - started)


def _map(jobs: list[_Job], workers: int) -> Iterator[_Outcome]:
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    if len(jobs) == 1:
        with virtual_time_bar(_scenario_for(jobs[0])) as probe:
            yield _print_outcome(_execute(jobs[0], (probe,)))
        return
    if workers <= 1:
        with progress_bar(len(jobs), "seeds") as advance:
            for job in jobs:
                yield _print_outcome(_execute(job))
                advance()
        return
    with (
        ProcessPoolExecutor(max_workers=workers) as pool,
        progress_bar(len(jobs), "seeds") as advance,
    ):
        for outcome in pool.map(_execute, jobs, chunksize=1):
            yield _print_outcome(outcome)
            advance()


def _print_outcome(outcome: _Outcome) -> _Outcome:
    verdict = {0: "PASS", 1: "FAIL", 3: "UNKNOWN"}[outcome.exit_code]
    digest = f"  digest {outcome.digest[:16]}" if outcome.digest else ""
    print(
        f"seed {outcome.seed:<6} {verdict:<7} {outcome.summary}{digest}  ({outcome.wall_s:.1f} s)"
    )
    for line in outcome.failures[:6]:
        print(f"    {line}")
    sys.stdout.flush()
    return outcome


def _report(
    args: argparse.Namespace, kind: str, path: str, outcomes: list[_Outcome], wall_s: float
) -> int:
    codes = Counter(o.exit_code for o in outcomes)
    per_checker: dict[str, Counter[bool | None]] = {}
    for outcome in outcomes:
        for name, valid in outcome.checker_results:
            per_checker.setdefault(name, Counter())[valid] += 1
    print()
    print(
        f"{len(outcomes)} seeds: {codes[0]} passed, {codes[1]} failed, {codes[3]} unknown "
        f"in {wall_s:.1f} s wall"
    )
    print(f"{'checker':<24} {'pass':>6} {'fail':>6} {'unknown':>8}")
    for name, counts in per_checker.items():
        print(f"{name:<24} {counts[True]:>6} {counts[False]:>6} {counts[None]:>8}")
    for outcome in outcomes:
        if outcome.exit_code:
            _print_reproduce(args, kind, path, outcome.seed)
    if codes[1]:
        return 1
    return 3 if codes[3] else 0


def _print_reproduce(args: argparse.Namespace, kind: str, path: str, seed: int) -> None:
    """How to reproduce a failing seed: re-run it, or replay and shrink its run directory."""
    if args.out is not None:
        job = _Job(
            kind,
            path,
            seed,
            args.wire,
            getattr(args, "nodes", 0),
            workload=getattr(args, "workload", "groups"),
        )
        run_dir = Path(args.out) / run_dir_name(_scenario_for(job), seed)
        print(f"replay: gcs simulate replay {run_dir} --trace")
        print(f"shrink: gcs simulate shrink {run_dir}")
        return
    target = f" {path}" if kind == "run" else ""
    wire = f" --wire {args.wire}" if args.wire else ""
    workload = getattr(args, "workload", "groups")
    extra = f" --workload {workload}" if kind == "swarm" and workload != "groups" else ""
    print(f"replay: gcs simulate {kind}{target} --seed {seed}{wire}{extra} --trace")


def _trace_one(job: _Job) -> int:
    scenario = _scenario_for(job)
    if job.kind == "swarm":
        print(scenario.to_toml())
    log = EventLog()
    probe = probe_for(scenario)
    result = run(scenario, job.seed, trace=log, probes=[log.attach, probe])
    for line in log.lines(result.history):
        print(line)
    if job.out is not None:
        print(f"run directory {write_run(result, job.out, probe=probe, plots=job.plots)}")
    print()
    for line in result.metrics.lines():
        print(line)
    for verdict in result.verdicts:
        mark = {True: "pass", False: "FAIL", None: "unknown"}[verdict.valid]
        print(f"{mark:<8} {verdict.name}")
        for problem in verdict.problems[:10]:
            print(f"         {problem}")
    print(f"digest   {result.digest()}")
    return result.exit_code


# ---------------------------------------------------------------------- progress


@contextmanager
def progress_bar(total: int, what: str) -> Iterator[Callable[[], None]]:
    """A rich progress bar on stderr for ``total`` items; yields ``advance()``.

    Hidden for a single item and when rich is not installed (it is a dependency, but the
    simulator must keep working without it).
    """
    if total <= 1:
        yield lambda: None
        return
    try:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    except ImportError:
        yield lambda: None
        return
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(what, total=total)
        yield lambda: progress.advance(task)


@contextmanager
def virtual_time_bar(scenario: Scenario, steps: int = 200) -> Iterator[Probe]:
    """A progress bar over the virtual time of one run, driven by read-only probe events.

    The probe schedules ``steps`` no-op events spread over the run's expected length; they
    take heap sequence numbers but never change the history (RFC 0007 §5.1).
    """
    quiet_from = max([scenario.duration_s] + [f.at_s + f.duration_s for f in scenario.faults])
    total_s = quiet_from + max(scenario.quiet_s, scenario.liveness_bound_ns() / 1e9)
    with progress_bar(steps, f"{scenario.name} (virtual time)") as advance:

        def probe(world: World) -> None:
            for i in range(1, steps + 1):
                world.at(int(total_s * 1e9 * i / steps), advance)

        yield probe


# ---------------------------------------------------------------------- sweep, replay, shrink


def _register_tools(sub: Any) -> None:
    sweep_p = sub.add_parser(
        "sweep",
        help="run a study file: a parameter grid x seeds, into a CSV and plots",
        description="Run every case of a study file (simulations/README.md, 'Sweeps and "
        "studies') in parallel and write results.csv (one row per run, byte-reproducible), "
        "summary.csv (mean and 95% CI per grid point), the study's plots and timings.txt.",
    )
    sweep_p.add_argument("study", help="study TOML file")
    sweep_p.add_argument("--jobs", type=int, default=0, help="worker processes (default: CPUs)")
    sweep_p.add_argument(
        "--scheduler", default=None, help="run on a Dask distributed scheduler (tcp://HOST:PORT)"
    )
    sweep_p.add_argument("--out", default=None, help="output directory (default: the study's)")
    sweep_p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    sweep_p.set_defaults(func=_cmd_sweep)

    replay_p = sub.add_parser(
        "replay",
        help="re-run a recorded run exactly and compare its history digest",
        description="Re-run the scenario and seed stored in a run directory; exit 4 if the "
        "history digest differs from the recorded one, else the run's own exit code.",
    )
    replay_p.add_argument("run_dir", help="a run directory written with --out")
    replay_p.add_argument("--trace", action="store_true", help="print the per-node event log")
    replay_p.add_argument(
        "--messages", action="store_true", help="with --trace: also every submit and delivery"
    )
    replay_p.add_argument("--node", type=int, default=0, help="with --trace: only this node")
    replay_p.set_defaults(func=_cmd_replay)

    node_p = sub.add_parser(
        "replay-node",
        help="replay a real node's flight-recorder dump into a fresh core",
        description="Feed the inputs of a flight-recorder dump (gcs status --dump, or the "
        "dump a node writes when it fails) into a fresh core and check that it makes the same "
        "decisions; exit 0 when it does, 4 when it diverges, 1 when the dump is unreadable.",
    )
    node_p.add_argument("dump", help="a flight-recorder dump file")
    node_p.add_argument(
        "--trace", action="store_true", help="print every replayed input and its effects"
    )
    node_p.set_defaults(func=_cmd_replay_node)

    shrink_p = sub.add_parser(
        "shrink",
        help="delta-debug a failing run's fault schedule to a minimal one",
        description="Remove fault steps, shorten durations and drop nodes from steps while "
        "the recorded seed still fails the same checker; write the result as a scenario.",
    )
    shrink_p.add_argument("run_dir", help="a run directory of a failing run")
    shrink_p.add_argument("--checker", default=None, help="the failure to keep (default: first)")
    shrink_p.add_argument("--out", default=None, help="scenario file to write")
    shrink_p.add_argument("--max-runs", type=int, default=200, help="run budget (default 200)")
    shrink_p.set_defaults(func=_cmd_shrink)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from gcs.sim.study import load_study
    from gcs.sim.sweep import local_mapper, run_sweep, write_outputs

    study = load_study(args.study)
    cases = study.cases()
    print(
        f"study {study.name}: {len(cases)} runs ({len(cases) // len(study.seeds)} cases x "
        f"{len(study.seeds)} seeds)"
    )
    if args.scheduler:
        from gcs.cli.dask_sweep import dask_mapper

        mapper = dask_mapper(args.scheduler)
    else:
        mapper = local_mapper(args.jobs)
    with progress_bar(len(cases), study.name) as advance:
        sweep = run_sweep(study, mapper, progress=lambda done, total: advance())
    out = Path(args.out) if args.out else study.directory
    for path in write_outputs(sweep, out, plots=not args.no_plots):
        print(f"wrote {path}")
    failed = sum(1 for r in sweep.results if r.figures["valid"] != "pass")
    print(f"{len(cases)} runs in {sweep.wall_s:.1f} s wall; {failed} did not pass every checker")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from gcs.sim.replay import replay

    log = EventLog() if args.trace else None
    outcome = replay(args.run_dir, log=log)
    print(f"seed {outcome.record.seed}")
    if log is not None:
        for line in log.lines(outcome.result.history, messages=args.messages, node=args.node):
            print(line)
        print()
    for line in outcome.result.metrics.lines():
        print(line)
    verdict = {0: "PASS", 1: "FAIL", 3: "UNKNOWN"}[outcome.result.exit_code]
    failed = [v.name for v in outcome.result.verdicts if v.valid is not True]
    print(f"verdict  {verdict}" + (f" ({', '.join(failed)})" if failed else ""))
    print(f"recorded {outcome.record.digest}")
    print(f"replayed {outcome.digest}")
    if not outcome.matches:
        print("DIGEST MISMATCH: the simulator or the core behaves differently than when recorded")
        return 4
    print("reproduced exactly")
    return outcome.result.exit_code


def _cmd_shrink(args: argparse.Namespace) -> int:
    from gcs.sim.report.rundir import load_run
    from gcs.sim.shrink import shrink

    record = load_run(args.run_dir)
    print(f"seed {record.seed}: shrinking {len(record.scenario.faults)} fault steps")
    try:
        outcome = shrink(
            record.scenario,
            record.seed,
            args.checker,
            max_runs=args.max_runs,
            progress=lambda text: print(f"  {text}", flush=True),
        )
    except ValueError as exc:
        print(f"gcs simulate shrink: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else record.path / "shrunk.toml"
    out.write_text(outcome.shrunk.to_toml())
    print(
        f"{outcome.steps_before} -> {outcome.steps_after} fault steps still failing "
        f"{outcome.checker} ({outcome.runs} runs)"
    )
    print(f"wrote {out}")
    print(f"replay: gcs simulate run {out} --seed {record.seed} --trace")
    return 0


def _cmd_replay_node(args: argparse.Namespace) -> int:
    from collections import Counter

    from gcs.errors import ReplayError
    from gcs.history.recorder import load_dump, replay_steps

    try:
        dump = load_dump(args.dump)
    except (OSError, ReplayError) as exc:
        print(f"gcs simulate replay-node: cannot read {args.dump}: {exc}", file=sys.stderr)
        return 1
    if not dump.complete:
        print(
            f"gcs simulate replay-node: {args.dump} does not start at a known state (its "
            "core snapshot failed), so it cannot be replayed",
            file=sys.stderr,
        )
        return 1
    start = "a fresh core" if dump.origin is None else "a core snapshot"
    print(
        f"node {dump.node_id} boot {dump.boot_id} ({dump.gcs_version}): {len(dump.inputs)} "
        f"inputs from {start}; dumped because: {dump.reason}"
    )
    effects: Counter[str] = Counter()
    steps = 0
    try:
        for step in replay_steps(dump):
            steps += 1
            effects.update(type(e).__name__ for e in step.effects)
            if args.trace:
                item = step.input
                names = ", ".join(type(e).__name__ for e in step.effects) or "-"
                print(f"{item.now_ns:>20} {item.kind.name.lower():<9} -> {names}")
    except ReplayError as exc:
        print(f"DIVERGED after {steps} inputs: {exc}")
        return 4
    counts = ", ".join(f"{name} {n}" for name, n in sorted(effects.items())) or "none"
    print(f"effects: {counts}")
    print(f"reproduced exactly: {steps} inputs gave the recorded effect counts")
    return 0
