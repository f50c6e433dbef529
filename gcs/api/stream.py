"""A bounded, single-consumer event stream: how deliveries reach an application.

Why bounded, and why the reader is cut off rather than waited for (RFC 0006 API-5-2):
the token must never wait for an application. Deliveries are appended from the protocol's
callbacks without blocking; a reader that falls further behind than its bound is closed with
``SlowConsumer`` instead of stalling the ring or growing memory without limit. It still
receives everything queued before the cut, in order, then the error.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from gcs.errors import SlowConsumer
from gcs.runtime.driver import DELIVERY_SLICE

__all__ = ["READ_SLICE", "ErrorFactory", "EventStream", "YieldBudget"]

T = TypeVar("T")
ErrorFactory = Callable[[], BaseException]

YIELD_EVERY = 64
"""Sends that may complete without suspending before one yields to the loop anyway."""

READ_SLICE = DELIVERY_SLICE
"""Reads of a backlog that complete without suspending before one yields to the loop: as many
as the runtime hands over in one pass (RFC 0006 API-5-3), so a reader that keeps reading keeps
up with a burst instead of falling one slice behind on every pass."""


class YieldBudget:
    """Makes an ``await`` that usually completes at once yield to the loop now and then.

    ``await group.send()`` returns without suspending while the send window is open, and
    ``async for`` over a stream with a backlog returns queued events without suspending. A tight
    loop over either would then never let the loop run: tokens would wait, and the ring would
    take the node for paused or dead (RFC 0004 §8.3). Yielding every ``YIELD_EVERY`` sends (every
    ``READ_SLICE`` reads) bounds that stall to about a millisecond at a cost of one loop
    iteration per 64 sends (per slice of reads).
    """

    __slots__ = ("_every", "_left")

    def __init__(self, every: int = YIELD_EVERY) -> None:
        self._every = every
        self._left = every

    async def spend(self) -> None:
        if self.due():
            await asyncio.sleep(0)

    def due(self, count: int = 1) -> bool:
        """Count ``count`` calls (sends, reads); True when the caller must yield now
        (``await asyncio.sleep(0)``).

        The hot paths call this rather than ``spend`` and yield themselves: it saves making and
        awaiting a coroutine object on every send and every read.
        """
        self._left -= count
        if self._left > 0:
            return False
        self._left = self._every
        return True

    def refill(self) -> None:
        """The caller just suspended anyway: the loop has run."""
        self._left = self._every


class EventStream(Generic[T]):
    """Items in, items out, in order; ``put`` never blocks (see the module docstring)."""

    __slots__ = ("_bound", "_budget", "_end", "_items", "_waiter", "overflowed")

    def __init__(self, bound: int) -> None:
        self._bound = bound
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._end: ErrorFactory | None = None
        """Set once the stream ends: what ``get`` raises after the queued items."""
        self.overflowed = False
        self._budget = YieldBudget(READ_SLICE)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def ended(self) -> bool:
        return self._end is not None

    def put(self, item: T) -> bool:
        """Append ``item``; False (and the stream ends with SlowConsumer) if the bound is hit."""
        if self._end is not None:
            return True  # already ended: the item is not for this reader any more
        if len(self._items) >= self._bound:
            self.overflowed = True
            bound = self._bound
            self._finish(lambda: SlowConsumer(f"fell more than {bound} events behind; closed"))
            return False
        self._items.append(item)
        self._wake()
        return True

    def close(self, error: ErrorFactory | None = None) -> None:
        """End after the queued items: ``StopAsyncIteration``, or ``error()`` if given."""
        if self._end is None:
            self._finish(error or StopAsyncIteration)

    def abort(self, error: ErrorFactory) -> None:
        """End now: drop the queued items and raise ``error()`` from every later ``get``."""
        self._items.clear()
        self._end = error
        self._wake()

    def _finish(self, error: ErrorFactory) -> None:
        self._end = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> T:
        """The next item; raises the end error once the queue is empty and the stream ended."""
        if self._items and self._budget.due():
            await asyncio.sleep(0)
        if not self._items:
            await self._wait()
        return self._items.popleft()

    async def get_many(self, limit: int) -> list[T]:
        """The queued items, at most ``limit`` (at least one: waits for it); raises like ``get``.

        One call, one list, however many items (RFC 0006 API-5-4). A backlog read this way
        counts against the same yield budget as ``get``, item by item.
        """
        items = self._items
        if items and self._budget.due(min(limit, len(items))):
            await asyncio.sleep(0)
        if not items:
            await self._wait()
        if len(items) <= limit:
            batch = list(items)
            items.clear()
            return batch
        return [items.popleft() for _ in range(limit)]

    async def _wait(self) -> None:
        """Suspend until an item is queued; raise the end error if the stream ended first."""
        while not self._items:
            if self._end is not None:
                raise self._end()
            if self._waiter is not None and not self._waiter.done():
                raise RuntimeError("two tasks are reading the same group stream concurrently")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
            self._budget.refill()
