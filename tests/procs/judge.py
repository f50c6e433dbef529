"""Judge real-run histories with the simulator's checkers, and say how to reproduce a failure.

A test that runs real nodes ends by merging their JSONL histories (``load_jsonl``) and handing
the result to ``check_all``. Anything but True from any checker fails the test, and the message
names every history file, so the run can be re-judged offline with
``gcs.history.events.load_jsonl(*paths)`` and ``gcs.sim.checkers.suite.check_all``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from gcs.history.events import History, load_jsonl
from gcs.sim.checkers.params import DEFAULT_PARAMS, CheckParams
from gcs.sim.checkers.suite import check_all, format_report
from gcs.sim.checkers.verdict import Proc

__all__ = ["judge", "liveness_params"]

LIVENESS_BOUND_NS = 30_000_000_000
"""How long after the faults stop the checkers give the cluster to settle. Generous on purpose:
on a loaded two-core machine a real ring takes longer than the protocol's own bound, and the
tests are about *whether* it converges, not how fast."""


def judge(
    paths: Sequence[str | os.PathLike[str]],
    *,
    params: CheckParams = DEFAULT_PARAMS,
    what: str = "run",
    history: History | None = None,
) -> History:
    """Run every checker on ``history`` (default: ``paths`` merged); fail with the full report
    and the paths unless every verdict is True."""
    if history is None:
        history = load_jsonl(*paths)
    verdicts = check_all(history, params=params)
    bad = [v for v in verdicts if v.valid is not True]
    if bad:
        files = "\n".join(f"  {os.fspath(p)}" for p in paths)
        raise AssertionError(
            f"{what}: {len(bad)} checker(s) did not pass\n{format_report(bad)}\n"
            f"params: {params}\nhistories (re-judge with load_jsonl + check_all):\n{files}"
        )
    return history


def liveness_params(
    quiet_from_ns: int, expected_live: frozenset[Proc], **extra: object
) -> CheckParams:
    """Liveness parameters for a real run: faults stopped at ``quiet_from_ns`` (monotonic)."""
    return CheckParams(
        quiet_from_ns=quiet_from_ns,
        liveness_bound_ns=LIVENESS_BOUND_NS,
        expected_live=expected_live,
        **extra,  # type: ignore[arg-type]
    )
