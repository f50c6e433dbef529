"""The lean forms of the API: ``send_nowait``, ``send_many`` and ``receive_many`` (RFC 0006
API-6-2, API-6-3, API-5-4), on real nodes over loopback UDP."""

from __future__ import annotations

import asyncio

import pytest

import gcs
from tests.runtime.cluster import configs, messages, running, view_where, wait_until

SMALL_QUEUE = {"send_queue_bytes": 16_384, "max_message_bytes": 4096}


async def _member_seen(reader: gcs.Group, sender: gcs.Group) -> None:
    await view_where(reader, lambda v: sender.member in v.members)


@pytest.mark.req("API-6-2")
async def test_send_nowait_returns_a_ticket_without_a_coroutine() -> None:
    async with running(configs(2)) as nodes:
        sender = await nodes[0].join("g")
        reader = await nodes[1].join("g")
        await _member_seen(reader, sender)
        ticket = sender.send_nowait(b"hello", safe=True)
        assert isinstance(ticket, gcs.Ticket) and ticket.safe and ticket.size == 5
        await ticket.delivered()
        (got,) = await messages(reader, 1)
        assert got.data == b"hello" and got.sender == sender.member and got.safe


@pytest.mark.req("API-6-2")
async def test_send_nowait_refuses_when_flow_control_holds_and_queues_nothing() -> None:
    async with running(configs(2, **SMALL_QUEUE)) as nodes:
        sender = await nodes[0].join("g")
        reader = await nodes[1].join("g")
        await _member_seen(reader, sender)
        payloads = [i.to_bytes(4, "big") * 750 for i in range(1000)]
        tickets = []
        with pytest.raises(gcs.SendQueueFull):
            for payload in payloads:  # no await: the window fills and send_nowait refuses
                tickets.append(sender.send_nowait(payload))
        sent = len(tickets)
        assert 0 < sent < len(payloads)
        assert nodes[0].statistics().sends_waiting == 0, "a refused send left nothing queued"
        waiting = asyncio.ensure_future(sender.send(payloads[sent]))
        await asyncio.sleep(0)
        if not waiting.done():  # a send waits: send_nowait must not overtake it (FIFO)
            with pytest.raises(gcs.SendQueueFull):
                sender.send_nowait(b"overtake")
        tickets.append(await waiting)
        got = await messages(reader, sent + 1)
        assert [m.data for m in got] == payloads[: sent + 1]
        await asyncio.gather(*(t.delivered() for t in tickets))


@pytest.mark.req("API-6-2")
async def test_send_nowait_checks_like_send() -> None:
    async with running(configs(1, max_message_bytes=1000)) as nodes:
        group = await nodes[0].join("g")
        with pytest.raises(gcs.MessageTooLarge):
            group.send_nowait(b"x" * 1001)
        with pytest.raises(TypeError):
            group.send_nowait("text")  # type: ignore[arg-type]
        await group.leave()
        with pytest.raises(gcs.GroupClosed):
            group.send_nowait(b"closed")


@pytest.mark.req("API-6-3")
async def test_send_many_sends_in_order_through_a_full_window() -> None:
    async with running(configs(2, **SMALL_QUEUE)) as nodes:
        sender = await nodes[0].join("g")
        reader = await nodes[1].join("g")
        await _member_seen(reader, sender)
        payloads = [bytes([i % 256]) * 1000 + i.to_bytes(4, "big") for i in range(300)]
        tickets = await sender.send_many(payloads)
        assert len(tickets) == len(payloads)
        got = await messages(reader, len(payloads))
        assert [m.data for m in got] == payloads
        await asyncio.gather(*(t.delivered() for t in tickets))


@pytest.mark.req("API-6-3")
async def test_send_many_checks_every_message_before_sending_any() -> None:
    async with running(configs(2, max_message_bytes=1000)) as nodes:
        sender = await nodes[0].join("g")
        reader = await nodes[1].join("g")
        await _member_seen(reader, sender)
        with pytest.raises(TypeError):
            await sender.send_many([b"first", "second"])  # type: ignore[list-item]
        with pytest.raises(gcs.MessageTooLarge):
            await sender.send_many([b"first", b"y" * 1001])
        await (await sender.send(b"marker")).delivered()
        (got,) = await messages(reader, 1)
        assert got.data == b"marker", "nothing of the refused batches was sent"


@pytest.mark.req("API-5-4")
async def test_receive_many_returns_queued_events_in_order_then_ends() -> None:
    async with running(configs(2)) as nodes:
        sender = await nodes[0].join("g")
        reader = await nodes[1].join("g")
        await _member_seen(reader, sender)
        payloads = [b"m%d" % i for i in range(50)]
        tickets = await sender.send_many(payloads)
        await asyncio.gather(*(t.delivered() for t in tickets))
        await wait_until(lambda: len(reader._membership.stream) >= 50)
        got: list[bytes] = []
        while len(got) < len(payloads):
            batch = await reader.receive_many(20)
            assert 1 <= len(batch) <= 20
            got += [e.data for e in batch if isinstance(e, gcs.Message)]
        assert got == payloads
        with pytest.raises(gcs.InvalidArgument):
            await reader.receive_many(0)
        await reader.leave()
        assert await reader.receive_many() == [], "a cleanly ended stream gives an empty batch"


@pytest.mark.req("API-5-4")
async def test_receive_many_raises_slow_consumer_after_the_queued_events() -> None:
    async with running(configs(2)) as nodes:
        slow = await nodes[0].join("g", queue_size=5)
        fast = await nodes[1].join("g")
        await _member_seen(fast, slow)
        tickets = await fast.send_many([b"%d" % i for i in range(20)])
        await asyncio.gather(*(t.delivered() for t in tickets))
        await wait_until(lambda: slow._membership.stream.ended)
        seen: list[gcs.Message | gcs.View] = []
        with pytest.raises(gcs.SlowConsumer):
            while True:
                seen += await slow.receive_many()
        assert 1 <= len(seen) <= 5
