"""The group layer's own record payloads: member announcements and point-to-point messages.

Why a module of their own: these are wire formats (RFC 0006 §3.4, RFC 0008 §6) that every
node must parse identically and never raise on, and they are used by the group layer, the API
and the simulator's workloads alike; keeping them apart from ``GroupState`` keeps both short.
"""

from __future__ import annotations

import struct
from typing import Any

import cbor2

from gcs.groups.views import Member
from gcs.quorum.primary import CONTROL_DIRECTED
from gcs.wire.frames import Record, RecordFlags, RingId

__all__ = [
    "ANNOUNCE_GROUP",
    "ANNOUNCE_VERSION",
    "decode_announcement",
    "decode_announcement_ext",
    "decode_directed",
    "directed_record",
    "directed_overhead",
    "valid_group_name",
    "encode_announcement",
    "encode_directed",
]

ANNOUNCE_GROUP = ""
"""The reserved group name of announcement records (application groups are 1..255 bytes)."""
ANNOUNCE_VERSION = 1
_U64 = (1 << 64) - 1
_DATA = int(RecordFlags.DATA)
_DIRECTED = struct.Struct(">BIQB")  # type, destination node, destination handle, group length


def encode_announcement(
    ring: RingId,
    members: dict[str, set[int]],
    quorum: list[int | bool] | None = None,
    nodes: list[object] | None = None,
) -> bytes:
    """The announcement payload, deterministic CBOR (RFC 0006 §3.4)::

    [version, ring seq, ring rep, [[group, [handle, ...]], ...], ? {"quorum": state}]

    groups and handles ascending; the optional map carries this node's quorum state
    (RFC 0008 §3.4) when the node has quorum rules, and its node list (RFC 0008 §3.7) when that
    list may change.
    """
    groups = [[g, sorted(hs)] for g, hs in sorted(members.items()) if hs]
    item: list[Any] = [ANNOUNCE_VERSION, ring.seq, ring.rep, groups]
    ext: dict[str, Any] = {}
    if quorum is not None:
        ext["quorum"] = quorum
    if nodes is not None:
        ext["nodes"] = nodes
    if ext:
        item.append(ext)
    return bytes(cbor2.dumps(item, canonical=True))


def decode_announcement(data: bytes) -> tuple[RingId, dict[str, frozenset[int]]] | None:
    """Parse an announcement payload; None if it is malformed in any way (never raises)."""
    parsed = decode_announcement_ext(data)
    return None if parsed is None else (parsed[0], parsed[1])


def decode_announcement_ext(
    data: bytes,
) -> tuple[RingId, dict[str, frozenset[int]], dict[str, Any]] | None:
    """``decode_announcement`` plus the extension map (empty when absent)."""
    try:
        item: Any = cbor2.loads(data)
    except Exception:  # cbor2 raises several types on bad input; any means malformed
        return None
    if not (type(item) is list and len(item) in (4, 5) and item[0] == ANNOUNCE_VERSION):
        return None
    seq, rep, groups = item[1], item[2], item[3]
    ext = item[4] if len(item) == 5 else {}
    if not (_is_u64(seq) and _is_u64(rep) and type(groups) is list and type(ext) is dict):
        return None
    out: dict[str, frozenset[int]] = {}
    for entry in groups:
        if not (type(entry) is list and len(entry) == 2):
            return None
        name, handles = entry
        if not (valid_group_name(name) and type(handles) is list and handles):
            return None
        if not all(_is_u64(h) and h > 0 for h in handles) or name in out:
            return None
        out[name] = frozenset(handles)
    return RingId(seq=seq, rep=rep), out, ext


def encode_directed(group: str, to: Member, payload: bytes) -> bytes:
    """A point-to-point control record's data: type, destination member, group, payload."""
    name = group.encode("utf-8")
    return _DIRECTED.pack(CONTROL_DIRECTED, to.node, to.handle, len(name)) + name + payload


def directed_record(group: str, handle: int, to: Member, payload: bytes) -> Record:
    """The record a point-to-point message travels in: a DATA record of the reserved group, under
    the sending member's handle (so a leave of that member withdraws it too)."""
    return Record(ANNOUNCE_GROUP, handle, _DATA, encode_directed(group, to, payload))


def decode_directed(data: bytes) -> tuple[str, Member, bytes] | None:
    """(group, destination, payload) of a point-to-point record; None if malformed."""
    head = _DIRECTED.size
    if len(data) < head or data[0] != CONTROL_DIRECTED:
        return None
    _, node, handle, length = _DIRECTED.unpack_from(data)
    end = head + length
    try:
        group = data[head:end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(data) < end or not valid_group_name(group) or node == 0 or handle == 0:
        return None
    return group, Member(node, handle), data[end:]


def directed_overhead(group: str) -> int:
    """Bytes a point-to-point record adds to its payload (the limit is max_message_bytes)."""
    return _DIRECTED.size + len(group.encode("utf-8"))


def _is_u64(value: object) -> bool:
    return type(value) is int and 0 <= value <= _U64


def valid_group_name(name: object) -> bool:
    """An application group name: 1..255 bytes of UTF-8 (``""`` is the layer's own group)."""
    return type(name) is str and 1 <= len(name.encode("utf-8", "surrogatepass")) <= 255
