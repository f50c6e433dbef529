"""Helpers for tests that run real nodes on 127.0.0.1 in one process.

Nothing here sleeps to assert timing: ``wait_until`` polls a condition with a generous timeout,
so a slow machine makes a test slower, never wrong.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import gcs
from gcs.runtime.endpoint import free_udp_ports
from gcs.wire.seal import generate_key

TOKEN_MS = 300
TIMEOUT_S = 20.0


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports the kernel just handed out for UDP (released again; collisions are unlikely)."""
    return free_udp_ports(count, host)


def make_key(directory: Path) -> Path:
    path = directory / "cluster.key"
    generate_key(path, os.urandom(32))
    return path


def configs(
    count: int,
    *,
    host: str = "127.0.0.1",
    key_file: Path | None = None,
    state_root: Path | None = None,
    **overrides: Any,
) -> list[gcs.Config]:
    ports = free_ports(count, host)
    shown = f"[{host}]" if ":" in host else host
    nodes = {i + 1: f"{shown}:{port}" for i, port in enumerate(ports)}
    overrides.setdefault("token_timeout_ms", TOKEN_MS)
    return [
        gcs.Config(
            cluster_name="test",
            node_id=node_id,
            nodes=nodes,
            key_file=key_file,
            state_dir=None if state_root is None else state_root / f"node{node_id}",
            **overrides,
        )
        for node_id in nodes
    ]


async def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT_S) -> None:
    """Poll ``predicate`` until it holds; fail the test with a clear message after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not reached within {timeout} s")
        await asyncio.sleep(0.005)


def one_ring(nodes: list[gcs.Node]) -> bool:
    views = [n.view for n in nodes]
    if any(v is None or v.transitional for v in views):
        return False
    ids = {v.ring_id for v in views if v is not None}
    return len(ids) == 1 and all(v is not None and len(v.members) == len(nodes) for v in views)


@asynccontextmanager
async def running(cfgs: list[gcs.Config]) -> AsyncIterator[list[gcs.Node]]:
    """Start every node, wait for one ring of all of them, close them all at the end."""
    nodes = [gcs.Node(c) for c in cfgs]
    try:
        await asyncio.gather(*(n.start() for n in nodes))
        await wait_until(lambda: one_ring(nodes))
        yield nodes
    finally:
        await asyncio.gather(*(n.close() for n in nodes), return_exceptions=True)


async def next_event(group: gcs.Group, timeout: float = TIMEOUT_S) -> gcs.Message | gcs.View:
    return await asyncio.wait_for(group.__anext__(), timeout)


async def messages(group: gcs.Group, count: int, timeout: float = TIMEOUT_S) -> list[gcs.Message]:
    """The next ``count`` messages of ``group`` (views in between are skipped)."""
    out: list[gcs.Message] = []
    while len(out) < count:
        event = await next_event(group, timeout)
        if isinstance(event, gcs.Message):
            out.append(event)
    return out


async def view_where(
    group: gcs.Group, predicate: Callable[[gcs.View], bool], timeout: float = TIMEOUT_S
) -> gcs.View:
    """Skip events until a view satisfying ``predicate``."""
    while True:
        event = await next_event(group, timeout)
        if isinstance(event, gcs.View) and predicate(event):
            return event
