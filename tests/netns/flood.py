"""Open many connections to a daemon's control socket and hold them: a local attacker.

    python flood.py SOCKET COUNT     -> prints one JSON summary line, then holds every
                                        connection until standard input closes

Every other connection says ``hello`` (a client that then idles); the rest never say anything
(a client that never greets). Each connect is retried for up to ``CONNECT_S`` while the
daemon's backlog is full (a non-blocking Unix-socket connect fails with EAGAIN then), and after
``GIVE_UP_AFTER`` timeouts the rest are not attempted. After the attempts the summary counts
what the daemon did with them:
``served`` (still open, nothing to read or only the hello reply), ``refused`` (a ``closing``
frame, by its reason), ``closed`` (closed without a frame) and ``failed`` (connect errors, by
errno name). Used by ``test_daemon_limits.py``; it raises its own descriptor limit first so
that it, not the daemon, has room for every connection.
"""

from __future__ import annotations

import contextlib
import errno
import json
import resource
import socket
import struct
import sys
import time
from collections import Counter

import cbor2

from gcs.daemon import protocol as proto

CONNECT_S = 0.5
GIVE_UP_AFTER = 20
"""Connect timeouts after which the remaining attempts are not made (a daemon that stopped
accepting would otherwise hold the test for ``count * CONNECT_S``)."""
SETTLE_S = 1.0
HELLO = {"op": "hello", "id": 1, "version": proto.PROTOCOL_VERSION, "client": "flood"}


def _raise_own_limit(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = count + 64
    if soft != resource.RLIM_INFINITY and soft < want:
        new_hard = hard if hard == resource.RLIM_INFINITY or hard >= want else want
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, new_hard))


def _connect(path: str, index: int, failed: Counter[str]) -> socket.socket | None:
    """One attempt: retry while the daemon's backlog is full (EAGAIN), up to ``CONNECT_S``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    deadline = time.monotonic() + CONNECT_S
    while True:
        try:
            sock.connect(path)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                failed["timeout"] += 1
                sock.close()
                return None
            time.sleep(0.001)
        except OSError as exc:
            failed[errno.errorcode.get(exc.errno or 0, str(exc.errno))] += 1
            sock.close()
            return None
    if index % 2 == 0:
        with contextlib.suppress(OSError):  # refused at once: classified later
            sock.send(proto.encode(HELLO))
    return sock


def _classify(sock: socket.socket) -> str:
    """What the daemon did with one connection, from what can be read without waiting."""
    chunks = []
    try:
        while True:
            data = sock.recv(65536, socket.MSG_DONTWAIT)
            if not data:
                break
            chunks.append(data)
    except BlockingIOError:
        pass
    except OSError:
        pass  # reset: the daemon closed with our hello unread; what came before still counts
    data = b"".join(chunks)
    while len(data) >= 4:
        (length,) = struct.unpack(">I", data[:4])
        item = cbor2.loads(data[4 : 4 + length])
        data = data[4 + length :]
        if isinstance(item, dict) and item.get("ev") == "closing":
            return f"refused: {item.get('reason')}"
    try:
        if sock.recv(1, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b"":
            return "closed"
    except BlockingIOError:
        return "served"
    except OSError:
        return "closed"
    return "served"


def main(path: str, count: int) -> None:
    _raise_own_limit(count)
    failed: Counter[str] = Counter()
    held = []
    for index in range(count):
        if failed["timeout"] >= GIVE_UP_AFTER:
            failed["not attempted"] = count - index
            break
        sock = _connect(path, index, failed)
        if sock is not None:
            held.append(sock)
    time.sleep(SETTLE_S)
    outcomes = Counter(_classify(s) for s in held)
    summary = {
        "attempts": count,
        "connected": len(held),
        "served": outcomes.pop("served", 0),
        "closed": outcomes.pop("closed", 0),
        "refused": dict(outcomes),
        "failed": dict(failed),
    }
    print(json.dumps(summary), flush=True)
    sys.stdin.read()  # hold every connection until the test closes our stdin
    for sock in held:
        sock.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
