"""RFC 0003 §8: the send queue, packing, fragmentation and reassembly."""

from __future__ import annotations

import pickle
import random

import pytest

from gcs.errors import MessageTooLarge, NodeClosed, SendQueueFull
from gcs.totem.config import TotemConfig
from gcs.totem.effects import MembState, Multicast, SendWindow
from gcs.totem.node import Node
from gcs.totem.reassembly import Reassembler
from gcs.totem.sendqueue import RECORD_OVERHEAD, SendQueue, record_cost
from gcs.wire.frames import Mcast, Record, RecordFlags, RingId

from .tracing import MS, advance, next_token, operational, visible

WHOLE, FIRST, MIDDLE, LAST = (
    int(RecordFlags.WHOLE),
    int(RecordFlags.FIRST),
    int(RecordFlags.MIDDLE),
    int(RecordFlags.LAST),
)
SAFE = int(RecordFlags.SAFE)


def queue(budget: int = 1400, max_bytes: int = 100_000, max_message: int = 1_000_000) -> SendQueue:
    return SendQueue(
        max_bytes=max_bytes,
        high_bytes=max_bytes * 3 // 4,
        low_bytes=max_bytes // 4,
        budget=budget,
        max_message=max_message,
    )


def rec(size: int, group: str = "g", handle: int = 1, flags: int = 0) -> Record:
    return Record(group, handle, flags, bytes(size))


def shape(payload: tuple[bool, tuple[Record, ...]] | None) -> list[tuple[int, int]]:
    assert payload is not None
    return [(r.flags & int(RecordFlags.FRAGMENT_MASK), len(r.data)) for r in payload[1]]


# ---------------------------------------------------------------------- §8.1 the queue


@pytest.mark.req("ORD-8.1-1")
def test_submit_limits() -> None:
    """ORD-8.1-1: MessageTooLarge above max_message_bytes; SendQueueFull when a non-empty queue
    would exceed its byte bound; an empty queue takes any record that is not too large; a
    refused record leaves the queue unchanged."""
    q = queue(max_bytes=1000, max_message=5000)
    with pytest.raises(MessageTooLarge):
        q.push(rec(5001), False)
    q.push(rec(4000), False)  # empty queue: accepted although above max_bytes
    assert q.bytes == record_cost("g", 4000)
    with pytest.raises(SendQueueFull):
        q.push(rec(1), False)
    assert len(q) == 1 and q.bytes == record_cost("g", 4000)
    assert record_cost("g", 10) == 10 + 1 + RECORD_OVERHEAD


@pytest.mark.req("ORD-8.1-2")
def test_safe_bit_follows_the_submit_argument() -> None:
    """ORD-8.1-2: the queued record's SAFE bit is set exactly when submitted as safe."""
    q = queue()
    q.push(rec(3, flags=SAFE), False)
    q.push(rec(3), True)
    first, second = q.take(), q.take()
    assert first is not None and second is not None
    assert first[0] is False and first[1][0].flags & SAFE == 0
    assert second[0] is True and second[1][0].flags & SAFE == SAFE


@pytest.mark.req("ORD-8.1-3")
def test_send_window_closes_and_reopens_once() -> None:
    """ORD-8.1-3: crossing the high mark returns SendWindow(open=False) once; draining to the
    low mark after a token visit returns SendWindow(open=True) once."""
    core, now = operational(send_queue_max_bytes=4000)
    windows = []
    for _ in range(3):
        windows += [e for e in core.submit(now, rec(1000)) if isinstance(e, SendWindow)]
    assert windows == [SendWindow(open=False)]
    assert core.sendq.bytes >= 3000
    effects = visible(core.receive(now + MS, 3, next_token(core)))
    assert [e for e in effects if isinstance(e, SendWindow)] == [SendWindow(open=True)]
    again = visible(core.receive(now + 2 * MS, 3, next_token(core)))
    assert again and not [e for e in again if isinstance(e, SendWindow)]


@pytest.mark.req("ORD-8.1-4")
def test_submit_is_accepted_until_the_node_leaves() -> None:
    """ORD-8.1-4: records are queued in STARTING and GATHER; after leave, submit raises."""
    node = Node(TotemConfig(node_id=1, nodes=(1, 2), join_jitter_ns=0), random.Random(0))
    node.start(0, None)
    node.submit(0, rec(3))
    node.on_persisted(0, 4)
    assert node.state is MembState.GATHER
    node.submit(1, rec(3))
    assert len(node.sendq) == 2
    node.leave(2)
    with pytest.raises(NodeClosed):
        node.submit(3, rec(3))


# ---------------------------------------------------------------------- §8.2 packing


@pytest.mark.req("ORD-8.2-1", "ORD-8.2-2")
def test_packing_fills_the_budget_and_never_mixes_guarantees() -> None:
    """ORD-8.2-1, ORD-8.2-2: records are packed while they fit; a record that does not fit but
    would fit a fresh mcast waits for the next one; safe and agreed records never share."""
    q = queue(budget=200)
    for size in (50, 50, 50):
        q.push(rec(size), False)
    q.push(rec(10), True)
    q.push(rec(10), False)
    assert shape(q.take()) == [(WHOLE, 50), (WHOLE, 50)]  # 3 x 71 > 200: the third waits
    agreed = q.take()
    assert agreed is not None and agreed[0] is False and shape(agreed) == [(WHOLE, 50)]
    safe = q.take()
    assert safe is not None and safe[0] is True and shape(safe) == [(WHOLE, 10)]
    assert shape(q.take()) == [(WHOLE, 10)]
    assert q.take() is None


@pytest.mark.req("ORD-8.2-1", "ORD-8.2-3")
def test_fragmentation() -> None:
    """ORD-8.2-1, ORD-8.2-3: a record larger than a frame goes out as FIRST, MIDDLE..., LAST in
    consecutive payloads, filling each; it starts in a partly used payload only when at least
    half a frame is left, else in the next one."""
    q = queue(budget=200)
    q.push(rec(20), False)
    q.push(rec(500), False)
    overhead = record_cost("g", 0)
    head = 200 - record_cost("g", 20) - overhead
    assert shape(q.take()) == [(WHOLE, 20), (FIRST, head)]
    rest = [shape(q.take()) for _ in range(3)]
    assert [part[0][0] for part in rest] == [MIDDLE, MIDDLE, LAST]
    assert [part[0][1] for part in rest[:2]] == [200 - overhead] * 2
    assert head + sum(part[0][1] for part in rest) == 500
    assert q.take() is None
    q = queue(budget=200)
    q.push(rec(120), False)
    q.push(rec(500), False)
    assert shape(q.take()) == [(WHOLE, 120)]  # only 59 bytes left: the big one starts fresh
    assert shape(q.take())[0][0] == FIRST


@pytest.mark.req("ORD-8.2-4")
def test_partial_record_restarts_from_its_first_byte() -> None:
    """ORD-8.2-4: a record interrupted by a membership change is sent again from the start."""
    q = queue(budget=200)
    q.push(Record("g", 1, 0, bytes(range(256)) * 2), False)
    first = q.take()
    assert first is not None and first[1][0].flags & FIRST
    q.restart_partial()
    again = q.take()
    assert again is not None and again[1] == first[1]


def test_a_pickled_queue_takes_out_the_same_payloads() -> None:
    """The flight recorder snapshots the core by pickling it: a copy of a queue with a partly
    sent head must go on exactly as the original (same payloads, bytes, backlog, window)."""
    q = queue(budget=200, max_bytes=4000)
    for size in (30, 700, 10, 10):
        q.push(rec(size, handle=size), safe=size == 10)
    first = q.take()
    assert first is not None and first[1][-1].flags & FIRST
    copy = pickle.loads(pickle.dumps(q))
    assert (copy.bytes, copy.backlog, copy.open, len(copy)) == (q.bytes, q.backlog, q.open, len(q))
    for _ in range(6):
        assert copy.take() == q.take()


@pytest.mark.parametrize("budget", [1400, 8000, 65000])
def test_a_frame_full_of_the_smallest_records_passes_the_receivers_limits(budget: int) -> None:
    """Packing never makes an mcast that a receiver built from the same configuration drops:
    large frames of small records hold more than the default 256 records (``max_records``)."""
    from gcs.wire.channel import Channel

    config = TotemConfig(node_id=1, nodes=(1, 2), frame_payload_bytes=budget)
    q = queue(budget=budget, max_bytes=10 * budget)
    for _ in range(budget // RECORD_OVERHEAD):
        q.push(Record("g", 1, 0, b""), False)
    taken = q.take()
    assert taken is not None
    mcast = Mcast(1, RingId(seq=4, rep=1), 1, False, taken[1])
    sender = Channel(1, 1, "c", None, peers=(2,), limits=config.wire_limits())
    receiver = Channel(2, 1, "c", None, peers=(1,), limits=config.wire_limits())
    assert receiver.open(sender.seal(mcast)) == (1, mcast)


@pytest.mark.req("ORD-8.2-4", "MEM-3.1-2")
def test_a_change_restarts_the_partial_record_at_the_node() -> None:
    """ORD-8.2-4, MEM-3.1-2: a new change restarts the head record of the node's queue."""
    core, now = operational(max_messages=1, window_size=1)
    core.submit(now, rec(5000))
    effects = visible(core.receive(now + MS, 3, next_token(core)))
    (frag,) = [e.frame for e in effects if isinstance(e, Multicast) and isinstance(e.frame, Mcast)]
    assert frag.records[0].flags & FIRST
    assert core.sendq._offset > 0
    advance(core, now + MS + core.config.token_timeout_ns)
    assert core.state is MembState.GATHER
    assert core.sendq._offset == 0


# ---------------------------------------------------------------------- §8.3 reassembly


def frag(position: int, data: bytes, handle: int = 1, group: str = "g") -> Record:
    return Record(group, handle, position, data)


@pytest.mark.req("ORD-8.3-1")
def test_reassembly() -> None:
    """ORD-8.3-1: whole records pass; FIRST..LAST are joined (flags WHOLE, first fragment's
    group and handle); a continuation without a start, a FIRST replacing a partial record and
    a group or handle mismatch drop and count."""
    r = Reassembler()
    assert r.complete(2, (frag(WHOLE, b"a"),)) == (frag(WHOLE, b"a"),)
    assert r.complete(2, (frag(FIRST | SAFE, b"he"),)) == ()
    assert r.complete(2, (frag(MIDDLE | SAFE, b"ll"),)) == ()
    assert r.complete(2, (frag(LAST | SAFE, b"o"),)) == (frag(WHOLE | SAFE, b"hello"),)
    assert r.complete(3, (frag(LAST, b"x"),)) == () and r.dropped == 1
    r.complete(3, (frag(FIRST, b"1"),))
    r.complete(3, (frag(FIRST, b"2"),))
    assert r.dropped == 2
    assert r.complete(3, (frag(LAST, b"3", handle=9),)) == () and r.dropped == 3
    assert r.complete(3, (frag(FIRST, b"4"), frag(LAST, b"5"), frag(WHOLE, b"6"))) == (
        frag(WHOLE, b"45"),
        frag(WHOLE, b"6"),
    )


@pytest.mark.req("ORD-8.3-2", "ORD-8.3-3")
def test_reassembly_at_a_gap_and_at_a_configuration_change() -> None:
    """ORD-8.3-2, ORD-8.3-3: at a transitional gap only the partial records of transitional
    members survive; at a new configuration none do."""
    r = Reassembler()
    r.complete(2, (frag(FIRST, b"a"),))
    r.complete(3, (frag(FIRST, b"b"),))
    r.gap(keep={2})
    assert r.complete(2, (frag(LAST, b"c"),)) == (frag(WHOLE, b"ac"),)
    assert r.complete(3, (frag(LAST, b"d"),)) == ()
    r.complete(2, (frag(FIRST, b"e"),))
    r.reset()
    assert r.complete(2, (frag(LAST, b"f"),)) == ()
