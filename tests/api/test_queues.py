"""EventStream (bounded, never blocks the writer) and Outbox (waiting sends and tickets, over the
group driver's queue)."""

from __future__ import annotations

import asyncio

import pytest

import gcs
from gcs.api.outbox import Outbox, PendingSend
from gcs.api.stream import READ_SLICE, EventStream
from gcs.groups.driver import GroupDriver
from gcs.groups.records import ANNOUNCE_GROUP
from gcs.groups.state import GroupState
from gcs.totem.effects import ConfigId, ConfigurationKind, Deliver
from gcs.wire.frames import Record, RecordFlags, RingId

RING = RingId(seq=8, rep=1)


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


class NoApplication:
    def on_ring(self, configuration: object) -> None: ...
    def on_event(self, group: str, handles: tuple[int, ...], event: object) -> None: ...
    def on_member_closed(self, group: str, handle: int) -> None: ...
    def on_persist_quorum(self, expected_votes: int) -> None: ...

    def on_persist_nodes(self, nodes: object) -> None: ...

    def on_node_list(self, event: object) -> None: ...


def outbox_over(core: FakeCore) -> tuple[Outbox, GroupDriver[PendingSend]]:
    driver: GroupDriver[PendingSend] = GroupDriver(GroupState(1), core.submit, NoApplication())
    driver.after_effects(0)  # the core has started
    return Outbox(driver), driver


def data(i: int) -> Record:
    return Record("g", 1, 0, str(i).encode())


def deliver_own(driver: GroupDriver[PendingSend], records: list[Record]) -> None:
    config = ConfigId(ConfigurationKind.REGULAR, RING)
    driver.on_deliver(0, Deliver(config, RING, 1, 1, False, tuple(records)))


async def test_sends_wait_in_fifo_order_and_settle_on_their_own_delivery() -> None:
    core = FakeCore(room=1)
    outbox, driver = outbox_over(core)
    first = await outbox.send(data(0), False)
    waiting = [asyncio.ensure_future(outbox.send(data(i), False)) for i in (1, 2)]
    await asyncio.sleep(0)
    assert driver.waiting == 2 and not any(w.done() for w in waiting)
    core.room = 10
    driver.after_effects(0)
    tickets = await asyncio.gather(*waiting)
    assert [r.data for r in core.queued] == [b"0", b"1", b"2"]
    assert not first.done()
    deliver_own(driver, core.queued)
    assert first.done() and all(t.done() for t in tickets)
    await first.delivered()


async def test_a_refused_send_raises_to_its_sender() -> None:
    core = FakeCore(room=1)
    outbox, driver = outbox_over(core)

    def closed(record: Record, safe: bool) -> None:
        raise gcs.NodeClosed("closed")

    driver._submit = closed
    with pytest.raises(gcs.NodeClosed):
        await outbox.send(data(0), False)


async def test_a_cancelled_send_is_withdrawn() -> None:
    core = FakeCore(room=0)
    outbox, driver = outbox_over(core)
    sender = asyncio.ensure_future(outbox.send(data(0), False))
    await asyncio.sleep(0)
    sender.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sender
    assert driver.waiting == 0


async def test_leaving_and_closing_fail_what_is_waiting() -> None:
    core = FakeCore(room=1)
    outbox, _ = outbox_over(core)
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
    outbox, _ = outbox_over(core)
    await outbox.send(data(0), False)
    directed = Record(ANNOUNCE_GROUP, 1, int(RecordFlags.DATA), b"to one member")
    other = Record(ANNOUNCE_GROUP, 2, int(RecordFlags.DATA), b"another member's")
    mine = asyncio.ensure_future(outbox.send(directed, False))
    theirs = asyncio.ensure_future(outbox.send(other, False))
    await asyncio.sleep(0)
    outbox.leave("g", 1, lambda: gcs.GroupClosed("left"))
    with pytest.raises(gcs.GroupClosed):
        await asyncio.wait_for(mine, 5)
    assert not theirs.done()
    theirs.cancel()


async def test_tight_loops_over_send_and_get_still_let_the_loop_run() -> None:
    """``await`` that completes at once must still yield now and then (RFC 0006 §4)."""
    core = FakeCore(room=10_000)
    outbox, _ = outbox_over(core)
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
    assert ran == ["send", "get"] and reads <= READ_SLICE, "as many as one slice (API-5-3)"
