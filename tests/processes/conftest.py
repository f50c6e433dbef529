"""Fixtures for tests that run real node processes on 127.0.0.1.

``loopback`` builds a ``ProcCluster`` of node processes on free loopback ports in the test's
run directory and stops whatever is still running at the end, pass or fail. The run directory
(configurations, histories, the harness history, each node's stderr) is printed first, so a
failing test's captured output says where to look.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.procs.cluster import ProcCluster
from tests.runtime.cluster import free_ports, make_key

MakeCluster = Callable[..., ProcCluster]


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[MakeCluster]:
    clusters: list[ProcCluster] = []

    def make(size: int, *, keyed: bool = False, token_timeout_ms: int = 400) -> ProcCluster:
        print(f"run directory: {tmp_path}")
        ports = free_ports(size)
        addresses = {i + 1: f"127.0.0.1:{port}" for i, port in enumerate(ports)}
        key = make_key(tmp_path) if keyed else None
        cluster = ProcCluster(tmp_path, addresses, key_file=key, token_timeout_ms=token_timeout_ms)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.close()
