"""Protocol timers as deadline values: the core never schedules anything itself.

Each named timer is an absolute deadline in nanoseconds or absent. ``next_deadline_ns`` is the
earliest, and the driver calls ``Node.on_timeout`` once the clock reaches it (one ``call_at`` in
the runtime, one heap entry in the simulator). Expired timers fire in the fixed order of
``Timer`` so a run is deterministic even when several expire at the same instant.
"""

from __future__ import annotations

import enum

__all__ = ["Deadlines", "Timer"]


class Timer(enum.IntEnum):
    """Named timers, in firing order when several are due at once (RFC 0003 §10, RFC 0004 §10)."""

    SELF_TOKEN = 0  # a token (or commit token) this node sent to itself on a singleton ring
    TOKEN_RETRANSMIT = 1
    HOLD = 2
    TOKEN_LOSS = 3
    JOIN = 4
    CONSENSUS = 5
    COMMIT_WAIT = 6
    MERGE = 7


class Deadlines:
    """A tiny map Timer -> deadline with a cached minimum."""

    __slots__ = ("_at", "_next")

    def __init__(self) -> None:
        self._at: dict[Timer, int] = {}
        self._next: int | None = None

    def arm(self, timer: Timer, at_ns: int) -> None:
        previous = self._at.get(timer)
        self._at[timer] = at_ns
        if self._next is None or at_ns < self._next:
            self._next = at_ns
        elif previous == self._next and at_ns > previous:
            # The earliest timer moved later: the minimum may now be another one.
            self._next = min(self._at.values())

    def cancel(self, *timers: Timer) -> None:
        changed = False
        for timer in timers:
            if self._at.pop(timer, None) is not None:
                changed = True
        if changed:
            self._next = min(self._at.values(), default=None)

    def cancel_all(self) -> None:
        self._at.clear()
        self._next = None

    def armed(self, timer: Timer) -> bool:
        return timer in self._at

    def get(self, timer: Timer) -> int | None:
        return self._at.get(timer)

    @property
    def next_ns(self) -> int | None:
        return self._next

    def pop_expired(self, now_ns: int) -> list[Timer]:
        """Remove and return every timer due at ``now_ns``, in firing order."""
        if self._next is None or self._next > now_ns:
            return []
        due = sorted(t for t, at in self._at.items() if at <= now_ns)
        for timer in due:
            del self._at[timer]
        self._next = min(self._at.values(), default=None)
        return due
