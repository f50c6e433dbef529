"""Sweeps on a Dask distributed cluster (the ``dask`` extra: the ``distributed`` package).

When a sweep outgrows one machine, ``gcs simulate sweep STUDY --scheduler tcp://HOST:PORT``
submits the same jobs to an existing Dask scheduler instead of a local process pool. The jobs
and the job function are the ones the local pool runs (``gcs.sim.sweep.run_job``), and rows
are put back in case order, so the CSV is byte-identical to a local sweep. The workers need
the same ``gcs`` version installed (and the study's base scenario is already resolved into
each job, so they need no access to the study's files).

This lives outside ``gcs.sim`` on purpose: Dask's client runs an asyncio event loop, and the
simulator package must not import the real-time machinery (import-linter contract).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from gcs.sim.sweep import Job, JobResult, Mapper

__all__ = ["dask_mapper"]


def dask_mapper(address: str, **client_options: Any) -> Mapper:
    """A mapper running jobs on the Dask scheduler at ``address`` (``tcp://host:port``)."""
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "--scheduler needs the 'dask' extra: pip install 'gcs[dask]' (the distributed package)"
        ) from exc

    def mapper(fn: Callable[[Job], JobResult], jobs: Sequence[Job]) -> Iterator[JobResult]:
        with Client(address, **client_options) as client:  # type: ignore[no-untyped-call]
            # pure=False: identical jobs are still separate runs (they never are, but a cached
            # result would hide a determinism failure on another worker).
            futures = client.map(fn, list(jobs), pure=False)
            for future in as_completed(futures):  # type: ignore[no-untyped-call]
                result: JobResult = future.result()
                yield result

    return mapper
