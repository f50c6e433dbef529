"""One log line per kind of event, then one summary line per window: logs an attacker can't flood.

Why. The daemon must say clearly when it refuses a client (a cap reached, no hello in time, no
descriptor left to accept with), but 2,000 refused connections must not become 2,000 lines: a
log an attacker can fill hides everything else and costs disk. So the first event of a kind is
logged at once, in full; the ones that follow within ``window_s`` are only counted, and one line
at the end of the window says how many there were (with the last one's text). After a quiet
window the next event is logged at once again.
"""

from __future__ import annotations

import asyncio
import logging

__all__ = ["ThrottledLog"]

WINDOW_S = 10.0


class ThrottledLog:
    """``note(text)``: log now if the window is quiet, else count for the window's summary."""

    def __init__(
        self,
        logger: logging.Logger,
        level: int,
        what: str,
        window_s: float | None = None,
    ) -> None:
        self._logger = logger
        self._level = level
        self._what = what
        self._window_s = WINDOW_S if window_s is None else window_s
        self._suppressed = 0
        self._last = ""
        self._timer: asyncio.TimerHandle | None = None
        self.total = 0
        """Events noted since the start, logged or not (for tests and status)."""

    def note(self, text: str) -> None:
        self.total += 1
        if self._timer is None:
            self._logger.log(self._level, "%s", text)
            self._timer = asyncio.get_running_loop().call_later(self._window_s, self._flush)
            return
        self._suppressed += 1
        self._last = text

    def _flush(self) -> None:
        self._timer = None
        if not self._suppressed:
            return
        count, self._suppressed = self._suppressed, 0
        self._logger.log(
            self._level,
            "%d more %s in the last %.0f s (the last: %s)",
            count,
            self._what,
            self._window_s,
            self._last,
        )
        self._timer = asyncio.get_running_loop().call_later(self._window_s, self._flush)

    def close(self) -> None:
        """Log what is still counted (at shutdown) and stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._suppressed:
            self._logger.log(
                self._level, "%d more %s (the last: %s)", self._suppressed, self._what, self._last
            )
            self._suppressed = 0
