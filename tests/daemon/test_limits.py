"""API-10.1-3: the control socket's limits — the client cap, the hello timeout, the descriptor
reserve, and an accept loop that backs off instead of spinning when it runs out of resources.

The daemons here run in the test's process (real sockets); the descriptor-limit scenario with
real processes under ``prlimit`` is ``tests/netns/test_daemon_limits.py``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from pathlib import Path

import pytest

import gcs
from gcs.daemon import protocol as proto
from gcs.daemon.fdbudget import FD_RESERVE, client_cap, descriptors_in_use
from gcs.daemon.listener import Listener
from tests.daemon.harness import client_of, running_daemons
from tests.runtime.cluster import configs, wait_until


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refused a connection" in r.getMessage()]


@pytest.mark.req("API-10.1-3")
async def test_clients_beyond_max_clients_are_refused_with_a_typed_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_daemons(tmp_path, 1, max_clients=3) as daemons:
        daemon = daemons[0]
        served = [await client_of(daemon) for _ in range(3)]
        for _ in range(10):
            with pytest.raises(gcs.DaemonUnavailable, match="refused: too many clients"):
                await client_of(daemon)
        assert len(_refusals(caplog)) == 1, "one line, then the window's summary"
        assert daemon.server.connections and len(daemon.server.connections) == 3
        group = await served[0].join("g")  # the served clients are not disturbed
        await (await group.send(b"still served")).delivered()
        await served[1].close()
        await wait_until(lambda: len(daemon.server.connections) == 2)
        late = await client_of(daemon)  # a freed place is served again
        status = await late.status()
        assert status["clients"] == 3 and status["client_limit"] == 3
        assert status["clients_refused"] == 10 and status["hello_timeouts"] == 0
        for client in (late, served[0], served[2]):
            await client.close()


async def test_refusals_are_summarised_per_window(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gcs.daemon import throttle

    monkeypatch.setattr(throttle, "WINDOW_S", 0.2)
    async with running_daemons(tmp_path, 1, max_clients=1) as daemons:
        first = await client_of(daemons[0])
        for _ in range(5):
            with pytest.raises(gcs.DaemonUnavailable):
                await client_of(daemons[0])
        await wait_until(lambda: any("4 more" in r.getMessage() for r in caplog.records))
        lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(lines) == 2 and "4 more control socket connections refused" in lines[1]
        await first.close()


async def _read_frame(reader: asyncio.StreamReader) -> dict[str, object]:
    (length,) = proto.LENGTH.unpack(await reader.readexactly(4))
    return proto.decode(await reader.readexactly(length))


@pytest.mark.req("API-10.1-3")
async def test_a_client_without_hello_is_closed_after_the_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_daemons(tmp_path, 1, max_clients=1, hello_timeout_ms=300) as daemons:
        daemon = daemons[0]
        reader, writer = await asyncio.open_unix_connection(str(daemon.path))
        with pytest.raises(gcs.DaemonUnavailable):  # the silent one holds the only place
            await client_of(daemon)
        closing = await asyncio.wait_for(_read_frame(reader), 10)
        assert closing["ev"] == "closing" and closing["reason"] == "hello timeout"
        assert closing["error"]["type"] == "ControlProtocolError"  # type: ignore[index]
        assert await reader.read() == b"", "then the daemon closed the connection"
        writer.close()
        await writer.wait_closed()
        assert any("sent no hello within 300 ms" in r.getMessage() for r in caplog.records)
        await wait_until(lambda: not daemon.server.connections)
        client = await client_of(daemon)  # its place is free again
        assert (await client.status())["hello_timeouts"] == 1
        await client.close()


async def test_a_client_that_says_hello_is_not_timed_out(tmp_path: Path) -> None:
    async with running_daemons(tmp_path, 1, hello_timeout_ms=100) as daemons:
        client = await client_of(daemons[0])
        await asyncio.sleep(0.4)
        assert (await client.status())["clients"] == 1
        await client.close()


def test_the_client_cap_keeps_a_descriptor_reserve() -> None:
    under_prlimit = client_cap(4096, limit=1024, in_use=40)
    assert under_prlimit.cap == 1024 - 40 - FD_RESERVE and under_prlimit.lowered
    assert "lowered to 920: RLIMIT_NOFILE is 1024" in under_prlimit.describe()
    assert client_cap(256, limit=1024, in_use=40).cap == 256
    assert client_cap(256, limit=None, in_use=40).cap == 256
    assert client_cap(256, limit=50, in_use=40).cap == 1, "at least one client"
    assert descriptors_in_use() > 0


def test_max_clients_and_hello_timeout_are_checked() -> None:
    for field, value in (("max_clients", 0), ("hello_timeout_ms", 0), ("max_clients", "9")):
        with pytest.raises(gcs.ConfigError, match=field):
            configs(1, **{field: value})
    assert configs(1)[0].max_clients == 256 and configs(1)[0].hello_timeout_ms == 5000


class _FailingAccept(socket.socket):
    """A listening socket whose accept fails with EMFILE until told otherwise."""

    calls = 0
    failing = True

    def accept(self) -> tuple[socket.socket, object]:
        self.calls += 1
        if self.failing:
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


@pytest.mark.req("API-10.1-3")
async def test_accept_out_of_descriptors_backs_off_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(tmp_path / "s.sock")
    sock = _FailingAccept(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(8)
    served: list[socket.socket] = []
    listener = Listener(
        sock,
        cap=4,
        serve=served.append,
        refuse=lambda conn, _: conn.close(),
        logger=logging.getLogger("gcs.daemon"),
        name="test socket",
    )
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)  # pending in the backlog: the socket stays readable
    try:
        await asyncio.sleep(1.0)
        assert 2 <= sock.calls <= 5, f"backed off (0.1, 0.2, 0.4 s, ...), not {sock.calls} tries"
        lines = [r for r in caplog.records if "cannot accept" in r.getMessage()]
        assert len(lines) == 1 and "EMFILE" in lines[0].getMessage()
        sock.failing = False
        await wait_until(lambda: len(served) == 1)  # accepting again once resources are back
    finally:
        listener.close()
        client.close()
        for conn in served:
            conn.close()


@pytest.mark.req("API-10.1-3")
async def test_the_metrics_port_has_limits_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most METRICS_CONNECTIONS requests at once (more are closed at once), and a request
    that does not arrive whole within the timeout is cut off, freeing its place."""
    from gcs.daemon import metrics
    from gcs.daemon.fdbudget import METRICS_CONNECTIONS

    monkeypatch.setattr(metrics, "REQUEST_TIMEOUT_S", 0.5)
    status = {"node_id": 1, "cluster_name": "c", "members": [1], "ring_id": "1.4"}
    server = metrics.MetricsServer(lambda: dict(status, **_STATUS_REST), 0)
    await server.start()
    try:
        idle = [
            await asyncio.open_connection("127.0.0.1", server.port)
            for _ in range(METRICS_CONNECTIONS)
        ]
        for _, writer in idle:
            writer.write(b"GET /metrics HTTP/1.0\r\n")  # and never the end of the headers
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(reader.read(), 5) == b"", "one more is closed at once"
        writer.close()
        for idle_reader, _ in idle:
            assert await asyncio.wait_for(idle_reader.read(), 5) == b"", "cut off after 0.5 s"
        for _, idle_writer in idle:
            idle_writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
        reply = await asyncio.wait_for(reader.read(), 5)
        assert reply.startswith(b"HTTP/1.0 200 OK") and b"gcs_up" in reply
        writer.close()
    finally:
        await server.close()


_STATUS_REST = {
    "state": "operational",
    "token_rotation_ms": None,
    "delivered_messages": 0,
    "delivered_bytes": 0,
    "retransmissions": {"mcasts": 0, "requested": 0, "tokens": 0},
    "counters": {},
    "loop_lag_ms": {"last": 0.0, "max": 0.0},
    "clients": 0,
    "group_members": 0,
    "duplicate_node_id": 0,
    "boot_fallbacks": 0,
    "drops": {},
    "view_changes": [],
}


@pytest.mark.req("API-10.1-3")
async def test_a_client_that_does_not_read_its_replies_is_slowed_by_its_socket(
    tmp_path: Path,
) -> None:
    """5,000 pipelined status requests, replies unread: the daemon stops reading instead of
    queueing megabytes of replies, and still answers every request exactly once."""
    from gcs.daemon.server import MAX_OUTSTANDING, WRITE_HIGH_WATER

    count = 5000
    async with running_daemons(tmp_path, 1) as daemons:
        reader, writer = await asyncio.open_unix_connection(str(daemons[0].path))
        try:
            hello = {"op": "hello", "id": 0, "version": proto.PROTOCOL_VERSION}
            requests = [hello, *({"op": "status", "id": i} for i in range(1, count))]
            writer.write(b"".join(proto.encode(r) for r in requests))
            await asyncio.sleep(1.0)
            (conn,) = daemons[0].server.connections
            buffered = conn.writer.transport.get_write_buffer_size()
            assert buffered <= WRITE_HIGH_WATER + 64 * 1024, f"{buffered} bytes of replies queued"
            assert conn.outstanding <= MAX_OUTSTANDING
            replies: list[object] = []
            while len(replies) < count:
                frame = await asyncio.wait_for(_read_frame(reader), 10)
                if "re" in frame:  # ring events may come in between
                    replies.append(frame["re"])
            assert replies == list(range(count)), "every request answered once, in order"
        finally:
            writer.close()
            await writer.wait_closed()
