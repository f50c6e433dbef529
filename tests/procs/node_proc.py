"""A test node process: one ``gcs.Node`` recording its history, a workload, a tiny stdout protocol.

Why a separate program. The process and network-namespace tests need real OS processes that
can be SIGKILLed, restarted and cut off by iptables; each runs this module::

    python -m tests.procs.node_proc --config node1.toml --history node1.jsonl --rate 50

It starts the node with ``history=``, joins ``--group``, and submits workload payloads
(``gcs.history.events.encode_payload`` with ``node.history_incarnation``) at ``--rate`` per second,
never faster than flow control allows, while reading the group's events so it is never cut off
as a slow consumer. Signals: SIGUSR1 stops the workload (the node keeps running, so the ring
can go quiet before it is judged); SIGTERM closes the node cleanly (a ``leave``) and exits 0.

Stdout, one JSON object per line, flushed (``tests.procs.cluster`` reads it):
``{"event": "started", "node", "incarnation", "pid"}`` once the node is in its first ring,
``{"event": "ring", "ring_id": [rep, seq], "members", "transitional", "reason"}`` whenever the
node's ring configuration changes (polled: short-lived ones may be missed; the history has
them all), ``{"event": "joined", "group"}``, ``{"event": "view", "members", "left",
"transitional", "reason"}`` for each group view (node ids of the members), ``{"event":
"quiet"}`` once the workload stopped after SIGUSR1 (nothing more is submitted), and
``{"event": "closed"}`` just before a clean exit.

``--member-log PATH`` appends every event the group member receives to PATH, one JSON object a
line, for the group-level checks of ``tests.netns.member_log``: ``{"k": "start", "node",
"incarnation"}`` first, then ``{"k": "view", "id", "members", "left", "transitional"}`` (view id
and members as text, ``node/handle``) and ``{"k": "msg", "from", "view", "id"}`` (the payload's
``[node, incarnation, counter]``). Lines are written as the events arrive, so a SIGKILL loses
at most the last one.
The process exits by itself if its parent dies or after ``--lifetime`` seconds, so a crashed
test run leaves no nodes behind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any, TextIO

import gcs
from gcs.history.events import MsgId, decode_payload, encode_payload

POLL_S = 0.01


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="node_proc", description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, help="the node's TOML configuration")
    p.add_argument("--history", required=True, help="JSONL history file (appended to)")
    p.add_argument("--group", default="work")
    p.add_argument("--rate", type=float, default=0.0, help="messages per second (0: none)")
    p.add_argument("--count", type=int, default=0, help="stop the workload after N (0: never)")
    p.add_argument("--sizes", default="64,300,3000", help="payload sizes, cycled")
    p.add_argument("--safe-every", type=int, default=4, help="every Nth message safe (0: none)")
    p.add_argument("--lifetime", type=float, default=300.0, help="exit after this many seconds")
    p.add_argument("--member-log", default=None, help="log the member's events (JSON lines)")
    return p.parse_args(argv)


async def workload(node: gcs.Node, group: gcs.Group, args: argparse.Namespace) -> None:
    """Submit at ``args.rate``; ``group.send`` waits when flow control closes the window."""
    if args.rate <= 0:
        return
    incarnation = node.history_incarnation
    assert incarnation is not None
    sizes = [int(s) for s in args.sizes.split(",")]
    loop = asyncio.get_running_loop()
    interval = 1.0 / args.rate
    next_at = loop.time()
    counter = 0
    while args.count == 0 or counter < args.count:
        counter += 1
        data = encode_payload(
            MsgId(node.node_id, incarnation, counter), sizes[counter % len(sizes)]
        )
        safe = args.safe_every > 0 and counter % args.safe_every == 0
        await group.send(data, safe=safe)
        next_at = max(next_at + interval, loop.time() - 1.0)  # no catch-up burst after a stall
        await asyncio.sleep(max(0.0, next_at - loop.time()))


def _member_row(event: gcs.View | gcs.Message) -> dict[str, Any]:
    if isinstance(event, gcs.View):
        return {
            "k": "view",
            "id": str(event.view_id),
            "members": [str(m) for m in event.members],
            "left": [str(m) for m in event.left],
            "transitional": event.transitional,
        }
    msg_id = decode_payload(event.data)
    payload = None if msg_id is None else [msg_id.node, msg_id.incarnation, msg_id.counter]
    return {"k": "msg", "from": str(event.sender), "view": str(event.view_id), "id": payload}


async def drain(group: gcs.Group, log: TextIO | None) -> None:
    """Read every event so the member is never cut off as a slow consumer; report views."""
    async for event in group:
        if log is not None:
            log.write(json.dumps(_member_row(event)) + "\n")
        if isinstance(event, gcs.View):
            _emit(
                "view",
                members=[m.node for m in event.members],
                left=[m.node for m in event.left],
                transitional=event.transitional,
                reason=event.reason.kind.value,
            )


async def watch_ring(node: gcs.Node) -> None:
    """Report ring configuration changes on stdout (see the module docstring)."""
    last = None
    while not node.closed:
        view = node.view
        key = None if view is None else (view.ring_id, view.transitional)
        if view is not None and key != last:
            last = key
            ring = [view.ring_id.rep, view.ring_id.seq]
            _emit(
                "ring",
                ring_id=ring,
                members=list(view.members),
                transitional=view.transitional,
                reason=view.reason,
            )
        await asyncio.sleep(POLL_S)


async def orphan_watch(lifetime_s: float) -> None:
    """Return when the parent process is gone or the lifetime is over."""
    parent = os.getppid()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + lifetime_s
    while os.getppid() == parent and loop.time() < deadline:
        await asyncio.sleep(0.2)


async def stop_workload(quiet: asyncio.Event, sender: asyncio.Task[None]) -> None:
    """On SIGUSR1: cancel the workload, wait until it is gone, and say so on stdout."""
    await quiet.wait()
    sender.cancel()
    await asyncio.gather(sender, return_exceptions=True)
    _emit("quiet")


def _report_failure(task: asyncio.Task[None]) -> None:
    """A workload or reader that died is a test failure: say so on stderr."""
    if not task.cancelled() and task.exception() is not None:
        print(f"node_proc: {task.get_name()} failed: {task.exception()!r}", file=sys.stderr)


async def main(args: argparse.Namespace) -> int:
    """Exit 0 after SIGTERM and a clean close; 2 when orphaned or out of time; 3 on a failure."""
    loop = asyncio.get_running_loop()
    stop, quiet = asyncio.Event(), asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, quiet.set)
    node = gcs.Node(gcs.Config.load(args.config), history=args.history)
    await node.start()
    _emit("started", node=node.node_id, incarnation=node.history_incarnation, pid=os.getpid())
    watcher = loop.create_task(watch_ring(node), name="watch_ring")
    orphan = loop.create_task(orphan_watch(args.lifetime), name="orphan_watch")
    log = None
    if args.member_log is not None:
        log = open(args.member_log, "a", buffering=1)  # noqa: SIM115 (open for the run)
        row = {"k": "start", "node": node.node_id, "incarnation": node.history_incarnation}
        log.write(json.dumps(row) + "\n")
    group = await node.join(args.group)
    _emit("joined", group=args.group)
    reader = loop.create_task(drain(group, log), name="reader")
    tasks = [watcher, orphan, reader]
    sender = loop.create_task(workload(node, group, args), name="workload")
    tasks += [sender, loop.create_task(stop_workload(quiet, sender), name="quiet")]
    for task in tasks:
        task.add_done_callback(_report_failure)
    stopper = loop.create_task(stop.wait(), name="stop")
    done, _ = await asyncio.wait([stopper, orphan, reader], return_when=asyncio.FIRST_COMPLETED)
    await node.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    _emit("closed")
    if stopper in done:
        return 0
    return 3 if reader in done else 2


if __name__ == "__main__":
    sys.exit(gcs.run(main(parse())))
