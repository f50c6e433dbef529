"""Daemons in the test's own loop, and clients of them (the control protocol over real sockets).

``running_daemons`` starts one ``gcs.daemon.runner.Daemon`` per config in this process, each with
its control socket in ``tmp``, waits for one ring of all of them and stops them at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import gcs
from gcs.daemon.runner import Daemon
from tests.runtime.cluster import configs, one_ring, wait_until


@asynccontextmanager
async def running_daemons(
    tmp: Path, count: int, **overrides: object
) -> AsyncIterator[list[Daemon]]:
    cfgs = [
        dataclasses.replace(c, control_socket=tmp / f"node{c.node_id}.sock")
        for c in configs(count, **overrides)  # type: ignore[arg-type]
    ]
    daemons = [Daemon(c) for c in cfgs]
    tasks = [asyncio.ensure_future(d.run()) for d in daemons]
    try:
        await wait_until(
            lambda: all(d.path.exists() for d in daemons) or any(t.done() for t in tasks)
        )
        for task in tasks:
            if task.done():
                task.result()  # a daemon that could not start fails the test here
        await wait_until(lambda: one_ring([d.node for d in daemons]))
        yield daemons
    finally:
        for d in daemons:
            d.stop()
        await asyncio.gather(*tasks, return_exceptions=True)


async def client_of(daemon: Daemon) -> gcs.Client:
    client = gcs.connect(daemon.path)
    await client.start()
    return client
