"""Shrink a failing run's fault schedule to a minimal one that still fails the same checker.

The unit of shrinking is the scenario's ``faults`` list (RFC 0007 §9): the seed, the cluster,
the network and the workload stay as recorded. Three reductions are applied in turn until none
makes progress (a fixpoint) or the run budget is spent:

1. remove steps, by delta debugging (Zeller's ddmin over the list: try dropping each of n
   chunks, halving the chunk size when nothing can be dropped, down to single steps);
2. shorten durations: halve each step's ``duration_s`` while the failure persists;
3. drop nodes from steps that name several (``crash nodes = [2, 4]`` -> ``[2]``).

A candidate is kept only if its run fails the *same* checker (by name) as the original; any
other outcome (passing, or failing something else) rejects it. Runs are deterministic, so a
candidate is never tried twice (results are cached by schedule).

Shrinking runs in the calling process, one run at a time, through ``runner`` (by default
``gcs.sim.run.run``). That is deliberate: a test can activate a deliberately injected bug
(a ``mock.patch`` of a core function, see ``tests/sim/test_mutations.py``) around the call and
every candidate runs against the mutated core. Worker processes would not see the patch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from gcs.sim.run import Result, run
from gcs.sim.scenario import FaultStep, Scenario

__all__ = ["ShrinkResult", "failing_checkers", "shrink"]

Runner = Callable[[Scenario, int], Result]
Progress = Callable[[str], None]
MIN_DURATION_S = 0.05


@dataclass(frozen=True, slots=True)
class ShrinkResult:
    """The minimal scenario found and how it was reached."""

    original: Scenario
    shrunk: Scenario
    seed: int
    checker: str
    runs: int
    log: tuple[str, ...]

    @property
    def steps_before(self) -> int:
        return len(self.original.faults)

    @property
    def steps_after(self) -> int:
        return len(self.shrunk.faults)


def failing_checkers(result: Result) -> list[str]:
    """Checkers that failed outright (valid False), in checker order."""
    return [v.name for v in result.verdicts if v.valid is False]


class _Search:
    """The predicate with its cache and budget."""

    def __init__(
        self, base: Scenario, seed: int, checker: str, runner: Runner, max_runs: int
    ) -> None:
        self.base = base
        self.seed = seed
        self.checker = checker
        self.runner = runner
        self.max_runs = max_runs
        self.runs = 0
        self.cache: dict[tuple[FaultStep, ...], bool] = {}
        self.log: list[str] = []

    @property
    def exhausted(self) -> bool:
        return self.runs >= self.max_runs

    def fails(self, faults: tuple[FaultStep, ...]) -> bool:
        if faults in self.cache:
            return self.cache[faults]
        if self.exhausted:
            return False
        self.runs += 1
        result = self.runner(replace(self.base, faults=faults), self.seed)
        failed = self.checker in failing_checkers(result)
        self.cache[faults] = failed
        return failed


def _ddmin(search: _Search, faults: tuple[FaultStep, ...]) -> tuple[FaultStep, ...]:
    """Remove as many steps as possible (complements of n chunks, n doubling)."""
    chunks = 2
    while len(faults) >= 1 and not search.exhausted:
        size = max(1, -(-len(faults) // chunks))
        reduced = False
        for start in range(0, len(faults), size):
            candidate = faults[:start] + faults[start + size :]
            if search.fails(candidate):
                search.log.append(f"removed {size} step(s): {len(candidate)} left")
                faults = candidate
                chunks = max(chunks - 1, 2)
                reduced = True
                break
        if not reduced:
            if size == 1:
                break
            chunks = min(len(faults), chunks * 2)
    return faults


def _shorten(search: _Search, faults: tuple[FaultStep, ...]) -> tuple[FaultStep, ...]:
    """Halve each step's duration while the failure persists."""
    for i in range(len(faults)):
        while faults[i].duration_s / 2 >= MIN_DURATION_S and not search.exhausted:
            shorter = replace(faults[i], duration_s=round(faults[i].duration_s / 2, 3))
            candidate = (*faults[:i], shorter, *faults[i + 1 :])
            if not search.fails(candidate):
                break
            search.log.append(f"step {i} ({shorter.action}): duration {shorter.duration_s} s")
            faults = candidate
    return faults


def _drop_nodes(search: _Search, faults: tuple[FaultStep, ...]) -> tuple[FaultStep, ...]:
    """Remove nodes from steps naming several (a one-way block keeps its two ends)."""
    for i in range(len(faults)):
        step = faults[i]
        if step.action in ("block", "unblock"):
            continue
        for node in step.nodes:
            if len(faults[i].nodes) <= 1 or search.exhausted:
                break
            nodes = tuple(n for n in faults[i].nodes if n != node)
            candidate = (*faults[:i], replace(faults[i], nodes=nodes), *faults[i + 1 :])
            if search.fails(candidate):
                search.log.append(f"step {i} ({step.action}): dropped node {node}")
                faults = candidate
    return faults


def shrink(
    scenario: Scenario,
    seed: int,
    checker: str | None = None,
    *,
    runner: Runner = run,
    max_runs: int = 200,
    progress: Progress | None = None,
) -> ShrinkResult:
    """Shrink ``scenario``'s fault schedule for ``seed`` (module doc).

    ``checker`` defaults to the first checker the original run fails; a ``ValueError`` says
    the run does not fail at all (or not ``checker``), since there is nothing to preserve.
    """
    original = runner(scenario, seed)
    failed = failing_checkers(original)
    target = checker or (failed[0] if failed else "")
    if not target or target not in failed:
        raise ValueError(
            f"seed {seed} of {scenario.name!r} does not fail "
            + (f"checker {target!r}" if target else "any checker")
            + f" (failing: {', '.join(failed) or 'none'})"
        )
    search = _Search(scenario, seed, target, runner, max_runs)
    search.cache[scenario.faults] = True
    faults = scenario.faults
    while not search.exhausted:
        before = faults
        for reduce in (_ddmin, _shorten, _drop_nodes):
            faults = reduce(search, faults)
            if progress is not None:
                progress(f"{reduce.__name__.strip('_')}: {len(faults)} step(s), {search.runs} runs")
        if faults == before:
            break
    shrunk = replace(
        scenario,
        name=f"{scenario.name}-shrunk",
        description=(
            f"shrunk from {scenario.name!r} seed {seed}: fails {target} with "
            f"{len(faults)} of {len(scenario.faults)} fault steps"
        ),
        faults=faults,
    )
    return ShrinkResult(
        original=scenario,
        shrunk=shrunk,
        seed=seed,
        checker=target,
        runs=search.runs + 1,
        log=tuple(search.log),
    )
