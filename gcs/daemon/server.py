"""The daemon's control socket: local clients share one ring member (RFC 0006 §10).

This is corosync's CPG model: one process (``gcs node``) is the ring member, and any number of
local processes connect to it over a Unix stream socket and join groups through it. Each client
member is an ordinary ``gcs.Group`` of the daemon's embedded ``gcs.Node``, so every promise of
RFC 0006 §3-§6 holds for it unchanged; this module only carries requests in and events out.

Per connection:

* a reader decodes frames and dispatches them; no request it dispatches waits, so a request
  that must wait (a join for its first view, a send for flow control, a leave for its delivery)
  never delays the requests behind it. The reader itself waits only when the client is too far
  ahead — too many requests unanswered, too many send bytes queued, too many reply bytes
  unread (``Connection._wait_for_room``, API-10.1-3) — so a client's pipelining is bounded by its
  own socket, not by the daemon's memory;
* one sender task submits the connection's sends in the order they arrived, so a client's
  messages keep their order (FIFO per sender) and wait for flow control exactly as an embedded
  ``group.send`` would;
* one pump per member copies its group's event stream to the socket. The pump waits when the
  socket's buffer is full, so a client that stops reading lets its members' streams fill up to
  their bounds and they are cut off with ``SlowConsumer``, as an embedded reader would be: the
  ring never waits for a client.

A client that disconnects, or dies, leaves: every member it still has gets a ``LEAVE`` record,
so the other members see it go with reason ``leave``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gcs import __version__
from gcs.api.group import Group
from gcs.api.node import Node
from gcs.api.outbox import Ticket
from gcs.daemon import protocol as proto
from gcs.daemon.fdbudget import own_client_cap
from gcs.daemon.listener import BACKLOG, Listener, open_stream
from gcs.daemon.protocol import ControlProtocolError, encode, error_to_wire, field
from gcs.daemon.throttle import ThrottledLog
from gcs.errors import ConfigError, GcsError, GroupClosed, InvalidArgument, NodeClosed
from gcs.groups.views import Member, Message
from gcs.quorum.rules import Quorum

__all__ = ["ControlServer", "prepare_socket_path"]

_LOG = logging.getLogger("gcs.daemon")
WRITE_HIGH_WATER = 256 * 1024
"""Bytes queued on a client's socket before its pumps wait for the client to read (and before
the daemon reads its next request, API-10.1-3)."""
MAX_OUTSTANDING = 1024
"""A connection's requests awaiting their replies before the daemon reads no more of them."""
UNIX_PATH_MAX = 107


def prepare_socket_path(path: Path) -> None:
    """Make the socket's directory; remove a stale socket; refuse one a live daemon owns."""
    if len(os.fsencode(path)) > UNIX_PATH_MAX:
        raise GcsError(f"control socket path {path} is longer than {UNIX_PATH_MAX} bytes")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        problem = f"its directory {path.parent} exists and is not a directory"
        raise ConfigError("control_socket", problem) from None
    except OSError as exc:
        problem = f"cannot create its directory {path.parent}: {exc.strerror or exc}"
        raise ConfigError("control_socket", problem) from None
    if not path.exists() and not path.is_symlink():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(os.fspath(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)  # left behind by a daemon that died
        return
    except OSError as exc:
        raise GcsError(f"control socket {path} exists and cannot be probed: {exc}") from exc
    finally:
        probe.close()
    raise GcsError(f"another gcs node daemon is already listening on {path}")


class ControlServer:
    """The Unix-socket server: admits clients within limits, tracks them, broadcasts rings.

    Limits (RFC 0006 API-10.1-3): at most ``Config.max_clients`` clients at once, fewer when the
    descriptor limit demands (``gcs.daemon.fdbudget``); a connection beyond that gets one
    ``closing`` frame (reason ``too many clients``) and is closed; a client that sends no
    ``hello`` within ``Config.hello_timeout_ms`` is closed (reason ``hello timeout``). Both are
    logged once, then summarised (``gcs.daemon.throttle``).
    """

    def __init__(
        self,
        node: Node,
        path: Path,
        status: Callable[[], dict[str, Any]],
        dump: Callable[[Path], Awaitable[Path]],
    ) -> None:
        self.node = node
        self.path = path
        self._status = status
        self._dump = dump
        self._listener: Listener | None = None
        self.connections: set[Connection] = set()
        self.background: set[asyncio.Task[Any]] = set()
        self._closing: dict[str, Any] | None = None
        self._accepted = 0
        self.hello_timeout_s = node.config.hello_timeout_ms / 1000
        self.hello_timeouts = ThrottledLog(_LOG, logging.WARNING, "clients closed without hello")

    @property
    def cap(self) -> int:
        """Clients served at once (0 before ``start``)."""
        return 0 if self._listener is None else self._listener.cap

    def limits(self) -> dict[str, int]:
        """The status map's view of API-10.1-3: the cap and how many clients it turned away."""
        listener = self._listener
        return {
            "client_limit": self.cap,
            "clients_refused": 0 if listener is None else listener.refusals.total,
            "hello_timeouts": self.hello_timeouts.total,
        }

    async def start(self) -> None:
        prepare_socket_path(self.path)
        limit = own_client_cap(self.node.config.max_clients)
        if limit.lowered:
            _LOG.warning("control socket: %s", limit.describe())
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket is created 0600: only this user may connect
        try:
            sock.bind(os.fspath(self.path))
            sock.listen(BACKLOG)
        except OSError as exc:
            sock.close()
            raise GcsError(f"cannot listen on control socket {self.path}: {exc}") from None
        finally:
            os.umask(old_umask)
        self._listener = Listener(
            sock,
            cap=limit.cap,
            serve=self._serve,
            refuse=self._refuse,
            logger=_LOG,
            name="control socket",
            cap_reason=limit.describe(),
        )

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background; the server waits for these at close."""
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    def _serve(self, sock: socket.socket) -> None:
        self._accepted += 1
        self.spawn(self._connection(sock, self._accepted))

    def _refuse(self, sock: socket.socket, served: int) -> None:
        """Beyond the cap: one ``closing`` frame (it fits any socket buffer), then close."""
        refusal = {
            "ev": "closing",
            "reason": "too many clients",
            "error": {
                "type": "DaemonUnavailable",
                "message": f"it serves {served} clients, its maximum; try again later",
            },
        }
        with contextlib.suppress(OSError):
            sock.send(encode(refusal))
        sock.close()

    async def _connection(self, sock: socket.socket, number: int) -> None:
        listener = self._listener
        assert listener is not None
        try:
            try:
                reader, writer = await open_stream(sock, 1 << 16)
            except OSError as exc:
                sock.close()
                _LOG.debug("client #%d went away before it was served: %s", number, exc)
                return
            conn = Connection(self, reader, writer, number)
            if self._closing is not None:
                conn.push({"ev": "closing", **self._closing})
                conn.disconnected()  # closes it, and stops its hello timer
                return
            self.connections.add(conn)
            try:
                await conn.run()
            finally:
                self.connections.discard(conn)
        finally:
            listener.release()

    def status(self) -> dict[str, Any]:
        return self._status()

    async def dump(self, path: Path) -> Path:
        return await self._dump(path)

    def broadcast_ring(self, ring: dict[str, Any]) -> None:
        for conn in list(self.connections):
            if conn.ready:
                conn.push({"ev": "ring", "ring": ring})

    def begin_close(self, reason: str, error: BaseException | None = None) -> None:
        """Tell every client the daemon is going away; accept nobody new."""
        self._closing = {"reason": reason, "error": None if error is None else error_to_wire(error)}
        if self._listener is not None:
            self._listener.close()
        for conn in list(self.connections):
            conn.push({"ev": "closing", **self._closing})

    async def close(self) -> None:
        """After the node closed: let pumps write their last events, then drop every client."""
        for conn in list(self.connections):
            await conn.finish()
        if self.background:
            await asyncio.wait(list(self.background), timeout=5)
        if self._listener is not None:
            self._listener.close()
        self.hello_timeouts.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


class Connection:
    """One client: its members, its sends in order, and its pumps (module docstring)."""

    def __init__(
        self,
        server: ControlServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        number: int,
    ) -> None:
        self.server = server
        self.node = server.node
        self.reader = reader
        self.writer = writer
        self.label = f"client #{number}"
        self.ready = False
        self.closed = False
        self.limit = proto.HELLO_LIMIT
        self.members: dict[int, Group] = {}
        self.pumps: dict[int, asyncio.Task[None]] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self.sends: deque[tuple[int, int, bytes, bool, Member | None]] = deque()
        self.send_bytes = 0
        """Data bytes in ``sends`` (bounded by ``send_queue_bytes`` through ``_room``)."""
        self.outstanding = 0
        """Requests read whose reply is not sent yet (bounded by ``MAX_OUTSTANDING``)."""
        self.room = asyncio.Event()
        self.send_ready = asyncio.Event()
        self.sent = 0
        """Sends accepted so far: the ``send`` number of the next accepted one is this + 1."""
        self.tickets: dict[int, Ticket] = {}
        self.ticket_order: deque[int] = deque()
        self.sender: asyncio.Task[None] | None = None
        self.hello_timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            server.hello_timeout_s, self._hello_expired
        )

    # ------------------------------------------------------------------ I/O

    def push(self, item: dict[str, Any]) -> None:
        """Queue one frame for the client (never waits; pumps wait on ``drain`` themselves)."""
        if self.writer.is_closing():
            return
        self.writer.write(encode(item))

    def reply(self, req_id: int, result: dict[str, Any] | None = None) -> None:
        self._replied()
        self.push({"re": req_id, "ok": result or {}})

    def fail(self, req_id: int, exc: BaseException) -> None:
        self._replied()
        self.push({"re": req_id, "error": error_to_wire(exc)})

    def _replied(self) -> None:
        self.outstanding -= 1
        self.room.set()

    async def _wait_for_room(self) -> None:
        """Read the next request only when the client is not ahead of the daemon (API-10.1-3).

        A client that pipelines requests without reading the replies, or more sends than flow
        control lets through, is slowed by its own socket's buffer instead of growing the
        daemon's memory: the daemon stops reading while the client has ``MAX_OUTSTANDING``
        requests unanswered, its sends waiting for flow control exceed ``send_queue_bytes``,
        or more than ``WRITE_HIGH_WATER`` bytes for it wait in the socket's buffer.
        """
        bound = self.node.config.send_queue_bytes
        while True:
            if self.writer.transport.get_write_buffer_size() > WRITE_HIGH_WATER:
                await self.writer.drain()
            elif self.outstanding >= MAX_OUTSTANDING or self.send_bytes > bound:
                self.room.clear()
                await self.room.wait()
            else:
                return

    async def run(self) -> None:
        """Read requests until the client goes away, then leave its members."""
        try:
            while True:
                await self._wait_for_room()
                header = await self.reader.readexactly(proto.LENGTH.size)
                (length,) = proto.LENGTH.unpack(header)
                if length > self.limit:
                    raise ControlProtocolError(f"frame of {length} bytes exceeds {self.limit}")
                self.dispatch(proto.decode(await self.reader.readexactly(length)))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed its end (or died)
        except ControlProtocolError as exc:
            _LOG.warning("%s broke the control protocol: %s", self.label, exc)
            self.push({"ev": "closing", "reason": "protocol error", "error": error_to_wire(exc)})
        finally:
            self.disconnected()

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _hello_expired(self) -> None:
        """No hello in time: a client that never greets holds a place and a descriptor."""
        self.hello_timer = None
        if self.ready or self.closed:
            return
        timeout_ms = self.node.config.hello_timeout_ms
        self.server.hello_timeouts.note(
            f"{self.label} sent no hello within {timeout_ms} ms: closed"
        )
        error = ControlProtocolError(f"no hello within hello_timeout_ms ({timeout_ms} ms)")
        self.push({"ev": "closing", "reason": "hello timeout", "error": error_to_wire(error)})
        self.writer.close()  # the reader sees the end of the stream and run() finishes

    # ------------------------------------------------------------------ requests

    def dispatch(self, item: dict[str, Any]) -> None:
        req_id = field(item, "id", int)
        op = field(item, "op", str)
        self.outstanding += 1  # until reply() or fail() answers it (API-10.2-1: exactly once)
        if not self.ready and op != "hello":
            error = ControlProtocolError(f"the first request must be hello, not {op!r}")
            self.fail(req_id, error)
            raise error
        handler = _HANDLERS.get(op)
        if handler is None:
            self.fail(req_id, ControlProtocolError(f"unknown op {op!r}"))
            return
        try:
            handler(self, req_id, item)
        except ControlProtocolError as exc:
            self.fail(req_id, exc)  # a malformed request: refused, the connection stays
            if op == "hello":
                raise

    def on_hello(self, req_id: int, item: dict[str, Any]) -> None:
        version = field(item, "version", int)
        if version != proto.PROTOCOL_VERSION:
            raise ControlProtocolError(
                f"client speaks protocol version {version}; this daemon speaks "
                f"{proto.PROTOCOL_VERSION}"
            )
        node = self.node
        client = item.get("client")
        if isinstance(client, str) and client:
            self.label = f"client #{self.label.rsplit('#', 1)[1]} ({client[:64]})"
        self.ready = True
        if self.hello_timer is not None:
            self.hello_timer.cancel()
            self.hello_timer = None
        self.limit = proto.frame_limit(node.max_message_bytes)
        ring = node.view
        self.reply(
            req_id,
            {
                "version": proto.PROTOCOL_VERSION,
                "server": f"gcs {__version__}",
                "node_id": node.node_id,
                "boot_id": node.boot_id,
                "cluster_name": node.config.cluster_name,
                "max_message_bytes": node.max_message_bytes,
                "subscriber_queue": node.config.subscriber_queue,
                "history_incarnation": node.history_incarnation,
                "ring": None
                if ring is None
                else proto.ring_to_wire(
                    ring.ring_id,
                    ring.members,
                    ring.transitional,
                    ring.joined,
                    ring.left,
                    ring.reason,
                ),
            },
        )
        _LOG.info("%s connected", self.label)

    def on_join(self, req_id: int, item: dict[str, Any]) -> None:
        name = field(item, "group", str)
        queue_size = field(item, "queue_size", int, optional=True)
        modes = {key: field(item, key, bool, optional=True) is True for key in _JOIN_MODES}
        self.spawn(self._join(req_id, name, queue_size, modes))

    async def _join(
        self, req_id: int, name: str, queue_size: int | None, modes: dict[str, bool]
    ) -> None:
        try:
            group = await self.node.join(name, queue_size=queue_size, **modes)
        except (GcsError, ValueError, TypeError) as exc:
            self.fail(req_id, exc)
            return
        handle = group.member.handle
        if self.closed:
            self.server.spawn(group.leave())
            return
        self.members[handle] = group
        self.reply(req_id, {"handle": handle})  # before the member's first event (its view)
        self.pumps[handle] = asyncio.ensure_future(self._pump(handle, group))

    def on_send(self, req_id: int, item: dict[str, Any]) -> None:
        handle = field(item, "handle", int)
        data = field(item, "data", bytes)
        safe = field(item, "safe", bool)
        to = proto.member_from_wire(item["to"]) if "to" in item else None
        self.sends.append((req_id, handle, data, safe, to))
        self.send_bytes += len(data)
        self.send_ready.set()
        if self.sender is None:
            self.sender = asyncio.ensure_future(self._send_loop())

    async def _send_loop(self) -> None:
        """Submit this client's sends one after another (FIFO), each after flow control."""
        while True:
            while not self.sends:
                self.send_ready.clear()
                await self.send_ready.wait()
            req_id, handle, data, safe, to = self.sends.popleft()
            self.send_bytes -= len(data)
            self.room.set()
            group = self.members.get(handle)
            try:
                if group is None:
                    raise GroupClosed(f"member {handle:x} is not joined on this connection")
                if to is None:
                    ticket = await group.send(data, safe)
                else:
                    ticket = await group.send_to(to, data, safe)
            except GcsError as exc:
                self.fail(req_id, exc)
                continue
            self.sent += 1
            self._keep_ticket(self.sent, ticket)
            self.reply(req_id, {"send": self.sent})

    def _keep_ticket(self, number: int, ticket: Ticket) -> None:
        """Remember send ``number``'s ticket for a later ``delivered``; forget delivered ones.

        Own deliveries settle tickets in submission order, so the delivered ones are at the
        front. Only delivered tickets are forgotten (a failed one stays to report its error),
        so a number up to ``sent`` that is not here was delivered: exact, in bounded memory.
        """
        order, tickets = self.ticket_order, self.tickets
        while order and tickets[order[0]].done() and not tickets[order[0]].failed():
            del tickets[order.popleft()]
        tickets[number] = ticket
        order.append(number)

    def on_delivered(self, req_id: int, item: dict[str, Any]) -> None:
        number = field(item, "send", int)
        if not 1 <= number <= self.sent:
            error = InvalidArgument(
                f"send {number} is not a send of this connection (it made {self.sent})"
            )
            self.fail(req_id, error)
            return
        ticket = self.tickets.get(number)
        if ticket is None:
            self.reply(req_id)  # forgotten because it was delivered (see _keep_ticket)
            return
        self.spawn(self._delivered(req_id, ticket))

    async def _delivered(self, req_id: int, ticket: Ticket) -> None:
        try:
            await ticket.delivered()
        except GcsError as exc:
            self.fail(req_id, exc)
            return
        self.reply(req_id)

    def on_leave(self, req_id: int, item: dict[str, Any]) -> None:
        handle = field(item, "handle", int)
        group = self.members.get(handle)
        if group is None:  # never joined here, or its stream already ended (its "end" was sent)
            self.fail(req_id, GroupClosed(f"member {handle:x} is not joined on this connection"))
            return
        self.spawn(self._leave(req_id, handle, group))

    async def _leave(self, req_id: int, handle: int, group: Group) -> None:
        try:
            await group.leave()
        except GcsError as exc:
            self.fail(req_id, exc)
            return
        pump = self.pumps.get(handle)
        if pump is not None:
            await asyncio.wait([pump], timeout=5)  # its "end" event goes out before the reply
        self.reply(req_id)

    def on_status(self, req_id: int, item: dict[str, Any]) -> None:
        try:
            self.reply(req_id, self.server.status())
        except GcsError as exc:
            self.fail(req_id, exc)

    def on_dump(self, req_id: int, item: dict[str, Any]) -> None:
        path = Path(field(item, "path", str))
        if not path.is_absolute():
            self.fail(req_id, ControlProtocolError(f"dump path {path} is not absolute"))
            return
        self.spawn(self._dump(req_id, path))

    async def _dump(self, req_id: int, path: Path) -> None:
        try:
            written = await self.server.dump(path)
            size = written.stat().st_size
        except (GcsError, OSError) as exc:
            self.fail(req_id, GcsError(f"cannot dump the flight recorder: {exc}"))
            return
        self.reply(req_id, {"path": os.fspath(written), "bytes": size})

    # ------------------------------------------------------------------ the node list

    def _nodes_reply(self) -> dict[str, Any]:
        verdict = self.node.quorum
        expected = None if verdict is None else verdict.expected_votes
        return proto.nodes_to_wire(self.node.nodes(), expected)

    def on_nodes(self, req_id: int, item: dict[str, Any]) -> None:
        self.reply(req_id, self._nodes_reply())

    def on_add_node(self, req_id: int, item: dict[str, Any]) -> None:
        node_id = field(item, "node", int)
        address = field(item, "address", str)
        votes = field(item, "votes", int)
        self.spawn(self._change(req_id, self.node.add_node(node_id, address, votes)))

    def on_remove_node(self, req_id: int, item: dict[str, Any]) -> None:
        node_id = field(item, "node", int)
        self.spawn(self._change(req_id, self.node.remove_node(node_id)))

    async def _change(self, req_id: int, change: Awaitable[object]) -> None:
        """Wait for a node-list change to be delivered; reply with the list or the refusal."""
        try:
            await change
        except GcsError as exc:
            self.fail(req_id, exc)
            return
        self.reply(req_id, self._nodes_reply())

    # ------------------------------------------------------------------ events

    async def _pump(self, handle: int, group: Group) -> None:
        """Copy one member's stream to the socket; end it with an ``end`` event."""
        error: BaseException | None = None
        writer = self.writer
        transport = writer.transport
        try:
            async for event in group.events():
                if type(event) is Message:
                    writer.write(encode(proto.message_to_wire(handle, event)))
                elif type(event) is Quorum:
                    quorum = proto.quorum_to_wire(event)
                    writer.write(encode({"ev": "quorum", "handle": handle, "quorum": quorum}))
                else:
                    view = proto.view_to_wire(event)  # type: ignore[arg-type]
                    writer.write(encode({"ev": "view", "handle": handle, "view": view}))
                if transport.get_write_buffer_size() > WRITE_HIGH_WATER:
                    await writer.drain()
        except GcsError as exc:
            error = exc
        except ConnectionError:
            return
        finally:
            self.members.pop(handle, None)
        self.push({"ev": "end", "handle": handle, "error": error and error_to_wire(error)})

    # ------------------------------------------------------------------ endings

    def disconnected(self) -> None:
        """The client is gone: stop its work and leave every member it still has."""
        if self.closed:
            return
        self.closed = True
        if self.hello_timer is not None:
            self.hello_timer.cancel()
            self.hello_timer = None
        for task in [*self.tasks, *self.pumps.values()]:
            task.cancel()
        if self.sender is not None:
            self.sender.cancel()
        self.sends.clear()
        leaving = [g for g in self.members.values() if not g.closed]
        if leaving and not self.node.closed:
            _LOG.info("%s disconnected: leaving its %d member(s)", self.label, len(leaving))
            for group in leaving:
                self.server.spawn(_leave_quietly(group))
        elif self.ready:
            _LOG.info("%s disconnected", self.label)
        self.members.clear()
        self.writer.close()

    async def finish(self) -> None:
        """At daemon shutdown: wait briefly for pumps to write their ends, then close."""
        pumps = [p for p in self.pumps.values() if not p.done()]
        if pumps:
            await asyncio.wait(pumps, timeout=2)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.drain(), 2)
        self.writer.close()


async def _leave_quietly(group: Group) -> None:
    with contextlib.suppress(GcsError, NodeClosed):
        await group.leave()


_JOIN_MODES = ("primary", "quorum_events", "uncommitted")
"""The optional ``join`` flags, passed to ``Node.join`` as they are (RFC 0006 §10.2)."""

_HANDLERS: dict[str, Callable[[Connection, int, dict[str, Any]], None]] = {
    "hello": Connection.on_hello,
    "join": Connection.on_join,
    "send": Connection.on_send,
    "delivered": Connection.on_delivered,
    "leave": Connection.on_leave,
    "status": Connection.on_status,
    "dump": Connection.on_dump,
    "nodes": Connection.on_nodes,
    "add_node": Connection.on_add_node,
    "remove_node": Connection.on_remove_node,
}
