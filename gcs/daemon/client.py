"""A client of a local ``gcs node`` daemon: the same ``join`` / ``Group`` API over a socket.

Why. Many local processes can share one ring membership the way corosync CPG clients share
one corosync (RFC 0006 §10): the daemon is the ring member, and each client's members are
ordinary members of the daemon's groups. ``connect(path)`` hands out the very ``gcs.Group``
class an embedded ``gcs.Node`` does (``Client`` is a ``gcs.api.group.GroupOwner``), so
application code is the same in both modes and catches the same exceptions.

How. One task reads the socket and routes each frame as it arrives: replies settle the request
that waits for them, events go to their member's bounded ``EventStream``. A join's reply
registers its ``Group`` *before* the next frame is read, so the member's first view — which the
daemon sends right after the reply — always finds it. Once the client is closed the reader
routes nothing more: the close settled every outstanding request itself, so a reply still on
its way (a leave's, right behind the member's ``end``) is not a reply to an unknown request.
The reader never waits for the application: a member whose reader falls more than its bound
behind is cut off with ``SlowConsumer`` here and leaves on the daemon, as an embedded member
would.

Sends wait for the daemon's reply, which comes once the record is queued on the ring (after
flow control): ``await group.send()`` means the same thing in both modes. A ticket's
``delivered()`` asks the daemon about the send's number (from the send's reply, API-10.2-3),
and the daemon answers when the node delivered the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from gcs import __version__
from gcs.api.group import Group, GroupPort, Membership, check_join, check_join_modes
from gcs.api.node import RingView
from gcs.api.outbox import Ticket, copy_error
from gcs.daemon import protocol as proto
from gcs.daemon.protocol import ControlProtocolError
from gcs.errors import (
    DaemonUnavailable,
    GcsError,
    GroupClosed,
    NodeClosed,
    SlowConsumer,
)
from gcs.groups.views import Member, Message
from gcs.quorum.nodelist import NodeList
from gcs.quorum.rules import Quorum
from gcs.wire.frames import Record

__all__ = ["REFUSED", "Client", "connect"]

_LOG = logging.getLogger("gcs.client")
OnReply = Callable[[dict[str, Any]], Any]
REFUSED = "refused: "
"""How the ``problem`` of a ``DaemonUnavailable`` begins when a running daemon refused the
connection (its client limit, RFC 0006 API-10.1-3) rather than nothing listening on the path."""


def connect(path: str | os.PathLike[str]) -> Client:
    """A client of the daemon listening on ``path``; use it as ``async with``.

    ``async with gcs.connect("/run/gcs/node.sock") as node: group = await node.join("g")``.
    Raises ``DaemonUnavailable`` (on entry, or from ``start()``) when no daemon listens there.
    """
    return Client(path)


class Client:
    """One connection to a ``gcs node`` daemon (see the module docstring)."""

    supports_send_to = True
    """``Group.send_to`` works through the daemon (RFC 0006 §10.2, ``send`` with ``to``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.node_id = 0
        self.boot_id = 0
        self.cluster_name = ""
        self.subscriber_queue = 0
        self._max_message_bytes = 0
        self._ring: RingView | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._next_id = 0
        self._pending: dict[int, tuple[asyncio.Future[Any], OnReply | None]] = {}
        self._members: dict[int, Membership] = {}
        self._limit = proto.HELLO_LIMIT
        self._closed: GcsError | None = None
        self._clean = False
        self._started = False

    def __repr__(self) -> str:
        state = "closed" if self.closed else "connected" if self._started else "new"
        return f"<gcs.Client {self.path} node {self.node_id} {state}>"

    async def __aenter__(self) -> Client:
        if not self._started:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect and greet the daemon; ``DaemonUnavailable`` if nobody listens on the path."""
        if self._started:
            raise NodeClosed(f"client of {self.path} was already started")
        self._started = True
        try:
            reader, writer = await asyncio.open_unix_connection(os.fspath(self.path), limit=1 << 16)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            self._closed = DaemonUnavailable(self.path, exc.strerror or str(exc))
            raise self._closed from None
        except OSError as exc:
            self._closed = DaemonUnavailable(self.path, exc.strerror or str(exc))
            raise self._closed from None
        self._reader, self._writer = reader, writer
        self._task = asyncio.get_running_loop().create_task(self._read_loop())
        hello = {
            "version": proto.PROTOCOL_VERSION,
            "client": f"gcs {__version__} pid {os.getpid()}",
        }
        try:
            info = await self._request("hello", hello)
        except BaseException:
            await self._shutdown()
            raise
        self._hello(info)

    def _hello(self, info: dict[str, Any]) -> None:
        self.node_id = proto.field(info, "node_id", int)
        self.boot_id = proto.field(info, "boot_id", int)
        self.cluster_name = proto.field(info, "cluster_name", str)
        self._max_message_bytes = proto.field(info, "max_message_bytes", int)
        self.subscriber_queue = proto.field(info, "subscriber_queue", int)
        self._limit = proto.frame_limit(self._max_message_bytes)
        if info.get("ring") is not None:
            self._ring = _ring_view(info["ring"])

    async def close(self) -> None:
        """Leave every group (the others see ``leave`` views), then disconnect. Idempotent."""
        if self._writer is None or self._closed is not None:
            await self._shutdown()
            return
        members = [m for m in self._members.values() if not m.group.closed]
        for membership in members:
            if not membership.group.closed:
                membership.begin_leave()
        pending = [m.left for m in members]
        if pending:
            await asyncio.wait(pending, timeout=5)
        self._fail(NodeClosed(f"client of {self.path} closed"), clean=True)
        await self._shutdown()

    async def _shutdown(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # ------------------------------------------------------------------ the API

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def view(self) -> RingView | None:
        """The ring configuration the daemon's node is in (as of the last event read)."""
        return self._ring

    @property
    def max_message_bytes(self) -> int:
        return self._max_message_bytes

    async def join(
        self,
        name: str,
        *,
        queue_size: int | None = None,
        primary: bool = False,
        quorum_events: bool = False,
        uncommitted: bool = False,
    ) -> Group:
        """Join group ``name`` through the daemon; return once this member is in a view.

        Same contract and options as ``gcs.Node.join`` (quorum verdicts, primary-component
        mode and its uncommitted tails are the daemon node's, RFC 0008).
        """
        bound = check_join(name, queue_size, self.subscriber_queue)
        check_join_modes(primary, quorum_events, uncommitted)
        self._check_running()
        fields: dict[str, Any] = {"group": name, "queue_size": bound}
        modes = {"primary": primary, "quorum_events": quorum_events, "uncommitted": uncommitted}
        fields.update((key, True) for key, wanted in modes.items() if wanted)

        def on_reply(ok: dict[str, Any]) -> Membership:
            handle = proto.field(ok, "handle", int)
            membership = Membership(self, self._port(), name, handle, bound)
            self._members[handle] = membership
            return membership

        _, request = self._start_request("join", fields, on_reply)
        try:
            membership: Membership = await asyncio.shield(request)
        except asyncio.CancelledError:
            request.add_done_callback(_leave_if_joined)
            raise
        try:
            await asyncio.shield(membership.active)
        except asyncio.CancelledError:
            if not membership.group.closed:
                membership.begin_leave()
            raise
        return membership.group

    async def status(self) -> dict[str, Any]:
        """The daemon's status map (what ``gcs status --json`` prints, RFC 0006 §10.4)."""
        self._check_running()
        result: dict[str, Any] = await self._request("status", {})
        return result

    async def nodes(self) -> NodeList:
        """The daemon node's node list (RFC 0006 §3.8, §10.2)."""
        self._check_running()
        return proto.nodes_from_wire(await self._request("nodes", {}))

    async def nodes_map(self, op: str, **fields: Any) -> dict[str, Any]:
        """A node-list request's reply as the daemon sent it (what ``gcs nodes --json`` prints)."""
        self._check_running()
        result: dict[str, Any] = await self._request(op, fields)
        return result

    async def add_node(self, node_id: int, address: str, votes: int = 1) -> NodeList:
        """``Node.add_node`` on the daemon's node: returns once the change applied."""
        self._check_running()
        fields = {"node": node_id, "address": address, "votes": votes}
        return proto.nodes_from_wire(await self._request("add_node", fields))

    async def remove_node(self, node_id: int) -> NodeList:
        """``Node.remove_node`` on the daemon's node: returns once the change applied."""
        self._check_running()
        return proto.nodes_from_wire(await self._request("remove_node", {"node": node_id}))

    async def dump_flight_recorder(self, path: str | os.PathLike[str]) -> Path:
        """Have the daemon write its flight recorder to ``path`` (absolute, on its host)."""
        self._check_running()
        absolute = Path(path).absolute()
        result = await self._request("dump", {"path": os.fspath(absolute)})
        return Path(proto.field(result, "path", str))

    # ------------------------------------------------------------------ internals for Group

    def _port(self) -> GroupPort:
        """What this client's members call (``gcs.api.group``)."""
        return GroupPort(
            self.node_id,
            self._max_message_bytes,
            self._check_running,
            self._send,
            self._send_to,
            self._leave_member,
        )

    def _check_running(self, for_group: bool = False) -> None:
        if self._closed is not None:
            if for_group and self._clean:
                raise GroupClosed(f"client of {self.path} is closed ({self._closed})")
            raise copy_error(self._closed)
        if self._writer is None:
            raise NodeClosed(f"client of {self.path} was never started")

    async def _send(self, record: Record, safe: bool) -> Ticket:
        fields = {"handle": record.handle, "data": record.data, "safe": safe}
        send_id = proto.field(await self._request("send", fields), "send", int)
        return Ticket(record.group, len(record.data), safe, self._confirm(send_id))

    async def _send_to(
        self, group: str, handle: int, to: Member, payload: bytes, safe: bool
    ) -> Ticket:
        fields = {"handle": handle, "data": payload, "safe": safe, "to": proto.member_to_wire(to)}
        send_id = proto.field(await self._request("send", fields), "send", int)
        return Ticket(group, len(payload), safe, self._confirm(send_id))

    def _confirm(self, send_id: int) -> Callable[[], Awaitable[object]]:
        """How a ticket learns of its delivery: it asks the daemon (RFC 0006 §10.2)."""
        return lambda: self._request("delivered", {"send": send_id})

    def _leave_member(self, membership: Membership) -> None:
        if self._closed is not None:
            return
        _, request = self._start_request("leave", {"handle": membership.member.handle})
        request.add_done_callback(_retrieve)

    # ------------------------------------------------------------------ requests

    def _start_request(
        self, op: str, fields: dict[str, Any], on_reply: OnReply | None = None
    ) -> tuple[int, asyncio.Future[Any]]:
        """Write one request; its id and the future its reply settles."""
        if self._closed is not None:
            raise copy_error(self._closed)
        assert self._writer is not None
        self._next_id += 1
        req_id = self._next_id
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = (future, on_reply)
        self._writer.write(proto.encode({"op": op, "id": req_id, **fields}))
        return req_id, future

    async def _request(self, op: str, fields: dict[str, Any]) -> Any:
        return await self._start_request(op, fields)[1]

    def _on_reply(self, item: dict[str, Any]) -> None:
        entry = self._pending.pop(proto.field(item, "re", int), None)
        if entry is None:
            raise ControlProtocolError(f"reply to an unknown request {item.get('re')!r}")
        future, on_reply = entry
        if "error" in item:
            if not future.done():
                future.set_exception(proto.error_from_wire(item["error"]))
            return
        ok = item.get("ok")
        if type(ok) is not dict:
            raise ControlProtocolError("a reply carries neither ok nor error")
        result = on_reply(ok) if on_reply is not None else ok
        if future.done():  # its waiter was cancelled; a joined member must not linger
            if isinstance(result, Membership):
                result.begin_leave()
            return
        future.set_result(result)

    # ------------------------------------------------------------------ events

    async def _read_loop(self) -> None:
        reader = self._reader
        assert reader is not None
        error: GcsError = DaemonUnavailable(self.path, "the daemon closed the connection")
        try:
            while True:
                header = await reader.readexactly(proto.LENGTH.size)
                (length,) = proto.LENGTH.unpack(header)
                if length > self._limit:
                    raise ControlProtocolError(f"frame of {length} bytes exceeds {self._limit}")
                item = proto.decode(await reader.readexactly(length))
                if self._closed is not None:
                    return  # closed meanwhile: its requests were settled then (see _fail)
                if "re" in item:
                    self._on_reply(item)
                else:
                    self._on_event(item)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except ControlProtocolError as exc:
            _LOG.error("the daemon at %s broke the control protocol: %s", self.path, exc)
            error = exc
        self._fail(error)

    def _on_event(self, item: dict[str, Any]) -> None:
        event = proto.field(item, "ev", str)
        if event == "ring":
            self._ring = _ring_view(item.get("ring"))
        elif event == "closing":
            reason = str(item.get("reason", "shutting down"))
            failure = item.get("error")
            if type(failure) is dict and failure.get("type") == "DaemonUnavailable":
                message = f"{REFUSED}{reason}: {failure.get('message', '')}"
                self._fail(DaemonUnavailable(self.path, message))  # API-10.1-3: beyond its limit
                return
            error = (
                proto.error_from_wire(failure)
                if failure is not None
                else NodeClosed(f"the gcs node daemon at {self.path} is {reason}")
            )
            self._fail(error, clean=failure is None)
        elif event in ("msg", "view", "quorum", "end"):
            self._member_event(event, item)
        else:
            _LOG.debug("ignoring unknown event %r from %s", event, self.path)

    def _member_event(self, event: str, item: dict[str, Any]) -> None:
        handle = proto.field(item, "handle", int)
        membership = self._members.get(handle)
        if membership is None:
            return  # a member this client already cut off or forgot
        if event == "end":
            del self._members[handle]
            failure = item.get("error")
            if failure is None:
                membership.end("left")
            else:
                error = proto.error_from_wire(failure)
                why = "slow consumer" if isinstance(error, SlowConsumer) else str(error)
                membership.end(why, lambda: copy_error(error))
            return
        value: Message | Quorum | Any
        if event == "msg":
            value = proto.message_from_wire(item)
        elif event == "quorum":
            value = proto.quorum_from_wire(item.get("quorum"))
        else:
            value = proto.view_from_wire(item.get("view"))
        if not membership.push(value):
            self._slow_consumer(handle, membership)

    def _slow_consumer(self, handle: int, membership: Membership) -> None:
        """The application fell behind this member's bound: cut it off, leave on the daemon."""
        _LOG.warning(
            "member %s of %r fell more than its queue bound behind and was closed",
            membership.member,
            membership.name,
        )
        del self._members[handle]
        membership.end("slow consumer")
        self._leave_member(membership)

    def _fail(self, error: GcsError, *, clean: bool = False) -> None:
        """The connection is over: every request and member ends with ``error``."""
        if self._closed is not None:
            return
        self._closed = error
        self._clean = clean
        for future, _ in self._pending.values():
            if not future.done():
                future.set_exception(copy_error(error))
                future.exception()  # retrieved here: its waiter may be gone
        self._pending.clear()
        for membership in list(self._members.values()):
            membership.end("node closed", None if clean else (lambda: copy_error(error)))
        self._members.clear()
        if self._writer is not None:
            self._writer.close()


def _ring_view(item: object) -> RingView:
    ring_id, members, transitional, joined, left, reason = proto.ring_from_wire(item)
    return RingView(ring_id, members, transitional, joined, left, reason)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _leave_if_joined(future: asyncio.Future[Any]) -> None:
    """A cancelled join whose reply still arrived: leave the member it created."""
    if future.cancelled() or future.exception() is not None:
        return
    membership = future.result()
    if isinstance(membership, Membership) and not membership.group.closed:
        membership.begin_leave()
