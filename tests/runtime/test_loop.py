"""uvloop by default, loop-lag measurement, socket buffers and optional IP multicast."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

import pytest

import gcs
from gcs.runtime import endpoint, loop
from gcs.runtime.lag import LagMonitor
from tests.runtime.cluster import configs, free_ports, make_key, messages, running


def test_gcs_run_uses_uvloop() -> None:
    async def which() -> bool:
        return loop.is_uvloop(asyncio.get_running_loop())

    assert gcs.run(which()) is True
    assert gcs.run(which) is True, "a coroutine function works too"


async def test_the_tests_themselves_run_on_uvloop() -> None:
    assert loop.is_uvloop(asyncio.get_running_loop())


def test_a_non_uvloop_loop_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    plain = asyncio.new_event_loop()
    try:
        loop._warned.clear()
        with caplog.at_level(logging.WARNING, logger="gcs.runtime.loop"):
            loop.check_loop(plain)
            loop.check_loop(plain)
        assert len([r for r in caplog.records if "not uvloop" in r.message]) == 1
    finally:
        plain.close()


async def test_lag_monitor_sees_a_blocked_loop(caplog: pytest.LogCaptureFixture) -> None:
    monitor = LagMonitor(asyncio.get_running_loop(), 5_000_000, 20_000_000, "test")
    with caplog.at_level(logging.WARNING, logger="gcs.runtime.lag"):
        monitor.start()
        await asyncio.sleep(0.02)
        time.sleep(0.1)  # deliberately block the loop: what the monitor exists to catch
        while monitor.statistics().over_threshold == 0:
            await asyncio.sleep(0.005)
        monitor.stop()
    stats = monitor.statistics()
    assert stats.max_ms >= 50 and stats.samples >= 2
    assert any("ran" in r.message and "late" in r.message for r in caplog.records)


async def test_capped_socket_buffers_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    (port,) = free_ports(1)
    with caplog.at_level(logging.WARNING, logger="gcs.runtime.endpoint"):
        opened = await endpoint.open_endpoint(
            asyncio.get_running_loop(),
            ("127.0.0.1", port),
            socket.AF_INET,
            lambda data: None,
            buffer_bytes=1 << 30,
        )
    opened.close()
    assert 0 < opened.rcvbuf_bytes < 1 << 30
    assert any(f"{opened.rcvbuf_bytes} bytes" in r.message for r in caplog.records)


async def test_ring_over_ip_multicast(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    cfgs = configs(3, key_file=make_key(tmp_path), multicast=f"239.255.71.3:{port}")
    async with running(cfgs) as nodes:
        groups = await asyncio.gather(*(n.join("m") for n in nodes))
        await (await groups[0].send(b"once to the group")).delivered()
        for group in groups:
            assert [m.data for m in await messages(group, 1)] == [b"once to the group"]
        assert nodes[1].statistics().drops.get("loopback", 0) > 0, "own multicasts come back"
