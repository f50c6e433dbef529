"""Deterministic CBOR encoding and strict decoding of frames (RFC 0002 §4-§8).

Theory of operation. A frame is one CBOR array, ``[version, cluster_id, type, field...]``, whose
fields are positional: no map keys, so a 20-record mcast costs no more bytes than its contents
need, and the layout is fixed per type code (the CDDL in ``protocol/messages.cddl`` is normative).
Encoding is deterministic (RFC 8949 §4.2.1: preferred integer encodings, definite lengths, sets
as strictly ascending arrays), so a frame has exactly one encoding and test vectors compare bytes.

Decoding trusts nothing. cbor2 turns the bytes into Python lists and scalars with every CBOR tag
rejected (a tag could otherwise smuggle a bignum in as an ``int``, or a shared reference in as a
cyclic list), indefinite lengths refused and nesting capped at the format's real depth (4). Then
the frame's shape is checked field by field against the layout: exact array lengths, exact types
(``bool`` is not an ``int`` here), ranges, list lengths within ``WireLimits``, no bytes after the
item. Anything wrong raises ``FrameError`` with a ``DropReason``; nothing else escapes, whatever
the input (WIRE-8.1-10). The checker does not know protocol rules (whether a fail set is a subset of
a proc set, whether a seq makes sense): that is the core's job.

Which reason. A frame with several faults is dropped for the first one in the order of RFC 0002
§8 (WIRE-8.2-1): the size, then the CBOR item in byte order (``gcs.wire.wellformed`` names that
fault when cbor2 refuses the bytes, because cbor2's own order differs), trailing bytes, the
three-element prefix, and then the fields depth-first in element order, each value's checks in
the order form, range, limit, content, relation to earlier values. Every slow path below visits
fields in exactly that order, so conformance suites can compare reasons.

Speed. Decoding is on the receive hot path. Each field group is checked with one boolean
expression over the unpacked values; only when it fails does a slower function work out which
field was wrong and why, so error reporting costs nothing on good frames. Frames are built with
their plain constructors, so this module compiles unchanged to a C extension (the compiled
build, ``gcs.build``), where those constructors are native; ring ids are memoised.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from io import BytesIO
from typing import Any, NoReturn

import cbor2

from gcs.wire.errors import DropReason, EncodeError, FrameError
from gcs.wire.frames import (
    FrameType,
    LinkProbe,
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
    WireFrame,
)
from gcs.wire.limits import MAX_LINKS, WIRE_VERSION, WireLimits
from gcs.wire.wellformed import MAX_CBOR_DEPTH, first_fault

__all__ = [
    "CLUSTER_ID_LABEL",
    "ENCAPSULATING_MCAST_FIXED_BYTES_MAX",
    "MAX_CBOR_DEPTH",
    "MCAST_FIXED_BYTES_MAX",
    "RECORD_FIXED_BYTES_MAX",
    "cluster_id_for",
    "cluster_name_bytes",
    "decode_frame",
    "encode_frame",
]

U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1
MAX_CLUSTER_NAME_BYTES = 255
CLUSTER_ID_LABEL = b"gcs/1 cluster id\x00"
"""Prefix hashed with the cluster name to get the cluster id (RFC 0005 §4.1)."""


# Size budget for packing (RFC 0002 §7.1): an encoded mcast is at most its fixed part plus, per
# record, RECORD_FIXED_BYTES_MAX + the group's UTF-8 bytes + the data bytes. Worst cases (largest
# ids and seqs, 256 records) are what these bound; the tests encode those worst cases.
MCAST_FIXED_BYTES_MAX = 42
ENCAPSULATING_MCAST_FIXED_BYTES_MAX = 74
RECORD_FIXED_BYTES_MAX = 17

_DEFAULT_LIMITS = WireLimits()


def cluster_name_bytes(name: str) -> bytes:
    """The UTF-8 bytes of a cluster name, after checking it is 1..255 bytes long."""
    if type(name) is not str:
        raise TypeError(f"cluster name must be str, got {type(name).__name__}")
    raw = name.encode("utf-8")
    if not 1 <= len(raw) <= MAX_CLUSTER_NAME_BYTES:
        raise ValueError(f"cluster name must be 1..{MAX_CLUSTER_NAME_BYTES} UTF-8 bytes")
    return raw


def cluster_id_for(name: str) -> int:
    """The 32-bit cluster id: the first 4 bytes (big-endian) of SHA-256(label || name).

    The id is in every clear header and every frame so that two clusters sharing a network (and,
    by mistake, a key) never accept each other's traffic: the check is cheap and happens before
    any cryptography. It is derived from the name, not configured, so it cannot drift.
    """
    digest = hashlib.sha256(CLUSTER_ID_LABEL + cluster_name_bytes(name)).digest()
    return int.from_bytes(digest[:4], "big")


# ---------------------------------------------------------------- encoding


def _enc_ring(ring: RingId) -> list[int]:
    return [ring.rep, ring.seq]


def _enc_token(t: OrfToken, cid: int) -> list[Any]:
    rtr = [[[e.ring_id.rep, e.ring_id.seq], e.seq] for e in t.rtr]
    return [
        WIRE_VERSION,
        cid,
        FrameType.ORF_TOKEN.value,
        [t.ring_id.rep, t.ring_id.seq],
        t.token_seq,
        t.seq,
        t.aru,
        t.aru_id,
        t.fcc,
        t.backlog,
        t.retrans_flg,
        rtr,
    ]


def _mcast_fields(m: Mcast) -> list[Any]:
    records = [[r.group, r.handle, r.flags, r.data] for r in m.records]
    inner = None if m.encapsulated is None else _mcast_fields(m.encapsulated)
    return [m.sender, [m.ring_id.rep, m.ring_id.seq], m.seq, m.safe, records, inner]


def _enc_mcast(m: Mcast, cid: int) -> list[Any]:
    return [WIRE_VERSION, cid, FrameType.MCAST.value, *_mcast_fields(m)]


def _enc_join(j: MembJoin | MembLeave, cid: int) -> list[Any]:
    code = FrameType.MEMB_JOIN if type(j) is MembJoin else FrameType.MEMB_LEAVE
    proc, fail = sorted(j.proc_set), sorted(j.fail_set)
    return [WIRE_VERSION, cid, code.value, j.sender, proc, fail, j.ring_seq]


def _enc_member(e: MemberEntry) -> list[Any]:
    return [e.node_id, _enc_ring(e.old_ring_id), e.aru, e.high_delivered, e.received_flg]


def _enc_commit(c: MembCommitToken, cid: int) -> list[Any]:
    members = [_enc_member(e) for e in c.members]
    code = FrameType.MEMB_COMMIT_TOKEN.value
    return [WIRE_VERSION, cid, code, _enc_ring(c.ring_id), c.token_seq, c.memb_index, members]


def _enc_sender_ring(f: MembMergeDetect | TokenHoldCancel, cid: int) -> list[Any]:
    is_merge = type(f) is MembMergeDetect
    code = FrameType.MEMB_MERGE_DETECT if is_merge else FrameType.TOKEN_HOLD_CANCEL
    return [WIRE_VERSION, cid, code.value, f.sender, _enc_ring(f.ring_id)]


def _enc_probe(p: LinkProbe, cid: int) -> list[Any]:
    return [WIRE_VERSION, cid, FrameType.LINK_PROBE.value, p.link, p.seq, p.reply, p.hears]


_ENCODERS: dict[type, Callable[[Any, int], list[Any]]] = {
    OrfToken: _enc_token,
    Mcast: _enc_mcast,
    MembJoin: _enc_join,
    MembLeave: _enc_join,
    MembCommitToken: _enc_commit,
    MembMergeDetect: _enc_sender_ring,
    TokenHoldCancel: _enc_sender_ring,
    LinkProbe: _enc_probe,
}


def encode_frame(frame: WireFrame | object, cluster_id: int | object) -> bytes:
    """Encode ``frame`` as deterministic CBOR for cluster ``cluster_id`` (RFC 0002 §4).

    Anything that is not a frame, or a cluster id that is not a u32, raises ``EncodeError`` (the
    parameters are typed ``object`` so that the compiled build, which checks argument types at
    the call, raises the same error as the pure one).

    The encoder trusts its input: it checks the Python types only as far as cbor2 must, and does
    not re-validate ranges or limits (that would double the cost of every send). A frame that
    breaks RFC 0002 §8.1 encodes to bytes that every receiver drops and counts, which shows up in
    the simulator's reports; the tests prove ``decode_frame(encode_frame(f)) == f`` for every
    valid frame.
    """
    encoder = _ENCODERS.get(type(frame))
    if encoder is None:
        raise EncodeError(f"not a frame: {type(frame).__name__}")
    if type(cluster_id) is not int or not 0 <= cluster_id <= U32_MAX:
        raise EncodeError(f"cluster id must be a u32, got {cluster_id!r}")
    try:
        return cbor2.dumps(encoder(frame, cluster_id), canonical=True)
    except (cbor2.CBOREncodeError, TypeError, ValueError, AttributeError) as exc:
        raise EncodeError(f"cannot encode {type(frame).__name__}: {exc}") from exc


# ---------------------------------------------------------------- decoding helpers


class _TagRejectedError(Exception):
    """Raised inside cbor2 for any tag; surfaces as a CBORDecodeError."""


def _reject_tag(*_: object) -> NoReturn:
    raise _TagRejectedError("CBOR tags are not part of the format")


class _EveryTag(dict[int, Callable[..., Any]]):
    """A ``semantic_decoders`` mapping that claims every tag number and rejects it.

    cbor2 decodes some tags itself (bignums become ``int``, shared references become aliased or
    cyclic lists), and only unknown tags reach ``tag_hook``; overriding every number through this
    mapping is the only way to refuse them all (WIRE-8.1-1). A dict subclass with ``__missing__``
    costs nothing at decoder construction, unlike a generic ``Mapping``; a test walks the tag
    numbers cbor2 knows to prove every one is refused.
    """

    def __missing__(self, tag: int) -> Callable[..., Any]:
        return _reject_tag


_EVERY_TAG = _EveryTag()


def _fail(reason: DropReason, detail: str) -> NoReturn:
    raise FrameError(reason, detail)


def _scalars(where: str, names: str, kinds: str, values: tuple[Any, ...]) -> None:
    """Slow path: raise the precise reason for the first bad scalar among ``values``, in order.

    ``kinds`` has one letter per field: ``u`` u64, ``n`` node id (1..2^32-1), ``z`` node id or 0,
    ``l`` link index (0..MAX_LINKS-1), ``b`` bool. Each field is checked for its type first,
    then its range (WIRE-8.1-4, WIRE-8.1-6); a field that should hold a scalar and holds an array
    or a map is a ``type`` fault too.
    """
    for name, kind, value in zip(names.split(), kinds, values, strict=True):
        expected = bool if kind == "b" else int
        if type(value) is not expected:
            _fail(DropReason.TYPE, f"{where}.{name}: expected {expected.__name__}")
        if kind == "n" and not 0 < value <= U32_MAX:
            _fail(DropReason.RANGE, f"{where}.{name}: node id {value} not in 1..2^32-1")
        if kind == "z" and not 0 <= value <= U32_MAX:
            _fail(DropReason.RANGE, f"{where}.{name}: {value} not in 0..2^32-1")
        if kind == "u" and value < 0:
            _fail(DropReason.RANGE, f"{where}.{name}: {value} is negative")
        if kind == "l" and not 0 <= value < MAX_LINKS:
            _fail(DropReason.RANGE, f"{where}.{name}: {value} not in 0..{MAX_LINKS - 1}")


def _check_fields(where: str, names: str, kinds: str, values: tuple[Any, ...]) -> NoReturn:
    """``_scalars`` once the fast combined check has failed: one of ``values`` must be bad."""
    _scalars(where, names, kinds, values)
    _fail(DropReason.RANGE, f"{where}: invalid field")  # unreachable if the fast check is exact


def _shape_error(where: str, value: Any, length: int | None = None) -> NoReturn:
    """Raise ``shape`` for a value that should have been an array (of ``length`` elements)."""
    if type(value) is not list:
        _fail(DropReason.SHAPE, f"{where}: expected an array, got {type(value).__name__}")
    _fail(DropReason.SHAPE, f"{where}: expected {length} elements, got {len(value)}")


_RINGS: dict[tuple[int, int], RingId] = {}
_RINGS_MAX = 1024


def _new_ring(rep: int, seq: int) -> RingId:
    """A ``RingId``, memoised: a ring's frames all carry the same id (bounded cache)."""
    key = (rep, seq)
    ring = _RINGS.get(key)
    if ring is None:
        if len(_RINGS) >= _RINGS_MAX:
            _RINGS.clear()
        ring = RingId(seq=seq, rep=rep)
        _RINGS[key] = ring
    return ring


def _ring(where: str, value: Any) -> RingId:
    """Decode ``[rep, seq]``: rep is a node id, seq a u64 (RFC 0002 §2.2)."""
    if type(value) is not list or len(value) != 2:
        _shape_error(where, value, 2)
    rep, seq = value
    if type(rep) is type(seq) is int and 0 < rep <= U32_MAX and seq >= 0:
        return _new_ring(rep, seq)
    _check_fields(where, "rep seq", "nu", (rep, seq))


def _rtr_entry(value: Any) -> RtrEntry:
    """Decode ``[ring_id, seq]``, one retransmission request."""
    if type(value) is not list or len(value) != 2:
        _shape_error("orf_token.rtr[]", value, 2)
    ring, seq = value
    ring_id = _ring("orf_token.rtr[].ring_id", ring)
    if type(seq) is not int or seq < 0:
        _check_fields("orf_token.rtr[]", "seq", "u", (seq,))
    return RtrEntry(ring_id, seq)


_TOKEN_NAMES = "token_seq seq aru aru_id fcc backlog retrans_flg"


def _dec_token(item: list[Any], limits: WireLimits) -> OrfToken:
    _, _, _, ring, token_seq, seq, aru, aru_id, fcc, backlog, retrans_flg, rtr = item
    ring_id = _ring("orf_token.ring_id", ring)
    if not (
        type(token_seq) is type(seq) is type(aru) is type(aru_id) is type(fcc) is int
        and type(backlog) is int
        and type(retrans_flg) is bool
        and min(token_seq, seq, aru, fcc, backlog) >= 0
        and 0 <= aru_id <= U32_MAX
    ):
        values = (token_seq, seq, aru, aru_id, fcc, backlog, retrans_flg)
        _check_fields("orf_token", _TOKEN_NAMES, "uuuzuub", values)
    if type(rtr) is not list:
        _shape_error("orf_token.rtr", rtr)
    if len(rtr) > limits.max_rtr_entries:
        _fail(DropReason.TOO_MANY, f"orf_token.rtr: {len(rtr)} > {limits.max_rtr_entries}")
    entries = tuple([_rtr_entry(e) for e in rtr])
    return OrfToken(ring_id, token_seq, seq, aru, aru_id, fcc, backlog, retrans_flg, entries)


_KINDS = (RecordFlags.DATA, RecordFlags.JOIN, RecordFlags.LEAVE)
_FRAGMENTS = (RecordFlags.WHOLE, RecordFlags.FIRST, RecordFlags.MIDDLE, RecordFlags.LAST)
_FLAGS_UNSAFE = frozenset(int(k | f) for k in _KINDS for f in _FRAGMENTS)
_FLAGS_SAFE = frozenset(flags | RecordFlags.SAFE.value for flags in _FLAGS_UNSAFE)
_RECORD_WIDTH = 4
_MCAST_WIDTH = 6


def _records(where: str, items: Any, safe: bool, limits: WireLimits) -> tuple[Record, ...]:
    """Decode an mcast's record list; every record's SAFE bit must equal the mcast's ``safe``."""
    if type(items) is not list:
        _shape_error(f"{where}.records", items)
    if len(items) > limits.max_records:
        _fail(DropReason.TOO_MANY, f"{where}.records: {len(items)} > {limits.max_records}")
    allowed = _FLAGS_SAFE if safe else _FLAGS_UNSAFE
    max_data = limits.max_record_data_bytes
    max_group = limits.max_group_bytes
    # A name of at most max_group // 4 code points cannot exceed max_group UTF-8 bytes, so the
    # common case never encodes the string just to measure it.
    short_group = max_group // 4
    out: list[Record] = []
    for rec in items:
        if type(rec) is not list or len(rec) != _RECORD_WIDTH:
            _shape_error(f"{where}.records[{len(out)}]", rec, _RECORD_WIDTH)
        group, handle, flags, data = rec
        if not (
            type(group) is str
            and type(handle) is type(flags) is int
            and type(data) is bytes
            and handle >= 0
            and flags in allowed
            and len(data) <= max_data
            and (len(group) <= short_group or len(group.encode()) <= max_group)
        ):
            _bad_record(f"{where}.records[{len(out)}]", rec, safe, limits)
        out.append(Record(group, handle, flags, data))
    return tuple(out)


def _bad_record(where: str, rec: list[Any], safe: bool, limits: WireLimits) -> NoReturn:
    """Slow path for ``_records``: name the first problem of one record, in element order."""
    group, handle, flags, data = rec
    if type(group) is not str:
        _fail(DropReason.TYPE, f"{where}.group: expected text")
    if len(group.encode()) > limits.max_group_bytes:
        _fail(DropReason.TOO_LARGE, f"{where}.group: more than {limits.max_group_bytes} bytes")
    _scalars(where, "handle flags", "uu", (handle, flags))
    if flags & ~RecordFlags.SAFE.value not in _FLAGS_UNSAFE:
        _fail(DropReason.RANGE, f"{where}.flags: undefined bits or kind in {flags:#x}")
    if bool(flags & RecordFlags.SAFE) != safe:
        _fail(DropReason.SAFE_MISMATCH, f"{where}.flags: SAFE bit differs from mcast.safe={safe}")
    if type(data) is not bytes:
        _fail(DropReason.TYPE, f"{where}.data: expected bytes")
    _fail(DropReason.TOO_LARGE, f"{where}.data: {len(data)} > {limits.max_record_data_bytes}")


def _mcast(
    outer: bool,
    sender: Any,
    ring: Any,
    seq: Any,
    safe: Any,
    records: Any,
    inner: Any,
    limits: WireLimits,
) -> Mcast:
    """Decode the six mcast fields; ``outer`` is False inside an encapsulation (RFC 0002 §4.2.2)."""
    where = "mcast" if outer else "mcast.encapsulated"
    if not (
        type(sender) is type(seq) is int
        and type(safe) is bool
        and 0 < sender <= U32_MAX
        and seq >= 0
    ):
        _scalars(where, "sender", "n", (sender,))
        _ring(f"{where}.ring_id", ring)
        _check_fields(where, "seq safe", "ub", (seq, safe))
    ring_id = _ring(f"{where}.ring_id", ring)
    recs = _records(where, records, safe, limits)
    if inner is None:
        return Mcast(sender, ring_id, seq, safe, recs, None)
    if not outer:
        _fail(DropReason.ENCAPSULATION, "mcast.encapsulated: encapsulation nests one level only")
    if type(inner) is not list or len(inner) != _MCAST_WIDTH:
        _shape_error("mcast.encapsulated", inner, _MCAST_WIDTH)
    if recs:
        _fail(DropReason.ENCAPSULATION, "mcast: an encapsulating mcast carries no records")
    i_sender, i_ring, i_seq, i_safe, i_records, i_inner = inner
    encapsulated = _mcast(False, i_sender, i_ring, i_seq, i_safe, i_records, i_inner, limits)
    return Mcast(sender, ring_id, seq, safe, recs, encapsulated)


def _dec_mcast(item: list[Any], limits: WireLimits) -> Mcast:
    _, _, _, sender, ring, seq, safe, records, inner = item
    return _mcast(True, sender, ring, seq, safe, records, inner, limits)


def _node_set(where: str, value: Any, limits: WireLimits) -> frozenset[int]:
    """Decode a set of node ids, sent as a strictly ascending array (deterministic encoding)."""
    if type(value) is not list:
        _shape_error(where, value)
    if len(value) > limits.max_nodes:
        _fail(DropReason.TOO_MANY, f"{where}: {len(value)} > {limits.max_nodes}")
    previous = 0
    for node in value:
        if type(node) is not int:
            _fail(DropReason.TYPE, f"{where}: node ids are integers")
        if not 0 < node <= U32_MAX:
            _fail(DropReason.RANGE, f"{where}: node id {node} not in 1..2^32-1")
        if node <= previous:
            _fail(DropReason.NOT_CANONICAL, f"{where}: not strictly ascending at {node}")
        previous = node
    return frozenset(value)


def _dec_join(item: list[Any], limits: WireLimits) -> MembJoin | MembLeave:
    _, _, code, sender, proc, fail, ring_seq = item
    where = "memb_join" if code == FrameType.MEMB_JOIN else "memb_leave"
    if not (type(sender) is type(ring_seq) is int and 0 < sender <= U32_MAX and ring_seq >= 0):
        _scalars(where, "sender", "n", (sender,))
        _node_set(f"{where}.proc_set", proc, limits)
        _node_set(f"{where}.fail_set", fail, limits)
        _check_fields(where, "ring_seq", "u", (ring_seq,))
    proc_set = _node_set(f"{where}.proc_set", proc, limits)
    fail_set = _node_set(f"{where}.fail_set", fail, limits)
    if code == FrameType.MEMB_JOIN:
        return MembJoin(sender, proc_set, fail_set, ring_seq)
    return MembLeave(sender, proc_set, fail_set, ring_seq)


_MEMBER_WIDTH = 5


def _member(value: Any) -> MemberEntry:
    where = "memb_commit_token.members[]"
    if type(value) is not list or len(value) != _MEMBER_WIDTH:
        _shape_error(where, value, _MEMBER_WIDTH)
    node_id, old_ring, aru, high_delivered, received_flg = value
    if not (
        type(node_id) is type(aru) is type(high_delivered) is int
        and type(received_flg) is bool
        and 0 < node_id <= U32_MAX
        and aru >= 0
        and high_delivered >= 0
    ):
        _scalars(where, "node_id", "n", (node_id,))
        _ring(f"{where}.old_ring_id", old_ring)
        values = (aru, high_delivered, received_flg)
        _check_fields(where, "aru high_delivered received_flg", "uub", values)
    old_ring_id = _ring(f"{where}.old_ring_id", old_ring)
    return MemberEntry(node_id, old_ring_id, aru, high_delivered, received_flg)


def _dec_commit(item: list[Any], limits: WireLimits) -> MembCommitToken:
    _, _, _, ring, token_seq, memb_index, members = item
    where = "memb_commit_token"
    ring_id = _ring(f"{where}.ring_id", ring)
    if not (type(token_seq) is type(memb_index) is int and token_seq >= 0 and memb_index >= 0):
        _check_fields(where, "token_seq memb_index", "uu", (token_seq, memb_index))
    if type(members) is not list:
        _shape_error(f"{where}.members", members)
    if len(members) > limits.max_nodes:
        _fail(DropReason.TOO_MANY, f"{where}.members: {len(members)} > {limits.max_nodes}")
    return MembCommitToken(ring_id, token_seq, memb_index, tuple([_member(m) for m in members]))


def _dec_sender_ring(item: list[Any], limits: WireLimits) -> MembMergeDetect | TokenHoldCancel:
    _, _, code, sender, ring = item
    is_merge = code == FrameType.MEMB_MERGE_DETECT
    where = "memb_merge_detect" if is_merge else "token_hold_cancel"
    if type(sender) is not int or not 0 < sender <= U32_MAX:
        _check_fields(where, "sender", "n", (sender,))
    ring_id = _ring(f"{where}.ring_id", ring)
    if is_merge:
        return MembMergeDetect(sender, ring_id)
    return TokenHoldCancel(sender, ring_id)


def _dec_probe(item: list[Any], limits: WireLimits) -> LinkProbe:
    _, _, _, link, seq, reply, hears = item
    if not (
        type(link) is type(seq) is int
        and type(reply) is type(hears) is bool
        and 0 <= link < MAX_LINKS
        and seq >= 0
    ):
        _check_fields("link_probe", "link seq reply hears", "lubb", (link, seq, reply, hears))
    return LinkProbe(link, seq, reply, hears)


def _cbor_refused(data: bytes | bytearray | memoryview, exc: Exception) -> NoReturn:
    """cbor2 refused ``data``: name the first fault in byte order, as RFC 0002 §8 orders them.

    cbor2's own order differs (it reads a tag's content before refusing the tag), so its error
    only says *that* something is wrong; ``first_fault`` says what, and where.
    """
    fault = first_fault(data)
    if fault is None:  # cbor2 refused an item the format allows: never seen, fuzzed for
        _fail(DropReason.CBOR, f"not a valid CBOR item for this format: {exc}")
    _fail(*fault)


_Decoder = Callable[[list[Any], WireLimits], WireFrame]
_DECODERS: dict[int, tuple[int, _Decoder]] = {
    FrameType.ORF_TOKEN.value: (12, _dec_token),
    FrameType.MCAST.value: (3 + _MCAST_WIDTH, _dec_mcast),
    FrameType.MEMB_MERGE_DETECT.value: (5, _dec_sender_ring),
    FrameType.MEMB_JOIN.value: (7, _dec_join),
    FrameType.MEMB_COMMIT_TOKEN.value: (7, _dec_commit),
    FrameType.TOKEN_HOLD_CANCEL.value: (5, _dec_sender_ring),
    FrameType.MEMB_LEAVE.value: (7, _dec_join),
    FrameType.LINK_PROBE.value: (7, _dec_probe),
}


# ---------------------------------------------------------------- decoding entry points


def decode_frame(
    data: bytes | bytearray | memoryview,
    cluster_id: int,
    limits: WireLimits = _DEFAULT_LIMITS,
) -> WireFrame:
    """Decode one CBOR frame of cluster ``cluster_id``, or raise ``FrameError`` (RFC 0002 §8).

    No other exception escapes, whatever ``data`` holds (WIRE-8.1-10).
    """
    return decode_body(data, cluster_id, limits, DropReason.BAD_VERSION, DropReason.WRONG_CLUSTER)


def decode_body(
    data: bytes | bytearray | memoryview,
    cluster_id: int,
    limits: WireLimits,
    version_reason: DropReason,
    cluster_reason: DropReason,
) -> WireFrame:
    """``decode_frame`` with the reasons for a version or cluster id that differ from the expected.

    The channel has already checked both against the clear header, so there a disagreement inside
    the sealed frame means the header and the frame disagree (``header_mismatch``), not that the
    frame came from another version or cluster.
    """
    size = len(data)
    if size > limits.max_frame_bytes:
        _fail(DropReason.TOO_LARGE, f"frame of {size} bytes > {limits.max_frame_bytes}")
    fp = BytesIO(data)
    try:
        item = cbor2.CBORDecoder(
            fp, semantic_decoders=_EVERY_TAG, max_depth=MAX_CBOR_DEPTH, allow_indefinite=False
        ).decode()
    except Exception as exc:  # cbor2 may raise ValueError, OverflowError, RecursionError, ...
        _cbor_refused(data, exc)
    if fp.tell() != size:
        _fail(DropReason.TRAILING_BYTES, f"{size - fp.tell()} bytes after the frame")
    if type(item) is not list or len(item) < 3:
        _shape_error("frame", item, 3)
    version, cid, code = item[0], item[1], item[2]
    if type(version) is not int or version != WIRE_VERSION:
        _fail(version_reason, f"frame version {version!r}, expected {WIRE_VERSION}")
    if type(cid) is not int or cid != cluster_id:
        _fail(cluster_reason, f"cluster id {cid!r}, expected {cluster_id}")
    entry = _DECODERS.get(code) if type(code) is int else None
    if entry is None:
        _fail(DropReason.UNKNOWN_TYPE, f"frame type {code!r}")
    width, decoder = entry
    if len(item) != width:
        _shape_error(f"{FrameType(code).name.lower()} frame", item, width)
    return decoder(item, limits)
