"""``gcs send -`` reads standard input line by line as it arrives, a bounded amount ahead
(``gcs.cli.lines``); the end-to-end test with real processes is ``test_cli.py``."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

import gcs
from gcs.cli import lines
from gcs.cli.lines import read_lines


async def _collect(data: bytes, limit: int = 100) -> list[bytes]:
    """The lines ``read_lines`` yields for ``data`` written to a pipe by another thread (more
    than a pipe holds would block a write from this one before anything reads it). The read
    end is closed only once the reading thread is done, so the next pipe cannot reuse its
    number under a thread that still reads it."""
    read_fd, write_fd = os.pipe()
    before = set(threading.enumerate())

    def writer() -> None:
        try:
            os.write(write_fd, data)
        except BrokenPipeError:
            pass  # the reader stopped early (a line over the limit): the rest is not wanted
        finally:
            os.close(write_fd)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    readers = set()
    try:
        lines_of = read_lines(read_fd, limit)
        readers = set(threading.enumerate()) - before - {thread}
        return [line async for line in lines_of]
    finally:
        readers |= set(threading.enumerate()) - before - {thread}
        for reader in readers:  # stopped: it ends after its current read
            await asyncio.to_thread(reader.join, 10)
        os.close(read_fd)
        thread.join(timeout=10)


async def test_lines_without_their_endings_and_a_last_line_without_newline() -> None:
    got = await _collect(b"one\ntwo\r\n\nthree")
    assert got == [b"one", b"two", b"", b"three"]
    assert await _collect(b"") == []
    assert await _collect(b"\xff\xfe binary\n") == [b"\xff\xfe binary"]


async def test_a_line_longer_than_the_limit_is_an_error_naming_it() -> None:
    with pytest.raises(gcs.InvalidArgument, match="line 2 is longer than 10 bytes"):
        await _collect(b"short\n" + b"x" * 11 + b"\n", limit=10)
    with pytest.raises(gcs.InvalidArgument, match="line 1 is longer than 10 bytes"):
        await _collect(b"y" * 200_000, limit=10)  # no newline at all: not buffered unboundedly
    assert await _collect(b"z" * 10 + b"\r\n", limit=10) == [b"z" * 10]


async def test_a_consumer_that_stops_taking_lines_stops_the_reading() -> None:
    """Backpressure: while the consumer (gcs send, waiting for flow control) takes no line,
    at most AHEAD chunks are read ahead, and the writer of the pipe blocks."""
    read_fd, write_fd = os.pipe()
    total = 8 * 1024 * 1024
    line = b"x" * 1023 + b"\n"
    written = 0

    def writer() -> None:  # owns write_fd: closes it after ``total`` bytes (end of file)
        nonlocal written
        while written < total:
            written += os.write(write_fd, line)
        os.close(write_fd)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    stream = read_lines(read_fd, 4096)
    try:
        assert await anext(stream) == line[:-1]
        await asyncio.sleep(0.5)  # the consumer is busy: nothing more is taken
        bound = (lines.AHEAD + 2) * lines.CHUNK + 1024 * 1024  # + the kernel's pipe buffer
        assert written < bound, f"{written} bytes read ahead of a stalled consumer"
        rest = [taken async for taken in stream]  # taking lines again lets the writer go on
        assert len(rest) == total // len(line) - 1 and written == total
    finally:
        await stream.aclose()
        thread.join(timeout=10)
        os.close(read_fd)
