"""Counters a node keeps about itself, exposed as one frozen snapshot (``Node.statistics()``).

Counting is how a dropped frame or a slow ring shows up in ``gcs status`` and in simulator
reports; nothing here influences protocol decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

__all__ = ["Counters", "Statistics"]


@dataclass(slots=True)
class Counters:
    """Mutable counters owned by the core."""

    tokens_received: int = 0
    tokens_forwarded: int = 0
    tokens_retransmitted: int = 0
    tokens_held: int = 0
    mcasts_originated: int = 0
    mcasts_retransmitted: int = 0
    mcasts_received: int = 0
    mcasts_duplicate: int = 0
    rtr_requested: int = 0
    records_submitted: int = 0
    records_delivered: int = 0
    mcasts_delivered: int = 0
    fragments_dropped: int = 0
    gather_entries: int = 0
    configurations: int = 0
    recoveries_failed: int = 0
    joins_sent: int = 0
    pauses_detected: int = 0
    drops: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1


@dataclass(frozen=True, slots=True)
class Statistics:
    """A point-in-time copy of the counters plus a few gauges."""

    state: str
    ring_id: str
    members: tuple[int, ...]
    send_queue_bytes: int
    send_queue_records: int
    sort_queue_len: int
    tokens_received: int
    tokens_forwarded: int
    tokens_retransmitted: int
    tokens_held: int
    mcasts_originated: int
    mcasts_retransmitted: int
    mcasts_received: int
    mcasts_duplicate: int
    rtr_requested: int
    records_submitted: int
    records_delivered: int
    mcasts_delivered: int
    fragments_dropped: int
    gather_entries: int
    configurations: int
    recoveries_failed: int
    joins_sent: int
    pauses_detected: int
    drops: dict[str, int]

    @staticmethod
    def counter_names() -> tuple[str, ...]:
        return tuple(f.name for f in fields(Counters))
