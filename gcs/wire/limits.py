"""Size and count limits the decoder enforces, and the fixed sizes of the datagram layout.

A receiver must bound the work and memory an unauthenticated or buggy peer can make it spend, so
every variable-length part of a frame has a ceiling (RFC 0002 §7, the limits table). The limits
are a frozen value handed to the decoder rather than module constants because deployments differ:
the default datagram budget suits a 1,500-byte Ethernet MTU, while loopback tests, jumbo frames or
the simulator may want larger datagrams. All members of a cluster SHOULD use the same limits; a
receiver with smaller limits than its peers drops their larger frames as ``too_large`` or
``too_many`` (counted, so the misconfiguration is visible).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gcs.wire.frames import reduce_frozen

__all__ = [
    "HEADER_BYTES",
    "MAX_LINKS",
    "MAX_DATAGRAM_CEILING",
    "NONCE_BYTES",
    "SEAL_OVERHEAD_BYTES",
    "TAG_BYTES",
    "WIRE_VERSION",
    "WireLimits",
]

WIRE_VERSION = 1
"""The wire version: in the clear header and as the first element of every frame (RFC 0002 §9)."""

MAX_LINKS = 8
"""Links a node may have (RFC 0010), as kronosnet's; a link index is 0..MAX_LINKS-1."""

HEADER_BYTES = 32
"""Length of the clear header that starts every datagram (RFC 0005 §3)."""

TAG_BYTES = 16
"""Length of the AEAD authentication tag after the ciphertext (both suites)."""

NONCE_BYTES = 12
"""AEAD nonce length: 4 zero bytes then the 64-bit counter, big-endian (RFC 0005 §5)."""

SEAL_OVERHEAD_BYTES = HEADER_BYTES + TAG_BYTES
"""Bytes a sealed datagram adds around the CBOR frame."""

MAX_DATAGRAM_CEILING = 1 << 20
"""Largest ``max_datagram_bytes`` accepted. UDP itself stops at 65,507 bytes over IPv4; larger
values only make sense for in-memory transports such as the simulator."""

_MIN_DATAGRAM = 256
_U32 = (1 << 32) - 1


@dataclass(frozen=True, slots=True)
class WireLimits:
    """Ceilings on what a received frame may contain (RFC 0002 §7).

    ``max_datagram_bytes`` bounds the whole datagram, header and tag included; the CBOR frame may
    use at most ``max_frame_bytes`` of it whether or not the datagram is sealed, so a frame that
    fits one suite fits all. The default (1,600) is a ceiling, not a target: it leaves room for
    the core's 1,400-byte payload budget plus CBOR overhead, the recovery encapsulation and the 48
    sealing bytes. The sender checks it too, so an oversized frame fails loudly where it is made.
    """

    max_datagram_bytes: int = 1600
    max_rtr_entries: int = 64
    max_nodes: int = 384
    max_records: int = 256
    max_group_bytes: int = 255
    max_record_data_bytes: int = 65535

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)

    def __post_init__(self) -> None:
        _check("max_datagram_bytes", self.max_datagram_bytes, _MIN_DATAGRAM, MAX_DATAGRAM_CEILING)
        _check("max_rtr_entries", self.max_rtr_entries, 0, _U32)
        _check("max_nodes", self.max_nodes, 1, _U32)
        _check("max_records", self.max_records, 1, _U32)
        _check("max_group_bytes", self.max_group_bytes, 1, _U32)
        _check("max_record_data_bytes", self.max_record_data_bytes, 0, _U32)

    @property
    def max_frame_bytes(self) -> int:
        """The largest CBOR frame a datagram may carry: the datagram limit minus sealing bytes."""
        return self.max_datagram_bytes - SEAL_OVERHEAD_BYTES


def _check(name: str, value: int, low: int, high: int) -> None:
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"WireLimits.{name} must be an int in {low}..{high}, got {value!r}")
