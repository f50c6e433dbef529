"""The wire layer: frames, their deterministic CBOR codec, and datagram sealing (sans-I/O).

``frames`` defines what crosses the core boundary; ``codec`` turns frames into CBOR and back
(RFC 0002); ``seal`` and ``channel`` put the CBOR into authenticated datagrams and take it out
again (RFC 0005). Drivers need only ``Channel``; the rest is exported for tests, tools and
implementers checking themselves against ``protocol/vectors``.
"""

from __future__ import annotations

from gcs.wire.channel import REPLAY_WINDOW, Channel, ChannelStatistics
from gcs.wire.codec import cluster_id_for, decode_frame, encode_frame
from gcs.wire.errors import DropReason, EncodeError, FrameError
from gcs.wire.frames import (
    FRAME_TYPES,
    Frame,
    FrameType,
    Mcast,
    MembCommitToken,
    MemberEntry,
    MembJoin,
    MembLeave,
    MembMergeDetect,
    OrfToken,
    Record,
    RecordFlags,
    RingId,
    RtrEntry,
    TokenHoldCancel,
)
from gcs.wire.limits import HEADER_BYTES, SEAL_OVERHEAD_BYTES, TAG_BYTES, WIRE_VERSION, WireLimits
from gcs.wire.seal import EPOCH_FRAMES, Suite, generate_key, load_key

__all__ = [
    "EPOCH_FRAMES",
    "FRAME_TYPES",
    "HEADER_BYTES",
    "REPLAY_WINDOW",
    "SEAL_OVERHEAD_BYTES",
    "TAG_BYTES",
    "WIRE_VERSION",
    "Channel",
    "ChannelStatistics",
    "DropReason",
    "EncodeError",
    "Frame",
    "FrameError",
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
    "Suite",
    "TokenHoldCancel",
    "WireLimits",
    "cluster_id_for",
    "decode_frame",
    "encode_frame",
    "generate_key",
    "load_key",
]
