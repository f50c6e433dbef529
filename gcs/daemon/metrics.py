"""Prometheus metrics of a daemon, on a loopback HTTP port (optional: the ``metrics`` extra).

Why ``prometheus_client``: it is how Python services expose metrics, so operators get what they
expect without gcs writing a format or an HTTP server by hand — the text format and OpenMetrics
(by the scrape's ``Accept`` header), and next to gcs's own figures the standard ``process_*``
(CPU seconds, resident memory, open descriptors) and ``python_*`` metrics. It is an optional
extra (``pip install 'gcs[metrics]'``); without it ``--metrics-port`` is refused with one line
that says so.

The figures are the status map's (``gcs.daemon.status.build_status``), each with the labels
``node`` and ``cluster``: ring size and seq, operational, token rotation time, delivered messages
and bytes, retransmissions, configurations, event-loop lag, clients, group members, drops by
reason and the duration of the last membership change. The library serves them from its own
thread; the status map is built on the event loop (the node's state belongs to it) for each
scrape. The server binds to loopback only: the figures name the cluster's nodes and are nobody
else's business.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from gcs.errors import ConfigError

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.metrics_core import Metric

__all__ = ["MetricsServer"]

_LOG = logging.getLogger("gcs.daemon.metrics")
SCRAPE_TIMEOUT_S = 5.0
"""How long a scrape waits for the event loop to build the status map."""
LABELS = ("node", "cluster")

Status = dict[str, Any]

# (metric name, type, help, value from the status map; None: not measured yet)
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
    ("gcs_clients", "gauge", "clients connected to the control socket", lambda s: s["clients"]),
    ("gcs_group_members", "gauge", "local group members", lambda s: s["group_members"]),
)


def _ring_seq(ring_id: str) -> int:
    try:
        return int(ring_id.rsplit(".", 1)[1])
    except (IndexError, ValueError):
        return 0


def families(status: Status) -> Iterator[Metric]:
    """The metric families of one status map (counters are exposed with ``_total``)."""
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


class _StatusCollector:
    """A ``prometheus_client`` collector: builds the status map on the loop at each scrape."""

    def __init__(self, status: Callable[[], Status], loop: asyncio.AbstractEventLoop) -> None:
        self._status = status
        self._loop = loop

    def collect(self) -> Iterator[Metric]:
        result: concurrent.futures.Future[Status] = concurrent.futures.Future()

        def build() -> None:
            try:
                result.set_result(self._status())
            except Exception as exc:
                result.set_exception(exc)

        try:
            self._loop.call_soon_threadsafe(build)
            status = result.result(timeout=SCRAPE_TIMEOUT_S)
        except (RuntimeError, TimeoutError) as exc:  # the loop closed, or is stuck
            _LOG.warning("metrics scrape without gcs figures: %r", exc)
            return
        yield from families(status)


class MetricsServer:
    """``prometheus_client``'s HTTP server on 127.0.0.1, with gcs's collector (module docstring).

    Raises ``ConfigError`` when the ``metrics`` extra (``prometheus_client``) is not installed.
    """

    def __init__(self, status: Callable[[], Status], port: int, host: str = "127.0.0.1") -> None:
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            raise ConfigError(
                "--metrics-port", "needs prometheus_client: pip install 'gcs[metrics]'"
            ) from None
        self._status = status
        self.port = port
        self.host = host
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        from prometheus_client import (
            GC_COLLECTOR,
            PLATFORM_COLLECTOR,
            PROCESS_COLLECTOR,
            CollectorRegistry,
            start_http_server,
        )

        registry = CollectorRegistry(auto_describe=False)
        for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(standard)
        registry.register(_StatusCollector(self._status, asyncio.get_running_loop()))
        self._server, self._thread = start_http_server(self.port, self.host, registry)
        self.port = self._server.server_port

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            # shutdown() waits for the serving thread's poll loop: not on the event loop.
            await asyncio.get_running_loop().run_in_executor(None, server.shutdown)
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)
