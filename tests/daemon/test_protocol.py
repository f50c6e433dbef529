"""The daemon client protocol's codec (RFC 0006 §10): values survive the socket unchanged, and
malformed frames are refused with ``ControlProtocolError``, never another exception."""

from __future__ import annotations

import contextlib
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gcs
from gcs.daemon import protocol as proto
from gcs.groups.views import Member, Message, Reason, View, ViewId, ViewReason
from gcs.wire.frames import RingId

RING = RingId(seq=12, rep=1)
VIEW = View(
    view_id=ViewId(RING, 7, 2, 99),
    members=(Member(1, 5), Member(2, 9)),
    joined=(Member(2, 9),),
    left=(),
    transitional=False,
    reason=Reason(ViewReason.JOIN, (2,), "join 2"),
)


def test_frames_are_length_prefixed_canonical_cbor() -> None:
    frame = proto.encode({"op": "hello", "id": 1, "version": 1})
    (length,) = proto.LENGTH.unpack(frame[:4])
    assert length == len(frame) - 4
    assert frame[4:] == cbor2.dumps({"op": "hello", "id": 1, "version": 1}, canonical=True)
    assert proto.decode(frame[4:]) == {"op": "hello", "id": 1, "version": 1}


def test_views_and_messages_round_trip() -> None:
    assert proto.view_from_wire(proto.view_to_wire(VIEW)) == VIEW
    message = Message(Member(2, 9), b"\x00data", True, VIEW.view_id, RING, 40)
    wire = proto.message_to_wire(9, message)
    assert wire["ev"] == "msg" and wire["handle"] == 9
    assert proto.message_from_wire(proto.decode(proto.encode(wire)[4:])) == message


def test_ring_views_round_trip() -> None:
    wire = proto.ring_to_wire(RING, (1, 2, 3), True, (3,), (4,), "join 3")
    assert proto.ring_from_wire(wire) == (RING, (1, 2, 3), True, (3,), (4,), "join 3")


@pytest.mark.parametrize(
    "error",
    [
        gcs.GroupClosed("left"),
        gcs.NotMember("leaving"),
        gcs.NodeClosed("closed"),
        gcs.SlowConsumer("behind"),
        gcs.MessageTooLarge(2000, 1000),
        gcs.InvariantViolation("aru above seq"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_cross_as_the_same_class(error: gcs.GcsError) -> None:
    back = proto.error_from_wire(proto.error_to_wire(error))
    assert type(back) is type(error) and str(back) == str(error)


def test_unknown_error_classes_become_gcs_errors() -> None:
    back = proto.error_from_wire(proto.error_to_wire(RuntimeError("boom")))
    assert type(back) is gcs.GcsError and "boom" in str(back)
    assert isinstance(proto.error_from_wire("nonsense"), gcs.GcsError)


@pytest.mark.parametrize(
    "body",
    [b"", b"\xff\xff", cbor2.dumps([1, 2]), cbor2.dumps({1: "int key"})],
    ids=["empty", "not-cbor", "list", "int-keys"],
)
def test_malformed_frames_are_protocol_errors(body: bytes) -> None:
    with pytest.raises(proto.ControlProtocolError):
        proto.decode(body)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text() | st.binary(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=10,
    )
)
def test_value_decoders_only_raise_protocol_errors(value: Any) -> None:
    for decoder in (proto.view_from_wire, proto.member_from_wire, proto.ring_from_wire):
        with contextlib.suppress(proto.ControlProtocolError):
            decoder(value)
    if isinstance(value, dict):
        with contextlib.suppress(proto.ControlProtocolError):
            proto.message_from_wire(value)
