"""Network-namespace tests: skip with the reason when the lab cannot be built, unless required.

``GCS_REQUIRE_NETNS=1`` (set by ``.ci/run``) turns "cannot build a lab here" into a failure, so
a CI machine that lost root or iproute2 cannot pass by skipping. Every test in this directory
gets the check (autouse). ``lab_cluster`` builds a ``NetLab`` and a ``ProcCluster`` whose nodes
run one per namespace, keyed (the addresses are not loopback); both are torn down at the end,
pass or fail, and the run directory is printed first.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gcs.bench.netns import NetLab, netns_available
from tests.procs.cluster import ProcCluster
from tests.runtime.cluster import make_key

PORT = 5405
LabCluster = Callable[..., tuple[NetLab, ProcCluster]]


@pytest.fixture(autouse=True)
def netns_required() -> None:
    reason = netns_available()
    if reason is None:
        return
    if os.environ.get("GCS_REQUIRE_NETNS") == "1":
        pytest.fail(f"GCS_REQUIRE_NETNS=1 but network namespaces are unavailable: {reason}")
    pytest.skip(f"network namespaces unavailable: {reason}")


@pytest.fixture
def lab_cluster(tmp_path: Path) -> Iterator[LabCluster]:
    labs: list[NetLab] = []
    clusters: list[ProcCluster] = []

    def make(size: int, *, token_timeout_ms: int = 400) -> tuple[NetLab, ProcCluster]:
        lab = NetLab(size)
        labs.append(lab)
        print(f"run directory: {tmp_path}; lab {lab.prefix} ({lab.network})")
        cluster = ProcCluster(
            tmp_path,
            {i: f"{lab.address(i)}:{PORT}" for i in lab.ids},
            key_file=make_key(tmp_path),
            token_timeout_ms=token_timeout_ms,
            launcher=lambda node, argv, kw: lab.popen(node, argv, **kw),
        )
        clusters.append(cluster)
        return lab, cluster

    yield make
    try:
        for cluster in clusters:
            cluster.close()
    finally:
        for lab in labs:
            lab.close()
