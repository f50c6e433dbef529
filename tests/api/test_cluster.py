"""Real nodes on 127.0.0.1: ordering, safe delivery, views, several groups and subscribers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import gcs
from tests.runtime.cluster import configs, make_key, messages, next_event, running, view_where


async def _send_many(group: gcs.Group, count: int, safe: bool = False) -> list[gcs.Ticket]:
    tickets = []
    for i in range(count):
        tickets.append(await group.send(f"{group.member}:{i}".encode(), safe=safe))
    return tickets


@pytest.mark.parametrize("size,keyed", [(3, False), (5, True)], ids=["3-unkeyed", "5-keyed"])
async def test_concurrent_senders_deliver_one_order(tmp_path: Path, size: int, keyed: bool) -> None:
    key = make_key(tmp_path) if keyed else None
    async with running(configs(size, key_file=key)) as nodes:
        groups = await asyncio.gather(*(n.join("orders") for n in nodes))
        per_sender = 40
        tickets = await asyncio.gather(*(_send_many(g, per_sender) for g in groups))
        await asyncio.gather(*(t.delivered() for batch in tickets for t in batch))
        streams = await asyncio.gather(*(messages(g, size * per_sender) for g in groups))
        orders = [[(m.sender, m.data) for m in stream] for stream in streams]
        assert all(order == orders[0] for order in orders), "agreed total order"
        for g in groups:  # FIFO per sender, nothing lost, nothing duplicated
            mine = [d for s, d in orders[0] if s == g.member]
            assert mine == [f"{g.member}:{i}".encode() for i in range(per_sender)]
        view_ids = {m.view_id for stream in streams for m in stream}
        assert len(view_ids) == 1, "no view change while sending"
        stats = nodes[0].statistics()
        assert stats.channel.auth_failures == 0
        assert stats.runtime.datagrams_received > 0


async def test_safe_messages_are_delivered_everywhere() -> None:
    async with running(configs(3)) as nodes:
        groups = await asyncio.gather(*(n.join("safe") for n in nodes))
        tickets = await _send_many(groups[0], 10, safe=True)
        await asyncio.gather(*(t.delivered() for t in tickets))
        for g in groups:
            got = await messages(g, 10)
            assert all(m.safe for m in got)
            assert [m.data for m in got] == [f"{groups[0].member}:{i}".encode() for i in range(10)]


async def test_first_view_lists_the_joiner_and_views_agree() -> None:
    async with running(configs(3)) as nodes:
        first = await nodes[0].join("g")
        view = await next_event(first)
        assert isinstance(view, gcs.View)
        assert view.members == (first.member,) and view.joined == (first.member,)
        second = await nodes[1].join("g")
        joined = await view_where(first, lambda v: second.member in v.members)
        assert joined.reason.kind is gcs.ViewReason.JOIN
        own = await next_event(second)
        assert isinstance(own, gcs.View)
        assert own.view_id == joined.view_id and own.members == joined.members


async def test_clean_close_gives_the_others_a_leave_view() -> None:
    async with running(configs(3)) as nodes:
        groups = await asyncio.gather(*(n.join("g") for n in nodes))
        for g in groups[:2]:
            await view_where(g, lambda v: len(v.members) == 3)
        leaving = groups[2].member
        await nodes[2].close()
        for g in groups[:2]:
            view = await view_where(g, lambda v: leaving in v.left)
            assert view.reason.kind is gcs.ViewReason.LEAVE
            assert leaving not in view.members
        with pytest.raises(gcs.GroupClosed):
            await groups[2].send(b"after close")
        with pytest.raises(StopAsyncIteration):
            while True:  # the closed member's stream ends cleanly
                await groups[2].__anext__()


async def test_several_groups_and_subscribers_on_one_node() -> None:
    async with running(configs(3)) as nodes:
        a1 = await nodes[0].join("a")
        a2 = await nodes[0].join("a")  # a second, independent subscriber (member) on node 1
        b3 = await nodes[2].join("b")
        assert a1.member != a2.member and a1.member.node == a2.member.node
        await view_where(a1, lambda v: a2.member in v.members)
        await (await a2.send(b"to a")).delivered()
        await (await b3.send(b"to b")).delivered()
        assert [m.data for m in await messages(a1, 1)] == [b"to a"]
        assert [m.data for m in await messages(a2, 1)] == [b"to a"]
        assert [m.data for m in await messages(b3, 1)] == [b"to b"]
        assert nodes[0].view is not None and len(nodes[0].view.members) == 3


async def test_leave_ends_the_stream_and_others_see_it() -> None:
    async with running(configs(2)) as nodes:
        g1 = await nodes[0].join("g")
        g2 = await nodes[1].join("g")
        await view_where(g1, lambda v: len(v.members) == 2)
        await g2.leave()
        assert g2.closed
        view = await view_where(g1, lambda v: g2.member in v.left)
        assert view.reason.kind is gcs.ViewReason.LEAVE
        await g2.leave()  # leaving twice is harmless
        with pytest.raises(gcs.GroupClosed):
            await g2.send(b"x")


async def test_ipv6_loopback_ring() -> None:
    async with running(configs(2, host="::1")) as nodes:
        g1, g2 = await asyncio.gather(*(n.join("v6") for n in nodes))
        await (await g1.send(b"over ipv6")).delivered()
        assert [m.data for m in await messages(g2, 1)] == [b"over ipv6"]


async def test_a_safe_message_sent_as_a_node_crashes_follows_the_view_change() -> None:
    """Node 3 crashes (no leave). A safe message sent then cannot be delivered in the old
    configuration (node 3 never acknowledges it), so it comes after the view that removes
    node 3's member: in the transitional view or the next regular one, the same at both
    survivors (RFC 0006 §4.2, §4.3)."""
    async with running(configs(3)) as nodes:
        groups = await asyncio.gather(*(n.join("g") for n in nodes))
        for g in groups:
            await view_where(g, lambda v: len(v.members) == 3)
        crashed = groups[2].member
        driver = nodes[2]._driver
        assert driver is not None
        await driver.close()  # the socket goes silent: a crash, as far as the others know
        await (await groups[0].send(b"during the change", safe=True)).delivered()
        delivered_in = []
        for g in groups[:2]:
            views: list[gcs.View] = []
            while True:
                event = await next_event(g)
                if isinstance(event, gcs.View):
                    views.append(event)
                    continue
                assert event.data == b"during the change" and event.safe
                break
            assert any(crashed in v.left for v in views), "the change comes first"
            assert views[0].reason.kind is gcs.ViewReason.NODE_DOWN
            assert event.view_id == views[-1].view_id
            delivered_in.append(event.view_id)
        assert delivered_in[0] == delivered_in[1], "both survivors deliver it in one view"


async def test_a_join_still_waiting_fails_when_the_node_closes() -> None:
    (cfg, _) = configs(2)  # the peer never starts: the node is alone, still forming its ring
    node = gcs.Node(cfg)
    await node.start()
    joining = asyncio.ensure_future(node.join("g"))
    await asyncio.sleep(0)
    await node.close()
    with pytest.raises(gcs.NodeClosed):
        await joining
