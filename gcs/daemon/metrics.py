"""Prometheus text exposition of a daemon's status, on a loopback HTTP port (optional).

Why this small: an operator's monitoring should see token rotation time, throughput,
retransmissions and drops by reason without a new dependency. The format is Prometheus' text
exposition format (version 0.0.4): ``# HELP`` / ``# TYPE`` lines and one sample per line. The
server answers ``GET /metrics`` (and ``GET /``) with it, anything else with 404, and binds to
loopback only: the figures name the cluster's nodes and are nobody else's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["MetricsServer", "render"]

_LOG = logging.getLogger("gcs.daemon.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

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
    """A minimal HTTP/1.0 responder for ``/metrics`` on 127.0.0.1."""

    def __init__(self, status: Callable[[], dict[str, Any]], port: int, host: str = "127.0.0.1"):
        self._status = status
        self.port = port
        self.host = host
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sockets = self._server.sockets
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)).strip():
                pass  # headers: not needed
            parts = request.decode("latin-1").split()
            if len(parts) >= 2 and parts[0] == "GET" and parts[1] in ("/metrics", "/"):
                body = render(self._status()).encode()
                head = f"HTTP/1.0 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\n"
            else:
                body = b"not found\n"
                head = "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n"
            head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeError) as exc:
            _LOG.debug("metrics request failed: %s", exc)
        except Exception:
            _LOG.exception("metrics request failed")
        finally:
            writer.close()
