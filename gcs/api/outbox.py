"""Sends on their way into the core: flow control, priorities, and tickets for self-delivery.

Why a layer above the core's send queue. The core refuses a record with ``SendQueueFull`` and
reports crossings of its water marks with ``SendWindow`` (decision 7); ``group.send`` must turn
that into waiting, in order, without ever blocking the loop. Two queues feed the core:

* control records — joins, leaves and this node's announcement (``gcs.groups.state``) — go first and
  ignore the window: they are tiny, and a view change must not wait behind a backlog of data;
* data records wait for the window to be open, in FIFO order across all senders of the node,
  so a small message never overtakes a large one that is waiting for room.

Tickets. Every record of a sender is delivered in the order it was submitted (FIFO per sender)
and a sender always delivers its own records while it runs (self-delivery). So the records this
node submitted form a queue that its own deliveries consume from the front: the first delivered
record of ours *is* the oldest outstanding one. A mismatch would mean a broken guarantee, so it
raises ``InvariantViolation`` (fail-stop).
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gcs.api.stream import ErrorFactory, YieldBudget
from gcs.errors import GcsError, InvariantViolation, SendQueueFull
from gcs.groups.state import GroupState
from gcs.wire.frames import Record, RecordFlags

__all__ = ["Outbox", "Ticket", "copy_error"]

_KIND = int(RecordFlags.KIND_MASK)
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


@dataclass(slots=True)
class _Waiting:
    record: Record
    safe: bool
    future: asyncio.Future[Ticket]


class Outbox:
    """Feeds records to ``submit`` (the driver) under flow control; matches self-deliveries."""

    def __init__(self, submit: Callable[[Record, bool], None], groups: GroupState) -> None:
        self._submit = submit
        self._groups = groups
        self._control: deque[Record] = deque()
        self._announce = False
        self._data: deque[_Waiting] = deque()
        # Submitted, not yet delivered back, oldest first: the records, and in step with them
        # each data record's ticket (None for a control record). Two deques rather than one of
        # pairs: a busy sender then keeps no extra object per message for the collector to walk.
        self._sent: deque[Record] = deque()
        self._tickets: deque[Ticket | None] = deque()
        self._draining = False
        self._budget = YieldBudget()
        self.window_open = True

    @property
    def waiting(self) -> int:
        """Data sends waiting for flow control."""
        return len(self._data)

    @property
    def in_flight(self) -> int:
        """Records in the core (or on the ring) not yet delivered back to this node."""
        return len(self._sent)

    # ------------------------------------------------------------------ inputs

    def control(self, record: Record) -> None:
        """A join or leave record: submitted ahead of data, regardless of the window."""
        self._control.append(record)
        self.drain()

    def request_announcement(self) -> None:
        """The group layer needs our announcement; it is built when it can be submitted."""
        self._announce = True

    async def send(self, record: Record, safe: bool) -> Ticket:
        """Submit a data record, waiting (in FIFO order) while the window is closed or full."""
        if not self._data and self.window_open:
            try:
                ticket = self._submit_data(record, safe)
            except SendQueueFull:
                pass  # a big record does not fit yet: wait for room like everyone else
            else:
                if self._budget.due():  # a tight send loop must still let tokens through
                    await asyncio.sleep(0)
                return ticket
        future: asyncio.Future[Ticket] = asyncio.get_running_loop().create_future()
        self._data.append(_Waiting(record, safe, future))
        ticket = await future
        self._budget.refill()
        return ticket

    def set_window(self, is_open: bool) -> None:
        self.window_open = is_open

    # ------------------------------------------------------------------ draining

    def drain(self) -> None:
        """Submit what may go now: control first, then data while the window is open.

        Called after every batch of core effects (room may have appeared) and after local
        requests. Never re-entered: a submit's own effects cannot start a nested drain.
        """
        if self._draining:
            return
        self._draining = True
        try:
            if self._drain_control():
                self._drain_data()
        finally:
            self._draining = False

    def _drain_control(self) -> bool:
        if self._announce:
            record = self._groups.announcement()
            if record is not None:
                try:
                    self._submit_control(record)
                except SendQueueFull:
                    return False
            self._announce = False
        while self._control:
            try:
                self._submit_control(self._control[0])
            except SendQueueFull:
                return False
            self._control.popleft()
        return True

    def _drain_data(self) -> None:
        data = self._data
        while data and self.window_open:
            waiting = data[0]
            if waiting.future.done():  # the sender was cancelled
                data.popleft()
                continue
            try:
                ticket = self._submit_data(waiting.record, waiting.safe)
            except SendQueueFull:
                return
            except Exception as exc:
                data.popleft()
                waiting.future.set_exception(exc)
                continue
            data.popleft()
            waiting.future.set_result(ticket)

    def _submit_control(self, record: Record) -> None:
        self._submit(record, False)
        self._sent.append(record)
        self._tickets.append(None)
        self._groups.note_submitted(record)

    def _submit_data(self, record: Record, safe: bool) -> Ticket:
        self._submit(record, safe)
        ticket = Ticket(record.group, len(record.data), safe)
        self._sent.append(record)
        self._tickets.append(ticket)
        return ticket

    # ------------------------------------------------------------------ deliveries

    def own_delivered(self, record: Record) -> None:
        """One of this node's records was delivered: settle the oldest outstanding ticket."""
        if not self._sent:
            raise InvariantViolation(
                f"RT-1: delivered a record of this node that it never submitted ({record.group!r})"
            )
        mine = self._sent.popleft()
        ticket = self._tickets.popleft()
        if not (
            mine.group == record.group
            and mine.handle == record.handle
            and mine.flags & _KIND == record.flags & _KIND
            and mine.data == record.data
        ):
            raise InvariantViolation(
                f"RT-1: own records delivered out of submission order: expected "
                f"{mine.group!r}/{mine.handle:x}, got {record.group!r}/{record.handle:x}"
            )
        if ticket is not None:
            ticket._settle(_DELIVERED)

    # ------------------------------------------------------------------ endings

    def cancel_member(self, group: str, handle: int, error: ErrorFactory) -> None:
        """Fail the data sends of one member that have not reached the core yet.

        Its point-to-point sends too: they travel in the announcement group ("") under the
        member's handle, and handles are unique on a node, so the handle names them.
        """
        keep: deque[_Waiting] = deque()
        for waiting in self._data:
            record = waiting.record
            if record.handle == handle and record.group in (group, ""):
                if not waiting.future.done():
                    waiting.future.set_exception(error())
            else:
                keep.append(waiting)
        self._data = keep

    def fail_all(self, error: ErrorFactory) -> None:
        """The node closed or failed: nothing waiting or outstanding will complete."""
        for waiting in self._data:
            if not waiting.future.done():
                waiting.future.set_exception(error())
        self._data.clear()
        self._control.clear()
        self._announce = False
        for ticket in self._tickets:
            if ticket is not None:
                ticket._settle(_FAILED, error)
        self._sent.clear()
        self._tickets.clear()
