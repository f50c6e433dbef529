"""A lock service on gcs: lease-free locks, released when their holder leaves the view.

Run one server per node, each with its own config file::

    python examples/locks.py node1.toml --socket /run/locks1.sock [--log locks-1.jsonl]

A client names itself and talks JSON lines to any server::

    {"op": "acquire", "lock": "x", "client": "alice"}  -> {"ok": true, "token": 12}  (waits)
    {"op": "release", "lock": "x", "client": "alice"}  -> {"ok": true}
    {"op": "status"}

How it works. The lock table is replicated state: every server joins group ``locks`` in
primary-component mode with state transfer (``gcs.join_with_state(..., primary=True)``), and
every change — acquire, release, the release of a departed server's locks — is applied in the
total order, so every replica grants the same lock to the same client at the same point, and
only a quorate partition grants anything. Waiters queue in order; a lock goes to the next
waiter when it is released. A lock is held on behalf of (server member, client): when the
holder's server leaves the view — it crashed, was partitioned away, or shut down — every
replica of the quorate side releases its locks at the same point of the stream (at the first
quorate point after the view that dropped it). No lease, no clock.

Fencing. A grant's ``token`` is the state's version at the grant: it increases with every
grant of a lock. A holder cut off in a minority learns that it may have lost its locks only
when its server notices the partition (``status`` says ``"quorate": false`` and requests
fail); until then it may still act while the majority has granted the lock again. A resource
that checks tokens (rejecting any lower than the highest it has seen) makes that window
harmless — the standard answer for lease-free locks.

``--log FILE`` appends every applied change (version, op, lock, holder), for tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gcs

GROUP = "locks"
TIMEOUT_S = 30.0


class Table:
    """The replicated lock table: holder and FIFO waiters per lock, and a version."""

    def __init__(self, log: Path | None) -> None:
        self.holders: dict[str, str] = {}
        self.waiters: dict[str, list[str]] = {}
        self.version = 0
        self.log = None if log is None else log.open("a", encoding="utf-8")

    def acquire(self, lock: str, who: str) -> None:
        if self.holders.get(lock) == who or who in self.waiters.get(lock, []):
            return
        if lock in self.holders:
            self.waiters.setdefault(lock, []).append(who)
        else:
            self._grant(lock, who)

    def release(self, lock: str, who: str) -> None:
        if self.holders.get(lock) == who:
            self._change("release", lock, who)
            del self.holders[lock]
            queue = self.waiters.pop(lock, [])
            if queue:
                self._grant(lock, queue.pop(0))
                if queue:
                    self.waiters[lock] = queue
        elif who in self.waiters.get(lock, []):
            self.waiters[lock].remove(who)

    def release_members(self, present: set[str]) -> None:
        """Everything held or awaited by clients of servers no longer in the view."""
        for lock in sorted(self.waiters):
            self.waiters[lock] = [w for w in self.waiters[lock] if _server(w) in present]
        for lock, who in sorted(self.holders.items()):
            if _server(who) not in present:
                self.release(lock, who)

    def _grant(self, lock: str, who: str) -> None:
        self.holders[lock] = who
        self._change("grant", lock, who)

    def _change(self, op: str, lock: str, who: str) -> None:
        self.version += 1
        self._note(version=self.version, op=op, lock=lock, holder=who)

    def snapshot(self) -> bytes:
        item = {"version": self.version, "holders": self.holders, "waiters": self.waiters}
        return json.dumps(item, sort_keys=True).encode()

    def install(self, state: bytes) -> None:
        item = json.loads(state)
        self.version, self.holders, self.waiters = item["version"], item["holders"], item["waiters"]
        self._note(installed=self.version)

    def merge(self, sides: Sequence[tuple[tuple[gcs.Member, ...], bytes]]) -> bytes:
        """The freshest side (only called outside primary mode, where the protocol picks it)."""
        return max((state for _, state in sides), key=lambda s: (json.loads(s)["version"], s))

    def _note(self, **fields: Any) -> None:
        if self.log is not None:
            self.log.write(json.dumps(fields, sort_keys=True) + "\n")
            self.log.flush()


def _server(who: str) -> str:
    return who.split("|", 1)[0]


class Server:
    def __init__(self, group: gcs.StateGroup, table: Table) -> None:
        self.group = group
        self.table = table
        self.waiting: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] = {}

    def quorate(self) -> bool:
        quorum, view = self.group.quorum, self.group.view
        return (
            quorum is not None
            and quorum.quorate
            and view is not None
            and quorum.ring_id == view.view_id.ring
        )

    async def apply_forever(self) -> None:
        async for event in self.group:
            if isinstance(event, gcs.Message):
                item = json.loads(event.data)
                getattr(self.table, item["op"])(item["lock"], item["who"])
            elif self.quorate() and self.group.view is not None:
                self.table.release_members({str(m) for m in self.group.view.members})
            self._answer()

    def _answer(self) -> None:
        for (lock, who), waiter in list(self.waiting.items()):
            if self.table.holders.get(lock) == who and not waiter.done():
                waiter.set_result({"ok": True, "token": self.table.version})
                del self.waiting[(lock, who)]

    async def request(self, item: dict[str, Any]) -> dict[str, Any]:
        op, lock, client = item.get("op"), str(item.get("lock")), str(item.get("client"))
        if op == "status":
            return {
                "ok": True,
                "version": self.table.version,
                "quorate": self.quorate(),
                "holders": self.table.holders,
                "installed": self.group.installed,
                "members": [str(m) for m in (self.group.view.members if self.group.view else ())],
            }
        if op not in ("acquire", "release"):
            return {"ok": False, "error": f"unknown op {op!r}"}
        if not self.quorate():
            return {"ok": False, "error": "not quorate"}
        who = f"{self.group.member}|{client}"
        waiter = asyncio.get_running_loop().create_future()
        if op == "acquire":
            self.waiting[(lock, who)] = waiter
        message = {"op": op, "lock": lock, "who": who}
        await self.group.send(json.dumps(message).encode(), safe=True)
        if op == "release":
            return {"ok": True}
        try:
            return await asyncio.wait_for(waiter, TIMEOUT_S)
        except TimeoutError:
            self.waiting.pop((lock, who), None)
            return {"ok": False, "error": "timeout (still queued)"}


async def serve(config: gcs.Config, socket_path: Path, log: Path | None) -> None:
    table = Table(log)
    async with gcs.Node(config) as node:
        group = await gcs.join_with_state(node, GROUP, table, primary=True)
        server = Server(group, table)

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while line := await reader.readline():
                    reply = await server.request(json.loads(line))
                    writer.write(json.dumps(reply).encode() + b"\n")
                    await writer.drain()
            writer.close()

        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
        listener = await asyncio.start_unix_server(client, path=os.fspath(socket_path))
        print(f"lock server {group.member} ready on {socket_path}", flush=True)
        async with listener:
            await server.apply_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", help="this node's gcs configuration (TOML)")
    parser.add_argument("--socket", required=True, help="Unix socket for clients")
    parser.add_argument("--log", default=None, help="append applied changes here (JSON lines)")
    args = parser.parse_args()
    config = gcs.Config.load(args.config)
    gcs.run(serve(config, Path(args.socket), None if args.log is None else Path(args.log)))


if __name__ == "__main__":
    main()
