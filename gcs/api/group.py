"""A member's handle on one group: send, iterate the ordered stream, leave (RFC 0006 §4-§6).

Why a module of its own: the same ``Group`` class is handed out by an embedded ``gcs.Node`` and by a
daemon client (``gcs.daemon.client.Client``), so application code and its exceptions are the same
in both modes (RFC 0006 §10). The checks every ``join`` makes live here for the same reason.

Two sides of one member. ``Group`` is the application's side: send, iterate, leave. The owner (the
node or client that made the member) holds the other side, a ``Membership``: the member's state,
its bounded event stream and the futures ``join`` and ``leave`` wait on, which the owner drives as
events arrive. The member reaches its owner only through the ``GroupPort`` the owner gave it, so
neither side touches the other's internals.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from gcs.api.outbox import Ticket
from gcs.api.stream import READ_SLICE, ErrorFactory, EventStream, YieldBudget
from gcs.errors import (
    GroupClosed,
    InvalidArgument,
    MessageTooLarge,
    NotMember,
    NotSupported,
    SendQueueFull,
)
from gcs.groups.records import directed_overhead
from gcs.groups.views import Member, Message, View
from gcs.quorum.rules import Quorum
from gcs.wire.frames import Record, RecordFlags

__all__ = [
    "Group",
    "GroupOwner",
    "GroupPort",
    "MemberState",
    "Membership",
    "check_join",
    "check_join_modes",
]

_DATA = int(RecordFlags.DATA)


class MemberState(enum.Enum):
    JOINING = "joining"
    MEMBER = "member"
    LEAVING = "leaving"
    CLOSED = "closed"


class GroupOwner(Protocol):
    """The node or daemon client a member belongs to, as ``Group.node`` shows it."""

    node_id: int
    supports_send_to: bool
    """``Group.send_to`` works on this owner's members (RFC 0006 API-10.2-4)."""

    @property
    def max_message_bytes(self) -> int: ...


@dataclass(frozen=True, slots=True)
class GroupPort:
    """What a member needs from the node or daemon client that made it (RFC 0006 §10)."""

    node_id: int
    max_message_bytes: int
    check_running: Callable[[bool], None]
    """Raise if the owner cannot serve the member (its argument: raise ``GroupClosed``, not
    ``NodeClosed``, for a cleanly closed owner)."""
    send: Callable[[Record, bool], Awaitable[Ticket]]
    send_to: Callable[[str, int, Member, bytes, bool], Awaitable[Ticket]]
    leave: Callable[[Membership], None]
    send_nowait: Callable[[Record, bool], Ticket] | None = None
    """Submit at once or raise ``SendQueueFull`` (None: this owner cannot, API-6-2)."""


class Membership:
    """The owner's side of one member (see the module docstring); ``group`` is the other side."""

    def __init__(
        self, owner: GroupOwner, port: GroupPort, name: str, handle: int, bound: int
    ) -> None:
        self.port = port
        self.name = name
        self.member = Member(port.node_id, handle)
        self.stream: EventStream[Message | View | Quorum] = EventStream(bound)
        self.state = MemberState.JOINING
        self.closed_why = "left"
        self.view: View | None = None
        loop = asyncio.get_running_loop()
        self.active: asyncio.Future[None] = loop.create_future()
        """Done at the member's first view (join returns), or failed if it ends first."""
        self.left: asyncio.Future[None] = loop.create_future()
        """Done when the member's stream ended (its leave was delivered, or its owner closed)."""
        self.group = Group(owner, self)

    def __repr__(self) -> str:
        return f"<Membership {self.name!r} member {self.member} {self.state.value}>"

    def push(self, event: Message | View | Quorum) -> bool:
        """Queue one event for the reader; False if it fell behind its bound (slow consumer)."""
        if isinstance(event, View):
            self.view = event
            if self.state is MemberState.JOINING:
                self.state = MemberState.MEMBER
                if not self.active.done():
                    self.active.set_result(None)
        return self.stream.put(event)

    def begin_leave(self) -> None:
        """Ask the owner to leave: the member's sends stop now, its stream ends at the leave."""
        self.state = MemberState.LEAVING
        self.port.leave(self)

    def cut_off(self, why: str) -> bool:
        """Close the member without waiting for its stream to end; True if it was a member."""
        was_member = self.state in (MemberState.MEMBER, MemberState.JOINING)
        self.state = MemberState.CLOSED
        self.closed_why = why
        return was_member

    def end(self, why: str, error: ErrorFactory | None = None, *, abort: bool = False) -> None:
        """The member is gone: stream ends (now if ``abort``), waiters wake with ``error``."""
        if self.state is not MemberState.CLOSED:
            self.state = MemberState.CLOSED
            self.closed_why = why
        if abort and error is not None:
            self.stream.abort(error)
        else:
            self.stream.close(error)
        if not self.active.done():  # a join still waiting for its first view fails
            exc = error() if error is not None else GroupClosed(f"join of {self.name!r}: {why}")
            self.active.set_exception(exc)
            self.active.exception()  # retrieved here: a cancelled join() may not await it
        if not self.left.done():
            self.left.set_result(None)


class Group:
    """This process's membership of one group: send, iterate events, leave.

    Made by ``Node.join`` (or a daemon client's ``join``); one reader per ``Group`` (join again
    for an independent one).
    """

    def __init__(self, node: GroupOwner, membership: Membership) -> None:
        self.node = node
        """The ``gcs.Node`` or daemon client this member belongs to."""
        self.name = membership.name
        self.member = membership.member
        self._membership = membership
        self._port = membership.port
        self._quorum: Quorum | None = None
        self._budget = YieldBudget()

    def __repr__(self) -> str:
        return f"<Group {self.name!r} member {self.member} {self._membership.state.value}>"

    @property
    def view(self) -> View | None:
        """The latest view delivered to this member (the one its next message belongs to)."""
        return self._membership.view

    @property
    def closed(self) -> bool:
        return self._membership.state is MemberState.CLOSED

    async def send(self, data: bytes | bytearray | memoryview, safe: bool = False) -> Ticket:
        """Multicast ``data`` to the group in total order; return once the ring has it queued.

        Waits only on flow control. ``safe=True`` delivers it only once every member of the
        configuration has it (RFC 0006 §4.2). Raises ``MessageTooLarge``, ``NotMember`` (this
        member is leaving), ``GroupClosed`` (left, cut off, or the node closed), ``TypeError``.
        """
        self._check_can_send()
        return await self._port.send(self._record(data), bool(safe))

    def send_nowait(self, data: bytes | bytearray | memoryview, safe: bool = False) -> Ticket:
        """``send`` without waiting (RFC 0006 API-6-2): the ticket if the ring takes ``data``
        now, else ``SendQueueFull`` and nothing is queued.

        For loops that send many messages: no coroutine is made per message. It raises
        ``SendQueueFull`` while flow control holds sends (the window is closed, or earlier sends
        of this node wait), so order is kept; then ``await group.send(...)``, which waits its
        turn. It never yields to the event loop: a loop of it should ``await asyncio.sleep(0)``
        every few dozen sends (as ``send`` does every 64), or tokens wait until the window
        closes. Raises like ``send``, and ``NotSupported`` through a daemon client (each send
        there is a request to the daemon).
        """
        nowait = self._port.send_nowait
        if nowait is None:
            raise NotSupported(f"{type(self.node).__name__} cannot send without waiting")
        self._check_can_send()
        return nowait(self._record(data), bool(safe))

    async def send_many(
        self, messages: Iterable[bytes | bytearray | memoryview], safe: bool = False
    ) -> list[Ticket]:
        """Send several messages in order, one ticket each (RFC 0006 API-6-3).

        Every message is checked first (``TypeError``, ``MessageTooLarge``), so a bad one sends
        none of them. Then each goes as ``send_nowait`` would while the ring takes it, and as
        ``send`` (waiting on flow control) when it does not. If the member leaves or its node
        closes midway, the error is raised; the messages before it were handed to the ring.
        """
        records = [self._record(data) for data in messages]
        safe = bool(safe)
        nowait, send, budget = self._port.send_nowait, self._port.send, self._budget
        tickets: list[Ticket] = []
        for record in records:
            self._check_can_send()
            if nowait is not None:
                try:
                    tickets.append(nowait(record, safe))
                except SendQueueFull:
                    pass
                else:
                    if budget.due():  # a long batch must still let tokens through
                        await asyncio.sleep(0)
                    continue
            tickets.append(await send(record, safe))
            budget.refill()
        return tickets

    def _record(self, data: bytes | bytearray | memoryview) -> Record:
        """The DATA record of one message, after the checks every send makes."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        payload = bytes(data)
        limit = self._port.max_message_bytes
        if len(payload) > limit:
            raise MessageTooLarge(len(payload), limit)
        return Record(self.name, self.member.handle, _DATA, payload)

    async def send_to(
        self, member: Member, data: bytes | bytearray | memoryview, safe: bool = False
    ) -> Ticket:
        """Send ``data`` to one member of this group, in the group's total order (RFC 0008 §6).

        Only ``member``'s stream receives it (as a ``Message`` whose ``to`` is ``member``), at
        the position in the total order where the group's multicast messages would be, so it
        keeps FIFO order with this member's other messages of both kinds. It is dropped if
        ``member`` is no longer a member when it is delivered. It travels the ring like any
        message (every node receives the bytes; one delivers them). The payload limit is
        ``max_message_bytes`` minus a few bytes of addressing. Raises like ``send``, plus
        ``TypeError`` for a ``member`` that is not a ``gcs.Member`` and ``NotSupported`` on a
        connection that cannot send point-to-point.
        """
        if not isinstance(member, Member):
            raise TypeError(f"member must be a gcs.Member, got {type(member).__name__}")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        if not self.node.supports_send_to:
            raise NotSupported(f"{type(self.node).__name__} cannot send point-to-point messages")
        self._check_can_send()
        payload = bytes(data)
        limit = self._port.max_message_bytes - directed_overhead(self.name)
        if len(payload) > limit:
            raise MessageTooLarge(len(payload), limit)
        return await self._port.send_to(self.name, self.member.handle, member, payload, bool(safe))

    def _check_can_send(self) -> None:
        self._port.check_running(True)
        membership = self._membership
        if membership.state is MemberState.LEAVING:
            raise NotMember(f"member {self.member} of {self.name!r} is leaving")
        if membership.state is MemberState.CLOSED:
            raise GroupClosed(
                f"member {self.member} of {self.name!r} is closed ({membership.closed_why})"
            )

    async def leave(self) -> None:
        """Leave the group; returns once the leave is delivered (others see a ``leave`` view).

        Sends still waiting for flow control fail with ``GroupClosed``; messages already handed
        to the ring are delivered first. The event stream ends after the events before the
        leave. Leaving a closed group does nothing.
        """
        membership = self._membership
        if membership.state is MemberState.MEMBER:
            membership.begin_leave()
        if membership.state is MemberState.LEAVING:
            await asyncio.shield(membership.left)

    def __aiter__(self) -> Group:
        return self

    async def __anext__(self) -> Message | View:
        """The next message or view; raises ``SlowConsumer`` if this reader was cut off.

        Quorum verdicts in the stream are skipped here (they update ``group.quorum``); iterate
        ``group.events()`` to receive them too.
        """
        while True:
            event = await self._membership.stream.get()
            if type(event) is not Quorum:
                return event  # type: ignore[return-value]
            self._quorum = event

    async def receive_many(self, limit: int = READ_SLICE) -> list[Message | View]:
        """The events queued for this reader, at most ``limit``, in order (RFC 0006 API-5-4).

        Waits for one if none is queued; returns ``[]`` once the stream ended cleanly, and
        raises where ``async for`` would (``SlowConsumer``, the node's failure). Quorum verdicts
        are skipped as by the iterator. One call per batch instead of one ``await`` per event;
        it is the same stream, so the one reader rule applies across both forms.
        """
        if type(limit) is not int or limit < 1:
            raise InvalidArgument(f"limit must be a positive int, got {limit!r}")
        stream = self._membership.stream
        while True:
            try:
                batch = await stream.get_many(limit)
            except StopAsyncIteration:
                return []
            events: list[Message | View] = []
            for event in batch:
                if type(event) is Quorum:
                    self._quorum = event
                else:
                    events.append(event)  # type: ignore[arg-type]
            if events:
                return events

    def events(self) -> AsyncIterator[Message | View | Quorum]:
        """The same stream as ``async for event in group``, with the ``gcs.Quorum`` verdicts.

        A verdict sits where the configuration change it judges sits (RFC 0008 §3.3): after the
        views of that change, before the messages of the new configuration. The one reader rule
        applies: iterate either this or the group itself, not both at once.
        """
        return self._events()

    async def _events(self) -> AsyncIterator[Message | View | Quorum]:
        while True:
            try:
                event = await self._membership.stream.get()
            except StopAsyncIteration:
                return
            if type(event) is Quorum:
                self._quorum = event
            yield event

    @property
    def quorum(self) -> Quorum | None:
        """The latest quorum verdict this reader consumed (None: none yet, or no quorum rules)."""
        return self._quorum


def check_join(name: object, queue_size: object, default_queue: int) -> int:
    """The checks every ``join`` makes (embedded or through a daemon); returns the stream bound."""
    _check_group_name(name)
    bound = default_queue if queue_size is None else queue_size
    if type(bound) is not int or bound < 1:
        raise InvalidArgument(f"queue_size must be a positive int, got {queue_size!r}")
    return bound


def check_join_modes(primary: object, quorum_events: object, uncommitted: object) -> None:
    """The flags of ``join``: booleans, and ``uncommitted`` only with ``primary``."""
    if not all(type(flag) is bool for flag in (primary, quorum_events, uncommitted)):
        raise TypeError("primary, quorum_events and uncommitted must be True or False")
    if uncommitted and not primary:
        raise InvalidArgument("uncommitted messages exist only in primary-component mode")


def _check_group_name(name: object) -> None:
    if not isinstance(name, str):
        raise TypeError(f"group name must be str, got {type(name).__name__}")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgument(f"group name {name!r} is not valid UTF-8 text") from None
    if not 1 <= size <= 255:
        raise InvalidArgument(f"group name must be 1..255 UTF-8 bytes, got {size}")
