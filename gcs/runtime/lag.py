"""Event-loop lag: how late the loop runs a callback scheduled for a known time.

Why: Totem assumes timely processors. A loop that stalls longer than the token timeout (a GC
pause, a blocking call in an application callback, a slow ``fsync`` on the loop) is
indistinguishable from a crash and costs a membership change (RFC 0004 §8.3, corosync's "main
process was not scheduled" warning). Measuring the lag continuously turns a mysterious
"token timed out" into a log line with the figure, and puts the numbers in ``statistics()``.

A tick is scheduled every ``interval``; its lag is how much later than planned it ran. Half the
token timeout is the warning threshold: at that lag the token is already in danger.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

__all__ = ["LagMonitor", "LagStatistics"]

_LOG = logging.getLogger("gcs.runtime.lag")
WARN_EVERY_NS = 10_000_000_000  # at most one warning per 10 s, with the worst lag since the last


@dataclass(frozen=True, slots=True)
class LagStatistics:
    """Loop lag figures in milliseconds."""

    last_ms: float
    max_ms: float
    mean_ms: float
    samples: int
    over_threshold: int


class LagMonitor:
    """Samples the lag of ``loop`` every ``interval_ns``; warns above ``warn_ns``."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, interval_ns: int, warn_ns: int, label: str
    ) -> None:
        self._loop = loop
        self._interval_s = interval_ns / 1e9
        self._interval_ns = interval_ns
        self._warn_ns = warn_ns
        self._label = label
        self._handle: asyncio.TimerHandle | None = None
        self._expected_ns = 0
        self._last_ns = 0
        self._max_ns = 0
        self._total_ns = 0
        self._samples = 0
        self._over = 0
        self._warned_at_ns = -WARN_EVERY_NS
        self._worst_unreported_ns = 0

    def start(self) -> None:
        self._schedule()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self) -> None:
        self._expected_ns = time.monotonic_ns() + self._interval_ns
        self._handle = self._loop.call_later(self._interval_s, self._tick)

    def _tick(self) -> None:
        now = time.monotonic_ns()
        lag = max(0, now - self._expected_ns)
        self._last_ns = lag
        self._max_ns = max(self._max_ns, lag)
        self._total_ns += lag
        self._samples += 1
        if lag > self._warn_ns:
            self._over += 1
            self._worst_unreported_ns = max(self._worst_unreported_ns, lag)
            if now - self._warned_at_ns >= WARN_EVERY_NS:
                self._warned_at_ns = now
                _LOG.warning(
                    "%s: the event loop ran %.1f ms late (threshold %.1f ms = half the token "
                    "timeout): something blocks the loop; the ring may declare this node failed",
                    self._label,
                    self._worst_unreported_ns / 1e6,
                    self._warn_ns / 1e6,
                )
                self._worst_unreported_ns = 0
        self._schedule()

    def statistics(self) -> LagStatistics:
        mean = self._total_ns / self._samples if self._samples else 0.0
        return LagStatistics(
            last_ms=self._last_ns / 1e6,
            max_ms=self._max_ns / 1e6,
            mean_ms=mean / 1e6,
            samples=self._samples,
            over_threshold=self._over,
        )
