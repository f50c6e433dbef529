"""What ``gcs status`` and the metrics endpoint report: counters, rates and view changes.

Why a tap and a sampler. The core counts (``Node.statistics()``), but an operator asks questions
counters answer only as rates or episodes: how long a token rotation takes now, how many messages
per second the ring delivers, and above all *why and for how long the membership last changed*
(landscape §3 theme 8, "why did membership change?"). ``ChangeLog`` watches the core's effects
through a ``Tap``: a membership change starts when the core leaves ``operational`` (its state
trace says why: token loss, a join from another node, a leave, ...) and ends when it installs the
next regular configuration; the configuration's own reason names the nodes concerned. ``Rates``
samples the counters once a second and reports rates over the last few seconds.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, assert_never

from gcs.build import build_info
from gcs.history.recorder import InputKind
from gcs.totem.effects import (
    Configuration,
    ConfigurationKind,
    Deliver,
    Effect,
    Multicast,
    PersistRingSeq,
    Send,
    SendWindow,
    Trace,
)
from gcs.wire.frames import RecordFlags

if TYPE_CHECKING:
    from gcs.api.node import Node
    from gcs.runtime.links import LinkReport

__all__ = ["ChangeLog", "Rates", "build_status", "link_status"]

KEEP_CHANGES = 20
RATE_WINDOW = 5  # samples (seconds) the rates are computed over
_KIND = int(RecordFlags.KIND_MASK)
_DATA = int(RecordFlags.DATA)


@dataclass(frozen=True, slots=True)
class ViewChange:
    """One configuration this node installed, with why and how long the change took."""

    at: float  # wall-clock seconds (for display)
    kind: str
    ring_id: str
    members: tuple[int, ...]
    joined: tuple[int, ...]
    left: tuple[int, ...]
    reason: str
    trigger: str  # the core's reason for leaving operational ("" for the first ring)
    duration_ms: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": round(self.at, 3),
            "kind": self.kind,
            "ring_id": self.ring_id,
            "members": list(self.members),
            "joined": list(self.joined),
            "left": list(self.left),
            "reason": self.reason,
            "trigger": self.trigger,
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 1),
        }


class ChangeLog:
    """A ``Tap`` keeping the last view changes and the delivered data volume (module docstring)."""

    def __init__(self) -> None:
        self.changes: deque[ViewChange] = deque(maxlen=KEEP_CHANGES)
        self.delivered_messages = 0
        self.delivered_bytes = 0
        self._change_ns: int | None = None
        self._trigger = ""
        self.failure: str | None = None

    def on_input(self, kind: InputKind, arg1: object, arg2: object) -> None:
        if kind is InputKind.START:
            self._change_ns = time.monotonic_ns()
            self._trigger = "startup"

    def on_effects(self, effects: list[Effect]) -> None:
        for effect in effects:
            match effect:
                case Deliver(records=records):
                    for record in records:
                        if record.flags & _KIND == _DATA:
                            self.delivered_messages += 1
                            self.delivered_bytes += len(record.data)
                case Trace(event="state", data=data):
                    if data.get("old") == "operational" and self._change_ns is None:
                        self._change_ns = time.monotonic_ns()
                        self._trigger = str(data.get("reason", ""))
                case Configuration():
                    self._configuration(effect)
                case Send() | Multicast() | PersistRingSeq() | SendWindow() | Trace():
                    pass  # nothing an operator reads here
                case _:
                    assert_never(effect)

    def on_failure(self, exc: BaseException) -> None:
        self.failure = repr(exc)

    def _configuration(self, conf: Configuration) -> None:
        now = time.monotonic_ns()
        started = self._change_ns
        duration = None if started is None else (now - started) / 1e6
        self.changes.append(
            ViewChange(
                at=time.time(),
                kind=conf.kind.value,
                ring_id=str(conf.ring_id),
                members=conf.members,
                joined=conf.joined,
                left=conf.left,
                reason=str(conf.reason),
                trigger=self._trigger,
                duration_ms=duration,
            )
        )
        if conf.kind is ConfigurationKind.REGULAR:
            self._change_ns = None
            self._trigger = ""


class Rates:
    """Counter samples once a second; rates over the last ``RATE_WINDOW`` seconds."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int, int, int, int]] = deque(maxlen=RATE_WINDOW + 1)

    def sample(self, node: Node, log: ChangeLog) -> None:
        try:
            stats = node.statistics()
        except Exception:  # not started, or closed: nothing to sample
            return
        core = stats.core
        self._samples.append(
            (
                time.monotonic(),
                core.tokens_received,
                log.delivered_messages,
                log.delivered_bytes,
                core.mcasts_retransmitted,
            )
        )

    def rates(self) -> dict[str, float | None]:
        if len(self._samples) < 2:
            return {
                "token_rotation_ms": None,
                "messages_per_s": None,
                "bytes_per_s": None,
                "retransmits_per_s": None,
            }
        t0, tok0, msg0, byte0, rtr0 = self._samples[0]
        t1, tok1, msg1, byte1, rtr1 = self._samples[-1]
        span = max(t1 - t0, 1e-9)
        tokens = tok1 - tok0
        return {
            "token_rotation_ms": round(span * 1000 / tokens, 3) if tokens else None,
            "messages_per_s": round((msg1 - msg0) / span, 1),
            "bytes_per_s": round((byte1 - byte0) / span, 1),
            "retransmits_per_s": round((rtr1 - rtr0) / span, 1),
        }


def build_status(
    node: Node, log: ChangeLog, rates: Rates, started: float, clients: int
) -> dict[str, Any]:
    """The map ``gcs status --json`` prints (RFC 0006 §10.4, the ``status`` request)."""
    stats = node.statistics()
    core, runtime = stats.core, stats.runtime
    ring = node.view
    lag = runtime.loop_lag
    return {
        "node_id": node.node_id,
        "cluster_name": node.config.cluster_name,
        "boot_id": node.boot_id,
        "uptime_s": round(time.monotonic() - started, 1),
        "build": build_info().as_json(),  # compiled (mypyc) or pure Python, see gcs.build
        "node_state": stats.state,
        "state": core.state,
        "ring_id": core.ring_id,
        "members": list(core.members),
        "transitional": bool(ring and ring.transitional),
        "configured_nodes": sorted(node.config.nodes),
        # RFC 0008 §3.7: the node list held now (version 0 is the configuration file's).
        "node_list": {"version": node.nodes().version, "nodes": list(node.nodes().ids)},
        **rates.rates(),
        "delivered_messages": log.delivered_messages,
        "delivered_bytes": log.delivered_bytes,
        "retransmissions": {
            "mcasts": core.mcasts_retransmitted,
            "requested": core.rtr_requested,
            "tokens": core.tokens_retransmitted,
        },
        "drops": dict(sorted(stats.drops.items())),
        # RFC 0005 SEC-7.1-2: two processes under one node id, once per id and pair of boots or
        # addresses; the last few with their details. SEC-7.1-1: older boots accepted again.
        "duplicate_node_id": stats.channel.duplicate_node_id,
        "duplicate_sightings": [
            {"node": d.node_id, "boots": list(d.boots), "addresses": list(d.sources)}
            for d in stats.channel.duplicates
        ],
        "boot_fallbacks": stats.channel.boot_fallbacks,
        "loop_lag_ms": {
            "last": round(lag.last_ms, 3),
            "max": round(lag.max_ms, 3),
            "mean": round(lag.mean_ms, 3),
            "over_threshold": lag.over_threshold,
        },
        "clients": clients,
        "group_members": stats.members,
        "slow_consumers": stats.slow_consumers,
        "sends_waiting": stats.sends_waiting,
        "view_changes": [c.as_dict() for c in log.changes],
        "counters": {
            name: getattr(core, name)
            for name in type(core).counter_names()
            if isinstance(getattr(core, name), int)
        },
        "datagrams": {
            "received": runtime.datagrams_received,
            "sent": runtime.datagrams_sent,
            "bytes_received": runtime.bytes_received,
            "bytes_sent": runtime.bytes_sent,
        },
        "links": link_status(runtime.links),
        "failure": log.failure,
    }


def link_status(report: LinkReport | None) -> dict[str, Any] | None:
    """Each link to each peer and each local link's traffic (RFC 0010 §8); None with one link.

    Times are ages in ms (``since_ms``: since the last change, ``heard_ms``: since the peer was
    last heard there), so the map reads the same whatever the node's clock.
    """
    if report is None:
        return None
    now = report.now_ns

    def ms(ns: int | None) -> float | None:
        return None if ns is None else round(ns / 1e6, 3)

    return {
        "mode": report.mode,
        "changes": report.changes,
        "resends": report.resends,
        "peers": [
            {
                "peer": p.peer,
                "link": p.link,
                "up": p.up,
                "routed": p.routed,
                "since_ms": ms(now - p.since_ns),
                "heard_ms": ms(now - p.heard_ns),
                "rtt_ms": ms(p.rtt_ns),
                "probes": p.pings,
                "answers": p.pongs,
                "lost": p.lost,
                "heard": p.heard,
                "changes": p.changes,
                "hears": p.hears,
                "peer_hears": p.peer_hears,
                "misrouted": p.misrouted,
            }
            for p in report.pairs
        ],
        "traffic": [
            {
                "link": t.link,
                "sent": t.sent,
                "received": t.received,
                "copies": t.copies,
                "probes_sent": t.probes_sent,
                "send_errors": t.send_errors,
            }
            for t in report.traffic
        ],
    }
