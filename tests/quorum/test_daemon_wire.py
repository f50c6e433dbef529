"""The daemon protocol's encodings of quorum verdicts and point-to-point messages round-trip."""

from __future__ import annotations

import pytest

from gcs.daemon import protocol as proto
from gcs.groups.views import Member, Message, ViewId
from gcs.quorum.rules import Quorum, QuorumReason
from gcs.wire.frames import RingId

RING = RingId(seq=12, rep=2)


def test_quorum_round_trips() -> None:
    verdict = Quorum(RING, True, (2, 3), 2, 3, 2, QuorumReason.MAJORITY)
    assert proto.quorum_from_wire(proto.quorum_to_wire(verdict)) == verdict
    pending = Quorum(RING, False, (2, 3), 2, 3, 2, QuorumReason.MINORITY, pending=True)
    assert proto.quorum_from_wire(proto.quorum_to_wire(pending)) == pending


@pytest.mark.parametrize(
    "broken",
    [None, {}, {"ring_id": [1]}, {"ring_id": [1, 2], "members": "x"}],
)
def test_malformed_quorum_is_a_protocol_error(broken: object) -> None:
    with pytest.raises(proto.ControlProtocolError):
        proto.quorum_from_wire(broken)


def test_point_to_point_message_keeps_its_destination() -> None:
    msg = Message(Member(1, 5), b"x", True, ViewId(RING, 0, 0), RING, 7, to=Member(3, 9))
    item = proto.message_to_wire(9, msg)
    assert proto.message_from_wire(item) == msg
    plain = Message(Member(1, 5), b"x", False, ViewId(RING, 0, 0), RING, 7)
    assert "to" not in proto.message_to_wire(9, plain)
