"""Daemon clients get the whole embedded API: quorum verdicts, primary-component mode,
point-to-point sends and state transfer (RFC 0006 §10.2-10.3, RFC 0008).

Each test compares what a client member sees with what the daemon's own node decided, so a
flag lost on the way (the member then silently gets the plain stream) fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

import gcs
from gcs.daemon import protocol as proto
from gcs.groups.views import Member
from tests.daemon.harness import client_of, running_daemons
from tests.runtime.cluster import view_where, wait_until

Events = AsyncIterator[gcs.Message | gcs.View | gcs.Quorum]


async def _next_quorum(events: Events, quorate: bool) -> gcs.Quorum:
    """The next final verdict with ``quorate`` (``events``: one reader, kept across calls)."""
    while True:
        event = await asyncio.wait_for(anext(events), 20)
        if isinstance(event, gcs.Quorum) and not event.pending and event.quorate is quorate:
            return event


async def test_quorum_verdicts_reach_client_members(tmp_path: Path) -> None:
    async with running_daemons(tmp_path, 2) as daemons:
        client = await client_of(daemons[0])
        group = await client.join("q", quorum_events=True)
        events = group.events()
        verdict = await _next_quorum(events, True)
        assert verdict == daemons[0].node.quorum
        assert set(verdict.members) == {1, 2} and verdict.total_votes == 2
        daemons[1].stop()
        lost = await _next_quorum(events, False)
        assert set(lost.members) == {1} and lost.quorum == 2
        assert group.quorum == lost == daemons[0].node.quorum
        await client.close()


async def test_primary_mode_through_the_daemon_withholds_messages_without_quorum(
    tmp_path: Path,
) -> None:
    async with running_daemons(tmp_path, 2) as daemons:
        client = await client_of(daemons[0])
        primary = await client.join("p", primary=True)
        plain = await client.join("p")
        events = primary.events()
        await _next_quorum(events, True)  # implied by primary mode
        await view_where(plain, lambda v: primary.member in v.members)
        daemons[1].stop()
        await _next_quorum(events, False)
        await wait_until(lambda: daemons[0].node.quorum is not None)
        ticket = await plain.send(b"while not quorate")
        await ticket.delivered()
        marker = await plain.send(b"marker")
        await marker.delivered()
        seen = []
        async for event in plain:
            if isinstance(event, gcs.Message):
                seen.append(event.data)
                if event.data == b"marker":
                    break
        assert seen == [b"while not quorate", b"marker"]
        assert daemons[0].node.statistics().messages_not_quorate >= 2, "filtered for primary"
        await primary.leave()
        after = [e async for e in events if isinstance(e, gcs.Message)]
        assert after == [], "a primary-mode member gets no messages without quorum"
        await client.close()


async def test_uncommitted_without_primary_is_refused_by_client_and_daemon(
    tmp_path: Path,
) -> None:
    async with running_daemons(tmp_path, 1) as daemons:
        client = await client_of(daemons[0])
        with pytest.raises(gcs.InvalidArgument, match="primary-component"):
            await client.join("g", uncommitted=True)
        with pytest.raises(TypeError):
            await client.join("g", primary="yes")  # type: ignore[arg-type]
        # A client in another language that skips the check gets the node's refusal.
        _, reply = client._start_request("join", {"group": "g", "uncommitted": True})
        with pytest.raises(gcs.InvalidArgument):
            await reply
        _, reply = client._start_request("join", {"group": "g", "primary": 1})
        with pytest.raises(proto.ControlProtocolError, match="'primary' must be bool"):
            await reply
        await client.close()


async def test_send_to_through_the_daemon_reaches_only_its_member(tmp_path: Path) -> None:
    async with running_daemons(tmp_path, 2) as daemons:
        clients = [await client_of(daemons[0]), await client_of(daemons[1])]
        sender = await clients[0].join("d")
        target = await clients[1].join("d")
        bystander = await clients[1].join("d")
        everyone = {sender.member, target.member, bystander.member}
        for g in (sender, target, bystander):
            await view_where(g, lambda v: set(v.members) == everyone)
        direct = await sender.send_to(target.member, b"for you", safe=True)
        await direct.delivered()
        ticket = await sender.send(b"for all")
        await ticket.delivered()
        got = await _messages_until(target, b"for all")
        assert [(m.data, m.to, m.safe) for m in got] == [
            (b"for you", target.member, True),
            (b"for all", None, False),
        ]
        assert [m.data for m in await _messages_until(bystander, b"for all")] == [b"for all"]
        with pytest.raises(gcs.MessageTooLarge):
            await sender.send_to(target.member, b"x" * clients[0].max_message_bytes)
        for c in clients:
            await c.close()


async def _messages_until(group: gcs.Group, last: bytes) -> list[gcs.Message]:
    got: list[gcs.Message] = []
    while not got or got[-1].data != last:
        event = await asyncio.wait_for(group.__anext__(), 20)
        if isinstance(event, gcs.Message):
            got.append(event)
    return got


class Log:
    """A replicated log as the application's state."""

    def __init__(self) -> None:
        self.applied: list[bytes] = []

    def snapshot(self) -> bytes:
        return b"\n".join(self.applied)

    def install(self, state: bytes) -> None:
        self.applied = state.split(b"\n") if state else []

    def merge(self, sides: Sequence[tuple[tuple[Member, ...], bytes]]) -> bytes:
        return max(sides, key=lambda side: len(side[1]))[1]


async def _apply(group: gcs.StateGroup, app: Log) -> None:
    try:
        async for event in group:
            if isinstance(event, gcs.Message):
                app.applied.append(event.data)
    except gcs.GcsError:
        return


@pytest.mark.parametrize("primary", [False, True], ids=["plain", "primary"])
async def test_state_transfer_between_clients_of_two_daemons(tmp_path: Path, primary: bool) -> None:
    """``join_with_state`` over the control socket: the joiner gets the log, then the rest."""
    async with running_daemons(tmp_path, 2) as daemons:
        clients = [await client_of(daemons[0]), await client_of(daemons[1])]
        apps = [Log(), Log()]
        first = await gcs.join_with_state(clients[0], "log", apps[0], primary=primary, timeout=30)
        assert first.installed == "found"
        tasks = [asyncio.ensure_future(_apply(first, apps[0]))]
        for i in range(40):
            await first.send(b"before-%d" % i)
        second = await gcs.join_with_state(clients[1], "log", apps[1], primary=primary, timeout=30)
        assert second.installed == "transfer"
        tasks.append(asyncio.ensure_future(_apply(second, apps[1])))
        await first.send(b"after")
        await wait_until(lambda: all(app.applied[-1:] == [b"after"] for app in apps))
        assert apps[0].applied == apps[1].applied
        assert apps[1].applied == [b"before-%d" % i for i in range(40)] + [b"after"]
        for group in (first, second):
            await group.leave()
        await asyncio.gather(*tasks)
        for c in clients:
            await c.close()


@pytest.mark.req("API-6-2", "API-6-3", "API-5-4")
async def test_batch_forms_through_the_daemon(tmp_path: Path) -> None:
    """send_many and receive_many work through a daemon client; send_nowait cannot (each send
    is a request to the daemon) and says so with NotSupported."""
    async with running_daemons(tmp_path, 1) as daemons:
        client = await client_of(daemons[0])
        group = await client.join("d")
        with pytest.raises(gcs.NotSupported):
            group.send_nowait(b"now")
        payloads = [b"b%d" % i for i in range(10)]
        tickets = await group.send_many(payloads)
        await asyncio.gather(*(t.delivered() for t in tickets))
        got: list[bytes] = []
        while len(got) < len(payloads):
            got += [e.data for e in await group.receive_many(4) if isinstance(e, gcs.Message)]
        assert got == payloads
        await client.close()
