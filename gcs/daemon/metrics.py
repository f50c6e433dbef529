"""Prometheus metrics of a daemon, on a loopback HTTP port (optional: the ``metrics`` extra).

Why ``prometheus_client``: it is how Python services expose metrics, so operators get what they
expect without gcs writing an exposition format by hand — the text format, or OpenMetrics when
the scrape's ``Accept`` header asks for it — and next to gcs's own figures the standard
``process_*`` (CPU seconds, resident memory, open descriptors) and ``python_*`` metrics. It is an
optional extra (``pip install 'gcs[metrics]'``); without it ``--metrics-port`` is refused with
one line that says so.

The figures are the status map's (``gcs.daemon.status.build_status``), each with the labels
``node`` and ``cluster``: ring size and seq, operational, token rotation time, delivered messages
and bytes, retransmissions, configurations, event-loop lag, duplicate node ids and boot
fallbacks (RFC 0005 SEC-7.1-2), clients, group members, drops by reason and the duration of the
last membership change. The collector runs on the event loop, where the node's state lives.

Why gcs still answers the HTTP requests itself: any local user can reach a loopback port, so the
metrics port has the control socket's limits (RFC 0006 API-10.1-3), which the library's threaded
server does not offer: at most ``METRICS_CONNECTIONS`` requests at once (more are closed at once;
their descriptors come from the daemon's reserve), and each request must arrive whole within
``REQUEST_TIMEOUT_S`` (a client that trickles header lines is cut off). The server answers
``GET /metrics`` (and ``GET /``), anything else with 404, and binds to loopback only: the figures
name the cluster's nodes and are nobody else's business.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from gcs.daemon.fdbudget import METRICS_CONNECTIONS
from gcs.daemon.listener import BACKLOG, Listener, open_stream
from gcs.errors import ConfigError

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

__all__ = ["MetricsServer", "families", "link_families"]

_LOG = logging.getLogger("gcs.daemon.metrics")
REQUEST_TIMEOUT_S = 5.0
REQUEST_LIMIT = 8 * 1024
"""Longest request line or header line read (longer ones end the request)."""
LABELS = ("node", "cluster")

Status = dict[str, Any]

# (metric name, type, help, value from the status map; None: not measured yet). Counters are
# named without ``_total``: the exposition adds it.
_SIMPLE: tuple[tuple[str, str, str, Callable[[Status], float | None]], ...] = (
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
        "gcs_delivered_messages",
        "counter",
        "application messages delivered by this node",
        lambda s: s["delivered_messages"],
    ),
    (
        "gcs_delivered_bytes",
        "counter",
        "application bytes delivered by this node",
        lambda s: s["delivered_bytes"],
    ),
    (
        "gcs_mcasts_retransmitted",
        "counter",
        "mcasts this node retransmitted",
        lambda s: s["retransmissions"]["mcasts"],
    ),
    (
        "gcs_retransmit_requests",
        "counter",
        "retransmissions this node requested",
        lambda s: s["retransmissions"]["requested"],
    ),
    (
        "gcs_tokens_retransmitted",
        "counter",
        "tokens this node retransmitted",
        lambda s: s["retransmissions"]["tokens"],
    ),
    (
        "gcs_configurations",
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
        "gcs_duplicate_node_id",
        "counter",
        "two processes seen sending under one node id (per id and pair of boots or addresses)",
        lambda s: s["duplicate_node_id"],
    ),
    (
        "gcs_boot_fallbacks",
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


def families(status: Status) -> Iterator[Metric]:
    """The metric families of one status map (``gcs.daemon.status.build_status``)."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    labels = [str(status["node_id"]), str(status["cluster_name"])]
    for name, kind, text, get in _SIMPLE:
        value = get(status)
        if value is None:
            continue
        family_type = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        family = family_type(name, text, labels=LABELS)
        family.add_metric(labels, value)
        yield family
    drops = CounterMetricFamily(
        "gcs_drops", "inputs dropped, by reason", labels=(*LABELS, "reason")
    )
    for reason, count in sorted(status["drops"].items()):
        drops.add_metric([*labels, reason], count)
    yield drops
    changes = status["view_changes"]
    durations = [c["duration_ms"] for c in changes if c["kind"] == "regular" and c["duration_ms"]]
    if durations:
        last = GaugeMetricFamily(
            "gcs_last_view_change_seconds",
            "duration of the last membership change",
            labels=LABELS,
        )
        last.add_metric(labels, durations[-1] / 1000)
        yield last
    if status.get("links"):
        yield from link_families(status["links"], labels)


def link_families(links: Status, labels: list[str]) -> Iterator[Metric]:
    """Per (peer, link) and per local link figures (RFC 0010 §8), with several links only."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    pair = (*LABELS, "peer", "link")
    up = GaugeMetricFamily("gcs_link_up", "1 while the link to the peer is up", labels=pair)
    routed = GaugeMetricFamily("gcs_link_in_use", "1 while frames go on the link", labels=pair)
    rtt = GaugeMetricFamily("gcs_link_rtt_seconds", "heartbeat round-trip time", labels=pair)
    lost = CounterMetricFamily("gcs_link_heartbeats_lost", "heartbeats unanswered", labels=pair)
    changes = CounterMetricFamily("gcs_link_changes", "times the link went up or down", labels=pair)
    for p in links["peers"]:
        key = [*labels, str(p["peer"]), str(p["link"])]
        up.add_metric(key, 1 if p["up"] else 0)
        routed.add_metric(key, 1 if p["routed"] else 0)
        if p["rtt_ms"] is not None:
            rtt.add_metric(key, p["rtt_ms"] / 1000)
        lost.add_metric(key, p["lost"])
        changes.add_metric(key, p["changes"])
    yield from (up, routed, rtt, lost, changes)
    own = (*LABELS, "link")
    sent = CounterMetricFamily("gcs_link_datagrams_sent", "datagrams sent on the link", labels=own)
    received = CounterMetricFamily(
        "gcs_link_datagrams_received", "datagrams read on the link", labels=own
    )
    copies = CounterMetricFamily(
        "gcs_link_copies_dropped", "second copies dropped by the replay window", labels=own
    )
    for t in links["traffic"]:
        key = [*labels, str(t["link"])]
        sent.add_metric(key, t["sent"])
        received.add_metric(key, t["received"])
        copies.add_metric(key, t["copies"])
    yield from (sent, received, copies)


class _StatusCollector:
    """A ``prometheus_client`` collector of the status map (called on the event loop)."""

    def __init__(self, status: Callable[[], Status]) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        yield from families(self._status())


def _registry(status: Callable[[], Status]) -> CollectorRegistry:
    """gcs's figures and the library's process, platform and garbage-collector metrics."""
    from prometheus_client import (
        GC_COLLECTOR,
        PLATFORM_COLLECTOR,
        PROCESS_COLLECTOR,
        CollectorRegistry,
    )

    registry = CollectorRegistry(auto_describe=False)
    for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(standard)
    registry.register(_StatusCollector(status))
    return registry


class MetricsServer:
    """The metrics port (see the module docstring); ``ConfigError`` without the extra."""

    def __init__(self, status: Callable[[], Status], port: int, host: str = "127.0.0.1"):
        try:
            self._registry = _registry(status)
        except ImportError:
            raise ConfigError(
                "--metrics-port", "needs prometheus_client: pip install 'gcs[metrics]'"
            ) from None
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
        from prometheus_client.exposition import choose_encoder

        try:
            request, accept = await asyncio.wait_for(_read_head(reader), REQUEST_TIMEOUT_S)
            parts = request.decode("latin-1").split()
            if len(parts) >= 2 and parts[0] == "GET" and parts[1] in ("/metrics", "/"):
                encode, content_type = choose_encoder(accept)
                body = encode(self._registry)
                head = f"HTTP/1.0 200 OK\r\nContent-Type: {content_type}\r\n"
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


async def _read_head(reader: asyncio.StreamReader) -> tuple[bytes, str]:
    """The request line and the ``Accept`` header (other header lines are read and ignored)."""
    request = await reader.readline()
    accept = ""
    while line := (await reader.readline()).strip():
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "accept":
            accept = value.strip()
    return request, accept
