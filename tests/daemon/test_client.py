"""Daemon clients (``gcs.connect``): the embedded API's promises hold across the control socket.

Several clients share one node's ring membership (corosync's CPG model); a client that goes away
leaves its groups; errors arrive as the same exception classes as in embedded mode.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import gcs
from tests.daemon.harness import client_of, running_daemons
from tests.runtime.cluster import messages, next_event, view_where, wait_until


async def test_clients_of_two_daemons_share_one_total_order(tmp_path: Path) -> None:
    async with running_daemons(tmp_path, 2) as daemons:
        clients = [
            await client_of(daemons[0]),
            await client_of(daemons[0]),
            await client_of(daemons[1]),
        ]
        groups = [await c.join("orders") for c in clients]
        members = {g.member for g in groups}
        for g in groups:
            await view_where(g, lambda v: set(v.members) == members)
        assert {g.member.node for g in groups} == {1, 2}, "two clients share node 1"
        per_sender = 30
        tickets = [
            await g.send(f"{g.member}:{i}".encode()) for i in range(per_sender) for g in groups
        ]
        await asyncio.gather(*(t.delivered() for t in tickets))
        streams = await asyncio.gather(*(messages(g, per_sender * len(groups)) for g in groups))
        orders = [[(m.sender, m.data, m.ring_id, m.seq) for m in s] for s in streams]
        assert all(o == orders[0] for o in orders), "one total order at every client"
        for g in groups:
            mine = [d for s, d, _, _ in orders[0] if s == g.member]
            assert mine == [f"{g.member}:{i}".encode() for i in range(per_sender)], "FIFO"
        status = await clients[0].status()
        assert status["clients"] == 2 and status["members"] == [1, 2]
        for c in clients:
            await c.close()


async def test_a_client_that_vanishes_leaves_its_groups(tmp_path: Path) -> None:
    async with running_daemons(tmp_path, 2) as daemons:
        stays = await client_of(daemons[1])
        dies = await client_of(daemons[0])
        g_stays = await stays.join("g")
        g_dies = await dies.join("g")
        await view_where(g_stays, lambda v: g_dies.member in v.members)
        assert dies._writer is not None
        dies._writer.transport.abort()  # the process died: the socket closes, no leave request
        view = await view_where(g_stays, lambda v: g_dies.member in v.left)
        assert view.reason.kind is gcs.ViewReason.LEAVE and not view.transitional
        assert view.members == (g_stays.member,)
        await stays.close()


async def test_errors_are_the_embedded_classes(tmp_path: Path) -> None:
    async with running_daemons(tmp_path, 1, max_message_bytes=4096) as daemons:
        async with gcs.connect(daemons[0].path) as client:
            assert client.max_message_bytes == 4096
            group = await client.join("g")
            with pytest.raises(gcs.MessageTooLarge):
                await group.send(b"x" * 5000)
            with pytest.raises(TypeError):
                await group.send("text")  # type: ignore[arg-type]
            with pytest.raises(gcs.InvalidArgument):
                await client.join("")
            ticket = await group.send(b"kept", safe=True)
            await ticket.delivered()
            assert ticket.done()
            await group.leave()
            with pytest.raises(gcs.GroupClosed):
                await group.send(b"after leave")
            events = [e async for e in group]
            assert any(isinstance(e, gcs.Message) and e.data == b"kept" for e in events)
        with pytest.raises(gcs.NodeClosed):
            await client.join("g")


async def test_no_daemon_is_daemon_unavailable(tmp_path: Path) -> None:
    with pytest.raises(gcs.DaemonUnavailable, match="no gcs node daemon"):
        async with gcs.connect(tmp_path / "nobody.sock"):
            pass


async def test_a_slow_client_reader_is_cut_off_and_leaves(tmp_path: Path) -> None:
    async with running_daemons(tmp_path, 2) as daemons:
        slow_client, fast_client = await client_of(daemons[0]), await client_of(daemons[1])
        slow = await slow_client.join("g", queue_size=5)
        fast = await fast_client.join("g")
        await view_where(fast, lambda v: slow.member in v.members)
        tickets = [await fast.send(b"%d" % i) for i in range(40)]
        await asyncio.gather(*(t.delivered() for t in tickets))
        with pytest.raises(gcs.SlowConsumer):
            async for _ in slow:
                pass
        view = await view_where(fast, lambda v: slow.member in v.left)
        assert view.reason.kind is gcs.ViewReason.LEAVE
        await slow_client.close()
        await fast_client.close()


async def test_daemon_shutdown_ends_the_clients_streams(tmp_path: Path) -> None:
    async with running_daemons(tmp_path, 2) as daemons:
        client = await client_of(daemons[0])
        group = await client.join("g")
        await next_event(group)
        daemons[0].stop()
        await wait_until(lambda: client.closed)
        rest = [e async for e in group]  # ends cleanly: the daemon shut down on purpose
        assert all(isinstance(e, gcs.View | gcs.Message) for e in rest)
        with pytest.raises(gcs.GroupClosed):
            await group.send(b"late")
        with pytest.raises(gcs.NodeClosed):
            await client.join("again")
        await client.close()


async def test_status_and_flight_recorder_through_the_socket(tmp_path: Path) -> None:
    from gcs.history.recorder import replay

    async with running_daemons(tmp_path, 2) as daemons, gcs.connect(daemons[1].path) as client:
        group = await client.join("g")
        await (await group.send(b"m")).delivered()
        status = await client.status()
        assert status["node_id"] == 2 and status["state"] == "operational"
        assert status["view_changes"] and status["view_changes"][-1]["kind"] == "regular"
        path = await client.dump_flight_recorder(tmp_path / "node2.cbor")
    assert replay(path), "the dump replays into a fresh core"


@pytest.mark.req("API-10.1-2", "API-10.2-1")
async def test_protocol_errors(tmp_path: Path) -> None:
    """API-10.1-2/23: a malformed request is refused and the connection stays; hello comes first;
    an undecodable frame ends the connection with a ``closing`` event."""
    from gcs.daemon import protocol as proto

    async def exchange(
        writer: asyncio.StreamWriter, reader: asyncio.StreamReader, item: dict[str, object]
    ) -> dict[str, object]:
        writer.write(proto.encode(item))
        header = await reader.readexactly(4)
        return proto.decode(await reader.readexactly(proto.LENGTH.unpack(header)[0]))

    async with running_daemons(tmp_path, 1) as daemons:
        reader, writer = await asyncio.open_unix_connection(str(daemons[0].path))
        refused = await exchange(writer, reader, {"op": "status", "id": 1})
        assert refused["re"] == 1 and "hello" in refused["error"]["message"]  # type: ignore[index]
        rest = await reader.read()  # a closing event, then the end of the connection
        assert b"closing" in rest, "no hello first: the daemon closed the connection"
        writer.close()
        await writer.wait_closed()
        reader, writer = await asyncio.open_unix_connection(str(daemons[0].path))
        hello = await exchange(writer, reader, {"op": "hello", "id": 1, "version": 2})
        assert hello["ok"]["node_id"] == 1  # type: ignore[index]
        bad = await exchange(writer, reader, {"op": "join", "id": 2, "group": 7})
        assert bad["error"]["type"] == "ControlProtocolError"  # type: ignore[index]
        ok = await exchange(writer, reader, {"op": "status", "id": 3})
        assert ok["re"] == 3 and ok["ok"]["node_id"] == 1  # type: ignore[index]
        writer.write(proto.LENGTH.pack(3) + b"\xff\xff\xff")
        header = await reader.readexactly(4)
        closing = proto.decode(await reader.readexactly(proto.LENGTH.unpack(header)[0]))
        assert closing["ev"] == "closing" and closing["reason"] == "protocol error"
        assert await reader.read() == b"", "the daemon closed the connection"
        writer.close()
        await writer.wait_closed()


async def test_unreachable_peers_are_reported_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A daemon whose configured peers never answer runs alone and says so in one line."""
    import dataclasses

    from gcs.daemon import runner
    from tests.runtime.cluster import configs

    monkeypatch.setattr(runner, "UNREACHABLE_S", 0.3)
    monkeypatch.setattr(runner, "SAMPLE_S", 0.05)
    config = dataclasses.replace(configs(3)[0], control_socket=tmp_path / "n1.sock")
    daemon = runner.Daemon(config)
    task = asyncio.ensure_future(daemon.run())
    try:
        await wait_until(lambda: "are not in the ring" in caplog.text)
        await asyncio.sleep(0.3)
    finally:
        daemon.stop()
        assert await task == 0
    lines = [r.getMessage() for r in caplog.records if "are not in the ring" in r.getMessage()]
    assert len(lines) == 1 and "[2, 3]" in lines[0]
