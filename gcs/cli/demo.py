"""``gcs demo``: a three-node ring on loopback that orders messages and survives a failure.

What it shows, in under a minute and with real parts only: three ``gcs node`` daemons as
separate OS processes on free loopback ports, sealed with a fresh cluster key; this process as
a client of each (``gcs.connect``), all three multicasting into one group; every node delivering
the same sequence; ``kill -9`` of node 3 while the others keep sending, seen by the survivors
as a transitional view, then a regular one, with the reason; the survivors' sequences still
identical; node 3 restarted from its state directory, back in a ring with a higher ring id.
The exit code is 0 only if every check held, so the demo doubles as a smoke test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gcs import __version__
from gcs.build import build_info

if TYPE_CHECKING:
    from typing import TypeAlias

    import gcs
    from gcs.daemon.client import Client

    _Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["register"]

NODES = 3
GROUP = "demo"
TOKEN_TIMEOUT_MS = 300
WAIT_S = 30.0


def register(subparsers: _Subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a 3-process ring on loopback: ordering, a crash, the views, a rejoin",
        description="Start three gcs node daemons on free loopback ports, multicast from all "
        "of them, kill -9 one, show the survivors' transitional and regular views and that "
        "they delivered the same sequence, restart it, and exit 0 if every check held.",
    )
    parser.add_argument(
        "--messages", type=int, default=40, help="messages per node per phase (default 40)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.set_defaults(func=_cmd_demo)


def _cmd_demo(args: argparse.Namespace) -> int:
    from gcs.runtime.loop import run

    if args.messages < 1:
        print("gcs demo: --messages must be positive", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="gcs-demo-"))
    demo = Demo(work, args.messages)
    try:
        code: int = run(demo.run())
    finally:
        demo.stop_all()
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            _remove_tree(work)
    return code


class Watcher:
    """Collects one client member's events; lets the demo wait for a condition on them."""

    def __init__(self, node: int, group: gcs.Group) -> None:
        self.node = node
        self.group = group
        self.messages: list[tuple[gcs.Member, bytes]] = []
        self.views: list[gcs.View] = []
        self._changed = asyncio.Event()
        self.task = asyncio.ensure_future(self._collect())

    async def _collect(self) -> None:
        import gcs

        with contextlib.suppress(gcs.GcsError):
            async for event in self.group:
                if isinstance(event, gcs.Message):
                    self.messages.append((event.sender, event.data))
                else:
                    self.views.append(event)
                self._changed.set()
        self._changed.set()

    async def wait(self, what: str, predicate: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT_S
        while not predicate():
            if self.task.done() or time.monotonic() > deadline:
                raise DemoFailed(f"node {self.node}: gave up waiting for {what}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.5)

    def digest(self) -> str:
        h = hashlib.sha256()
        for sender, data in self.messages:
            h.update(f"{sender}|".encode() + data + b"\n")
        return h.hexdigest()[:16]


class DemoFailed(Exception):
    """A check of the demo did not hold (printed, exit code 1)."""


class Demo:
    """The demo's processes, clients and narrative (see the module docstring)."""

    def __init__(self, work: Path, per_phase: int) -> None:
        self.work = work
        self.per_phase = per_phase
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.clients: dict[int, Client] = {}
        self.watchers: dict[int, Watcher] = {}
        self.configs: dict[int, Path] = {}

    async def run(self) -> int:
        try:
            await self._script()
        except DemoFailed as exc:
            print(f"\nFAILED: {exc}")
            self._show_logs()
            return 1
        finally:
            for client in self.clients.values():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.close(), 5)
        print("\nok: one total order everywhere, the crash became a view change, node 3 is back")
        return 0

    async def _script(self) -> None:
        print(f"gcs {__version__}: {build_info().describe()}")
        ports = self._write_configs()
        print(f"gcs demo: {NODES} node processes on 127.0.0.1 (udp ports {ports}), sealed")
        print(
            f"          with a fresh key; token timeout {TOKEN_TIMEOUT_MS} ms; work dir {self.work}"
        )
        started = time.monotonic()
        for node in self.configs:
            self._spawn(node)
        for node in self.configs:
            await self._attach(node)
        ring = await self._all_in_view(set(self.configs))
        print(f"\n[1] ring {ring} formed with members 1 2 3 ({time.monotonic() - started:.1f} s)")
        await self._phase("[2] every node multicasts", set(self.configs))
        before = self.clients[1].view
        await self._crash(3)
        await self._phase("[4] the survivors keep multicasting", {1, 2})
        await self._restart(3, before.ring_id if before is not None else None)

    # ------------------------------------------------------------------ steps

    async def _phase(self, title: str, senders: set[int]) -> None:
        counts = {n: len(self.watchers[n].messages) for n in self.watchers}
        expected = {n: counts[n] + self.per_phase * len(senders) for n in self.watchers}
        await asyncio.gather(*(self._send_burst(n) for n in sorted(senders)))
        for n, watcher in self.watchers.items():
            await watcher.wait(
                f"{expected[n]} messages", functools.partial(_has, watcher, expected[n])
            )
        print(f"\n{title} {self.per_phase} messages:")
        for n, watcher in sorted(self.watchers.items()):
            count = len(watcher.messages)
            print(f"    node {n} delivered {count} messages, digest {watcher.digest()}")
        self._same_sequences(set(self.watchers), "every node")

    async def _send_burst(self, node: int) -> None:
        group = self.watchers[node].group
        tickets = []
        for i in range(self.per_phase):
            tickets.append(await group.send(f"node {node} message {i}".encode()))
            if i % 8 == 7:
                await asyncio.sleep(0.005)  # a stream, not one burst
        await asyncio.gather(*(t.delivered() for t in tickets))

    async def _crash(self, victim: int) -> None:
        proc = self.procs.pop(victim)
        watcher = self.watchers.pop(victim)
        survivors = sorted(self.watchers)
        marks = {n: len(self.watchers[n].views) for n in survivors}
        print(f"\n[3] kill -9 node {victim} (pid {proc.pid})")
        killed = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.clients.pop(victim).close(), 2)
        watcher.task.cancel()

        def regular_without_victim(w: Watcher) -> bool:
            return any(
                not v.transitional and all(m.node != victim for m in v.members)
                for v in w.views[marks[w.node] :]
            )

        for n in survivors:
            w = self.watchers[n]
            await w.wait(
                f"a view without node {victim}", functools.partial(regular_without_victim, w)
            )
            took = time.monotonic() - killed
            new = w.views[marks[n] :]
            for view in new:
                _print_view(n, view)
            kinds = [v.transitional for v in new]
            if True not in kinds or kinds.index(True) > kinds.index(False):
                raise DemoFailed(f"node {n}: no transitional view before the regular one")
            print(f"    node {n} saw the change {took * 1000:.0f} ms after the kill")

    async def _restart(self, node: int, old_ring: object) -> None:
        print(f"\n[5] restart node {node} from its state directory")
        self._spawn(node)
        await self._attach(node)
        ring = await self._all_in_view(set(self.configs))
        old = getattr(old_ring, "seq", 0)
        new = getattr(ring, "seq", 0)
        print(f"    ring {ring} with members 1 2 3 again (ring seq {old} -> {new})")
        if new <= old:
            raise DemoFailed(f"the new ring seq {new} is not higher than {old}")

    # ------------------------------------------------------------------ checks

    def _same_sequences(self, nodes: set[int], who: str) -> None:
        """Members that stayed together delivered the same messages in the same order."""
        watchers = [self.watchers[n] for n in sorted(nodes) if n in self.watchers]
        shortest = min(len(w.messages) for w in watchers)
        reference = watchers[0].messages[:shortest]
        for w in watchers[1:]:
            if w.messages[:shortest] != reference:
                raise DemoFailed(f"{who} did not deliver the same sequence")
        print(f"    {who}: the same {shortest} messages in the same order")

    async def _all_in_view(self, nodes: set[int]) -> object:
        for n in sorted(nodes):
            w = self.watchers[n]

            def complete(w: Watcher = w) -> bool:
                return bool(
                    w.views
                    and not w.views[-1].transitional
                    and {m.node for m in w.views[-1].members} == nodes
                )

            await w.wait(f"a view with nodes {sorted(nodes)}", complete)
        view = self.clients[min(nodes)].view
        return None if view is None else view.ring_id

    # ------------------------------------------------------------------ processes

    def _write_configs(self) -> list[int]:
        from gcs.runtime.endpoint import free_udp_ports
        from gcs.wire.seal import generate_key

        key = self.work / "cluster.key"
        generate_key(key, os.urandom(32))
        ports = free_udp_ports(NODES)
        nodes = "".join(
            f'\n[[nodes]]\nid = {i + 1}\naddress = "127.0.0.1:{p}"\n' for i, p in enumerate(ports)
        )
        for node in range(1, NODES + 1):
            path = self.work / f"node{node}.toml"
            path.write_text(
                f'cluster_name = "demo"\nnode_id = {node}\nkey_file = "cluster.key"\n'
                f'state_dir = "state{node}"\ncontrol_socket = "node{node}.sock"\n'
                f"token_timeout_ms = {TOKEN_TIMEOUT_MS}\n{nodes}"
            )
            self.configs[node] = path
        return ports

    def _spawn(self, node: int) -> None:
        log = (self.work / f"node{node}.log").open("ab")
        argv = [sys.executable, "-m", "gcs", "node", "--config", str(self.configs[node])]
        self.procs[node] = subprocess.Popen(
            [*argv, "--log-level", "info"], stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
        log.close()

    async def _attach(self, node: int) -> None:
        from gcs.daemon.client import connect
        from gcs.errors import DaemonUnavailable

        path = self.work / f"node{node}.sock"
        deadline = time.monotonic() + WAIT_S
        while True:
            proc = self.procs[node]
            if proc.poll() is not None:
                raise DemoFailed(f"node {node} exited with code {proc.returncode}")
            client = connect(path)
            try:
                await client.start()
                break
            except DaemonUnavailable:
                if time.monotonic() > deadline:
                    raise DemoFailed(f"node {node}'s daemon never listened on {path}") from None
                await asyncio.sleep(0.05)
        self.clients[node] = client
        group = await client.join(GROUP)
        self.watchers[node] = Watcher(node, group)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _show_logs(self) -> None:
        for node in self.configs:
            path = self.work / f"node{node}.log"
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-8:]
                print(f"--- node {node} log (last lines)")
                for line in tail:
                    print(f"    {line}")


def _has(watcher: Watcher, count: int) -> bool:
    return len(watcher.messages) >= count


def _print_view(node: int, view: gcs.View) -> None:
    kind = "transitional" if view.transitional else "regular     "
    members = " ".join(str(m.node) for m in view.members)
    print(f"    node {node}: {kind} view {view.view_id.ring}: members {members}  ({view.reason})")


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
