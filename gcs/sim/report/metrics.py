"""Figures of a simulated run, computed from its history and the hosts' counters.

Latency is measured per message from its submission to its delivery at each node (virtual
time), separately for agreed and safe messages; quantiles are nearest-rank. Throughput counts
distinct messages delivered per second of the workload period.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from gcs.history import events as h
from gcs.sim.world import World

__all__ = ["Metrics", "compute_metrics", "quantile"]

MS = 1_000_000
S = 1_000_000_000
QUANTILES = (0.0, 0.5, 0.95, 0.99, 1.0)


def quantile(sorted_values: list[int], q: float) -> int:
    if not sorted_values:
        return 0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass(frozen=True, slots=True)
class Metrics:
    submitted: int
    delivered_messages: int
    deliveries: int
    msgs_per_s: float
    token_rotations_per_s: float
    retransmissions: int
    agreed_latency_ms: dict[str, float]
    safe_latency_ms: dict[str, float]
    view_changes: dict[str, int]
    frames_sent: int
    frames_lost: int
    wire_drops: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        def q(d: dict[str, float]) -> str:
            return " ".join(f"p{k}={v:.2f}" for k, v in d.items())

        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.view_changes.items())) or "none"
        return [
            f"delivered     {self.delivered_messages} messages ({self.deliveries} deliveries), "
            f"{self.submitted} submitted",
            f"throughput    {self.msgs_per_s:.1f} msgs/s (virtual)",
            f"token         {self.token_rotations_per_s:.1f} rotations/s",
            f"agreed ms     {q(self.agreed_latency_ms)}",
            f"safe ms       {q(self.safe_latency_ms)}",
            f"retransmits   {self.retransmissions}  (frames sent {self.frames_sent}, "
            f"lost {self.frames_lost})",
            f"view changes  {reasons}",
        ]


def compute_metrics(world: World, workload_s: float) -> Metrics:
    submitted_at: dict[h.MsgId, tuple[int, bool]] = {}
    agreed: list[int] = []
    safe: list[int] = []
    delivered: set[h.MsgId] = set()
    deliveries = 0
    changes: Counter[str] = Counter()
    for event in world.history.events:
        if isinstance(event, h.Submit):
            submitted_at[event.msg_id] = (event.time_ns, event.safe)
        elif isinstance(event, h.Deliver):
            for msg_id in event.msg_ids:
                deliveries += 1
                delivered.add(msg_id)
                sub = submitted_at.get(msg_id)
                if sub is not None:
                    (safe if event.safe else agreed).append(event.time_ns - sub[0])
        elif isinstance(event, h.Conf) and event.kind == "regular":
            changes[event.reason.split(" ")[0]] += 1
    agreed.sort()
    safe.sort()
    rotations = 0
    retrans = 0
    for host in world.hosts.values():
        if host.core is not None:
            stats = host.core.statistics()
            retrans += stats.mcasts_retransmitted
            if host.core.ring.is_rep:
                rotations = max(rotations, stats.tokens_received)
    duration = max(world.now, 1) / S
    return Metrics(
        submitted=len(submitted_at),
        delivered_messages=len(delivered),
        deliveries=deliveries,
        msgs_per_s=len(delivered) / max(workload_s, 1e-9),
        token_rotations_per_s=rotations / duration,
        retransmissions=retrans,
        agreed_latency_ms={f"{int(q * 100)}": quantile(agreed, q) / MS for q in QUANTILES},
        safe_latency_ms={f"{int(q * 100)}": quantile(safe, q) / MS for q in QUANTILES},
        view_changes=dict(changes),
        frames_sent=world.network.sent,
        frames_lost=world.network.lost + world.network.blocked_drops + world.frames_dropped,
    )
