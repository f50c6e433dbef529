"""A member's handle on one group: send, iterate the ordered stream, leave (RFC 0006 §4-§6).

Why a module of its own: the same ``Group`` class is handed out by an embedded ``gcs.Node`` and by a
daemon client (``gcs.daemon.client.Client``), each through the small ``GroupOwner`` protocol, so
application code and its exceptions are the same in both modes (RFC 0006 §10). The checks every
``join`` makes live here for the same reason.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from typing import Protocol

from gcs.api.outbox import Ticket
from gcs.api.stream import ErrorFactory, EventStream
from gcs.errors import GroupClosed, InvalidArgument, MessageTooLarge, NotMember, NotSupported
from gcs.groups.records import directed_overhead
from gcs.groups.views import Member, Message, View
from gcs.quorum.rules import Quorum
from gcs.wire.frames import Record, RecordFlags

__all__ = ["Group", "GroupOwner"]


class _GroupState(enum.Enum):
    JOINING = "joining"
    MEMBER = "member"
    LEAVING = "leaving"
    CLOSED = "closed"


class GroupOwner(Protocol):
    """What a ``Group`` needs from whoever made it: an embedded ``Node``, or a daemon client
    (``gcs.daemon.client.Client``), so both hand out the same ``Group`` type (RFC 0006 §10)."""

    node_id: int

    @property
    def max_message_bytes(self) -> int: ...
    def _check_running(self, *, for_group: bool = False) -> None: ...
    async def _send(self, record: Record, safe: bool) -> Ticket: ...
    async def _send_to(
        self, group: str, handle: int, to: Member, payload: bytes, safe: bool
    ) -> Ticket: ...
    def _leave_member(self, group: Group) -> None: ...


class Group:
    """This process's membership of one group: send, iterate events, leave.

    Made by ``Node.join`` (or a daemon client's ``join``); one reader per ``Group`` (join again
    for an independent one).
    """

    def __init__(self, node: GroupOwner, name: str, handle: int, bound: int) -> None:
        self.node = node
        self.name = name
        self.member = Member(node.node_id, handle)
        self._stream: EventStream[Message | View | Quorum] = EventStream(bound)
        self._state = _GroupState.JOINING
        self._closed_why = "left"
        self._view: View | None = None
        self._quorum: Quorum | None = None
        loop = asyncio.get_running_loop()
        self._active: asyncio.Future[None] = loop.create_future()
        self._left: asyncio.Future[None] = loop.create_future()

    def __repr__(self) -> str:
        return f"<Group {self.name!r} member {self.member} {self._state.value}>"

    @property
    def view(self) -> View | None:
        """The latest view delivered to this member (the one its next message belongs to)."""
        return self._view

    @property
    def closed(self) -> bool:
        return self._state is _GroupState.CLOSED

    async def send(self, data: bytes | bytearray | memoryview, safe: bool = False) -> Ticket:
        """Multicast ``data`` to the group in total order; return once the ring has it queued.

        Waits only on flow control. ``safe=True`` delivers it only once every member of the
        configuration has it (RFC 0006 §4.2). Raises ``MessageTooLarge``, ``NotMember`` (this
        member is leaving), ``GroupClosed`` (left, cut off, or the node closed), ``TypeError``.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        self._check_can_send()
        payload = bytes(data)
        limit = self.node.max_message_bytes
        if len(payload) > limit:
            raise MessageTooLarge(len(payload), limit)
        record = Record(self.name, self.member.handle, int(RecordFlags.DATA), payload)
        return await self.node._send(record, bool(safe))

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
        if not getattr(self.node, "supports_send_to", False):
            raise NotSupported(f"{type(self.node).__name__} cannot send point-to-point messages")
        self._check_can_send()
        payload = bytes(data)
        limit = self.node.max_message_bytes - directed_overhead(self.name)
        if len(payload) > limit:
            raise MessageTooLarge(len(payload), limit)
        return await self.node._send_to(self.name, self.member.handle, member, payload, bool(safe))

    def _check_can_send(self) -> None:
        self.node._check_running(for_group=True)
        if self._state is _GroupState.LEAVING:
            raise NotMember(f"member {self.member} of {self.name!r} is leaving")
        if self._state is _GroupState.CLOSED:
            raise GroupClosed(
                f"member {self.member} of {self.name!r} is closed ({self._closed_why})"
            )

    async def leave(self) -> None:
        """Leave the group; returns once the leave is delivered (others see a ``leave`` view).

        Sends still waiting for flow control fail with ``GroupClosed``; messages already handed
        to the ring are delivered first. The event stream ends after the events before the
        leave. Leaving a closed group does nothing.
        """
        if self._state is _GroupState.MEMBER:
            self._begin_leave()
        if self._state is _GroupState.LEAVING:
            await asyncio.shield(self._left)

    def _begin_leave(self) -> None:
        self._state = _GroupState.LEAVING
        self.node._leave_member(self)

    def __aiter__(self) -> Group:
        return self

    async def __anext__(self) -> Message | View:
        """The next message or view; raises ``SlowConsumer`` if this reader was cut off.

        Quorum verdicts in the stream are skipped here (they update ``group.quorum``); iterate
        ``group.events()`` to receive them too.
        """
        while True:
            event = await self._stream.get()
            if type(event) is not Quorum:
                return event  # type: ignore[return-value]
            self._quorum = event

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
                event = await self._stream.get()
            except StopAsyncIteration:
                return
            if type(event) is Quorum:
                self._quorum = event
            yield event

    @property
    def quorum(self) -> Quorum | None:
        """The latest quorum verdict this reader consumed (None: none yet, or no quorum rules)."""
        return self._quorum

    # ------------------------------------------------------------------ node side

    def _push(self, event: Message | View | Quorum) -> bool:
        if isinstance(event, View):
            self._view = event
            if self._state is _GroupState.JOINING:
                self._state = _GroupState.MEMBER
                if not self._active.done():
                    self._active.set_result(None)
        return self._stream.put(event)

    def _end(self, why: str, error: ErrorFactory | None = None, *, abort: bool = False) -> None:
        """The member is gone: stream ends (now if ``abort``), waiters wake with ``error``."""
        if self._state is not _GroupState.CLOSED:
            self._state = _GroupState.CLOSED
            self._closed_why = why
        if abort and error is not None:
            self._stream.abort(error)
        else:
            self._stream.close(error)
        if not self._active.done():  # a join still waiting for its first view fails
            exc = error() if error is not None else GroupClosed(f"join of {self.name!r}: {why}")
            self._active.set_exception(exc)
            self._active.exception()  # retrieved here: a cancelled join() may not await it
        if not self._left.done():
            self._left.set_result(None)


def _check_join(name: object, queue_size: object, default_queue: int) -> int:
    """The checks every ``join`` makes (embedded or through a daemon); the stream bound."""
    _check_group_name(name)
    bound = default_queue if queue_size is None else queue_size
    if type(bound) is not int or bound < 1:
        raise InvalidArgument(f"queue_size must be a positive int, got {queue_size!r}")
    return bound


def _check_join_modes(primary: object, quorum_events: object, uncommitted: object) -> None:
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
