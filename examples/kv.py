"""A replicated key-value store on gcs: writes through the total order, in the quorate partition.

Run one process per node (each with its own config file, RFC 0006 appendix A)::

    python examples/kv.py node1.toml --socket /run/kv1.sock [--log applied-1.jsonl]

and talk to any replica with JSON lines over its Unix socket::

    {"op": "put", "key": "x", "value": "1"}       -> {"ok": true, "version": 17}
    {"op": "get", "key": "x"}                      -> {"ok": true, "value": "1", "version": 17,
                                                       "quorate": true}
    {"op": "get", "key": "x", "linearizable": true}
    {"op": "status"}

How it works. Every replica joins group ``kv`` in primary-component mode with state transfer
(``gcs.join_with_state(..., primary=True)``), so it receives messages only while its partition
is quorate, a new or restarted replica receives the state at a cut and then every write after
it, and after a partition heals the freshest side's state wins (in primary mode only one side
can have applied writes; the protocol installs it, with the last quorate configuration's
unconfirmed tail, RFC 0008 §4.2). A ``put`` is a *safe* message; the
replica that received it answers once it applied it, which is when every member of the quorate
configuration has it: an acknowledged write survives any minority of failures and is never
undone by a merge. A ``put`` to a replica that is not quorate is refused at once; one that
times out may or may not be applied (the client should read back).

Reads. A plain ``get`` is served from this replica's state: it reflects every write this
replica acknowledged and every write it applied, and lags the quorate partition by the time the
ring takes to deliver (about a token rotation) while quorate; in a partition that is not
quorate it may be arbitrarily stale, and says so (``"quorate": false``). A ``linearizable``
``get`` goes through the total order like a write (a safe read marker) and answers with the
state at the marker: it sees every write acknowledged before it was sent, anywhere.

``--log FILE`` appends one JSON line per applied write and per installed state (version, key,
value, hash chain), for tests that check every replica applied one history.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gcs

GROUP = "kv"
TIMEOUT_S = 10.0


class Store:
    """The replicated state: the data, its version (writes applied) and a hash chain."""

    def __init__(self, log: Path | None) -> None:
        self.data: dict[str, str] = {}
        self.version = 0
        self.chain = "0" * 32
        self.log = None if log is None else log.open("a", encoding="utf-8")

    def apply(self, key: str, value: str, req: str) -> None:
        self.version += 1
        self.data[key] = value
        text = f"{self.chain}|{key}|{value}|{req}".encode()
        self.chain = hashlib.blake2b(text, digest_size=16).hexdigest()
        self._note(version=self.version, key=key, value=value, req=req, chain=self.chain)

    def snapshot(self) -> bytes:
        state = {"version": self.version, "chain": self.chain, "data": self.data}
        return json.dumps(state, sort_keys=True).encode()

    def install(self, state: bytes) -> None:
        item = json.loads(state)
        self.version, self.chain, self.data = item["version"], item["chain"], item["data"]
        self._note(installed=self.version, chain=self.chain)

    def merge(self, sides: Sequence[tuple[tuple[gcs.Member, ...], bytes]]) -> bytes:
        """The side with the highest (version, chain). Only called outside primary mode: in
        primary mode the protocol itself installs the freshest side."""
        ranked = [(json.loads(state), state) for _, state in sides]
        return max(ranked, key=lambda s: (s[0]["version"], s[0]["chain"]))[1]

    def _note(self, **fields: Any) -> None:
        if self.log is not None:
            self.log.write(json.dumps(fields, sort_keys=True) + "\n")
            self.log.flush()


class Replica:
    def __init__(self, group: gcs.StateGroup, store: Store) -> None:
        self.group = group
        self.store = store
        self.waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.ids = itertools.count(1)

    async def apply_forever(self) -> None:
        async for event in self.group:
            if isinstance(event, gcs.Message):
                self._apply(json.loads(event.data), event.sender == self.group.member)

    def _apply(self, item: dict[str, Any], mine: bool) -> None:
        if item["op"] == "put":
            self.store.apply(item["key"], item["value"], item["req"])
            reply = {"ok": True, "version": self.store.version}
        else:  # a linearizable read's marker
            value = self.store.data.get(item["key"])
            reply = {"ok": True, "value": value, "version": self.store.version}
        waiter = self.waiting.pop(item["req"], None) if mine else None
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    def quorate(self) -> bool:
        quorum = self.group.quorum
        return quorum is not None and quorum.quorate

    async def request(self, item: dict[str, Any]) -> dict[str, Any]:
        op = item.get("op")
        if op == "status":
            members = [] if self.group.view is None else [str(m) for m in self.group.view.members]
            return {
                "ok": True,
                "version": self.store.version,
                "chain": self.store.chain,
                "quorate": self.quorate(),
                "members": members,
                "installed": self.group.installed,
            }
        if op == "get" and not item.get("linearizable"):
            value = self.store.data.get(str(item.get("key")))
            return {
                "ok": True,
                "value": value,
                "version": self.store.version,
                "quorate": self.quorate(),
            }
        if op not in ("put", "get"):
            return {"ok": False, "error": f"unknown op {op!r}"}
        if not self.quorate():
            return {"ok": False, "error": "not quorate"}
        req = f"{self.group.member}:{next(self.ids)}"
        message = {
            "op": op,
            "key": str(item.get("key")),
            "value": str(item.get("value")),
            "req": req,
        }
        waiter = asyncio.get_running_loop().create_future()
        self.waiting[req] = waiter
        await self.group.send(json.dumps(message).encode(), safe=True)
        try:
            return await asyncio.wait_for(waiter, TIMEOUT_S)
        except TimeoutError:
            self.waiting.pop(req, None)
            return {"ok": False, "error": "timeout (the write may still be applied)"}


async def serve(config: gcs.Config, socket_path: Path, log: Path | None) -> None:
    store = Store(log)
    async with gcs.Node(config) as node:
        group = await gcs.join_with_state(node, GROUP, store, primary=True)
        replica = Replica(group, store)

        async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while line := await reader.readline():
                    reply = await replica.request(json.loads(line))
                    writer.write(json.dumps(reply).encode() + b"\n")
                    await writer.drain()
            writer.close()

        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
        server = await asyncio.start_unix_server(client, path=os.fspath(socket_path))
        print(f"kv replica {group.member} ready on {socket_path}", flush=True)
        async with server:
            await replica.apply_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("config", help="this node's gcs configuration (TOML)")
    parser.add_argument("--socket", required=True, help="Unix socket for clients")
    parser.add_argument("--log", default=None, help="append applied writes here (JSON lines)")
    args = parser.parse_args()
    config = gcs.Config.load(args.config)
    gcs.run(serve(config, Path(args.socket), None if args.log is None else Path(args.log)))


if __name__ == "__main__":
    main()
