"""``gcs node --metrics-port``: the daemon's figures through prometheus_client (the ``metrics``
extra), with the standard process metrics and OpenMetrics; without the extra, one clear line."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gcs.cli import main
from gcs.daemon.runner import Daemon
from tests.runtime.cluster import configs, free_ports, wait_until

GCS_FAMILIES = {
    "gcs_up",
    "gcs_ring_members",
    "gcs_ring_seq",
    "gcs_operational",
    "gcs_delivered_messages",
    "gcs_delivered_bytes",
    "gcs_mcasts_retransmitted",
    "gcs_retransmit_requests",
    "gcs_tokens_retransmitted",
    "gcs_configurations",
    "gcs_loop_lag_seconds",
    "gcs_loop_lag_max_seconds",
    "gcs_clients",
    "gcs_group_members",
    "gcs_drops",
}
"""The names of the hand-written exposition this replaced (counters without ``_total``, as the
parser names their families)."""


def scrape(port: int, accept: str | None = None) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if accept is not None:
        request.add_header("Accept", accept)
    with urllib.request.urlopen(request, timeout=10) as reply:
        return str(reply.read().decode())


async def test_a_daemon_serves_its_figures_and_the_process_metrics(tmp_path: Path) -> None:
    config = dataclasses.replace(configs(1)[0], control_socket=tmp_path / "n1.sock")
    daemon = Daemon(config, metrics_port=0)
    task = asyncio.ensure_future(daemon.run())
    try:
        await wait_until(lambda: daemon.metrics is not None and daemon.metrics.port != 0)
        assert daemon.metrics is not None
        loop = asyncio.get_running_loop()
        text = await loop.run_in_executor(None, scrape, daemon.metrics.port)
        families = {f.name: f for f in text_string_to_metric_families(text)}
        assert set(families) >= GCS_FAMILIES
        assert 'gcs_delivered_messages_total{cluster="test",node="1"}' in text
        (up,) = families["gcs_up"].samples
        assert up.labels == {"node": "1", "cluster": "test"} and up.value == 1
        assert {"process_resident_memory_bytes", "process_open_fds"} <= set(families)
        openmetrics = "application/openmetrics-text; version=1.0.0; charset=utf-8"
        text = await loop.run_in_executor(None, scrape, daemon.metrics.port, openmetrics)
        assert text.endswith("# EOF\n") and "gcs_ring_members" in text
    finally:
        daemon.stop()
        assert await task == 0


def test_without_the_extra_metrics_port_is_refused_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails: not installed
    (port,) = free_ports(1)
    path = tmp_path / "n1.toml"
    path.write_text(
        f'cluster_name = "m"\nnode_id = 1\n[[nodes]]\nid = 1\naddress = "127.0.0.1:{port}"\n'
    )
    code = main(["node", "--config", str(path), "--metrics-port", "0"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "pip install 'gcs[metrics]'" in err, err
