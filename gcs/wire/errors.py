"""Why a datagram or frame was refused: one exception, one closed set of machine-readable reasons.

The wire layer faces the network, so every refusal must be cheap to produce, impossible to confuse
with a bug, and countable. ``FrameError`` is the *only* exception that decoding and opening raise,
whatever the input bytes (RFC 0002 §8, WIRE-8.1-10); its ``reason`` is a member of the closed
``DropReason`` enum so drop counters, logs, test vectors and other implementations all use the
same vocabulary (the registry is RFC 0002 §8.3; the checks that produce each are §8.2).

``EncodeError`` is the opposite direction: the local program asked to send something the format
cannot carry (a frame too large for the datagram limit, an object that is not a frame). That is a
bug or a misconfiguration on this node, never an attack, so it is a ``ValueError`` and is not
counted as a drop.
"""

from __future__ import annotations

import enum

__all__ = ["AlreadyAccepted", "DropReason", "EncodeError", "FrameError"]


class DropReason(enum.StrEnum):
    """Every reason a received datagram is dropped (RFC 0002 §8.2, RFC 0005 §9).

    The values are the strings used in test vectors, statistics and log lines; they are part of
    the specification and MUST NOT be renamed. Checks run in the order of the table in RFC 0002
    §8.2 (WIRE-8.2-1), so the reason reported for bytes with several faults is deterministic.
    """

    # Datagram level (clear header and sealing, RFC 0005).
    TOO_LARGE = "too_large"  # datagram or frame longer than the configured limit
    TRUNCATED = "truncated"  # shorter than the clear header, the AEAD tag, or the CBOR it starts
    BAD_MAGIC = "bad_magic"  # the first two bytes are not b"GC"
    BAD_VERSION = "bad_version"  # a wire version this node does not speak
    WRONG_CLUSTER = "wrong_cluster"  # cluster id of another cluster
    BAD_SUITE = "bad_suite"  # suite code not in the registry
    UNSEALED = "unsealed"  # suite 0 (no AEAD) received by a keyed channel
    SEALED_UNEXPECTED = "sealed_unexpected"  # an AEAD suite received by an unkeyed channel
    LOOPBACK = "loopback"  # carries this node's own id (multicast loopback or a reflection)
    UNKNOWN_SENDER = "unknown_sender"  # sender id 0, or not in the configured peers
    OLD_BOOT = "old_boot"  # a boot older than the newest authenticated one and no longer kept
    SHADOWED_BOOT = "shadowed_boot"  # a kept boot while the sender's preferred boot is heard
    OLD_EPOCH = "old_epoch"  # key epoch older than the two newest seen from that sender boot
    EPOCH_JUMP = "epoch_jump"  # an epoch the sender cannot have reached (SEC-8.3-2)
    REPLAY = "replay"  # counter already accepted, or too far behind the replay window
    AUTH = "auth"  # the AEAD tag did not verify (wrong key, forgery, corruption)

    # Frame level (deterministic CBOR and frame shape, RFC 0002).
    CBOR = "cbor"  # not well-formed CBOR, or a tag, indefinite length or too deep nesting
    TRAILING_BYTES = "trailing_bytes"  # bytes left over after the single top-level item
    HEADER_MISMATCH = "header_mismatch"  # frame version/cluster id disagree with the clear header
    UNKNOWN_TYPE = "unknown_type"  # frame type code not in the registry
    SHAPE = "shape"  # an array was expected and something else was found, or its length is wrong
    TYPE = "type"  # a scalar field has the wrong CBOR type (bool is not an int, and vice versa)
    RANGE = "range"  # an integer outside its field's range, or undefined record flag bits
    TOO_MANY = "too_many"  # a list has more entries than its limit
    NOT_CANONICAL = "not_canonical"  # a set is not strictly ascending (duplicates or disorder)
    SAFE_MISMATCH = "safe_mismatch"  # a record's SAFE bit differs from its mcast's ``safe``
    ENCAPSULATION = "encapsulation"  # nested encapsulation, or an encapsulating mcast has records


class FrameError(Exception):
    """A received datagram or frame was refused; ``reason`` says why, ``detail`` says where.

    ``detail`` is for humans (log lines, test failures) and is not part of the specification.
    """

    __slots__ = ("detail", "reason")

    def __init__(self, reason: DropReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class AlreadyAccepted(FrameError):
    """A ``replay`` drop of a counter the receiver already accepted (not one behind the window).

    Still the drop reason ``replay`` (RFC 0002 §8.2 D16). A separate class because a node with
    several links expects exactly this, a second copy of a datagram sent on every link (RFC 0010
    LNK-6-3), and counts it apart from replays so that the copies do not look like an attack.
    """

    __slots__ = ()


class EncodeError(ValueError):
    """This node tried to encode or seal something the wire format cannot carry."""
