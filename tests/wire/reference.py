"""A reference reader of RFC 0002 §8, written from the document alone, for comparing drop reasons.

It is deliberately slow and literal: its own CBOR reader (nothing from ``gcs.wire`` or cbor2),
one schema per frame type, and one walk that applies the checks of the table in RFC 0002 §8.2
in the order §8.1 gives (WIRE-8.2-1): size, the CBOR item in byte order, trailing bytes, the
prefix, then every value depth-first in element order, each value's checks in the order form,
range, limit, content, relation. ``reason(data)`` returns the reason a receiver must report, or
None for a valid frame. tests/wire/test_precedence.py checks that ``gcs.wire.codec`` reports the
same reason for every vector and for many thousands of frames with several faults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

U32 = (1 << 32) - 1
U64 = (1 << 64) - 1
MAX_DEPTH = 4
TYPE_CODES = range(8)
MAX_LINKS = 8
VALID_FLAGS = {kind | position for kind in (0, 1, 2) for position in (0, 4, 8, 12)}
SAFE_BIT = 16


@dataclass(frozen=True)
class Limits:
    max_frame_bytes: int = 1552
    max_rtr_entries: int = 64
    max_nodes: int = 384
    max_records: int = 256
    max_group_bytes: int = 255
    max_record_data_bytes: int = 65535


class Fault(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Simple:
    """A simple value other than false, true and null (undefined included)."""


class Map:
    """A CBOR map (never valid in a frame; kept apart from arrays on purpose)."""


# ------------------------------------------------------------------ CBOR, in byte order


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise Fault("truncated")
        out = self.data[self.pos : self.pos + count]
        self.pos += count
        return out

    def item(self, depth: int) -> Any:
        """One data item enclosed by ``depth`` arrays or maps."""
        initial = self.take(1)[0]
        major, info = initial >> 5, initial & 31
        if depth > MAX_DEPTH or major == 6 or 28 <= info <= 30 or info == 31:
            raise Fault("cbor")  # too deep, a tag, reserved, indefinite or break
        width = {24: 1, 25: 2, 26: 4, 27: 8}.get(info, 0)
        arg = int.from_bytes(self.take(width), "big") if width else info
        if major == 0:
            return arg
        if major == 1:
            return -1 - arg
        if major in (2, 3):
            raw = self.take(arg)
            if major == 2:
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise Fault("cbor") from None
        if major in (4, 5):
            count = arg if major == 4 else 2 * arg
            items = []
            for _ in range(count):  # each item takes a byte: a huge count ends in "truncated"
                items.append(self.item(depth + 1))
            return items if major == 4 else Map()
        return self._simple(info, arg)

    @staticmethod
    def _simple(info: int, arg: int) -> Any:
        if info == 24 and arg < 32:
            raise Fault("cbor")
        if info >= 25:
            return float(arg)  # a float: its value does not matter, only that it is no integer
        return {20: False, 21: True, 22: None}.get(arg, Simple())


# ------------------------------------------------------------------ the field walk


def _int(value: Any, low: int, high: int) -> None:
    if type(value) is not int:
        raise Fault("type")
    if not low <= value <= high:
        raise Fault("range")


def _u64(value: Any) -> None:
    _int(value, 0, U64)


def _node(value: Any) -> None:
    _int(value, 1, U32)


def _bool(value: Any) -> None:
    if type(value) is not bool:
        raise Fault("type")


def _array(value: Any, length: int) -> list[Any]:
    if type(value) is not list or len(value) != length:
        raise Fault("shape")
    return value


def _list(value: Any, limit: int) -> list[Any]:
    if type(value) is not list:
        raise Fault("shape")
    if len(value) > limit:
        raise Fault("too_many")
    return value


def _ring(value: Any) -> None:
    rep, seq = _array(value, 2)
    _node(rep)
    _u64(seq)


def _node_set(value: Any, limits: Limits) -> None:
    previous = 0
    for node in _list(value, limits.max_nodes):
        _node(node)
        if node <= previous:
            raise Fault("not_canonical")
        previous = node


def _record(value: Any, safe: bool, limits: Limits) -> None:
    group, handle, flags, data = _array(value, 4)
    if type(group) is not str:
        raise Fault("type")
    if len(group.encode()) > limits.max_group_bytes:
        raise Fault("too_large")
    _u64(handle)
    _u64(flags)
    if flags & ~SAFE_BIT not in VALID_FLAGS:
        raise Fault("range")
    if bool(flags & SAFE_BIT) != safe:
        raise Fault("safe_mismatch")
    if type(data) is not bytes:
        raise Fault("type")
    if len(data) > limits.max_record_data_bytes:
        raise Fault("too_large")


def _mcast(fields: list[Any], inner: bool, limits: Limits) -> None:
    sender, ring, seq, safe, records, encapsulated = fields
    _node(sender)
    _ring(ring)
    _u64(seq)
    _bool(safe)
    for record in _list(records, limits.max_records):
        _record(record, safe, limits)
    if encapsulated is None:
        return
    if inner:
        raise Fault("encapsulation")
    _array(encapsulated, 6)
    if records:
        raise Fault("encapsulation")
    _mcast(encapsulated, True, limits)


def _token(fields: list[Any], limits: Limits) -> None:
    ring, token_seq, seq, aru, aru_id, fcc, backlog, retrans_flg, rtr = fields
    _ring(ring)
    for value in (token_seq, seq, aru):
        _u64(value)
    _int(aru_id, 0, U32)
    _u64(fcc)
    _u64(backlog)
    _bool(retrans_flg)
    for entry in _list(rtr, limits.max_rtr_entries):
        entry_ring, entry_seq = _array(entry, 2)
        _ring(entry_ring)
        _u64(entry_seq)


def _join(fields: list[Any], limits: Limits) -> None:
    sender, proc_set, fail_set, ring_seq = fields
    _node(sender)
    _node_set(proc_set, limits)
    _node_set(fail_set, limits)
    _u64(ring_seq)


def _commit(fields: list[Any], limits: Limits) -> None:
    ring, token_seq, memb_index, members = fields
    _ring(ring)
    _u64(token_seq)
    _u64(memb_index)
    for member in _list(members, limits.max_nodes):
        node_id, old_ring, aru, high_delivered, received_flg = _array(member, 5)
        _node(node_id)
        _ring(old_ring)
        _u64(aru)
        _u64(high_delivered)
        _bool(received_flg)


def _sender_ring(fields: list[Any], limits: Limits) -> None:
    _node(fields[0])
    _ring(fields[1])


def _probe(fields: list[Any], limits: Limits) -> None:
    link, seq, reply, hears = fields
    _int(link, 0, MAX_LINKS - 1)
    _u64(seq)
    _bool(reply)
    _bool(hears)


_LAYOUTS = {
    0: (12, _token),
    1: (9, lambda f, lim: _mcast(f, False, lim)),
    2: (5, _sender_ring),
    3: (7, _join),
    4: (7, _commit),
    5: (5, _sender_ring),
    6: (7, _join),
    7: (7, _probe),
}


def reason(data: bytes, cluster_id: int, limits: Limits = Limits()) -> str | None:
    """The drop reason RFC 0002 §8 gives ``data``, or None if it is a valid frame."""
    try:
        _check(data, cluster_id, limits)
    except Fault as fault:
        return fault.reason
    return None


def _check(data: bytes, cluster_id: int, limits: Limits) -> None:
    if len(data) > limits.max_frame_bytes:
        raise Fault("too_large")
    reader = _Reader(data)
    item = reader.item(0)
    if reader.pos != len(data):
        raise Fault("trailing_bytes")
    if type(item) is not list or len(item) < 3:
        raise Fault("shape")
    version, cid, code = item[:3]
    if type(version) is not int or version != 1:
        raise Fault("bad_version")
    if type(cid) is not int or cid != cluster_id:
        raise Fault("wrong_cluster")
    if type(code) is not int or code not in TYPE_CODES:
        raise Fault("unknown_type")
    width, walk = _LAYOUTS[code]
    if len(item) != width:
        raise Fault("shape")
    walk(item[3:], limits)
