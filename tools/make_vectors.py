"""Generate protocol/vectors/*.json, the language-neutral test vectors of RFC 0002 and RFC 0005.

Run ``python tools/make_vectors.py --write`` after a deliberate format change; without
``--write`` it only checks that the committed files match what it would write (exit 1 if not).
Everything here is deterministic: fixed keys, fixed boot ids, no randomness, so the output is
byte-for-byte reproducible. tests/wire/test_vectors.py checks the committed files against the
implementation independently of this generator (it reads the JSON, not this module's tables).

The JSON form of a frame (also used by the tests) mirrors frames.py: one object per frame with a
``type`` (the FrameType name in lower case), ring ids as ``{"rep", "seq"}``, sets as ascending
arrays, bytes as lowercase hex strings.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields, is_dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import cbor2
import pycddl

from gcs.wire.codec import U32_MAX, U64_MAX, cluster_id_for, encode_frame
from gcs.wire.frames import (
    FRAME_TYPES,
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
from gcs.wire.limits import WireLimits
from gcs.wire.seal import (
    SALT_LABEL,
    SUBKEY_LABEL,
    KeySchedule,
    Suite,
    derive_subkey,
    extract_prk,
    nonce_for,
    pack_header,
    seal_datagram,
)

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "protocol" / "vectors"
CDDL_PATH = ROOT / "protocol" / "messages.cddl"

CLUSTER_NAME = "gcs-test-vectors"
CLUSTER_ID = cluster_id_for(CLUSTER_NAME)
TEST_KEY = bytes(range(64))  # published on purpose: never use it for a real cluster
OTHER_KEY = bytes(range(64, 128))
RECEIVER = 9
BOOT = 1_700_000_000_000  # a boot id as a node without a state dir makes it (ms since epoch)

R8 = RingId(seq=8, rep=1)
R12 = RingId(seq=12, rep=1)
SILENCE_NS = 1_000_000_000  # the receivers' silence_ns (RFC 0005 SEC-7.1-1, SEC-8.3-2)
MS = 1_000_000

# ---------------------------------------------------------------- JSON <-> frames

_TYPE_NAMES = {cls: code.name.lower() for cls, code in FRAME_TYPES.items()}
_CLASSES = {name: cls for cls, name in _TYPE_NAMES.items()}


def _value_to_json(value: Any) -> Any:
    if isinstance(value, RingId):
        return {"rep": value.rep, "seq": value.seq}
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return [_value_to_json(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _value_to_json(getattr(value, f.name)) for f in fields(value)}
    return value


def frame_to_json(frame: WireFrame) -> dict[str, Any]:
    """The JSON object of a frame: ``type`` first, then the fields in frames.py order."""
    body = _value_to_json(frame)
    if isinstance(frame, Mcast) and frame.encapsulated is not None:
        body["encapsulated"] = _value_to_json(frame.encapsulated)
    return {"type": _TYPE_NAMES[type(frame)], **body}


def _ring(obj: dict[str, int]) -> RingId:
    return RingId(seq=obj["seq"], rep=obj["rep"])


def _mcast(obj: dict[str, Any]) -> Mcast:
    records = tuple(
        Record(r["group"], r["handle"], r["flags"], bytes.fromhex(r["data"]))
        for r in obj["records"]
    )
    inner = None if obj["encapsulated"] is None else _mcast(obj["encapsulated"])
    return Mcast(obj["sender"], _ring(obj["ring_id"]), obj["seq"], obj["safe"], records, inner)


def frame_from_json(obj: dict[str, Any]) -> WireFrame:
    """Inverse of ``frame_to_json``."""
    cls = _CLASSES[obj["type"]]
    if cls is LinkProbe:
        return LinkProbe(obj["link"], obj["seq"], obj["reply"], obj["hears"])
    if cls is Mcast:
        return _mcast(obj)
    if cls is OrfToken:
        rtr = tuple(RtrEntry(_ring(e["ring_id"]), e["seq"]) for e in obj["rtr"])
        keys = ("token_seq", "seq", "aru", "aru_id", "fcc", "backlog", "retrans_flg")
        return OrfToken(_ring(obj["ring_id"]), *(obj[k] for k in keys), rtr)
    if cls in (MembJoin, MembLeave):
        proc, fail = frozenset(obj["proc_set"]), frozenset(obj["fail_set"])
        return cls(obj["sender"], proc, fail, obj["ring_seq"])  # type: ignore[no-any-return]
    if cls is MembCommitToken:
        members = tuple(
            MemberEntry(
                m["node_id"], _ring(m["old_ring_id"]), m["aru"], m["high_delivered"],
                m["received_flg"],
            )
            for m in obj["members"]
        )  # fmt: skip
        return MembCommitToken(_ring(obj["ring_id"]), obj["token_seq"], obj["memb_index"], members)
    return cls(obj["sender"], _ring(obj["ring_id"]))  # type: ignore[no-any-return]


# ---------------------------------------------------------------- sealing helpers


def seal(
    frame_cbor: bytes,
    suite: Suite,
    sender: int,
    boot_id: int = BOOT,
    epoch: int = 0,
    counter: int = 0,
    key: bytes = TEST_KEY,
    cluster_id: int = CLUSTER_ID,
    header: bytes | None = None,
) -> bytes:
    """A datagram with exactly these header fields (the Channel only ever counts up from 0)."""
    if header is None:
        header = pack_header(suite, cluster_id, sender, boot_id, epoch, counter)
    aead = None
    if suite != Suite.NONE:
        aead = KeySchedule(key, CLUSTER_NAME).aead(suite, sender, boot_id, epoch)
    return seal_datagram(aead, header, frame_cbor)


# ---------------------------------------------------------------- valid frames


def _valid_frames() -> list[tuple[str, str, WireFrame, Suite, int, int, int]]:
    """(name, description, frame, suite, sender, epoch, counter) of every valid vector."""
    packed = (
        Record("locks", 1, RecordFlags.DATA, b"acquire x"),
        Record("locks", 2, RecordFlags.DATA, b""),
        Record("cfg/ü", 7, RecordFlags.JOIN, b"\x00\xff"),
    )
    safe_fragment = (Record("db", 3, RecordFlags.FIRST | RecordFlags.SAFE, bytes(range(32))),)
    inner = Mcast(4, R8, 17, False, (Record("locks", 1, RecordFlags.LAST, b"tail"),))
    members = (
        MemberEntry(1, R8, 40, 38, True),
        MemberEntry(2, RingId(seq=4, rep=2), 12, 12, False),
        MemberEntry(5, RingId(seq=4, rep=5), 0, 0, False),
    )
    return [
        ("orf-token", "regular token with three retransmission requests", OrfToken(
            R8, 1234, 40, 37, 2, 3, 10, False,
            (RtrEntry(R8, 38), RtrEntry(R8, 39), RtrEntry(RingId(seq=4, rep=2), 11)),
        ), Suite.AES_256_GCM, 1, 0, 0),
        ("orf-token-idle", "idle token: aru == seq, aru_id 0 (null), in recovery",
         OrfToken(R12, 7, 0, 0, 0, 0, 0, True, ()), Suite.AES_256_GCM, 1, 0, 1),
        ("mcast-agreed-packed", "agreed mcast packing three records, one with a non-ASCII group",
         Mcast(2, R8, 41, False, packed), Suite.AES_256_GCM, 2, 0, 0),
        ("mcast-safe-fragment", "safe mcast: first fragment of a larger record, ChaCha20 suite",
         Mcast(3, R8, 42, True, safe_fragment), Suite.CHACHA20_POLY1305, 3, 0, 0),
        ("mcast-empty", "mcast with no records", Mcast(2, R8, 43, False, ()),
         Suite.AES_256_GCM, 2, 0, 2),
        ("mcast-encapsulated", "recovery: an old-ring mcast from node 4 re-sent on the new ring",
         Mcast(1, R12, 1, False, (), inner), Suite.AES_256_GCM, 1, 0, 3),
        ("mcast-extremes", "largest node id and seq values; a late epoch and counter",
         Mcast(U32_MAX, RingId(seq=U64_MAX, rep=U32_MAX), U64_MAX, False,
               (Record("g", U64_MAX, RecordFlags.LEAVE, b"x"),)),
         Suite.AES_256_GCM, U32_MAX, 3, (1 << 23) - 1),
        ("memb-join", "join while gathering", MembJoin(1, frozenset({1, 2, 5, 300}),
         frozenset({5}), 8), Suite.AES_256_GCM, 1, 0, 4),
        ("memb-leave", "clean shutdown of node 2", MembLeave(2, frozenset({1, 5}),
         frozenset({2}), 8), Suite.AES_256_GCM, 2, 0, 5),
        ("memb-commit-token", "commit token after the first member filled its entry",
         MembCommitToken(R12, 3, 1, members), Suite.AES_256_GCM, 1, 0, 6),
        ("memb-merge-detect", "merge detect from the representative of ring 1.8",
         MembMergeDetect(1, R8), Suite.AES_256_GCM, 1, 0, 8),
        ("memb-merge-detect-unkeyed", "the same merge detect, unkeyed (suite 0)",
         MembMergeDetect(1, R8), Suite.NONE, 1, 0, 0),
        ("token-hold-cancel", "token hold cancel", TokenHoldCancel(5, R8),
         Suite.AES_256_GCM, 5, 0, 7),
        ("link-probe", "a heartbeat on link 1: the sender hears the receiver there",
         LinkProbe(1, 42, False, True), Suite.AES_256_GCM, 2, 0, 9),
        ("link-probe-answer", "the answer to it, from a node that does not (yet) hear back",
         LinkProbe(1, 42, True, False), Suite.AES_256_GCM, 3, 0, 3),
    ]  # fmt: skip


def valid_vectors() -> dict[str, Any]:
    vectors = []
    for name, description, frame, suite, sender, epoch, counter in _valid_frames():
        body = encode_frame(frame, CLUSTER_ID)
        datagram = seal(body, suite, sender, epoch=epoch, counter=counter)
        vectors.append(
            {
                "name": name,
                "description": description,
                "frame": frame_to_json(frame),
                "cbor": body.hex(),
                "sealed": {
                    "suite": int(suite),
                    "suite_name": suite.name,
                    "sender": sender,
                    "boot_id": BOOT,
                    "epoch": epoch,
                    "counter": counter,
                    "datagram": datagram.hex(),
                },
            }
        )
    return {
        "description": "Valid frames: JSON fields -> deterministic CBOR -> sealed datagram",
        "params": _params(),
        "vectors": vectors,
    }


def _params() -> dict[str, Any]:
    limits = WireLimits()
    return {
        "cluster_name": CLUSTER_NAME,
        "cluster_id": CLUSTER_ID,
        "key": TEST_KEY.hex(),
        "receiver_node_id": RECEIVER,
        "limits": {f.name: getattr(limits, f.name) for f in fields(limits)},
    }


# ---------------------------------------------------------------- invalid frames (CBOR level)

_C = CLUSTER_ID
_REC = ["g", 1, 0, b"x"]


def _mc(*, safe: bool = False, records: Any = None, inner: Any = None, **kw: Any) -> list[Any]:
    """A raw mcast array, valid unless an argument breaks it."""
    recs = [_REC] if records is None else records
    return [1, _C, 1, kw.get("sender", 3), kw.get("ring", [1, 8]), kw.get("seq", 9), safe, recs,
            inner]  # fmt: skip


def _tok(*, retrans: Any = False, rtr: Any = None, aru_id: Any = 0) -> list[Any]:
    return [1, _C, 0, [1, 8], 5, 40, 37, aru_id, 0, 0, retrans, [] if rtr is None else rtr]


def _d(obj: Any) -> bytes:
    return cbor2.dumps(obj)


def _arr(count: int, *items: bytes) -> bytes:
    """A definite-length array header (count < 24) followed by already-encoded items."""
    return bytes([0x80 + count]) + b"".join(items)


def _invalid_frames() -> list[tuple[str, str, bytes, str, str]]:
    """(name, description, cbor, reason, cddl) — cddl says whether CDDL can rule it out."""
    merge = _d([1, _C, 2, 1, [1, 8]])
    inner = [4, [1, 8], 17, False, [_REC], None]
    depth_bomb = b"\x81" * 64 + b"\x01"
    big = [1, _C, 1, 3, [1, 8], 9, False, [["g", 1, 0, bytes(1540)]], None]
    return [
        ("truncated", "CBOR item cut short", merge[:-1], "truncated", "rejects"),
        ("claims-2^60-elements", "array header claiming 2^60 elements over a short body",
         b"\x9b" + (1 << 60).to_bytes(8, "big") + bytes(40), "truncated", "rejects"),
        ("reserved-additional-info", "initial byte 0x1c is not well-formed CBOR",
         b"\x85\x01\x1c", "cbor", "rejects"),
        ("invalid-utf8", "group name that is not UTF-8",
         _arr(9, _d(1), _d(_C), _d(1), _d(3), _d([1, 8]), _d(9), _d(False),
              _arr(1, _arr(4, b"\x62\xc3\x28", _d(1), _d(0), _d(b"x"))), _d(None)),
         "cbor", "rejects"),
        ("tag-bignum-seq", "ring seq 8 as a tag-2 bignum: tags never appear",
         _arr(5, _d(1), _d(_C), _d(2), _d(1), _arr(2, _d(1), b"\xc2\x41\x08")),
         "cbor", "rejects"),
        ("tag-42", "a tagged sender id",
         _arr(5, _d(1), _d(_C), _d(2), b"\xd8\x2a" + _d(1), _d([1, 8])), "cbor", "rejects"),
        ("indefinite-array", "indefinite-length top-level array",
         b"\x9f" + merge[1:] + b"\xff", "cbor", "accepts"),
        ("nesting-too-deep", "64 nested arrays", depth_bomb, "cbor", "rejects"),
        ("trailing-bytes", "one extra byte after the frame", merge + b"\x00", "trailing_bytes",
         "accepts"),
        ("top-level-map", "a map instead of an array", _d({1: 2}), "shape", "rejects"),
        ("top-level-int", "a bare integer", _d(7), "shape", "rejects"),
        ("empty-array", "an empty array", _d([]), "shape", "rejects"),
        ("version-2", "frame version 2", _d([2, _C, 2, 1, [1, 8]]), "bad_version", "rejects"),
        ("other-cluster-id", "another cluster's id", _d([1, _C ^ 1, 2, 1, [1, 8]]),
         "wrong_cluster", "accepts"),
        ("unknown-type", "type code 8", _d([1, _C, 8, 1, [1, 8]]), "unknown_type", "rejects"),
        ("link-probe-link-8", "a link probe for link 8 (links are 0..7)",
         _d([1, _C, 7, 8, 1, False, True]), "range", "rejects"),
        ("link-probe-reply-int", "a link probe whose reply is 0, not false",
         _d([1, _C, 7, 1, 1, 0, True]), "type", "rejects"),
        ("type-as-bool", "type code true", _d([1, _C, True, 1, [1, 8]]), "unknown_type",
         "rejects"),
        ("missing-field", "merge detect without its ring id", _d([1, _C, 2, 1]), "shape",
         "rejects"),
        ("extra-field", "merge detect with a sixth element", _d([1, _C, 2, 1, [1, 8], 0]),
         "shape", "rejects"),
        ("merge-sender-zero", "node id 0", _d([1, _C, 2, 0, [1, 8]]), "range", "rejects"),
        ("sender-2^32", "node id 2^32", _d([1, _C, 2, 1 << 32, [1, 8]]), "range", "rejects"),
        ("rep-zero", "ring id whose representative is 0", _d([1, _C, 2, 1, [0, 8]]), "range",
         "rejects"),
        ("negative-seq", "negative ring seq", _d([1, _C, 2, 1, [1, -8]]), "range", "rejects"),
        ("aru-id-2^32", "aru_id beyond u32", _d(_tok(aru_id=1 << 32)), "range", "rejects"),
        ("float-seq", "ring seq as a float", _d([1, _C, 2, 1, [1, 8.0]]), "type", "rejects"),
        ("bool-sender", "sender true", _d([1, _C, 2, True, [1, 8]]), "type", "rejects"),
        ("undefined-sender", "sender undefined (simple value 23)",
         _arr(5, _d(1), _d(_C), _d(2), b"\xf7", _d([1, 8])), "type", "rejects"),
        ("int-retrans-flg", "retrans_flg 0 instead of false", _d(_tok(retrans=0)), "type",
         "rejects"),
        ("text-data", "record data as text", _d(_mc(records=[["g", 1, 0, "x"]])), "type",
         "rejects"),
        ("bytes-group", "group name as bytes", _d(_mc(records=[[b"g", 1, 0, b"x"]])), "type",
         "rejects"),
        ("null-ring", "null where a ring id belongs", _d([1, _C, 2, 1, None]), "shape",
         "rejects"),
        ("ring-3-elements", "ring id with three elements", _d([1, _C, 2, 1, [1, 8, 0]]),
         "shape", "rejects"),
        ("record-as-map", "a record encoded as a map",
         _d(_mc(records=[{"group": "g"}])), "shape", "rejects"),
        ("too-many-rtr", "65 retransmission requests (limit 64)",
         _d(_tok(rtr=[[[1, 8], s] for s in range(65)])), "too_many", "rejects"),
        ("too-many-records", "257 records (limit 256)",
         _d(_mc(records=[["", 0, 0, b""]] * 257)), "too_many", "rejects"),
        ("too-many-nodes", "proc_set of 385 nodes (limit 384)",
         _d([1, _C, 3, 1, list(range(1, 386)), [], 8]), "too_many", "rejects"),
        ("group-256-bytes", "group name of 256 UTF-8 bytes (limit 255)",
         _d(_mc(records=[["é" * 128, 1, 0, b""]])), "too_large", "rejects"),
        ("frame-too-large", "1,570-byte frame (limit 1,552 = 1,600 - 48)", _d(big),
         "too_large", "accepts"),
        ("flags-bit-5", "record flag bit 5 is undefined", _d(_mc(records=[["g", 1, 32, b""]])),
         "range", "rejects"),
        ("flags-kind-3", "record kind 3 is undefined", _d(_mc(records=[["g", 1, 3, b""]])),
         "range", "rejects"),
        ("safe-mismatch", "safe mcast with a record lacking the SAFE bit",
         _d(_mc(safe=True)), "safe_mismatch", "rejects"),
        ("safe-mismatch-inner", "agreed inner mcast with a SAFE record",
         _d(_mc(records=[], inner=[4, [1, 8], 17, False, [["g", 1, 16, b""]], None])),
         "safe_mismatch", "rejects"),
        ("encapsulating-with-records", "an encapsulating mcast that also carries records",
         _d(_mc(inner=inner)), "encapsulation", "rejects"),
        ("nested-encapsulation", "encapsulation two levels deep",
         _d(_mc(records=[], inner=[4, [1, 8], 17, False, [], [4, [1, 8], 3, False, [], None]])),
         "encapsulation",
         "rejects"),
        ("encapsulated-not-array", "encapsulated is an integer", _d(_mc(records=[], inner=5)),
         "shape", "rejects"),
        ("unsorted-set", "proc_set not ascending", _d([1, _C, 3, 1, [2, 1], [], 8]),
         "not_canonical", "accepts"),
        ("duplicate-in-set", "proc_set with a duplicate", _d([1, _C, 3, 1, [1, 1], [], 8]),
         "not_canonical", "accepts"),
        ("fail-set-zero", "fail_set naming node 0", _d([1, _C, 3, 1, [1], [0], 8]), "range",
         "rejects"),
        *_more_invalid_frames(),
    ]  # fmt: skip


def _ring_rep(rep: bytes) -> bytes:
    """A token whose one rtr entry has ``rep`` (already encoded) as its ring's representative:
    that value is enclosed by four arrays (frame, rtr list, entry, ring id), the deepest path."""
    rtr = _arr(1, _arr(2, _arr(2, rep, _d(8)), _d(3)))
    return _arr(12, *(_d(x) for x in _tok()[:11]), rtr)


def _more_invalid_frames() -> list[tuple[str, str, bytes, str, str]]:
    """Rows of RFC 0002 §8.2 settled for implementers: depth, forms, limits, single faults."""
    inner = [4, [1, 8], 17, False, [_REC], None]
    return [
        ("break-outside", "a break byte where a data item belongs", b"\x82\x01\xff", "cbor",
         "rejects"),
        ("indefinite-bytes", "record data as an indefinite-length byte string",
         _arr(9, *(_d(x) for x in _mc(records=[])[:7]),
              _arr(1, _arr(4, _d("g"), _d(1), _d(0), b"\x5f\x41x\xff")), _d(None)),
         "cbor", "rejects"),
        ("simple-two-byte-false", "retrans_flg as false in the two-byte form (f8 14)",
         _arr(12, *(_d(x) for x in _tok()[:10]), b"\xf8\x14", _d([])), "cbor", "rejects"),
        ("depth-5-integer", "an integer enclosed by five arrays: [1] as a ring's representative",
         _ring_rep(_d([1])), "cbor", "rejects"),
        ("depth-4-empty-array", "an empty array enclosed by four arrays is well-formed; as a "
         "representative it is the wrong type", _ring_rep(_d([])), "type", "rejects"),
        ("array-for-integer", "token_seq as an array", _d([1, _C, 0, [1, 8], [5], 40, 37, 0, 0,
         0, False, []]), "type", "rejects"),
        ("map-for-bool", "retrans_flg as a map", _d(_tok(retrans={})), "type", "rejects"),
        ("type-as-array", "the type code as an array", _d([1, _C, [2], 1, [1, 8]]),
         "unknown_type", "rejects"),
        ("version-as-text", "the version as text", _d(["1", _C, 2, 1, [1, 8]]), "bad_version",
         "rejects"),
        ("inner-encapsulated-integer", "an encapsulated mcast whose own encapsulated is 5",
         _d(_mc(records=[], inner=[4, [1, 8], 17, False, [_REC], 5])), "encapsulation",
         "rejects"),
        ("data-over-limit", "17 bytes of record data at a receiver whose limit is 16",
         _d(_mc(records=[["g", 1, 0, bytes(17)]])), "too_large", "accepts"),
        ("too-many-members", "a commit token of 3 members at a receiver whose limit is 2",
         _d([1, _C, 4, [1, 12], 0, 0, [[n, [1, 8], 0, 0, False] for n in (1, 2, 3)]]),
         "too_many", "accepts"),
        # Two faults each: the reason is the first in the order of RFC 0002 §8.1.
        ("two-faults-oversized-garbage", "1,553 bytes that are not CBOR: the size comes first",
         b"\xff" * 1553, "too_large", "rejects"),
        ("two-faults-tag-then-end", "a tag, then the input ends: the tag comes first",
         _arr(5, _d(1), _d(_C), _d(2), _d(1), _arr(2, _d(1), b"\xc2")), "cbor", "rejects"),
        ("two-faults-trailing-after-map", "a map (shape) followed by a byte: trailing first",
         _d({1: 2}) + b"\x00", "trailing_bytes", "rejects"),
        ("two-faults-length-then-version", "a one-element array holding version 2",
         _d([2]), "shape", "rejects"),
        ("two-faults-version-and-cluster", "version 2 and another cluster's id",
         _d([2, _C ^ 1, 2, 1, [1, 8]]), "bad_version", "rejects"),
        ("two-faults-ring-then-token-seq", "a null ring id, then token_seq true",
         _d([1, _C, 0, None, True, 40, 37, 0, 0, 0, False, []]), "shape", "rejects"),
        ("two-faults-rtr-ring-then-seq", "an rtr entry with a null ring id and seq true",
         _d(_tok(rtr=[[None, True]])), "shape", "rejects"),
        ("two-faults-too-many-and-bad-entry", "65 rtr entries (limit 64), the first malformed",
         _d(_tok(rtr=[None] + [[[1, 8], s] for s in range(64)])), "too_many", "rejects"),
        ("two-faults-set-then-ring-seq", "proc_set out of order, then ring_seq -1",
         _d([1, _C, 3, 1, [2, 1], [], -1]), "not_canonical", "rejects"),
        ("two-faults-set-zero-out-of-order", "proc_set [3, 0]: 0 is out of range before it "
         "is out of order", _d([1, _C, 3, 1, [3, 0], [], 8]), "range", "rejects"),
        ("two-faults-member-ring-then-aru", "a member entry with a null old ring id and aru "
         "true", _d([1, _C, 4, [1, 12], 0, 0, [[1, None, True, 0, False]]]), "shape",
         "rejects"),
        ("two-faults-group-then-flags", "a 256-byte group name and flags 32",
         _d(_mc(records=[["é" * 128, 1, 32, b""]])), "too_large", "rejects"),
        ("two-faults-flags-then-data", "a SAFE bit on an agreed record whose data is text",
         _d(_mc(records=[["g", 1, 16, "x"]])), "safe_mismatch", "rejects"),
        ("two-faults-encapsulated-integer-with-records", "encapsulated is 5 and records is not "
         "empty: the form of encapsulated comes before the relation", _d(_mc(inner=5)), "shape",
         "rejects"),
        ("two-faults-records-then-encapsulated", "an encapsulating mcast with a record of the "
         "wrong shape", _d(_mc(records=[["g"]], inner=inner)), "shape", "rejects"),
    ]  # fmt: skip


# Vectors decoded with limits other than the defaults (RFC 0002 §7): the limit they exceed.
_VECTOR_LIMITS = {
    "data-over-limit": {"max_record_data_bytes": 16},
    "too-many-members": {"max_nodes": 2},
}


# ---------------------------------------------------------------- non-canonical, accepted


def _long(major: int, value: int, width: int) -> bytes:
    """An integer or length head in a longer form than needed (1, 2, 4 or 8 argument bytes)."""
    info = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes([major << 5 | info]) + value.to_bytes(width, "big")


def _noncanonical_frames() -> list[tuple[str, str, bytes, WireFrame]]:
    """(name, description, cbor, frame): encodings no sender makes that receivers accept."""
    merge = MembMergeDetect(1, R8)
    ring = _arr(2, _d(1), _d(8))
    record = Record("g", 1, RecordFlags.DATA | RecordFlags.SAFE, b"x")
    mcast = Mcast(3, R8, 9, True, (record,))
    head = (_d(1), _d(_C), _d(1), _d(3), ring, _d(9), _d(True))
    return [
        ("int-in-two-bytes", "sender 1 as 18 01", _arr(5, _d(1), _d(_C), _d(2),
         _long(0, 1, 1), ring), merge),
        ("int-in-nine-bytes", "ring seq 8 in the eight-byte form", _arr(5, _d(1), _d(_C), _d(2),
         _d(1), _arr(2, _d(1), _long(0, 8, 8))), merge),
        ("cluster-id-in-nine-bytes", "the cluster id in the eight-byte form", _arr(5, _d(1),
         _long(0, _C, 8), _d(2), _d(1), ring), merge),
        ("type-code-in-two-bytes", "type code 2 as 18 02", _arr(5, _d(1), _d(_C),
         _long(0, 2, 1), _d(1), ring), merge),
        ("array-length-in-two-bytes", "the frame's array head as 98 05", _long(4, 5, 1) +
         _d(1) + _d(_C) + _d(2) + _d(1) + ring, merge),
        ("string-lengths-long", "a group name length as 78 01 and data length as 59 00 01; "
         "flags 16 as 18 10 is already shortest",
         _arr(9, *head, _arr(1, _arr(4, _long(3, 1, 1) + b"g", _d(1), _d(16),
              _long(2, 1, 2) + b"x")), _d(None)), mcast),
        ("empty-list-long", "an empty rtr list as 98 00", _arr(12, *(_d(x) for x in _tok()[:11]),
         _long(4, 0, 1)), OrfToken(R8, 5, 40, 37, 0, 0, 0, False, ())),
    ]  # fmt: skip


def noncanonical_vectors() -> dict[str, Any]:
    from gcs.wire.codec import decode_frame

    vectors = []
    for name, description, data, frame in _noncanonical_frames():
        canonical = encode_frame(frame, CLUSTER_ID)
        if decode_frame(data, CLUSTER_ID) != frame or data == canonical:
            raise SystemExit(f"non-canonical vector {name} does not decode to its frame")
        vectors.append(
            {
                "name": name,
                "description": description,
                "cbor": data.hex(),
                "frame": frame_to_json(frame),
                "canonical": canonical.hex(),
            }
        )
    return {
        "description": "Encodings no sender produces (RFC 0002 WIRE-5-2) that every receiver "
        "accepts (WIRE-5-1): cbor decodes to frame, and frame encodes to canonical",
        "params": _params(),
        "vectors": vectors,
    }


# ---------------------------------------------------------------- invalid datagrams


def _recv(
    keyed: bool = True, peers: list[int] | None = None, addresses: dict[str, str] | None = None
) -> dict[str, Any]:
    spec = {"node_id": RECEIVER, "keyed": keyed, "peers": peers, "silence_ns": SILENCE_NS}
    if addresses is not None:
        spec["addresses"] = addresses
    return spec


def _with_header(datagram: bytes, offset: int, value: bytes) -> bytes:
    return datagram[:offset] + value + datagram[offset + len(value) :]


def _invalid_datagrams() -> list[tuple[str, str, dict[str, Any], list[bytes], str]]:
    """(name, description, receiver, datagrams, reason): all but the last datagram open fine."""
    body = encode_frame(MembMergeDetect(1, R8), CLUSTER_ID)
    aes = Suite.AES_256_GCM
    good = seal(body, aes, 1)
    flipped_tag = good[:-1] + bytes([good[-1] ^ 1])
    flipped_body = _with_header(good, 40, bytes([good[40] ^ 0x80]))
    other_cluster = encode_frame(MembMergeDetect(1, R8), CLUSTER_ID ^ 1)
    return [
        ("forged-tag", "last tag bit flipped", _recv(), [flipped_tag], "auth"),
        ("forged-ciphertext", "one ciphertext bit flipped", _recv(), [flipped_body], "auth"),
        ("wrong-key", "sealed under another cluster key", _recv(),
         [seal(body, aes, 1, key=OTHER_KEY)], "auth"),
        ("header-tampered", "boot id changed after sealing (the header is associated data)",
         _recv(), [_with_header(good, 12, (BOOT + 1).to_bytes(8, "big"))], "auth"),
        ("truncated-header", "20 bytes", _recv(), [good[:20]], "truncated"),
        ("truncated-tag", "header and 10 bytes: shorter than the tag", _recv(), [good[:42]],
         "truncated"),
        ("bad-magic", "magic XC", _recv(), [b"XC" + good[2:]], "bad_magic"),
        ("bad-version", "header version 2", _recv(), [_with_header(good, 2, b"\x02")],
         "bad_version"),
        ("wrong-cluster", "another cluster's id in the header", _recv(),
         [seal(body, aes, 1, cluster_id=CLUSTER_ID ^ 1)], "wrong_cluster"),
        ("bad-suite", "suite 9", _recv(), [_with_header(good, 3, b"\x09")], "bad_suite"),
        ("unsealed-at-keyed", "suite 0 datagram at a keyed receiver", _recv(),
         [seal(body, Suite.NONE, 1)], "unsealed"),
        ("sealed-at-unkeyed", "AES-256-GCM datagram at an unkeyed receiver", _recv(False),
         [good], "sealed_unexpected"),
        ("loopback", "carries the receiver's own id", _recv(),
         [seal(encode_frame(MembMergeDetect(RECEIVER, R8), CLUSTER_ID), aes, RECEIVER)],
         "loopback"),
        ("sender-zero", "sender id 0", _recv(), [seal(body, aes, 0)], "unknown_sender"),
        ("unknown-peer", "sender 5 is not among the receiver's peers 1-3", _recv(True, [1, 2, 3]),
         [seal(encode_frame(MembMergeDetect(5, R8), CLUSTER_ID), aes, 5)], "unknown_sender"),
        ("too-large", "1,601 bytes (limit 1,600)", _recv(), [good + bytes(1601 - len(good))],
         "too_large"),
        ("replay", "the same datagram twice", _recv(), [good, good], "replay"),
        ("replay-outside-window", "counter 100 after counter 5000 (window 4,096)", _recv(),
         [seal(body, aes, 1, counter=5000), seal(body, aes, 1, counter=100)], "replay"),
        ("old-boot", "boot id lower than the newest authenticated one", _recv(),
         [seal(body, aes, 1, boot_id=BOOT + 1), seal(body, aes, 1)], "old_boot"),
        ("old-epoch", "epoch 4 after epochs 5 and 6", _recv(),
         [seal(body, aes, 1, epoch=5), seal(body, aes, 1, epoch=6), seal(body, aes, 1, epoch=4)],
         "old_epoch"),
        ("epoch-jump", "epoch 5 straight after epoch 0: one datagram is not believed (SEC-8.3-2)",
         _recv(), [seal(body, aes, 1), seal(body, aes, 1, epoch=5)], "epoch_jump"),
        ("epoch-jump-third-live", "epochs 0, 1, 2 in one instant: 2 would evict a live epoch",
         _recv(), [seal(body, aes, 1), seal(body, aes, 1, epoch=1), seal(body, aes, 1, epoch=2)],
         "epoch_jump"),
        ("suite-change", "ChaCha20 datagram in a boot and epoch that used AES-256-GCM", _recv(),
         [good, seal(body, Suite.CHACHA20_POLY1305, 1, counter=1)], "bad_suite"),
        ("header-mismatch", "sealed frame whose cluster id differs from the header's", _recv(),
         [seal(other_cluster, aes, 1)], "header_mismatch"),
        ("sealed-garbage", "authentic datagram whose plaintext is not a frame", _recv(),
         [seal(b"\xff\xff", aes, 1)], "cbor"),
        *_two_fault_datagrams(good, body),
    ]  # fmt: skip


def _two_fault_datagrams(
    good: bytes, body: bytes
) -> list[tuple[str, str, dict[str, Any], list[bytes], str]]:
    """Two faults each: the reason is the first in the order of RFC 0005 SEC-8.1-1."""
    aes = Suite.AES_256_GCM
    forged = seal(body, aes, 1, counter=0)[:-1] + b"\x00"
    return [
        ("two-faults-too-large-and-bad-magic", "1,601 bytes starting XC", _recv(),
         [b"XC" + good[2:] + bytes(1601 - len(good))], "too_large"),
        ("two-faults-short-and-bad-magic", "20 bytes starting XC", _recv(),
         [b"XC" + good[2:20]], "truncated"),
        ("two-faults-magic-and-version", "magic XC and version 2", _recv(),
         [b"XC\x02" + good[3:]], "bad_magic"),
        ("two-faults-suite-and-sender-zero", "suite 9 from sender 0", _recv(),
         [_with_header(seal(body, aes, 0), 3, b"\x09")], "bad_suite"),
        ("two-faults-loopback-and-unknown-peer", "the receiver's own id, not in its peer list",
         _recv(True, [1, 2, 3]), [seal(body, aes, RECEIVER)], "loopback"),
        ("two-faults-replay-and-forged", "counter 0 again, with a forged tag", _recv(),
         [good, forged], "replay"),
    ]  # fmt: skip


# ---------------------------------------------------------------- datagram sequences in time

Step = tuple[int, bytes, str] | tuple[int, bytes, str, str]
"""(time in ms, datagram, "accept" or the drop reason[, source address])."""
HOME = "10.0.0.1:5405"  # node 1's configured address in the address vectors
ELSEWHERE = "10.0.0.4:5405"


def _sequences() -> list[tuple[str, str, dict[str, Any], list[Step]]]:
    """(name, description, receiver, steps): the rules of RFC 0005 SEC-7.1-1 and SEC-8.3-2."""
    body = encode_frame(MembMergeDetect(1, R8), CLUSTER_ID)
    aes = Suite.AES_256_GCM
    homes = _recv(addresses={"1": HOME})

    def d(boot: int = 0, epoch: int = 0, counter: int = 0) -> bytes:
        return seal(body, aes, 1, boot_id=BOOT + boot, epoch=epoch, counter=counter)

    return [
        ("impostor-elsewhere", "a newer boot from another address than node 1's configured "
         "one never takes over from the boot at that address, live or silent; a restart at "
         "the configured address is accepted at once and forgets the impostor", homes,
         [(0, d(), "accept", HOME), (10, d(1), "shadowed_boot", ELSEWHERE),
          (20, d(1, 0, 1), "shadowed_boot", ELSEWHERE), (5000, d(1, 0, 2), "shadowed_boot",
          ELSEWHERE), (5010, d(0, 0, 1), "accept", HOME), (5020, d(2), "accept", HOME),
          (9000, d(1, 0, 3), "old_boot", ELSEWHERE)]),
        ("restart-seen-first-elsewhere", "a restart whose first datagram arrives from another "
         "address (replayed there, say) is shadowed until one arrives from the configured "
         "address; from then on it is at home, preferred, and accepted", homes,
         [(0, d(), "accept", HOME), (10, d(1, 0, 5), "shadowed_boot", ELSEWHERE),
          (20, d(1, 0, 0), "accept", HOME), (30, d(0, 0, 1), "shadowed_boot", HOME),
          (40, d(1, 0, 6), "accept", ELSEWHERE), (50, d(1, 0, 5), "accept", HOME)]),
        ("one-boot-two-addresses", "a boot seen from a second address is accepted (addresses "
         "are reported, not trusted)", homes,
         [(0, d(), "accept", HOME), (10, d(0, 0, 1), "accept", ELSEWHERE),
          (20, d(0, 0, 2), "accept", HOME)]),
        ("copies-on-two-links", "a sender with two links in active mode sends each datagram "
         "on both (RFC 0010 LNK-6-2): whichever copy arrives first is accepted, the other is "
         "a replay, in either order and interleaved with later counters; every link address "
         "of a node is its home (LNK-6-4, the driver gives them all as the first)", homes,
         [(0, d(), "accept", HOME), (0, d(), "replay", HOME), (5, d(0, 0, 2), "accept", HOME),
          (6, d(0, 0, 1), "accept", HOME), (6, d(0, 0, 1), "replay", HOME),
          (7, d(0, 0, 2), "replay", HOME), (9, d(0, 0, 3), "accept", HOME)]),
    ] + [(name, text, _recv(), steps) for name, text, steps in [
        ("boot-fallback", "a newer boot shadows the older one while it is live; once it has "
         "been silent for silence_ns the older boot is accepted again, the newer wins again "
         "as soon as it speaks, and the older boot's replay state was kept all along",
         [(0, d(), "accept"), (100, d(1), "accept"), (600, d(0, 0, 1), "shadowed_boot"),
          (1099, d(0, 0, 2), "shadowed_boot"), (1100, d(0, 0, 3), "accept"),
          (1300, d(1, 0, 1), "accept"), (1400, d(0, 0, 4), "shadowed_boot"),
          (2400, d(0, 0, 0), "replay"), (2500, d(0, 0, 5), "accept")]),
        ("boot-kept-is-the-live-one", "a third boot keeps the more recently heard of the two "
         "before it; the other is refused for ever, silent or not",
         [(0, d(), "accept"), (100, d(1), "accept"), (1200, d(0, 0, 1), "accept"),
          (1300, d(2), "accept"), (3000, d(1, 0, 1), "old_boot"),
          (3000, d(0, 0, 2), "accept")]),
        ("restarts", "each restart (a newer boot) is accepted at once; the boot before it is "
         "kept but shadowed while the new one is live, the one before that is forgotten",
         [(0, d(), "accept"), (1, d(1), "accept"), (2, d(1, 0, 1), "accept"),
          (3, d(2), "accept"), (4, d(0, 0, 1), "old_boot"), (5, d(1, 0, 2), "shadowed_boot")]),
        ("epoch-step", "the next epoch opens while the previous is kept; a third epoch opens "
         "once the lowest kept has been silent for silence_ns, and then the lowest is old",
         [(0, d(), "accept"), (100, d(0, 1), "accept"), (200, d(0, 0, 1), "accept"),
          (700, d(0, 2), "epoch_jump"), (1200, d(0, 2, 1), "accept"),
          (1300, d(0, 0, 2), "old_epoch"), (1400, d(0, 1, 1), "accept")]),
        ("epoch-jump-confirmed", "a jump is believed when the same epoch authenticates again "
         "silence_ns after it was first heard, with a higher counter, while the newest kept "
         "epoch stayed silent; the first datagram was dropped, so it is accepted once later",
         [(0, d(), "accept"), (500, d(0, 3), "epoch_jump"), (1000, d(0, 3, 1), "epoch_jump"),
          (1600, d(0, 3, 2), "accept"), (1700, d(0, 3, 0), "accept"),
          (1800, d(0, 3, 0), "replay"), (1900, d(0, 0, 1), "accept")]),
        ("epoch-jump-while-live", "a jump is never believed while the sender's newest kept "
         "epoch is live, however long it has been heard",
         [(0, d(), "accept"), (500, d(0, 3), "epoch_jump"), (1200, d(0, 0, 1), "accept"),
          (1600, d(0, 3, 1), "epoch_jump"), (1700, d(0, 0, 2), "accept")]),
        ("epoch-jump-single", "one authentic datagram far ahead, even from a sender silent for "
         "long, changes nothing the sender's real epoch needs",
         [(0, d(), "accept"), (5000, d(0, 7), "epoch_jump"), (5100, d(0, 0, 1), "accept"),
          (5200, d(0, 1), "accept"), (6300, d(0, 2), "accept")]),
        ("epoch-steps-ahead-while-live", "epochs 1 and 2 injected while epoch 0 is live: 1 is "
         "the next epoch and opens, 2 would evict the live 0 and is refused",
         [(0, d(), "accept"), (10, d(0, 1), "accept"), (20, d(0, 2), "epoch_jump"),
          (30, d(0, 0, 1), "accept")]),
    ]]  # fmt: skip


def sequence_vectors() -> dict[str, Any]:
    vectors = []
    for name, description, receiver, steps in _sequences():
        channel = receiver_channel(receiver)
        rows = []
        for at_ms, datagram, result, *where in steps:
            source = where[0] if where else None
            got = _reason_of(lambda c=channel, d=datagram, t=at_ms, s=source: c.open(d, t * MS, s))
            if (got or "accept") != result:
                raise SystemExit(f"sequence {name} at {at_ms} ms: the channel says {got}")
            row = {"time_ns": at_ms * MS, "datagram": datagram.hex(), "result": result}
            rows.append({**row, "source": source} if where else row)
        vectors.append(
            {"name": name, "description": description, "receiver": receiver, "steps": rows}
        )
    return {
        "description": "Datagrams in time: open each step's datagram at its time_ns (a monotonic "
        "clock) on one fresh receiver, in order; each is accepted or dropped with the reason",
        "params": _params(),
        "vectors": vectors,
    }


# ---------------------------------------------------------------- key schedule


def key_schedule() -> dict[str, Any]:
    name = CLUSTER_NAME.encode()
    prk = extract_prk(TEST_KEY, CLUSTER_NAME)
    subkeys = []
    for suite, sender, boot_id, epoch in [
        (Suite.AES_256_GCM, 1, BOOT, 0),
        (Suite.AES_256_GCM, 1, BOOT, 1),
        (Suite.CHACHA20_POLY1305, 3, BOOT, 0),
        (Suite.AES_256_GCM, U32_MAX, U64_MAX, U32_MAX),
    ]:
        info = SUBKEY_LABEL + bytes([suite]) + sender.to_bytes(4, "big")
        info += boot_id.to_bytes(8, "big") + epoch.to_bytes(4, "big")
        subkeys.append(
            {
                "suite": int(suite),
                "sender": sender,
                "boot_id": boot_id,
                "epoch": epoch,
                "info": info.hex(),
                "subkey": derive_subkey(prk, suite, sender, boot_id, epoch).hex(),
            }
        )
    header = pack_header(Suite.AES_256_GCM, CLUSTER_ID, 1, BOOT, 2, 77)
    return {
        "description": "cluster id, HKDF-SHA256 extract and expand, and nonce construction",
        "cluster_name": CLUSTER_NAME,
        "cluster_id_input": (b"gcs/1 cluster id\x00" + name).hex(),
        "cluster_id": CLUSTER_ID,
        "key": TEST_KEY.hex(),
        "salt": (SALT_LABEL + name).hex(),
        "prk": prk.hex(),
        "subkeys": subkeys,
        "nonce_example": {"header": header.hex(), "nonce": nonce_for(header).hex()},
    }


# ---------------------------------------------------------------- CDDL (pycddl)

CDDL_LEAVES = (
    "orf-token",
    "agreed-mcast",
    "safe-mcast",
    "encapsulating-agreed-mcast",
    "encapsulating-safe-mcast",
    "memb-merge-detect",
    "memb-join",
    "memb-commit-token",
    "token-hold-cancel",
    "memb-leave",
    "link-probe",
)
"""The array rules ``frame`` chooses between. pycddl 0.6 mis-validates choices between array
types, so a value is checked against each leaf on its own: valid iff one leaf accepts it."""

_SCHEMAS: list[pycddl.Schema] = []


def cddl_accepts(data: bytes) -> bool:
    """Whether protocol/messages.cddl (leaf by leaf, via pycddl) accepts ``data``."""
    if not _SCHEMAS:
        text = CDDL_PATH.read_text()
        _SCHEMAS.extend(pycddl.Schema(f"gcs-root = {leaf}\n{text}") for leaf in CDDL_LEAVES)
    for schema in _SCHEMAS:
        try:
            schema.validate_cbor(data)
        except (pycddl.ValidationError, ValueError):
            continue
        return True
    return False


# ---------------------------------------------------------------- assembling and checking


def receiver_channel(spec: dict[str, Any]) -> Any:
    """The receiving Channel a datagram vector describes (boot id 1, default limits)."""
    from gcs.wire.channel import Channel

    key = TEST_KEY if spec["keyed"] else None
    return Channel(
        spec["node_id"],
        1,
        CLUSTER_NAME,
        key,
        peers=spec["peers"],
        silence_ns=spec.get("silence_ns", SILENCE_NS),
        addresses={int(n): a for n, a in spec.get("addresses", {}).items()},
    )


def _reason_of(action: Any) -> str | None:
    from gcs.wire.errors import FrameError

    try:
        action()
    except FrameError as exc:
        return exc.reason.value
    return None


def invalid_frame_vectors() -> dict[str, Any]:
    from gcs.wire.codec import decode_frame

    vectors = []
    for name, description, data, reason, cddl in _invalid_frames():
        overrides = _VECTOR_LIMITS.get(name)
        limits = WireLimits(**(overrides or {}))
        got = _reason_of(lambda data=data, limits=limits: decode_frame(data, CLUSTER_ID, limits))
        if got != reason:
            raise SystemExit(f"invalid frame {name}: the decoder says {got}, the table {reason}")
        gap = cddl == "rejects" and cddl_accepts(data)
        if cddl == "accepts" and not cddl_accepts(data):
            raise SystemExit(f"invalid frame {name}: marked cddl=accepts but pycddl rejects it")
        vector: dict[str, Any] = {
            "name": name,
            "description": description,
            "cbor": data.hex(),
            "reason": reason,
            "cddl": cddl,
            "pycddl_gap": gap,
        }
        if overrides:
            vector["limits"] = overrides
        vectors.append(vector)
    return {
        "description": "CBOR frames every decoder must refuse, with the drop reason; cddl says "
        "whether protocol/messages.cddl rules the value out (rejects) or the rule lies beyond "
        "CDDL (accepts); pycddl_gap marks values CDDL rules out that pycddl "
        f"{metadata.version('pycddl')} still accepts (validator bugs, see protocol/README.md)",
        "params": _params(),
        "vectors": vectors,
    }


def invalid_datagram_vectors() -> dict[str, Any]:
    vectors = []
    for name, description, receiver, datagrams, reason in _invalid_datagrams():
        channel = receiver_channel(receiver)
        for datagram in datagrams[:-1]:
            channel.open(datagram)
        got = _reason_of(lambda c=channel, d=datagrams[-1]: c.open(d))
        if got != reason:
            raise SystemExit(f"invalid datagram {name}: the channel says {got}, table {reason}")
        vectors.append(
            {
                "name": name,
                "description": description,
                "receiver": receiver,
                "datagrams": [d.hex() for d in datagrams],
                "reason": reason,
            }
        )
    return {
        "description": "Datagrams a receiver must drop: open every datagram in order on a fresh "
        "receiver; all but the last are accepted, the last is dropped with the reason",
        "params": _params(),
        "vectors": vectors,
    }


def _check_valid(doc: dict[str, Any]) -> None:
    from gcs.wire.codec import decode_frame

    for vector in doc["vectors"]:
        frame = frame_from_json(vector["frame"])
        data = bytes.fromhex(vector["cbor"])
        if decode_frame(data, CLUSTER_ID) != frame or not cddl_accepts(data):
            raise SystemExit(f"valid vector {vector['name']} does not round-trip or validate")
        channel = receiver_channel(_recv(vector["sealed"]["suite"] != Suite.NONE))
        if channel.open(bytes.fromhex(vector["sealed"]["datagram"])) != (
            vector["sealed"]["sender"],
            frame,
        ):
            raise SystemExit(f"valid vector {vector['name']} does not open")


def build() -> dict[str, str]:
    """File name -> JSON text of every vector file."""
    valid = valid_vectors()
    _check_valid(valid)
    docs = {
        "frames.json": valid,
        "invalid-frames.json": invalid_frame_vectors(),
        "noncanonical-frames.json": noncanonical_vectors(),
        "invalid-datagrams.json": invalid_datagram_vectors(),
        "datagram-sequences.json": sequence_vectors(),
        "key-schedule.json": key_schedule(),
    }
    return {name: json.dumps(doc, indent=2) + "\n" for name, doc in docs.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite protocol/vectors/*.json")
    args = parser.parse_args(argv)
    import logging

    logging.getLogger("gcs.wire").setLevel(logging.ERROR)  # unkeyed receivers warn by design
    stale = []
    for name, text in build().items():
        path = VECTORS / name
        if args.write:
            VECTORS.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
        elif not path.exists() or path.read_text() != text:
            stale.append(name)
    if stale:
        print(f"out of date: {', '.join(stale)}; run with --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
