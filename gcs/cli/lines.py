"""The lines of a file descriptor as they arrive, for ``gcs send -`` (``tail -f log | gcs send``).

Why a thread doing ``os.read``: standard input may be a pipe, a terminal or a regular file, and
only a blocking read works on all three (the event loop cannot watch a regular file, and making
a terminal non-blocking would change it for the shell too). The thread holds no Python-level
lock while it waits (unlike ``sys.stdin.buffer``), so the process can exit while it is blocked;
it is a daemon thread for that reason, and lives until end of file or the end of the process.

Backpressure: the thread hands chunks over through a queue of ``AHEAD`` chunks, and the
consumer takes the next line only when it is ready for it (``gcs send`` after the daemon
accepted the previous message, i.e. after flow control), so at most ``AHEAD`` chunks of
``CHUNK`` bytes and one partial line are ever read ahead of the ring.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import AsyncIterator

from gcs.errors import InvalidArgument

__all__ = ["read_lines"]

CHUNK = 64 * 1024
AHEAD = 4


def _reader(
    fd: int,
    loop: asyncio.AbstractEventLoop,
    queue: asyncio.Queue[bytes | OSError],
    stop: threading.Event,
) -> None:
    """Thread body: read ``fd`` until end of file or ``stop``, handing each chunk to the loop."""
    while not stop.is_set():
        try:
            chunk: bytes | OSError = os.read(fd, CHUNK)
        except OSError as exc:
            chunk = exc
        if stop.is_set() or loop.is_closed():
            return  # the consumer is gone: this chunk is not wanted
        try:
            asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result()
        except (RuntimeError, concurrent.futures.CancelledError):
            return  # the loop is gone or closing: nobody wants more lines
        if not isinstance(chunk, bytes) or not chunk:
            return


async def read_lines(fd: int, limit: int) -> AsyncIterator[bytes]:
    """Each line of ``fd`` without its ending (``\\n`` or ``\\r\\n``), as soon as it is complete.

    A last line without a newline is yielded at end of file. A line longer than ``limit``
    bytes raises ``InvalidArgument`` naming its number; a read error raises ``OSError``. When
    the consumer stops early, the reading thread stops after its current read (a thread
    blocked on a full queue is released), so it does not read on for nobody.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | OSError] = asyncio.Queue(AHEAD)
    stop = threading.Event()
    threading.Thread(target=_reader, args=(fd, loop, queue, stop), daemon=True).start()
    try:
        async for line in _split(queue, limit):
            yield line
    finally:
        stop.set()
        while not queue.empty():  # a put waiting for room completes, and the thread sees stop
            queue.get_nowait()


async def _split(queue: asyncio.Queue[bytes | OSError], limit: int) -> AsyncIterator[bytes]:
    pending = b""
    number = 0
    while True:
        chunk = await queue.get()
        if isinstance(chunk, OSError):
            raise chunk
        if not chunk:
            break
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            number += 1
            yield _checked(line.removesuffix(b"\r"), number, limit)
        if len(pending) > limit + 1:  # + 1: a "\r" that may end it
            raise InvalidArgument(f"line {number + 1} is longer than {limit} bytes")
    if pending:
        yield _checked(pending, number + 1, limit)


def _checked(line: bytes, number: int, limit: int) -> bytes:
    if len(line) > limit:
        raise InvalidArgument(f"line {number} is longer than {limit} bytes")
    return line
