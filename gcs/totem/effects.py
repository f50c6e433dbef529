"""What the core asks its driver to do: the output half of the sans-I/O contract.

Every entry point of ``gcs.totem.Node`` returns a list of these, in the order the driver must
execute them (RFC 0003 §1.1). Drivers never call back into the core while
executing an effect. Deliveries and configurations appear in one list because their relative
order *is* the extended-virtual-synchrony guarantee: a configuration change sits exactly between
the messages it separates (RFC 0004 §7).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gcs.wire.frames import Frame, Record, RingId, reduce_frozen

__all__ = [
    "ChangeReason",
    "ConfigId",
    "Configuration",
    "ConfigurationKind",
    "Deliver",
    "Effect",
    "MembState",
    "Multicast",
    "PersistRingSeq",
    "ReasonKind",
    "Send",
    "SendWindow",
    "Trace",
]


class MembState(enum.Enum):
    """Membership states (RFC 0004 §2). STARTING waits for the first persisted ring seq."""

    STARTING = "starting"
    OPERATIONAL = "operational"
    GATHER = "gather"
    COMMIT = "commit"
    RECOVERY = "recovery"
    LEFT = "left"
    FAILED = "failed"


class ConfigurationKind(enum.Enum):
    REGULAR = "regular"
    TRANSITIONAL = "transitional"


@dataclass(frozen=True, slots=True, init=False)
class ConfigId:
    """Configurations are keyed by (kind, ring id) (RFC 0004 REC-7.1-2).

    A transitional configuration carries the id of the *new* ring it leads into.
    """

    kind: ConfigurationKind
    ring_id: RingId

    def __init__(self, kind: ConfigurationKind, ring_id: RingId) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "ring_id", ring_id)

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.ring_id}"

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


class ReasonKind(enum.Enum):
    """Why a node left its previous ring (RFC 0004 §9). Reported, never agreed on the wire."""

    STARTUP = "startup"
    TOKEN_LOSS = "token_loss"
    JOIN = "join"
    LEAVE = "leave"
    FAILURE_TO_RECEIVE = "failure_to_receive"
    MERGE = "merge"
    RECOVERY_FAILED = "recovery_failed"
    PAUSE = "pause"


@dataclass(frozen=True, slots=True)
class ChangeReason:
    """A structured view-change reason: what happened, and which nodes it was about."""

    kind: ReasonKind
    nodes: tuple[int, ...] = ()

    def __str__(self) -> str:
        if not self.nodes:
            return self.kind.value
        return f"{self.kind.value} " + ",".join(str(n) for n in self.nodes)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


@dataclass(frozen=True, slots=True, init=False)
class Send:
    """Unicast ``frame`` to node ``dest`` (tokens and commit tokens)."""

    dest: int
    frame: Frame

    def __init__(self, dest: int, frame: Frame) -> None:
        object.__setattr__(self, "dest", dest)
        object.__setattr__(self, "frame", frame)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


@dataclass(frozen=True, slots=True, init=False)
class Multicast:
    """Send ``frame`` to every node in ``dests`` (never includes the sender itself).

    The driver encodes and seals the frame once and sends the same datagram to each destination
    (or once to an IP multicast group, which then also reaches nodes outside ``dests``; receivers
    cope with that, RFC 0003 §3).
    """

    frame: Frame
    dests: tuple[int, ...]

    def __init__(self, frame: Frame, dests: tuple[int, ...]) -> None:
        object.__setattr__(self, "frame", frame)
        object.__setattr__(self, "dests", dests)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


@dataclass(frozen=True, slots=True, init=False)
class Deliver:
    """Deliver the complete records of one mcast, in total order.

    ``config`` is the configuration the delivery happens in; ``origin`` and ``seq`` identify the
    mcast in the ring that originated it; ``sender`` originated it; ``safe`` says the records
    were delivered under the safe guarantee (RFC 0003 §7.2).
    """

    config: ConfigId
    origin: RingId
    seq: int
    sender: int
    safe: bool
    records: tuple[Record, ...]

    def __init__(
        self,
        config: ConfigId,
        origin: RingId,
        seq: int,
        sender: int,
        safe: bool,
        records: tuple[Record, ...],
    ) -> None:
        object.__setattr__(self, "config", config)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "seq", seq)
        object.__setattr__(self, "sender", sender)
        object.__setattr__(self, "safe", safe)
        object.__setattr__(self, "records", records)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


@dataclass(frozen=True, slots=True, init=False)
class Configuration:
    """Install a configuration: the application sees a view change here."""

    kind: ConfigurationKind
    ring_id: RingId
    members: tuple[int, ...]
    left: tuple[int, ...]
    joined: tuple[int, ...]
    reason: ChangeReason

    def __init__(
        self,
        kind: ConfigurationKind,
        ring_id: RingId,
        members: tuple[int, ...],
        left: tuple[int, ...],
        joined: tuple[int, ...],
        reason: ChangeReason,
    ) -> None:
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "ring_id", ring_id)
        object.__setattr__(self, "members", members)
        object.__setattr__(self, "left", left)
        object.__setattr__(self, "joined", joined)
        object.__setattr__(self, "reason", reason)

    @property
    def config_id(self) -> ConfigId:
        return ConfigId(self.kind, self.ring_id)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


@dataclass(frozen=True, slots=True)
class PersistRingSeq:
    """Durably store ``seq``, then call ``on_persisted(now_ns, seq)`` (RFC 0004 REC-5.3-2)."""

    seq: int

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


@dataclass(frozen=True, slots=True, init=False)
class SendWindow:
    """The send queue crossed a water mark: closed above the high mark, open below the low."""

    open: bool

    def __init__(self, open: bool) -> None:
        object.__setattr__(self, "open", open)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


@dataclass(frozen=True, slots=True)
class Trace:
    """A structured diagnostic event: state changes, token loss, drops, membership decisions.

    One trace type feeds logs, the flight recorder, simulator reports and plots. ``data`` holds
    JSON-compatible values only.
    """

    event: str
    data: Mapping[str, object] = field(default_factory=dict)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


Effect = Send | Multicast | Deliver | Configuration | PersistRingSeq | SendWindow | Trace
