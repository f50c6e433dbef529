"""The event loop: uvloop by default, and one log line when a node runs on another loop.

Why uvloop is a runtime dependency (RFC 0006 §1, §9): asyncio's default loop reads
one datagram per selector wake-up and tops out near 30k datagrams/s on the reference machine,
dropping most of a burst; uvloop takes in over 250k/s on the same machine. A ring runs
at the speed of its slowest member, so one node on the default loop slows everyone.

``gcs.run(main)`` creates the loop through ``asyncio.Runner(loop_factory=...)`` rather than an
event-loop policy: policies are deprecated from Python 3.14.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["check_loop", "is_uvloop", "new_event_loop", "run"]

_LOG = logging.getLogger("gcs.runtime.loop")
T = TypeVar("T")

_warned: set[str] = set()  # loop types already reported (the log is once per process)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop where uvloop is installed (a dependency on CPython/POSIX), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def is_uvloop(loop: asyncio.AbstractEventLoop) -> bool:
    return type(loop).__module__.startswith("uvloop")


def check_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Log once per process when a node starts on a loop that is not uvloop."""
    if _warned or is_uvloop(loop):
        return
    _warned.add(type(loop).__name__)
    _LOG.warning(
        "gcs node running on %s, not uvloop: expect roughly 8x fewer datagrams/s before drops. "
        "Start the application with gcs.run(main()) or asyncio.Runner(loop_factory="
        "uvloop.new_event_loop).",
        type(loop).__name__,
    )


def run(
    main: Coroutine[Any, Any, T] | Callable[[], Coroutine[Any, Any, T]],
    *,
    debug: bool | None = None,
) -> T:
    """Run ``main`` (a coroutine, or a function returning one) to completion on uvloop."""
    coro = main() if callable(main) else main
    with asyncio.Runner(debug=debug, loop_factory=new_event_loop) as runner:
        return runner.run(coro)
