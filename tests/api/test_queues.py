"""EventStream (bounded, never blocks the writer) and Outbox (flow control and tickets)."""

from __future__ import annotations

import asyncio

import pytest

import gcs
from gcs.api.outbox import Outbox
from gcs.api.stream import EventStream
from gcs.groups.records import ANNOUNCE_GROUP
from gcs.groups.state import GroupState
from gcs.wire.frames import Record, RecordFlags

JOIN = int(RecordFlags.JOIN)


async def test_stream_delivers_in_order_then_ends() -> None:
    stream: EventStream[int] = EventStream(10)
    for i in range(3):
        assert stream.put(i)
    stream.close()
    assert [await stream.get() for _ in range(3)] == [0, 1, 2]
    with pytest.raises(StopAsyncIteration):
        await stream.get()


async def test_overflow_keeps_the_queued_items_then_raises_slow_consumer() -> None:
    stream: EventStream[int] = EventStream(2)
    assert stream.put(1) and stream.put(2)
    assert not stream.put(3), "the third item overflows a bound of two"
    assert stream.overflowed
    assert [await stream.get(), await stream.get()] == [1, 2]
    for _ in range(2):  # every later read raises a fresh SlowConsumer
        with pytest.raises(gcs.SlowConsumer):
            await stream.get()


async def test_abort_drops_the_queue_and_wakes_the_reader() -> None:
    stream: EventStream[int] = EventStream(5)
    reader = asyncio.ensure_future(stream.get())
    await asyncio.sleep(0)
    stream.abort(lambda: gcs.NodeClosed("gone"))
    with pytest.raises(gcs.NodeClosed):
        await reader


async def test_one_reader_at_a_time() -> None:
    stream: EventStream[int] = EventStream(1)
    first = asyncio.ensure_future(stream.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="concurrently"):
        await stream.get()
    stream.put(7)
    assert await first == 7


class FakeCore:
    """A send queue with room for ``room`` records; refuses the rest with SendQueueFull."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.queued: list[Record] = []

    def submit(self, record: Record, safe: bool) -> None:
        if len(self.queued) >= self.room:
            raise gcs.SendQueueFull("full")
        self.queued.append(record)


def data(i: int) -> Record:
    return Record("g", 1, 0, str(i).encode())


async def test_sends_wait_in_fifo_order_and_control_goes_first() -> None:
    core = FakeCore(room=1)
    outbox = Outbox(core.submit, GroupState(1))
    first = await outbox.send(data(0), False)
    waiting = [asyncio.ensure_future(outbox.send(data(i), False)) for i in (1, 2)]
    await asyncio.sleep(0)
    assert outbox.waiting == 2
    outbox.control(Record("h", 5, JOIN, b""))  # refused too: the queue is full
    core.room = 2
    outbox.drain()
    assert [r.group for r in core.queued] == ["g", "h"], "control before waiting data"
    core.room = 10
    outbox.set_window(False)
    outbox.drain()
    assert outbox.waiting == 2, "a closed window holds data back"
    outbox.set_window(True)
    outbox.drain()
    tickets = await asyncio.gather(*waiting)
    assert [r.data for r in core.queued if r.group == "g"] == [b"0", b"1", b"2"]
    for record in core.queued:
        outbox.own_delivered(record)
    assert first.done() and all(t.done() for t in tickets)
    await first.delivered()


async def test_own_deliveries_out_of_order_are_an_invariant_violation() -> None:
    core = FakeCore(room=5)
    outbox = Outbox(core.submit, GroupState(1))
    await outbox.send(data(0), False)
    await outbox.send(data(1), False)
    with pytest.raises(gcs.InvariantViolation, match="RT-1"):
        outbox.own_delivered(data(1))


async def test_leaving_and_closing_fail_what_is_waiting() -> None:
    core = FakeCore(room=1)
    outbox = Outbox(core.submit, GroupState(1))
    sent = await outbox.send(data(0), False)
    waiting = asyncio.ensure_future(outbox.send(data(1), False))
    await asyncio.sleep(0)
    outbox.cancel_member("g", 1, lambda: gcs.GroupClosed("left"))
    with pytest.raises(gcs.GroupClosed):
        await waiting
    outbox.fail_all(lambda: gcs.NodeClosed("closed"))
    with pytest.raises(gcs.NodeClosed):
        await sent.delivered()


async def test_leaving_fails_the_members_waiting_point_to_point_sends() -> None:
    """A ``send_to`` travels in the announcement group under the member's handle; a leave of
    that member fails it too, and leaves other members' sends alone."""
    core = FakeCore(room=1)
    outbox = Outbox(core.submit, GroupState(1))
    await outbox.send(data(0), False)
    directed = Record(ANNOUNCE_GROUP, 1, int(RecordFlags.DATA), b"to one member")
    other = Record(ANNOUNCE_GROUP, 2, int(RecordFlags.DATA), b"another member's")
    mine = asyncio.ensure_future(outbox.send(directed, False))
    theirs = asyncio.ensure_future(outbox.send(other, False))
    await asyncio.sleep(0)
    outbox.cancel_member("g", 1, lambda: gcs.GroupClosed("left"))
    with pytest.raises(gcs.GroupClosed):
        await asyncio.wait_for(mine, 5)
    assert not theirs.done()
    theirs.cancel()


async def test_tight_loops_over_send_and_get_still_let_the_loop_run() -> None:
    """``await`` that completes at once must still yield now and then (brief §8.3)."""
    core = FakeCore(room=10_000)
    outbox = Outbox(core.submit, GroupState(1))
    ran: list[str] = []
    asyncio.get_running_loop().call_soon(ran.append, "send")
    for sent in range(1, 1000):
        await outbox.send(data(sent), False)
        if ran:
            break
    assert ran == ["send"] and sent <= 64
    stream: EventStream[int] = EventStream(10_000)
    for i in range(1000):
        stream.put(i)
    asyncio.get_running_loop().call_soon(ran.append, "get")
    reads = 0
    while len(ran) < 2:
        reads += 1
        await stream.get()
    assert ran == ["send", "get"] and reads <= 64
