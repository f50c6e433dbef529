"""State transfer for applications: a group member whose state follows the group (RFC 0008 §5).

::

    class Counter(gcs.StateHandler):
        def __init__(self) -> None:
            self.value = 0
        def snapshot(self) -> bytes:                  # the state at the cut (between two events)
            return str(self.value).encode()
        def install(self, state: bytes) -> None:      # a joiner's, or the merge result
            self.value = int(state)
        def merge(self, sides):                       # after a partition: [(holders, state), ...]
            return max(sides, key=lambda s: int(s[1]))[1]

    counter = Counter()
    group = await gcs.join_with_state(node, "counter", counter)   # returns once it has the state
    async for event in group:                         # views, messages (and, in primary mode,
        match event:                                  # quorum verdicts) after the cut
            case gcs.Message(data=b"+1"):
                counter.value += 1

``join_with_state`` joins through the public ``Group`` API only (``owner.join``, ``send``,
``send_to``, ``events()``), so it works the same for an embedded ``gcs.Node`` and for a daemon
client (``gcs.connect``); where point-to-point sends are not offered it multicasts the chunks. The
protocol is ``gcs.transfer.machine.Transfer``; this module drives it: it gives the application the
events in order, takes the snapshot when the application has consumed everything before the cut (the
next time it asks for an event), streams chunks with at most ``window_bytes`` not yet delivered (so
a 50 MiB state does not fill the send queue or stall the ring), and hides the protocol's own
messages. Every member of the group must join through it.

The application must apply each event before it asks for the next one (the usual ``async for``
loop), and ``snapshot``, ``install`` and ``merge`` must be deterministic functions of the state
and their arguments: every member merges the same inputs in the same order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gcs.api.group import Group
from gcs.api.outbox import Ticket
from gcs.errors import GcsError, NotSupported, StateTransferFailed
from gcs.groups.views import Member, Message, View
from gcs.quorum.rules import Quorum
from gcs.transfer.machine import (
    CHUNK_BYTES,
    Action,
    Cancel,
    Deliver,
    Fail,
    Install,
    Installed,
    Merge,
    Send,
    Snapshot,
    Stream,
    Transfer,
    encode_chunk,
    escape,
)

__all__ = ["StateGroup", "StateHandler", "TransferStatistics", "join_with_state"]

_LOG = logging.getLogger("gcs.statetransfer")
WINDOW_BYTES = 1 << 20
"""Snapshot bytes a provider keeps in flight (sent, not yet delivered back to it)."""

Side = tuple[tuple[Member, ...], bytes]


class StateHandler(Protocol):
    """What the application provides: its state as bytes, and how to combine diverged states."""

    def snapshot(self) -> bytes: ...
    def install(self, state: bytes) -> None: ...
    def merge(self, sides: Sequence[Side]) -> bytes: ...


class GroupJoiner(Protocol):
    """A ``gcs.Node`` or a daemon client: anything with ``join`` returning a ``gcs.Group``."""

    async def join(self, name: str, *, queue_size: int | None = None) -> Group: ...


@dataclass(frozen=True, slots=True)
class TransferStatistics:
    rounds: int
    failed_rounds: int
    installed: str
    bytes_sent: int
    chunks_sent: int
    protocol_ignored: int


async def join_with_state(
    owner: GroupJoiner,
    name: str,
    handler: StateHandler,
    *,
    primary: bool = False,
    queue_size: int | None = None,
    lineage: bytes | None = None,
    restore: bytes | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    window_bytes: int = WINDOW_BYTES,
    buffer_limit: int = 1 << 30,
    timeout: float | None = None,
) -> StateGroup:
    """Join ``name`` and return once this member holds the group's state (RFC 0008 §5).

    The state arrives by ``handler.install`` (from a member that has it, or in primary mode from
    the freshest side of a merge), by ``handler.merge`` then ``install`` (a merge outside
    primary mode), or not at all when this member founds the group (the state is then whatever
    ``handler`` starts with). ``lineage``: the
    member starts as a holder of a state it restored (``StateGroup.lineage`` of an earlier
    incarnation, stored with that state). ``primary``: primary-component mode (RFC 0008 §4).
    Raises ``StateTransferFailed`` after ``timeout`` seconds without state (the member leaves).
    """
    kwargs: dict[str, Any] = {}
    if queue_size is not None:
        kwargs["queue_size"] = queue_size
    if primary:
        kwargs["primary"] = True
        kwargs["uncommitted"] = True  # tails, resolved by the protocol (RFC 0008 §4.2)
    try:
        group = await owner.join(name, **kwargs)
    except TypeError as exc:
        if primary:
            raise NotSupported(f"{type(owner).__name__} has no primary-component mode") from exc
        raise
    member = StateGroup(
        group, handler, primary, lineage, chunk_bytes, window_bytes, buffer_limit, restore
    )
    try:
        await asyncio.wait_for(member._until_installed(), timeout)
    except TimeoutError:
        await member.leave()
        raise StateTransferFailed(f"no state for {name!r} within {timeout} s") from None
    except BaseException:
        await member.leave()
        raise
    return member


class StateGroup:
    """A member of a group with state transfer; iterate it and send through it.

    Yields ``gcs.View``, ``gcs.Message`` and ``gcs.Quorum`` (the last only in primary mode),
    never the protocol's own messages. ``send``/``send_to``/``leave`` are those of the group.
    """

    def __init__(
        self,
        group: Group,
        handler: StateHandler,
        primary: bool,
        lineage: bytes | None,
        chunk_bytes: int,
        window_bytes: int,
        buffer_limit: int,
        restore: bytes | None = None,
    ) -> None:
        if chunk_bytes < 1 or window_bytes < chunk_bytes:
            raise ValueError("need 1 <= chunk_bytes <= window_bytes")
        limit = group.node.max_message_bytes - 512
        self.group = group
        self._handler = handler
        self._machine = Transfer(
            group.member,
            primary=primary,
            lineage=lineage,
            buffer_limit=buffer_limit,
            restore=restore,
        )
        self._chunk = max(1, min(chunk_bytes, limit))
        self._window = window_bytes
        self._events = group.events()
        self._ready: deque[Action] = deque()
        self._control: deque[tuple[bytes, bool]] = deque()
        self._control_task: asyncio.Task[None] | None = None
        self._streams: dict[bytes, asyncio.Task[None]] = {}
        self._installed = "restored" if lineage is not None else ""
        self._bytes_sent = 0
        self._chunks_sent = 0
        self._failure: StateTransferFailed | None = None

    def __repr__(self) -> str:
        return f"<StateGroup {self.group.name!r} member {self.group.member}>"

    # ------------------------------------------------------------------ the public surface

    @property
    def member(self) -> Member:
        return self.group.member

    @property
    def name(self) -> str:
        return self.group.name

    @property
    def view(self) -> View | None:
        return self.group.view

    @property
    def quorum(self) -> Quorum | None:
        return self._machine.quorum

    @property
    def lineage(self) -> bytes | None:
        """The id of this member's state lineage; store it with a persisted state."""
        return self._machine.lineage

    def export(self) -> bytes:
        """The protocol's part of this member's state (position, unconfirmed tail): store it
        with the application's state and the lineage, pass it back as ``restore=``."""
        return self._machine.export()

    @property
    def installed(self) -> str:
        """How this member got its state: "found", "transfer", "merge" or "restored"."""
        return self._installed

    async def send(self, data: bytes | bytearray | memoryview, safe: bool = False) -> Ticket:
        return await self.group.send(escape(bytes(data)), safe)

    async def send_to(
        self, member: Member, data: bytes | bytearray | memoryview, safe: bool = False
    ) -> Ticket:
        return await self.group.send_to(member, escape(bytes(data)), safe)

    async def leave(self) -> None:
        for task in [*self._streams.values(), self._control_task]:
            if task is not None:
                task.cancel()
        await self.group.leave()

    def statistics(self) -> TransferStatistics:
        m = self._machine
        return TransferStatistics(
            rounds=m.rounds,
            failed_rounds=m.failed_rounds,
            installed=self._installed,
            bytes_sent=self._bytes_sent,
            chunks_sent=self._chunks_sent,
            protocol_ignored=m.ignored,
        )

    def __aiter__(self) -> StateGroup:
        return self

    async def __anext__(self) -> Message | View | Quorum:
        while True:
            event = self._next_ready(stop_at_deliver=False)
            if event is not None:
                return event
            self._run(self._machine.feed(await self._events.__anext__()))

    # ------------------------------------------------------------------ driving the machine

    async def _until_installed(self) -> None:
        while True:
            self._next_ready(stop_at_deliver=True)
            if self.installed:
                return
            self._run(self._machine.feed(await self._events.__anext__()))

    def _next_ready(self, *, stop_at_deliver: bool) -> Message | View | Quorum | None:
        """Run the application-side actions in order; the next event to hand out, if any."""
        ready = self._ready
        while ready:
            action = ready[0]
            if type(action) is Deliver:
                if stop_at_deliver:
                    return None
                ready.popleft()
                return action.event
            ready.popleft()
            self._app_action(action)
        if self._failure is not None:
            raise self._failure
        return None

    def _app_action(self, action: Action) -> None:
        if type(action) is Snapshot:
            data = bytes(self._handler.snapshot())
            self._run(self._machine.snapshot_taken(action.key, data))
        elif type(action) is Install:
            self._handler.install(action.state)
        elif type(action) is Merge:
            self._handler.install(self._handler.merge(action.sides))
        elif type(action) is Installed:
            self._installed = action.how
        elif type(action) is Fail:
            self._failure = StateTransferFailed(action.reason)
            raise self._failure

    def _run(self, actions: list[Action]) -> None:
        """Network actions now; application actions queue behind the events before them."""
        for action in actions:
            if type(action) is Send:
                self._control.append((action.data, action.safe))
                if self._control_task is None or self._control_task.done():
                    self._control_task = asyncio.ensure_future(self._send_control())
            elif type(action) is Stream:
                self._start_stream(action)
            elif type(action) is Cancel:
                running = self._streams.pop(action.key, None)
                if running is not None:
                    running.cancel()
            else:
                self._ready.append(action)

    def _start_stream(self, stream: Stream) -> None:
        task = asyncio.ensure_future(self._stream(stream))
        self._streams[stream.key] = task

        def done(finished: asyncio.Task[None]) -> None:
            self._stream_done(stream.key, finished)

        task.add_done_callback(done)

    async def _send_control(self) -> None:
        while self._control:
            data, safe = self._control.popleft()
            try:
                await self.group.send(data, safe)
            except GcsError:
                return  # the member is gone: its rounds end with it

    def _stream_done(self, key: bytes, task: asyncio.Task[None]) -> None:
        if self._streams.get(key) is task:
            del self._streams[key]
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, GcsError):
                _LOG.error("state stream of %s failed: %r", self.group.member, exc)

    async def _stream(self, stream: Stream) -> None:
        """Send a snapshot in chunks, keeping at most the window in flight (RFC 0008 §5.3)."""
        view = memoryview(stream.data)
        size = self._chunk
        count = max(1, -(-len(view) // size))
        direct = getattr(self.group.node, "supports_send_to", False)
        targets: Sequence[Member | None] = stream.to if stream.to is not None else (None,)
        in_flight: deque[tuple[Ticket, int]] = deque()
        outstanding = 0
        for dest in targets:
            for index in range(count):
                piece = bytes(view[index * size : (index + 1) * size])
                msg = encode_chunk(stream.key, stream.owner, dest, index, count, piece)
                if dest is not None and direct:
                    ticket = await self.group.send_to(dest, msg, stream.safe)
                else:
                    ticket = await self.group.send(msg, stream.safe)
                self._bytes_sent += len(piece)
                self._chunks_sent += 1
                in_flight.append((ticket, len(msg)))
                outstanding += len(msg)
                while outstanding > self._window:
                    done, length = in_flight.popleft()
                    await done.delivered()
                    outstanding -= length
        with contextlib.suppress(GcsError):
            for ticket, _ in in_flight:
                await ticket.delivered()
