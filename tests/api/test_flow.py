"""Backpressure, slow consumers and the errors of the API."""

from __future__ import annotations

import asyncio

import pytest

import gcs
from tests.runtime.cluster import configs, messages, next_event, running, view_where, wait_until


async def test_send_waits_on_the_send_window_and_keeps_fifo() -> None:
    cfgs = configs(3, send_queue_bytes=16_384, max_message_bytes=4096)
    async with running(cfgs) as nodes:
        g1 = await nodes[0].join("bulk")
        g2 = await nodes[1].join("bulk")
        payloads = [bytes([i % 256]) * 1000 + i.to_bytes(4, "big") for i in range(300)]
        sending = asyncio.gather(*(g1.send(p) for p in payloads))
        await wait_until(lambda: nodes[0].statistics().sends_waiting > 0)
        tickets = await sending  # every send returned once the ring had room for it
        await asyncio.gather(*(t.delivered() for t in tickets))
        got = await messages(g2, len(payloads))
        assert [m.data for m in got] == payloads
        assert nodes[0].statistics().sends_waiting == 0


async def test_message_too_large_and_bad_arguments() -> None:
    async with running(configs(2, max_message_bytes=1000)) as nodes:
        group = await nodes[0].join("g")
        with pytest.raises(gcs.MessageTooLarge) as err:
            await group.send(b"x" * 1001)
        assert err.value.size == 1001 and err.value.limit == 1000
        with pytest.raises(TypeError):
            await group.send("text, not bytes")  # type: ignore[arg-type]
        with pytest.raises(gcs.InvalidArgument):
            await nodes[0].join("")
        with pytest.raises(gcs.InvalidArgument):
            await nodes[0].join("x" * 256)
        with pytest.raises(TypeError):
            await nodes[0].join(42)  # type: ignore[arg-type]
        with pytest.raises(gcs.InvalidArgument):
            await nodes[0].join("g", queue_size=0)
        await (await group.send(bytearray(b"y" * 1000))).delivered()


async def test_not_member_while_leaving_then_group_closed() -> None:
    async with running(configs(2)) as nodes:
        group = await nodes[0].join("g")
        leaving = asyncio.create_task(group.leave())
        await asyncio.sleep(0)  # let the task start its leave
        with pytest.raises(gcs.NotMember):
            await group.send(b"too late")
        await leaving
        with pytest.raises(gcs.GroupClosed):
            await group.send(b"closed")
    with pytest.raises(gcs.NodeClosed):
        await nodes[0].join("g")


async def test_pending_sends_fail_when_their_member_leaves() -> None:
    cfgs = configs(2, send_queue_bytes=8192, max_message_bytes=4096)
    async with running(cfgs) as nodes:
        group = await nodes[0].join("g")
        sends = [asyncio.ensure_future(group.send(b"z" * 3000)) for _ in range(20)]
        await asyncio.sleep(0)  # every send ran once: two fit the queue, the rest must wait
        assert nodes[0].statistics().sends_waiting > 0
        await group.leave()
        results = await asyncio.gather(*sends, return_exceptions=True)
        failed = [r for r in results if isinstance(r, gcs.GroupClosed)]
        tickets = [r for r in results if isinstance(r, gcs.Ticket)]
        assert failed and tickets and len(failed) + len(tickets) == len(sends)
        await asyncio.gather(*(t.delivered() for t in tickets))


async def test_slow_consumer_is_cut_off_and_leaves() -> None:
    async with running(configs(2)) as nodes:
        slow = await nodes[0].join("g", queue_size=5)
        fast = await nodes[1].join("g")
        await view_where(fast, lambda v: slow.member in v.members)
        for i in range(20):
            await fast.send(str(i).encode())
        await wait_until(lambda: nodes[0].statistics().slow_consumers == 1)
        seen: list[gcs.Message | gcs.View] = []
        with pytest.raises(gcs.SlowConsumer):
            while True:
                seen.append(await next_event(slow))
        assert len(seen) == 5, "the events queued before the cut are still delivered"
        view = await view_where(fast, lambda v: slow.member in v.left)
        assert view.reason.kind is gcs.ViewReason.LEAVE
        with pytest.raises(gcs.GroupClosed):
            await slow.send(b"x")
        with pytest.raises(gcs.SlowConsumer):
            await slow.__anext__()


async def test_ticket_fails_when_the_node_closes_first() -> None:
    async with running(configs(2)) as nodes:
        group = await nodes[0].join("g")
        ticket = await group.send(b"maybe")
        await ticket.delivered()  # delivered: closing later does not change that
        assert ticket.done()
    await ticket.delivered()


@pytest.mark.req("API-5-3")
async def test_a_reader_that_keeps_reading_is_not_cut_off_by_a_burst() -> None:
    """API-5-3: a token visit releases up to a window of mcasts at once (here 50 of about 40
    records each), far more than the reader's bound of 600 events; the runtime hands them
    over a slice per pass of the loop and the stream reads as many per pass, so a reader that
    keeps reading sees every message and is never cut off as a slow consumer."""
    cfgs = configs(2, window_size=50, max_messages=50)
    count = 6_000
    async with running(cfgs) as nodes:
        sender = await nodes[0].join("burst")
        reader = await nodes[1].join("burst", queue_size=600)
        await view_where(reader, lambda v: sender.member in v.members)
        await view_where(sender, lambda v: reader.member in v.members)
        got = 0

        async def read() -> None:
            nonlocal got
            async for event in reader:
                if isinstance(event, gcs.Message):
                    got += 1
                    if got == count:
                        return

        reading = asyncio.create_task(read())
        tickets = await asyncio.gather(*(sender.send(i.to_bytes(8, "big")) for i in range(count)))
        await asyncio.gather(*(t.delivered() for t in tickets))
        await asyncio.wait_for(reading, 60)
        stats = nodes[1].statistics()
        assert got == count and stats.slow_consumers == 0
        assert stats.runtime.delivery_slices > 0, "the bursts really were cut into slices"
