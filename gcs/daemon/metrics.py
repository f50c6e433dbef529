"""Prometheus text exposition of a daemon's status, on a loopback HTTP port (optional).

Why this small: an operator's monitoring should see token rotation time, throughput,
retransmissions and drops by reason without a new dependency. The format is Prometheus' text
exposition format (version 0.0.4): ``# HELP`` / ``# TYPE`` lines and one sample per line. The
server answers ``GET /metrics`` (and ``GET /``) with it, anything else with 404, and binds to
loopback only: the figures name the cluster's nodes and are nobody else's business.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

from gcs.daemon.fdbudget import METRICS_CONNECTIONS
from gcs.daemon.listener import BACKLOG, Listener, open_stream

__all__ = ["MetricsServer", "render"]

_LOG = logging.getLogger("gcs.daemon.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
REQUEST_TIMEOUT_S = 5.0
REQUEST_LIMIT = 8 * 1024
"""Longest request line or header line read (longer ones end the request)."""

# (metric name, type, help, key in the status map or a function of it)
_SIMPLE: tuple[tuple[str, str, str, Callable[[dict[str, Any]], Any]], ...] = (
    ("gcs_up", "gauge", "1 while the node runs", lambda s: 1),
    ("gcs_ring_members", "gauge", "nodes in the current ring", lambda s: len(s["members"])),
    ("gcs_ring_seq", "gauge", "seq of the current ring id", lambda s: _ring_seq(s["ring_id"])),
    (
        "gcs_operational",
        "gauge",
        "1 when the ring is operational (not changing membership)",
        lambda s: int(s["state"] == "operational"),
    ),
    (
        "gcs_token_rotation_seconds",
        "gauge",
        "mean token rotation time over the last seconds",
        lambda s: None if s["token_rotation_ms"] is None else s["token_rotation_ms"] / 1000,
    ),
    (
        "gcs_delivered_messages_total",
        "counter",
        "application messages delivered by this node",
        lambda s: s["delivered_messages"],
    ),
    (
        "gcs_delivered_bytes_total",
        "counter",
        "application bytes delivered by this node",
        lambda s: s["delivered_bytes"],
    ),
    (
        "gcs_mcasts_retransmitted_total",
        "counter",
        "mcasts this node retransmitted",
        lambda s: s["retransmissions"]["mcasts"],
    ),
    (
        "gcs_retransmit_requests_total",
        "counter",
        "retransmissions this node requested",
        lambda s: s["retransmissions"]["requested"],
    ),
    (
        "gcs_tokens_retransmitted_total",
        "counter",
        "tokens this node retransmitted",
        lambda s: s["retransmissions"]["tokens"],
    ),
    (
        "gcs_configurations_total",
        "counter",
        "configurations (views) this node installed",
        lambda s: s["counters"].get("configurations", 0),
    ),
    (
        "gcs_loop_lag_seconds",
        "gauge",
        "last measured event-loop lag",
        lambda s: s["loop_lag_ms"]["last"] / 1000,
    ),
    (
        "gcs_loop_lag_max_seconds",
        "gauge",
        "largest event-loop lag measured",
        lambda s: s["loop_lag_ms"]["max"] / 1000,
    ),
    (
        "gcs_duplicate_node_id_total",
        "counter",
        "two processes seen sending under one node id (per id and pair of boots or addresses)",
        lambda s: s["duplicate_node_id"],
    ),
    (
        "gcs_boot_fallbacks_total",
        "counter",
        "times a peer's other boot was accepted again because its preferred boot fell silent",
        lambda s: s["boot_fallbacks"],
    ),
    ("gcs_clients", "gauge", "clients connected to the control socket", lambda s: s["clients"]),
    ("gcs_group_members", "gauge", "local group members", lambda s: s["group_members"]),
)


def _ring_seq(ring_id: str) -> int:
    try:
        return int(ring_id.rsplit(".", 1)[1])
    except (IndexError, ValueError):
        return 0


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(status: dict[str, Any]) -> str:
    """The exposition text for one status map (``gcs.daemon.status.build_status``)."""
    labels = f'node="{status["node_id"]}",cluster="{_escape(status["cluster_name"])}"'
    lines: list[str] = []
    for name, kind, text, get in _SIMPLE:
        value = get(status)
        if value is None:
            continue
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", f"{name}{{{labels}}} {value}"]
    lines += ["# HELP gcs_drops_total inputs dropped, by reason", "# TYPE gcs_drops_total counter"]
    for reason, count in sorted(status["drops"].items()):
        lines.append(f'gcs_drops_total{{{labels},reason="{_escape(reason)}"}} {count}')
    changes = status["view_changes"]
    durations = [c["duration_ms"] for c in changes if c["kind"] == "regular" and c["duration_ms"]]
    if durations:
        lines += [
            "# HELP gcs_last_view_change_seconds duration of the last membership change",
            "# TYPE gcs_last_view_change_seconds gauge",
            f"gcs_last_view_change_seconds{{{labels}}} {durations[-1] / 1000}",
        ]
    return "\n".join(lines) + "\n"


class MetricsServer:
    """A minimal HTTP/1.0 responder for ``/metrics`` on 127.0.0.1.

    Any local user can reach a loopback port, so it has the control socket's limits (RFC 0006
    API-28): at most ``METRICS_CONNECTIONS`` requests at once (more are closed at once; their
    descriptors come from the daemon's reserve), and each request must arrive whole within
    ``REQUEST_TIMEOUT_S`` (a client that trickles header lines is cut off).
    """

    def __init__(self, status: Callable[[], dict[str, Any]], port: int, host: str = "127.0.0.1"):
        self._status = status
        self.port = port
        self.host = host
        self._listener: Listener | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        sock = socket.create_server((self.host, self.port), backlog=BACKLOG)
        self.port = sock.getsockname()[1]
        self._listener = Listener(
            sock,
            cap=METRICS_CONNECTIONS,
            serve=self._serve,
            refuse=lambda conn, _: conn.close(),
            logger=_LOG,
            name="metrics",
        )

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)

    def _serve(self, sock: socket.socket) -> None:
        task = asyncio.ensure_future(self._connection(sock))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connection(self, sock: socket.socket) -> None:
        assert self._listener is not None
        try:
            reader, writer = await open_stream(sock, REQUEST_LIMIT)
        except OSError:
            sock.close()
            self._listener.release()
            return
        try:
            await self._handle(reader, writer)
        finally:
            self._listener.release()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(_read_head(reader), REQUEST_TIMEOUT_S)
            parts = request.decode("latin-1").split()
            if len(parts) >= 2 and parts[0] == "GET" and parts[1] in ("/metrics", "/"):
                body = render(self._status()).encode()
                head = f"HTTP/1.0 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\n"
            else:
                body = b"not found\n"
                head = "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n"
            head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + body)
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT_S)
        except (TimeoutError, ConnectionError, UnicodeError, ValueError) as exc:
            _LOG.debug("metrics request failed: %s", exc)
        except Exception:
            _LOG.exception("metrics request failed")
        finally:
            writer.close()


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """The request line; the header lines after it are read and ignored."""
    request = await reader.readline()
    while (await reader.readline()).strip():
        pass
    return request
