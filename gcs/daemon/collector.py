"""The daemon's cyclic garbage collector: frozen and made rarer once the node has started.

Why only the daemon: a library must not change its host process's collector, but ``gcs node``
owns its process. Everything it allocates to start (configuration, keys, the core, the server)
lives as long as the process, and a full collection would walk it again and again for nothing:
``gc.freeze()`` moves it out of the collector's sight. Per message the ring allocates and frees
a few objects that are not cycles, so the default first-generation threshold (700 net
allocations) runs a young collection every few hundred messages; a threshold of
``GEN0_THRESHOLD`` runs one every few tens of thousands, each still short (milliseconds).

Measured in one process, two nodes, 40,000 messages of 64 B (``docs/benchmarks.md``): the
collector's share of the CPU fell from about 10 % (253 young collections) to 2 to 3 % (3).
"""

from __future__ import annotations

import gc

__all__ = ["GEN0_THRESHOLD", "tune_after_start"]

GEN0_THRESHOLD = 50_000
"""Net allocations between two young collections once the daemon runs (Python's default: 700)."""


def tune_after_start() -> tuple[int, int, int]:
    """Collect once, freeze what survived start-up, raise the young threshold.

    Returns the thresholds before, for a caller (a test) that restores them.
    """
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, before[1], before[2])
    return before
