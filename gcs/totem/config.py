"""The core's parameters: one frozen value, every duration in integer nanoseconds.

``gcs.Config`` (the user-facing file format, durations in ms) builds one of these; the simulator
builds them from scenario files. Defaults and their reasons are documented once, in RFC 0003 §10
and RFC 0004 §10; the values here must match those tables (a test checks it).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from gcs.errors import ConfigError
from gcs.wire.frames import reduce_frozen
from gcs.wire.limits import WireLimits

__all__ = ["FailToRecvMode", "TotemConfig"]

MS = 1_000_000
FRAME_HEADROOM = 200  # bytes around the payload budget: frame header, encapsulation, sealing
RECORD_OVERHEAD = 20  # the least a record costs in a frame (gcs.totem.sendqueue, RFC 0003 §8.1)


class FailToRecvMode(enum.Enum):
    """Who is excluded when one member keeps failing to receive (RFC 0004 §8.1)."""

    EXCLUDE_LAGGARD = "exclude_laggard"  # ours: the others exclude it by consensus, time-based
    SELF_EXCLUDE = "self_exclude"  # corosync: the laggard declares itself failed, rotation-based


@dataclass(frozen=True, slots=True)
class TotemConfig:
    """Protocol parameters of one node. All members of a cluster must use the same timers."""

    node_id: int
    nodes: tuple[int, ...]

    # Timers (RFC 0003 §10, RFC 0004 §10).
    token_timeout_ns: int = 1000 * MS
    token_retransmit_ns: int = 238 * MS
    hold_timeout_ns: int = 180 * MS
    join_timeout_ns: int = 50 * MS
    join_jitter_ns: int = 10 * MS
    join_timeout_max_ns: int = 400 * MS
    join_backoff_after: int = 20
    consensus_timeout_ns: int = 1200 * MS
    merge_timeout_ns: int = 200 * MS

    # Ordering and flow control.
    window_size: int = 50
    max_messages: int = 17
    window_bytes: int = 256 * 1024  # bytes of records per rotation, shared by backlog (ORD-6-4)
    adaptive_window: bool = False  # AIMD on the window when retransmissions appear (§6.1)
    window_min: int = 8
    sort_window: int = 16384
    rtr_max: int = 30
    miss_count_const: int = 5
    seqno_unchanged_const: int = 30
    token_hold: bool = True

    # Failure to receive (RFC 0004 §8.1).
    fail_to_recv_mode: FailToRecvMode = FailToRecvMode.EXCLUDE_LAGGARD
    fail_to_recv_ns: int = 4000 * MS
    fail_to_recv_const: int = 2500

    # Asymmetric-link hysteresis (RFC 0004 §8.2) and the pause guard (§8.3).
    exclusion_hysteresis: bool = True
    exclusion_penalty_ns: int = 2000 * MS
    exclusion_penalty_max_ns: int = 60_000 * MS
    pause_guard: bool = True

    # Send queue, packing and fragmentation (RFC 0003 §8).
    send_queue_max_bytes: int = 4 * 1024 * 1024
    send_queue_high_pct: int = 75
    send_queue_low_pct: int = 25
    frame_payload_bytes: int = 1400
    max_message_bytes: int = 1024 * 1024

    # Accelerated ring (RFC 0003 §9): pass the token before multicasting the visit's share.
    accelerated: bool = False

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)

    def __post_init__(self) -> None:
        self._check_ids()
        self._check_positive()
        if self.consensus_timeout_ns < self.join_timeout_ns:
            raise ConfigError("consensus_timeout", "must be at least join_timeout")
        if self.token_retransmit_ns >= self.token_timeout_ns:
            raise ConfigError("token_retransmit", "must be shorter than token_timeout")
        if self.max_messages > self.window_size:
            raise ConfigError("max_messages", "must not exceed window_size")
        if self.window_min < 1:
            raise ConfigError("window_min", "must be positive")
        if not 0 <= self.send_queue_low_pct < self.send_queue_high_pct <= 100:
            raise ConfigError("send_queue_high_pct", "need 0 <= low < high <= 100")
        if self.frame_payload_bytes < 64:
            raise ConfigError("frame_payload_bytes", "must be at least 64")
        if self.window_bytes < self.frame_payload_bytes:
            raise ConfigError("window_bytes", "must be at least frame_payload_bytes")

    def _check_ids(self) -> None:
        if self.node_id <= 0 or self.node_id >= 2**32:
            raise ConfigError("node_id", "must be in 1..2^32-1")
        if not self.nodes or any(n <= 0 or n >= 2**32 for n in self.nodes):
            raise ConfigError("nodes", "node ids must be in 1..2^32-1")
        if len(set(self.nodes)) != len(self.nodes):
            raise ConfigError("nodes", "duplicate node id")
        if self.node_id not in self.nodes:
            raise ConfigError("nodes", f"must contain this node's id {self.node_id}")
        if tuple(sorted(self.nodes)) != self.nodes:
            object.__setattr__(self, "nodes", tuple(sorted(self.nodes)))

    def _check_positive(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_ns") and f.name != "join_jitter_ns" and value <= 0:
                raise ConfigError(f.name.removesuffix("_ns"), "must be positive")
            if f.name in ("window_size", "max_messages", "sort_window", "rtr_max") and value <= 0:
                raise ConfigError(f.name, "must be positive")

    @property
    def peers(self) -> tuple[int, ...]:
        """Every configured node but this one."""
        return tuple(n for n in self.nodes if n != self.node_id)

    def wire_limits(self) -> WireLimits:
        """Wire limits that fit every frame this configuration can make a core produce.

        Frames carry at most ``frame_payload_bytes`` of records; the frame header, the
        encapsulation of a recovered mcast and the sealing add less than ``FRAME_HEADROOM``.
        Every record costs at least ``RECORD_OVERHEAD`` bytes of that budget (RFC 0003 §8.1),
        so a frame holds fewer than ``frame_payload_bytes // RECORD_OVERHEAD + 1`` records: with
        frames larger than about 5 KB, small messages pack more than the default 256.
        """
        return WireLimits(
            max_datagram_bytes=self.frame_payload_bytes + FRAME_HEADROOM,
            max_rtr_entries=max(64, self.rtr_max),
            max_nodes=max(384, len(self.nodes)),
            max_records=max(256, self.frame_payload_bytes // RECORD_OVERHEAD + 1),
            max_record_data_bytes=max(65535, self.frame_payload_bytes),
        )

    @property
    def send_queue_high_bytes(self) -> int:
        return self.send_queue_max_bytes * self.send_queue_high_pct // 100

    @property
    def send_queue_low_bytes(self) -> int:
        return self.send_queue_max_bytes * self.send_queue_low_pct // 100
