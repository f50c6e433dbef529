"""The CBOR codec: round trips, determinism and strict decoding (RFC 0002)."""

from __future__ import annotations

import tracemalloc
from typing import Any

import cbor2
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from gcs.build import build_info
from gcs.wire import codec
from gcs.wire.codec import cluster_id_for, decode_frame, encode_frame
from gcs.wire.errors import DropReason, EncodeError, FrameError
from gcs.wire.frames import (
    FRAME_TYPES,
    Frame,
    Mcast,
    MembJoin,
    MembMergeDetect,
    OrfToken,
    Record,
    RecordFlags,
    RingId,
    RtrEntry,
)
from gcs.wire.limits import WireLimits

from . import strategies as s

CID = cluster_id_for("codec-tests")
R = RingId(seq=8, rep=1)


def reason_of(data: bytes, limits: WireLimits | None = None) -> DropReason:
    with pytest.raises(FrameError) as info:
        decode_frame(data, CID, limits or WireLimits())
    return info.value.reason


def raw(*items: Any) -> bytes:
    return cbor2.dumps(list(items))


# ---------------------------------------------------------------- round trips (WIRE-8.1-11)


@pytest.mark.req("WIRE-8.1-11", "WIRE-5-2")
@pytest.mark.parametrize(
    "strategy",
    [
        s.orf_tokens,
        s.mcasts,
        s.joins,
        s.leaves,
        s.commit_tokens,
        s.merge_detects,
        s.token_hold_cancels,
        s.link_probes,
    ],
    ids=[
        "orf_token",
        "mcast",
        "memb_join",
        "memb_leave",
        "commit",
        "merge_detect",
        "hold_cancel",
        "link_probe",
    ],
)
def test_round_trip_each_frame_type(strategy: st.SearchStrategy[Frame]) -> None:
    """WIRE-8.1-11: decode(encode(f)) == f for every valid frame of every type."""

    @s.PROPERTY
    @given(strategy)
    def check(frame: Frame) -> None:
        data = encode_frame(frame, CID)
        back = decode_frame(data, CID)
        assert back == frame
        assert type(back) is type(frame)
        # WIRE-5-2: deterministic, so re-encoding the decoded frame gives the same bytes.
        assert encode_frame(back, CID) == data

    check()


def test_strategies_cover_every_frame_type() -> None:
    quick = settings(max_examples=500, phases=[Phase.generate], database=None)
    for cls in FRAME_TYPES:
        assert type(find(s.frames(), lambda f, cls=cls: type(f) is cls, settings=quick)) is cls


@pytest.mark.req("WIRE-8.1-11")
@s.PROPERTY
@given(s.mcasts)
def test_decoded_records_are_plain_records(mcast: Mcast) -> None:
    """The fast slot-setting constructor builds objects equal to, and hashing like, normal ones."""
    back = decode_frame(encode_frame(mcast, CID), CID)
    assert isinstance(back, Mcast)
    for got, want in zip(back.records, mcast.records, strict=True):
        assert type(got) is Record
        assert (got.group, got.handle, got.flags, got.data) == (
            want.group,
            want.handle,
            want.flags,
            want.data,
        )
        assert hash(got) == hash(want)
    assert hash(back.ring_id) == hash(mcast.ring_id)


@pytest.mark.req("WIRE-5-2")
def test_sets_encode_sorted_and_flags_as_plain_ints() -> None:
    join = MembJoin(3, frozenset({300, 2, 17}), frozenset({17}), 4)
    assert cbor2.loads(encode_frame(join, CID)) == [1, CID, 3, 3, [2, 17, 300], [17], 4]
    flags = RecordFlags.FIRST | RecordFlags.SAFE
    mcast = Mcast(1, R, 1, True, (Record("g", 0, flags, b""),))
    assert cbor2.loads(encode_frame(mcast, CID))[7] == [["g", 0, 20, b""]]


def test_cluster_id_is_first_four_bytes_of_labelled_hash() -> None:
    import hashlib

    digest = hashlib.sha256(b"gcs/1 cluster id\x00" + b"prod").digest()
    assert cluster_id_for("prod") == int.from_bytes(digest[:4], "big")
    assert cluster_id_for("prod") != cluster_id_for("prod2")
    for bad in ("", "x" * 256):
        with pytest.raises(ValueError):
            cluster_id_for(bad)


def test_encode_rejects_non_frames_and_bad_cluster_ids() -> None:
    with pytest.raises(EncodeError):
        encode_frame(R, CID)  # type: ignore[arg-type]
    with pytest.raises(EncodeError):
        encode_frame(MembMergeDetect(1, R), 1 << 32)
    with pytest.raises(EncodeError):
        encode_frame(MembMergeDetect(1, R), "1")


def test_a_frame_with_a_field_of_the_wrong_type_is_refused() -> None:
    """The pure build's frames take any value and the encoder refuses it (EncodeError); the
    compiled build's frames check their field types when built (TypeError), so such a frame
    cannot even reach the encoder."""
    if build_info().compiled:
        with pytest.raises(TypeError):
            RingId(seq=object(), rep=1)  # type: ignore[arg-type]
        return
    with pytest.raises(EncodeError):
        encode_frame(MembMergeDetect(1, RingId(seq=object(), rep=1)), CID)  # type: ignore[arg-type]


# ---------------------------------------------------------------- strict decoding


@pytest.mark.req("WIRE-8.1-1")
def test_every_tag_is_rejected_including_the_ones_cbor2_understands() -> None:
    """WIRE-8.1-1: bignums, shared and string references, dates, self-describe: all refused."""
    tags = [*range(64), 256, 258, 259, 260, 261, 1004, 55799, (1 << 32) - 1, (1 << 64) - 1]
    prefix = b"\x85" + b"".join(cbor2.dumps(item) for item in (1, CID, 2, 1)) + b"\x82\x01"
    assert decode_frame(prefix + b"\x08", CID) == MembMergeDetect(1, R)
    for tag in tags:
        head = cbor2.dumps(cbor2.CBORTag(tag, 8))[:-1]  # the tag head alone
        assert reason_of(prefix + head + b"\x08") is DropReason.CBOR, tag  # ring seq 8, tagged


@pytest.mark.req("WIRE-8.1-2")
def test_indefinite_lengths_and_deep_nesting_are_rejected() -> None:
    good = raw(1, CID, 2, 1, [1, 8])
    assert reason_of(b"\x9f" + good[1:] + b"\xff") is DropReason.CBOR
    assert reason_of(b"\x81" * 5 + b"\x01") is DropReason.CBOR
    # Depth 4 is legal (frame > rtr list > entry > ring id) and decodes.
    token = OrfToken(R, 1, 2, 2, 0, 0, 0, False, (RtrEntry(R, 2),))
    assert decode_frame(encode_frame(token, CID), CID) == token


@pytest.mark.req("WIRE-8.1-3")
def test_trailing_bytes_are_rejected() -> None:
    good = raw(1, CID, 2, 1, [1, 8])
    assert decode_frame(good, CID) == MembMergeDetect(1, R)
    assert reason_of(good + b"\x00") is DropReason.TRAILING_BYTES
    assert reason_of(good + good) is DropReason.TRAILING_BYTES


@pytest.mark.req("WIRE-8.1-4")
@pytest.mark.parametrize(
    ("items", "reason"),
    [
        ((1, CID, 2, True, [1, 8]), DropReason.TYPE),  # bool is not an int
        ((1, CID, 2, 1.0, [1, 8]), DropReason.TYPE),  # no floats
        ((1, CID, 2, "1", [1, 8]), DropReason.TYPE),
        ((1, CID, 2, None, [1, 8]), DropReason.TYPE),
        ((1, CID, 2, [1], [1, 8]), DropReason.TYPE),
        ((1, CID, 2, 1, [True, 8]), DropReason.TYPE),
        ((1, CID, 2, 1, {1: 8}), DropReason.SHAPE),  # no maps
        ((1, CID, 2, 1, [1]), DropReason.SHAPE),
        ((1, CID, 2, 1, b"\x01\x08"), DropReason.SHAPE),  # bytes never pass for an array
        ((1, CID, 0, [1, 8], 1, 2, 2, 0, 0, 0, 1, []), DropReason.TYPE),  # int is not a bool
        ((1, CID, 0, [1, 8], 1, 2, 2, 0, 0, 0, False, None), DropReason.SHAPE),
        ((1, CID, 1, 1, [1, 8], 1, False, [["g", 1, 0, "x"]], None), DropReason.TYPE),
        ((1, CID, 1, 1, [1, 8], 1, False, [[b"g", 1, 0, b"x"]], None), DropReason.TYPE),
        ((1, CID, 1, 1, [1, 8], 1, False, [["g", 1, 0]], None), DropReason.SHAPE),
        ((1, CID, 1, 1, [1, 8], 1, 0, [], None), DropReason.TYPE),
    ],
)
def test_exact_types(items: tuple[Any, ...], reason: DropReason) -> None:
    """WIRE-8.1-4: no implicit conversions between CBOR types."""
    assert reason_of(raw(*items)) is reason


@pytest.mark.req("WIRE-8.1-5")
@pytest.mark.parametrize(
    "items",
    [
        (1, CID, 2, 1),
        (1, CID, 2, 1, [1, 8], 0),
        (1, CID, 0, [1, 8], 1, 2, 2, 0, 0, 0, False),
        (1, CID, 3, 1, [1], [], 8, 0),
        (1, CID, 4, [1, 8], 1, 0),
        (1, CID),
    ],
)
def test_exact_array_lengths(items: tuple[Any, ...]) -> None:
    assert reason_of(raw(*items)) is DropReason.SHAPE


@pytest.mark.req("WIRE-8.1-6")
@pytest.mark.parametrize(
    "items",
    [
        (1, CID, 2, 0, [1, 8]),
        (1, CID, 2, 1 << 32, [1, 8]),
        (1, CID, 2, 1, [0, 8]),
        (1, CID, 2, 1, [1, -1]),
        (1, CID, 0, [1, 8], 1, 2, 2, 1 << 32, 0, 0, False, []),
        (1, CID, 0, [1, 8], -1, 2, 2, 0, 0, 0, False, []),
        (1, CID, 1, 1, [1, 8], 1, False, [["g", -1, 0, b""]], None),
        (1, CID, 3, 1, [1], [0], 8),
        (1, CID, 4, [1, 8], 1, 0, [[0, [1, 8], 0, 0, False]]),
    ],
)
def test_integer_ranges(items: tuple[Any, ...]) -> None:
    assert reason_of(raw(*items)) is DropReason.RANGE


@pytest.mark.req("WIRE-8.1-6")
def test_u64_and_node_id_extremes_are_accepted() -> None:
    top = (1 << 64) - 1
    node = (1 << 32) - 1
    frame = decode_frame(raw(1, CID, 2, node, [node, top]), CID)
    assert frame == MembMergeDetect(node, RingId(seq=top, rep=node))


@pytest.mark.req("WIRE-7-1")
def test_list_and_size_limits() -> None:
    small = WireLimits(max_rtr_entries=2, max_nodes=3, max_records=2, max_group_bytes=4)
    rtr = [[[1, 8], n] for n in range(3)]
    assert reason_of(raw(1, CID, 0, [1, 8], 1, 2, 2, 0, 0, 0, False, rtr), small) is (
        DropReason.TOO_MANY
    )
    assert reason_of(raw(1, CID, 3, 1, [1, 2, 3, 4], [], 8), small) is DropReason.TOO_MANY
    assert reason_of(raw(1, CID, 6, 1, [], [1, 2, 3, 4], 8), small) is DropReason.TOO_MANY
    members = [[n, [1, 8], 0, 0, False] for n in range(1, 5)]
    assert reason_of(raw(1, CID, 4, [1, 8], 1, 0, members), small) is DropReason.TOO_MANY
    recs = [["g", 1, 0, b""]] * 3
    assert reason_of(raw(1, CID, 1, 1, [1, 8], 1, False, recs, None), small) is (
        DropReason.TOO_MANY
    )
    long_group = [["ééé", 1, 0, b""]]  # 3 code points, 6 UTF-8 bytes > 4
    assert reason_of(raw(1, CID, 1, 1, [1, 8], 1, False, long_group, None), small) is (
        DropReason.TOO_LARGE
    )
    tiny_data = WireLimits(max_record_data_bytes=3)
    big_data = [["g", 1, 0, b"1234"]]
    assert reason_of(raw(1, CID, 1, 1, [1, 8], 1, False, big_data, None), tiny_data) is (
        DropReason.TOO_LARGE
    )
    frame = raw(1, CID, 1, 1, [1, 8], 1, False, [["g", 1, 0, bytes(1600)]], None)
    assert reason_of(frame) is DropReason.TOO_LARGE
    assert decode_frame(frame, CID, WireLimits(max_datagram_bytes=2000)).seq == 1  # type: ignore[union-attr]


@pytest.mark.req("WIRE-7-1")
def test_group_names_exactly_at_the_limit_pass() -> None:
    for name in ("g" * 255, "é" * 127 + "g"):
        frame = raw(1, CID, 1, 1, [1, 8], 1, False, [[name, 1, 0, b""]], None)
        assert decode_frame(frame, CID).records[0].group == name  # type: ignore[union-attr]


@pytest.mark.req("WIRE-8.1-7")
@pytest.mark.parametrize("proc", [[2, 1], [1, 1], [1, 3, 2]])
def test_sets_must_be_strictly_ascending(proc: list[int]) -> None:
    assert reason_of(raw(1, CID, 3, 1, proc, [], 8)) is DropReason.NOT_CANONICAL
    assert reason_of(raw(1, CID, 3, 1, [], proc, 8)) is DropReason.NOT_CANONICAL


@pytest.mark.req("WIRE-4.2.1-1")
def test_record_flags() -> None:
    def mcast(safe: bool, flags: int) -> bytes:
        return raw(1, CID, 1, 1, [1, 8], 1, safe, [["g", 1, flags, b""]], None)

    for flags in range(64):
        kind_ok = flags & 0b11 != 0b11
        defined = flags < 32 and kind_ok
        safe = bool(flags & 16)
        if defined:
            assert decode_frame(mcast(safe, flags), CID).records[0].flags == flags  # type: ignore[union-attr]
            assert reason_of(mcast(not safe, flags)) is DropReason.SAFE_MISMATCH
        else:
            assert reason_of(mcast(safe, flags)) is DropReason.RANGE


@pytest.mark.req("WIRE-4.2.2-1")
def test_encapsulation_rules() -> None:
    inner = [4, [1, 8], 17, False, [["g", 1, 0, b"x"]], None]
    ok = decode_frame(raw(1, CID, 1, 1, [1, 12], 1, True, [], inner), CID)
    assert isinstance(ok, Mcast) and ok.encapsulated is not None
    assert ok.encapsulated.records[0].data == b"x"
    with_records = raw(1, CID, 1, 1, [1, 12], 1, False, [["g", 1, 0, b""]], inner)
    assert reason_of(with_records) is DropReason.ENCAPSULATION
    nested = [4, [1, 8], 17, False, [], [4, [1, 8], 3, False, [], None]]
    assert reason_of(raw(1, CID, 1, 1, [1, 12], 1, False, [], nested)) is (DropReason.ENCAPSULATION)
    bad_inner = [4, [1, 8], 17, True, [["g", 1, 0, b"x"]], None]
    assert reason_of(raw(1, CID, 1, 1, [1, 12], 1, True, [], bad_inner)) is (
        DropReason.SAFE_MISMATCH
    )
    assert reason_of(raw(1, CID, 1, 1, [1, 12], 1, False, [], [4, [1, 8]])) is DropReason.SHAPE


@pytest.mark.req("WIRE-8.1-8")
def test_version_cluster_and_type() -> None:
    assert reason_of(raw(2, CID, 2, 1, [1, 8])) is DropReason.BAD_VERSION
    assert reason_of(raw(True, CID, 2, 1, [1, 8])) is DropReason.BAD_VERSION
    assert reason_of(raw(1, CID + 1, 2, 1, [1, 8])) is DropReason.WRONG_CLUSTER
    for code in (8, 255, -1, True, "2", 2.0):
        assert reason_of(raw(1, CID, code, 1, [1, 8])) is DropReason.UNKNOWN_TYPE


@pytest.mark.req("WIRE-8.1-9")
def test_protocol_rules_are_not_checked() -> None:
    """WIRE-8.1-9: a fail set outside the proc set, aru > seq, unsorted commit members all
    decode."""
    join = decode_frame(raw(1, CID, 3, 1, [1], [5, 6], 0), CID)
    assert join == MembJoin(1, frozenset({1}), frozenset({5, 6}), 0)
    token = decode_frame(raw(1, CID, 0, [1, 8], 0, 1, 99, 7, 0, 0, False, []), CID)
    assert isinstance(token, OrfToken) and token.aru > token.seq
    members = [[5, [5, 4], 0, 0, False], [2, [2, 4], 0, 0, False]]
    assert decode_frame(raw(1, CID, 4, [2, 8], 0, 9, members), CID).members[0].node_id == 5  # type: ignore[union-attr]


# ---------------------------------------------------------------- bombs (WIRE-8.1-10)


@pytest.mark.req("WIRE-8.1-10")
@pytest.mark.parametrize(
    "head",
    [
        b"\x9b" + (1 << 60).to_bytes(8, "big"),  # array of 2^60 elements
        b"\x85\x01\x1a\x00\x00\x00\x01\x02\x01\x9b" + (1 << 60).to_bytes(8, "big"),
        b"\xbb" + (1 << 60).to_bytes(8, "big"),  # map of 2^60 pairs
        b"\x5b" + (1 << 60).to_bytes(8, "big"),  # byte string of 2^60 bytes
        b"\x7b" + (1 << 60).to_bytes(8, "big"),  # text string of 2^60 bytes
        b"\x9a\xff\xff\xff\xff",
    ],
)
def test_huge_length_claims_fail_fast_without_allocating(head: bytes) -> None:
    data = head + bytes(1400)
    tracemalloc.start()
    try:
        with pytest.raises(FrameError):
            decode_frame(data, CID)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # "Fast" is judged by what the decoder allocates (a claim honoured would allocate its
    # length), not by a wall-clock figure, which a loaded machine makes meaningless.
    assert peak < 1 << 20


def test_slow_path_diagnosis_never_falls_through() -> None:
    """Every field kind the fast checks use has a precise slow-path reason (no generic RANGE)."""
    for kinds, value, reason in [
        ("u", -1, DropReason.RANGE),
        ("n", 0, DropReason.RANGE),
        ("z", 1 << 32, DropReason.RANGE),
        ("b", 1, DropReason.TYPE),
        ("u", False, DropReason.TYPE),
    ]:
        with pytest.raises(FrameError) as info:
            codec._check_fields("x", "f", kinds, (value,))
        assert info.value.reason is reason
        assert "x.f" in info.value.detail


def test_ring_id_cache_is_bounded() -> None:
    for seq in range(codec._RINGS_MAX + 10):
        decode_frame(raw(1, CID, 2, 1, [1, seq]), CID)
    assert len(codec._RINGS) <= codec._RINGS_MAX


def test_packing_budget_constants_bound_the_worst_case() -> None:
    """RFC 0002 §7.1: the fixed sizes the core uses to pack records into one datagram."""
    top_u32, top_u64 = (1 << 32) - 1, (1 << 64) - 1
    ring = RingId(seq=top_u64, rep=top_u32)
    records = tuple(Record("", top_u64, 30, b"") for _ in range(256))
    bare = encode_frame(Mcast(top_u32, ring, top_u64, True, records), top_u32)
    assert len(bare) == codec.MCAST_FIXED_BYTES_MAX + 256 * (codec.RECORD_FIXED_BYTES_MAX - 3)
    one = Record("g" * 255, top_u64, 30, bytes(65535))
    single = encode_frame(Mcast(top_u32, ring, top_u64, True, (one,)), top_u32)
    empty = encode_frame(Mcast(top_u32, ring, top_u64, True, ()), top_u32)
    assert len(single) - len(empty) == codec.RECORD_FIXED_BYTES_MAX + 255 + 65535
    inner = Mcast(top_u32, ring, top_u64, True, records)
    wrapped = encode_frame(Mcast(top_u32, ring, top_u64, True, (), inner), top_u32)
    fixed = len(wrapped) - 256 * (codec.RECORD_FIXED_BYTES_MAX - 3)
    assert fixed == codec.ENCAPSULATING_MCAST_FIXED_BYTES_MAX
