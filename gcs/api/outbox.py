"""Sends waiting for the ring, and the tickets that report their delivery (RFC 0006 §4).

Why here. The group layer's driver (``gcs.groups.driver``) queues records in front of the core
and submits them as flow control allows; ``group.send`` must turn that queue into waiting, in
order, without ever blocking the loop, and hand the application a ``Ticket`` it can await for
the message's own delivery. ``Outbox`` is that asyncio front: each send is a ``SendTag`` of the
driver's queue, and the driver tells it when the record reached the core (the send returns),
was refused (the send raises) and was delivered (the ticket settles).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable

from gcs.api.stream import ErrorFactory, YieldBudget
from gcs.errors import GcsError, SendQueueFull
from gcs.groups.driver import GroupDriver
from gcs.wire.frames import Record

__all__ = ["Outbox", "PendingSend", "Ticket", "copy_error"]

_PENDING, _DELIVERED, _FAILED = 0, 1, 2


class Ticket:
    """One message handed to the ring. ``await ticket.delivered()`` waits for its own delivery.

    ``delivered()`` returns once this node delivered the message (in the total order, in the
    view it was originated in; RFC 0006 §4). It raises ``NodeClosed`` if the node closed first,
    or the node's failure if it failed. A daemon client's ticket asks the daemon instead: it is
    made with ``confirm``, a coroutine function that returns once the daemon's node delivered the
    message (or raises why it will not).
    """

    __slots__ = ("_confirm", "_error", "_state", "_waiters", "group", "safe", "size")

    def __init__(
        self,
        group: str,
        size: int,
        safe: bool,
        confirm: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.group = group
        self.size = size
        self.safe = safe
        self._confirm = confirm
        self._state = _PENDING
        self._error: ErrorFactory | None = None
        self._waiters: list[asyncio.Future[None]] | None = None  # made by the first waiter

    def __repr__(self) -> str:
        state = ("pending", "delivered", "failed")[self._state]
        return f"<Ticket {self.group!r} {self.size} bytes {state}>"

    def done(self) -> bool:
        """True once delivered (or failed)."""
        return self._state != _PENDING

    def failed(self) -> bool:
        """True once it failed: the node closed or failed before delivering it."""
        return self._state == _FAILED

    async def delivered(self) -> None:
        if self._state == _PENDING and self._confirm is not None:
            await self._ask(self._confirm)
        if self._state == _PENDING:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            waiters = self._waiters
            waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in waiters:
                    waiters.remove(waiter)
        if self._state == _FAILED:
            assert self._error is not None
            raise self._error()

    async def _ask(self, confirm: Callable[[], Awaitable[object]]) -> None:
        try:
            await confirm()
        except GcsError as exc:
            failure = exc
            self._settle(_FAILED, lambda: copy_error(failure))
        else:
            self._settle(_DELIVERED)

    def _settle(self, state: int, error: ErrorFactory | None = None) -> None:
        if self._state != _PENDING:
            return
        self._state = state
        self._error = error
        if self._waiters is not None:
            for waiter in self._waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._waiters.clear()


def copy_error(error: GcsError) -> GcsError:
    """A copy of ``error`` for one more caller (raising one instance everywhere would chain
    every caller's traceback onto it)."""
    try:
        return copy.copy(error)
    except TypeError:  # an exception class whose __init__ does not take its own args
        return GcsError(str(error))


class PendingSend:
    """One ``group.send`` on its way: the driver's tag for its record (``SendTag``)."""

    __slots__ = ("error", "future", "ticket")

    def __init__(self, ticket: Ticket) -> None:
        self.ticket = ticket
        self.future: asyncio.Future[Ticket] | None = None
        """Set while the sender waits for flow control."""
        self.error: Exception | None = None

    def sent(self) -> None:
        if self.future is not None and not self.future.done():
            self.future.set_result(self.ticket)

    def refused(self, error: Exception) -> None:
        if self.future is None:
            self.error = error
        elif not self.future.done():
            self.future.set_exception(error)

    def delivered(self) -> None:
        self.ticket._settle(_DELIVERED)

    def fail(self, error: ErrorFactory) -> None:
        """Its member left or the node closed: the waiting send raises, a handed-out ticket
        fails."""
        if self.future is not None and not self.future.done():
            self.future.set_exception(error())
        self.ticket._settle(_FAILED, error)


class Outbox:
    """The asyncio front of the group driver's send queue (see the module docstring)."""

    def __init__(self, driver: GroupDriver[PendingSend]) -> None:
        self._driver = driver
        self._budget = YieldBudget()

    async def send(self, record: Record, safe: bool) -> Ticket:
        """Submit a data record, waiting (in FIFO order) while the window is closed or full."""
        pending = PendingSend(Ticket(record.group, len(record.data), safe))
        if self._driver.send(record, safe, pending):
            if self._budget.due():  # a tight send loop must still let tokens through
                await asyncio.sleep(0)
            return pending.ticket
        if pending.error is not None:
            raise pending.error
        future: asyncio.Future[Ticket] = asyncio.get_running_loop().create_future()
        pending.future = future
        try:
            ticket = await future
        except asyncio.CancelledError:
            self._driver.withdraw(lambda _, tag: tag is pending)
            raise
        self._budget.refill()
        return ticket

    def send_nowait(self, record: Record, safe: bool) -> Ticket:
        """Submit a data record at once, or raise ``SendQueueFull`` and queue nothing
        (RFC 0006 API-6-2): no coroutine, no future, when the window is open."""
        pending = PendingSend(Ticket(record.group, len(record.data), safe))
        if self._driver.try_send(record, safe, pending):
            return pending.ticket
        if pending.error is not None:
            raise pending.error
        raise SendQueueFull("flow control holds sends now (window closed, or sends waiting)")

    def cancel_member(self, group: str, handle: int, error: ErrorFactory) -> None:
        """Fail the sends of one member that have not reached the core yet (it is leaving)."""
        for tag in self._driver.withdraw_member(group, handle):
            tag.fail(error)

    def leave(self, group: str, handle: int, error: ErrorFactory) -> None:
        """A member leaves: its waiting sends fail, its leave record is queued."""
        for tag in self._driver.leave(group, handle):
            tag.fail(error)

    def fail_all(self, error: ErrorFactory) -> None:
        """The node closed or failed: nothing waiting or outstanding will complete."""
        for tag in self._driver.close():
            tag.fail(error)
