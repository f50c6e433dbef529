"""The one history schema: which records are workload messages, and which mcast originates them.

The simulator and a real node's writer both count workload messages with these helpers, so a
history means the same thing whichever recorded it (RFC 0007 §3).
"""

from __future__ import annotations

import json
from pathlib import Path

from gcs.groups.records import ANNOUNCE_GROUP, directed_record
from gcs.groups.views import Member
from gcs.history import events as h
from gcs.history.writer import HistoryWriter
from gcs.totem.effects import ConfigId, ConfigurationKind, Deliver
from gcs.wire.frames import Mcast, Record, RecordFlags, RingId

DATA, JOIN = int(RecordFlags.DATA), int(RecordFlags.JOIN)
FIRST, MIDDLE, LAST = int(RecordFlags.FIRST), int(RecordFlags.MIDDLE), int(RecordFlags.LAST)
RING = RingId(seq=4, rep=1)


def payload(counter: int, size: int = 40) -> bytes:
    return h.encode_payload(h.MsgId(1, 1, counter), size)


def group_layer_records() -> list[Record]:
    """A join, an announcement and a point-to-point record: none of them is a workload message."""
    return [
        Record("g", 7, JOIN, b""),
        Record(ANNOUNCE_GROUP, 0, JOIN, b"announcement"),
        directed_record("g", 7, Member(2, 9), payload(99)),
    ]


def test_group_layer_records_are_not_workload() -> None:
    assert h.application_record(Record("g", 7, DATA, payload(1)))
    assert not any(h.application_record(r) for r in group_layer_records())


def test_workload_ids_count_undecodable_application_records_as_corrupt() -> None:
    records = [Record("g", 7, DATA, payload(1)), *group_layer_records(), Record("g", 7, DATA, b"x")]
    assert h.workload_ids(records, h.application_record) == ((h.MsgId(1, 1, 1),), 1)
    everything = h.workload_ids(records)
    assert everything[1] == 4, "without a filter every record that does not decode is corrupt"


def test_a_fragmented_message_is_originated_by_its_last_fragment() -> None:
    data = payload(3, 90)
    origins = h.Originations()

    def mcast(seq: int, flags: int, piece: bytes) -> Mcast:
        return Mcast(1, RING, seq, False, (Record("g", 7, flags, piece),))

    assert origins.of(mcast(1, FIRST, data[:30])) == ()
    assert origins.of(mcast(2, MIDDLE, data[30:60])) == ()
    assert origins.of(mcast(3, LAST, data[60:])) == (h.MsgId(1, 1, 3),)
    assert origins.of(mcast(3, LAST, data[60:])) is None, "a retransmission originates nothing"


def test_the_writer_leaves_group_layer_records_out_of_deliveries(tmp_path: Path) -> None:
    """A point-to-point record (group ``""``) carrying a workload-like payload is neither a
    message nor corrupt: a real run using ``send_to`` stays judgeable."""
    path = tmp_path / "node1.jsonl"
    writer = HistoryWriter(path, 1, 1)
    records = (Record("g", 7, DATA, payload(1)), *group_layer_records())
    config = ConfigId(ConfigurationKind.REGULAR, RING)
    writer.on_effects([Deliver(config, RING, 5, 1, False, records)])
    writer.close()
    (row,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert (row["type"], row["msg_ids"], row["corrupt"]) == ("Deliver", [[1, 1, 1]], 0)
    assert h.load_jsonl(path).events[0] == h.Deliver(
        row["time_ns"], 1, 1, "regular", RING, RING, 5, 1, False, (h.MsgId(1, 1, 1),), 0
    )
