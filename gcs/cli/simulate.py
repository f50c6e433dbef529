"""``gcs simulate run|swarm``: deterministic simulations judged by every checker.

Output is built for replay: the seed is printed before anything else, every failing seed gets
the exact command that reproduces it, and the exit code says what happened (0 every checker
passed on every seed, 1 some checker failed, 3 some run could not be judged, 2 usage error).
Seeds run in parallel worker processes; results do not depend on the number of workers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from gcs.sim.run import Result, run
from gcs.sim.scenario import Scenario, load_scenario
from gcs.sim.swarm import draw_scenario

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
    swarm_p.add_argument("--show", action="store_true", help="print each drawn scenario")
    swarm_p.set_defaults(func=_cmd_swarm)


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


@dataclass(frozen=True, slots=True)
class _Job:
    kind: str  # "run" | "swarm"
    path: str
    seed: int
    wire: str | None
    nodes: int


@dataclass(frozen=True, slots=True)
class _Outcome:
    seed: int
    exit_code: int
    summary: str
    failures: tuple[str, ...]
    checker_results: tuple[tuple[str, bool | None], ...]
    wall_s: float
    scenario_toml: str


def _scenario_for(job: _Job) -> Scenario:
    if job.kind == "swarm":
        scenario = draw_scenario(job.seed, nodes=job.nodes)
    else:
        scenario = load_scenario(job.path)
    if job.wire is not None:
        scenario = scenario.with_changes(wire=job.wire)
    return scenario


def _execute(job: _Job) -> _Outcome:
    started = time.perf_counter()
    scenario = _scenario_for(job)
    try:
        result = run(scenario, job.seed)
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
    jobs = [_Job(kind, path, seed, args.wire, nodes) for seed in seeds]
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
    if workers <= 1 or len(jobs) == 1:
        yield from (_print_outcome(_execute(job)) for job in jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for outcome in pool.map(_execute, jobs, chunksize=1):
            yield _print_outcome(outcome)


def _print_outcome(outcome: _Outcome) -> _Outcome:
    verdict = {0: "PASS", 1: "FAIL", 3: "UNKNOWN"}[outcome.exit_code]
    print(f"seed {outcome.seed:<6} {verdict:<7} {outcome.summary}  ({outcome.wall_s:.1f} s)")
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
            target = path if kind == "run" else "swarm"
            wire = f" --wire {args.wire}" if args.wire else ""
            print(
                f"replay: gcs simulate {kind} {target} --seed {outcome.seed}{wire} --trace".replace(
                    "swarm swarm", "swarm"
                )
            )
    if codes[1]:
        return 1
    return 3 if codes[3] else 0


def _trace_one(job: _Job) -> int:
    scenario = _scenario_for(job)
    if job.kind == "swarm":
        print(scenario.to_toml())
    result = run(scenario, job.seed, trace=_trace_printer())
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


def _trace_printer() -> Callable[[int, int, str, Any], None]:
    def show(now_ns: int, node: int, event: str, data: Any) -> None:
        detail = " ".join(f"{k}={v}" for k, v in dict(data).items())
        print(f"{now_ns / 1e9:12.6f}  n{node:<3} {event:<22} {detail}")

    return show
