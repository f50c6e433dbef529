"""The wire layer: frames, their deterministic CBOR codec, and datagram sealing (sans-I/O)."""

from __future__ import annotations

from gcs.wire.frames import (
    FRAME_TYPES,
    Frame,
    FrameType,
    MembCommitToken,
    MembJoin,
    MembLeave,
    MembMergeDetect,
    Mcast,
    MemberEntry,
    OrfToken,
    Record,
    RecordFlags,
    RingId,
    RtrEntry,
    TokenHoldCancel,
)

__all__ = [
    "FRAME_TYPES",
    "Frame",
    "FrameType",
    "MembCommitToken",
    "MembJoin",
    "MembLeave",
    "MembMergeDetect",
    "Mcast",
    "MemberEntry",
    "OrfToken",
    "Record",
    "RecordFlags",
    "RingId",
    "RtrEntry",
    "TokenHoldCancel",
]
