"""An accept loop that serves at most ``cap`` connections and never crashes or spins.

Why not ``asyncio.start_server``: it accepts a whole backlog at once (up to 100 descriptors
before any callback could refuse one), and on EMFILE it logs a traceback every second. This
loop accepts one connection at a time, so a connection beyond the cap holds a descriptor only
while ``refuse`` writes it one frame and closes it (RFC 0006 API-10.1-3): the descriptors the
daemon uses for clients never exceed ``cap + 1``. When ``accept`` itself fails for lack of a
resource (EMFILE, ENFILE, ENOBUFS, ENOMEM), the loop stops watching the socket for a while
(doubling from ``BACKOFF_MIN_S`` to ``BACKOFF_MAX_S``) instead of retrying at once, and says so
in one throttled log line (``gcs.daemon.throttle``); waiting clients stay in the kernel's
backlog meanwhile.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

from gcs.daemon.throttle import ThrottledLog

__all__ = ["BACKLOG", "Listener", "open_stream"]

BACKLOG = 128
ACCEPT_BATCH = 32
"""Connections accepted per wake-up before the loop runs other work (the rest wait a turn)."""
BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 2.0
_RESOURCE_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_TRANSIENT_ERRNOS = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EINTR})


class Listener:
    """Accepts on ``sock``; ``serve(conn)`` up to ``cap`` at once, ``refuse(conn)`` beyond.

    ``serve`` owns the connection from then on and calls ``release()`` when it is closed;
    ``refuse`` must close it before returning.
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        cap: int,
        serve: Callable[[socket.socket], None],
        refuse: Callable[[socket.socket, int], None],
        logger: logging.Logger,
        name: str,
        cap_reason: str = "",
    ) -> None:
        self.sock = sock
        self.cap = cap
        self.cap_reason = cap_reason or f"at most {cap}"
        self.active = 0
        self._serve = serve
        self._refuse = refuse
        self._name = name
        self._loop = asyncio.get_running_loop()
        self._backoff = BACKOFF_MIN_S
        self._paused: asyncio.TimerHandle | None = None
        self._closed = False
        self.refusals = ThrottledLog(logger, logging.WARNING, f"{name} connections refused")
        self.accept_errors = ThrottledLog(logger, logging.ERROR, f"{name} accept failures")
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._on_readable)

    def release(self) -> None:
        """A served connection closed: its place is free again."""
        self.active -= 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._paused is not None:
            self._paused.cancel()
        else:
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self.refusals.close()
        self.accept_errors.close()

    def _on_readable(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _TRANSIENT_ERRNOS:
                    continue
                self._pause(exc)
                return
            self._backoff = BACKOFF_MIN_S
            conn.setblocking(False)
            if self.active >= self.cap:
                self.refusals.note(
                    f"{self._name}: refused a connection: {self.active} served, its limit "
                    f"({self.cap_reason})"
                )
                self._refuse(conn, self.active)
                continue
            self.active += 1
            self._serve(conn)

    def _pause(self, exc: OSError) -> None:
        """Stop accepting for a while (out of descriptors or memory): no busy loop, one line."""
        delay = self._backoff
        self._backoff = min(BACKOFF_MAX_S, self._backoff * 2)
        reason = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        self.accept_errors.note(
            f"{self._name}: cannot accept a connection ({reason}: {exc.strerror}); "
            f"{self.active} served; accepting again in {delay:.1f} s"
        )
        self._loop.remove_reader(self.sock.fileno())
        self._paused = self._loop.call_later(delay, self._resume)

    def _resume(self) -> None:
        self._paused = None
        if not self._closed:
            self._loop.add_reader(self.sock.fileno(), self._on_readable)


async def open_stream(
    sock: socket.socket, limit: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio streams over an accepted socket (what ``start_server`` hands its callback)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer
