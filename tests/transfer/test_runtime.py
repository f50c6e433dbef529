"""State transfer on real nodes over loopback (gcs.join_with_state; RFC 0008 §5)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

import pytest

import gcs
from gcs.groups.views import Member
from tests.runtime.cluster import configs, running, wait_until


class Log:
    """The application: a log of applied messages, plus an opaque blob (to make it big)."""

    def __init__(self, blob: bytes = b"") -> None:
        self.applied: list[bytes] = []
        self.blob = blob
        self.installs = 0

    def snapshot(self) -> bytes:
        head = b"\n".join(self.applied)
        return len(head).to_bytes(8, "big") + head + self.blob

    def install(self, state: bytes) -> None:
        size = int.from_bytes(state[:8], "big")
        head = state[8 : 8 + size]
        self.applied = head.split(b"\n") if head else []
        self.blob = state[8 + size :]
        self.installs += 1

    def merge(self, sides: Sequence[tuple[tuple[Member, ...], bytes]]) -> bytes:
        return max(sides, key=lambda side: len(side[1]))[1]


def spawn(group: gcs.StateGroup, app: Log) -> asyncio.Task[None]:
    return asyncio.ensure_future(_apply(group, app))


async def _apply(group: gcs.StateGroup, app: Log) -> None:
    try:
        async for event in group:
            if isinstance(event, gcs.Message):
                app.applied.append(event.data)
    except gcs.GcsError:
        return


@pytest.mark.req("XFR-5.3-1")
async def test_joiner_receives_the_state_then_the_messages_after_it() -> None:
    """XFR-5.3-1: nothing lost, nothing applied twice, across a live sender."""
    async with running(configs(3)) as nodes:
        apps = [Log(), Log(), Log()]
        first = await gcs.join_with_state(nodes[0], "log", apps[0])
        assert first.installed == "found"
        tasks = [spawn(first, apps[0])]
        for i in range(50):
            await first.send(f"before-{i}".encode())
        sending = asyncio.ensure_future(_send_many(first, "during", 200))
        second = await gcs.join_with_state(nodes[1], "log", apps[1], timeout=30)
        tasks.append(spawn(second, apps[1]))
        third = await gcs.join_with_state(nodes[2], "log", apps[2], timeout=30)
        tasks.append(spawn(third, apps[2]))
        await sending
        await first.send(b"last")
        await wait_until(lambda: all(app.applied[-1:] == [b"last"] for app in apps))
        assert apps[0].applied == apps[1].applied == apps[2].applied
        assert len(apps[0].applied) == 50 + 200 + 1
        assert {second.installed, third.installed} == {"transfer"}
        for group in (first, second, third):
            await group.leave()
        await asyncio.gather(*tasks)


async def _send_many(group: gcs.StateGroup, prefix: str, count: int) -> None:
    for i in range(count):
        await group.send(f"{prefix}-{i}".encode())


@pytest.mark.req("XFR-5.3-2")
@pytest.mark.parametrize("mib", [4, 50])
async def test_a_large_state_streams_in_chunks(mib: int) -> None:
    """XFR-5.3-2: a snapshot of tens of megabytes arrives whole while the ring keeps ordering
    another group's messages."""
    blob = hashlib.sha256(b"seed").digest() * (mib * 1024 * 1024 // 32)
    async with running(configs(3)) as nodes:
        apps = [Log(blob), Log(), Log()]
        first = await gcs.join_with_state(nodes[0], "big", apps[0])
        tasks = [spawn(first, apps[0])]
        other = await nodes[2].join("chatter")
        second = await gcs.join_with_state(nodes[1], "big", apps[1], timeout=300)
        tasks.append(spawn(second, apps[1]))
        assert apps[1].blob == blob and second.installed == "transfer"
        stats = first.statistics()
        assert stats.chunks_sent >= len(blob) // (256 * 1024)
        ticket = await other.send(b"still ordered")
        await ticket.delivered()
        await first.leave()
        await second.leave()
        await asyncio.gather(*tasks)


@pytest.mark.req("XFR-5.4-1")
async def test_another_member_takes_over_when_the_provider_goes() -> None:
    """XFR-5.4-1: the provider's node closes mid-transfer; the next holder provides."""
    blob = bytes(range(256)) * (12 * 1024 * 1024 // 256)
    cfgs = configs(3)
    async with running(cfgs) as nodes:
        apps = [Log(blob), Log(), Log()]
        first = await gcs.join_with_state(nodes[0], "fo", apps[0])
        tasks = [spawn(first, apps[0])]
        second = await gcs.join_with_state(nodes[1], "fo", apps[1], timeout=60)
        tasks.append(spawn(second, apps[1]))
        joining = asyncio.ensure_future(
            gcs.join_with_state(nodes[2], "fo", apps[2], chunk_bytes=64 * 1024, timeout=120)
        )
        await wait_until(lambda: first.statistics().chunks_sent > 20)
        assert not joining.done()
        await nodes[0].close()  # the provider (lowest holder) goes away mid-stream
        third = await joining
        tasks.append(spawn(third, apps[2]))
        assert apps[2].blob == blob
        assert second.statistics().chunks_sent > 0, "the second holder took over"
        await second.send(b"after")
        await wait_until(lambda: apps[2].applied[-1:] == [b"after"])
        await second.leave()
        await third.leave()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.req("P2P-6-1", "P2P-6-3")
async def test_send_to_reaches_one_member() -> None:
    """P2P-6-1, P2P-6-3: point-to-point in the group's order; the size limit is stated."""
    async with running(configs(2)) as nodes:
        a = await nodes[0].join("p2p")
        b = await nodes[1].join("p2p")
        await wait_until(lambda: b.view is not None and len(b.view.members) == 2)
        await wait_until(lambda: a.view is not None and len(a.view.members) == 2)
        ticket = await a.send_to(b.member, b"just for b")
        await a.send(b"for everyone")
        await ticket.delivered()
        got = []
        async for event in b:
            if isinstance(event, gcs.Message):
                got.append(event)
                if len(got) == 2:
                    break
        assert (got[0].data, got[0].to, got[1].to) == (b"just for b", b.member, None)
        with pytest.raises(gcs.MessageTooLarge) as info:
            await a.send_to(b.member, b"x" * nodes[0].max_message_bytes)
        assert info.value.limit < nodes[0].max_message_bytes
        with pytest.raises(TypeError):
            await a.send_to((2, 1), b"x")  # type: ignore[arg-type]
