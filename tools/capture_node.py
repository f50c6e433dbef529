"""One node of the capture run (``tools/make_capture.py``): a ``gcs.Node`` that records its own
history — the configurations it installed, the tokens it sent, the messages it delivered — as
its core produced them, and takes commands on stdin.

Why a node records itself. The capture's expected sequence must come from the nodes, not from
an observer of the capture, or the observer would be checked against itself. A tap
(``gcs.runtime.tap``) sees every effect of every core call before the driver executes it; this
one writes the effects that matter, one JSON object per line, with one ``os.write`` per core
call to a file opened with ``O_APPEND``, so a ``kill -9`` leaves a complete record of everything
the node did up to its last call (and, rarely, the effects of that call which the kill then
kept off the network; the capture tool checks for that and runs again).

Records (``--record``): ``{"configuration": {"kind", "ring_id", "members"}}``,
``{"deliver": {"origin", "seq", "sender", "records"}}`` and ``{"token": {"ring_id", "token_seq",
"dest"}}`` for every ORF token sent, ring ids as ``{"rep", "seq"}``, record data in hex.

Commands on stdin, one per line: ``join GROUP``; ``send GROUP COUNT [SAFE-EVERY [SIZE]]``
(messages ``n<node>-<counter>``, padded with dots to SIZE bytes; every SAFE-EVERY-th safe);
``quit``. Events on stdout, one JSON object per line: ``ring`` (a ring
configuration: ``ring_id``, ``members``, ``transitional``), ``joined``, ``delivered`` (the
running count of data messages delivered), ``sent``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

import gcs
from gcs.history.recorder import InputKind
from gcs.totem.effects import Configuration, Deliver, Effect, Send
from gcs.wire.frames import OrfToken, RingId


def _ring(ring: RingId) -> dict[str, int]:
    return {"rep": ring.rep, "seq": ring.seq}


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class RecordingTap:
    """Writes the node's configurations, deliveries and token sends (see the module docstring)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def on_input(self, kind: InputKind, arg1: object, arg2: object) -> None:
        return

    def on_effects(self, effects: list[Effect]) -> None:
        rows = [row for effect in effects if (row := _row(effect)) is not None]
        if rows:
            os.write(self.fd, "".join(json.dumps(r) + "\n" for r in rows).encode())

    def on_failure(self, exc: BaseException) -> None:
        os.write(self.fd, (json.dumps({"failure": repr(exc)}) + "\n").encode())


def _row(effect: Effect) -> dict[str, Any] | None:
    if isinstance(effect, Configuration):
        conf = {"kind": effect.kind.value, "ring_id": _ring(effect.ring_id)}
        return {"configuration": {**conf, "members": list(effect.members)}}
    if isinstance(effect, Deliver):
        records = [
            {"group": r.group, "handle": r.handle, "flags": r.flags, "data": r.data.hex()}
            for r in effect.records
        ]
        body = {"origin": _ring(effect.origin), "seq": effect.seq, "sender": effect.sender}
        return {"deliver": {**body, "records": records}}
    if isinstance(effect, Send) and isinstance(effect.frame, OrfToken):
        token = effect.frame
        body = {"ring_id": _ring(token.ring_id), "token_seq": token.token_seq}
        return {"token": {**body, "dest": effect.dest}}
    return None


async def watch_ring(node: gcs.Node) -> None:
    last = None
    while not node.closed:
        view = node.view
        key = None if view is None else (view.ring_id, view.transitional)
        if view is not None and key != last:
            last = key
            ring = [view.ring_id.rep, view.ring_id.seq]
            _emit("ring", ring_id=ring, members=list(view.members), transitional=view.transitional)
        await asyncio.sleep(0.005)


async def read_group(group: gcs.Group, counter: list[int]) -> None:
    async for event in group:
        if isinstance(event, gcs.Message):
            counter[0] += 1
            _emit("delivered", count=counter[0])


async def commands(node: gcs.Node) -> None:
    loop = asyncio.get_running_loop()
    groups: dict[str, gcs.Group] = {}
    readers: list[asyncio.Task[None]] = []
    delivered = [0]
    sent = 0
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        words = line.split()
        if not words or words[0] == "quit":
            return
        if words[0] == "join":
            groups[words[1]] = group = await node.join(words[1])
            readers.append(loop.create_task(read_group(group, delivered)))
            _emit("joined", group=words[1])
        elif words[0] == "send":
            safe_every = int(words[3]) if len(words) > 3 else 0
            size = int(words[4]) if len(words) > 4 else 0
            for _ in range(int(words[2])):
                sent += 1
                safe = safe_every > 0 and sent % safe_every == 0
                data = f"n{node.node_id}-{sent:02d}".encode().ljust(size, b".")
                await groups[words[1]].send(data, safe=safe)
            _emit("sent", count=sent)


async def main(args: argparse.Namespace) -> int:
    node = gcs.Node(gcs.Config.load(args.config), taps=(RecordingTap(args.record),))
    await node.start()
    _emit("started", node=node.node_id, boot_id=node.boot_id)
    watcher = asyncio.get_running_loop().create_task(watch_ring(node))
    await commands(node)
    watcher.cancel()
    await node.close()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--record", required=True)
    sys.exit(gcs.run(main(parser.parse_args())))
