"""RFC 0009 (transport): addresses, one seal per frame, destinations per frame type, sources.

The destination table (TRN-5-1) is checked on every frame the cores send in two simulated runs
with crashes, restarts, a clean leave, partitions, merges and loss, against the sending core's
own state at that moment. The driver rules (TRN-4.1-1, TRN-6-1, TRN-4.1-3) are checked on a driver
with a scripted core; the address rules (TRN-3.2-1 .. TRN-3.3-2) on real UDP sockets.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import gcs
import gcs.sim.world as world_module
from gcs.errors import ConfigError
from gcs.history.recorder import FlightRecorder
from gcs.runtime.driver import Driver
from gcs.runtime.endpoint import open_endpoint
from gcs.runtime.persist import StateStore
from gcs.sim.run import run
from gcs.sim.scenario import load_scenario
from gcs.totem.effects import Effect, MembState, Multicast, Send
from gcs.totem.node import Node as Core
from gcs.wire.channel import Channel
from gcs.wire.frames import (
    Mcast,
    MembCommitToken,
    MembJoin,
    MembLeave,
    MembMergeDetect,
    OrfToken,
    TokenHoldCancel,
)
from tests.runtime.cluster import TIMEOUT_S, configs, free_ports, make_key, wait_until
from tests.runtime.test_driver import MCAST, TOKEN, Listener, ScriptedCore

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "simulations" / "scenarios"


# ------------------------------------------------------------------ TRN-5-1: the table


def _ring_members(core: Core, ring_id: Any) -> tuple[int, ...] | None:
    """The members of the ring ``ring_id`` as the core knows it (installed or being formed)."""
    if core.ring.ring_id == ring_id:
        return tuple(core.ring.members)
    recovery = core.recovery
    if recovery is not None and recovery.ring.ring_id == ring_id:
        return tuple(recovery.ring.members)
    return None


def _after(members: tuple[int, ...], me: int) -> int:
    return members[(members.index(me) + 1) % len(members)]


def check_destinations(core: Core, effect: Send | Multicast) -> str:
    """Check one frame-sending effect against RFC 0009 §5; return the row it matched."""
    me, peers, frame = core.me, core.config.peers, effect.frame
    if isinstance(effect, Send):
        assert effect.dest != me, "TRN-4.1-2: a datagram to itself"
        if isinstance(frame, OrfToken):
            members = _ring_members(core, frame.ring_id)
            assert members is not None and effect.dest == _after(members, me), effect
            return "orf_token"
        assert isinstance(frame, MembCommitToken), effect
        ids = tuple(m.node_id for m in frame.members)
        assert effect.dest == _after(ids, me), effect
        return "memb_commit_token"
    assert me not in effect.dests, "TRN-4.1-2: a datagram to itself"
    if isinstance(frame, MembJoin) and effect.dests != peers:
        # A probe (RFC 0004 MEM-8.4-3): an OPERATIONAL node's join to the nodes outside its ring.
        assert core.state is MembState.OPERATIONAL, effect
        assert effect.dests == tuple(n for n in peers if n not in core.ring.members), effect
        return "memb_join probe"
    if isinstance(frame, MembJoin | MembLeave):
        assert effect.dests == peers, effect
        return type(frame).__name__
    if isinstance(frame, MembMergeDetect):
        outside = {n for n in peers if n not in core.ring.members}
        assert set(effect.dests) <= outside and effect.dests, effect
        assert outside - set(effect.dests) <= set(core.penalties), effect
        return "memb_merge_detect"
    assert isinstance(frame, Mcast | TokenHoldCancel), effect
    members = _ring_members(core, frame.ring_id)
    assert members is not None, effect
    assert effect.dests == tuple(m for m in members if m != me), effect
    if isinstance(frame, TokenHoldCancel):
        return "token_hold_cancel"
    return "mcast carrier" if frame.encapsulated is not None else "mcast"


@pytest.mark.req("TRN-5-1", "TRN-4.1-2", "MEM-8.4-3")
@pytest.mark.parametrize("scenario", ["crash-restart", "partition-merge"])
def test_every_frame_goes_to_the_destinations_of_the_table(
    scenario: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each Send/Multicast of every simulated core matches RFC 0009 §5 (seed 1)."""
    seen: Counter[str] = Counter()
    original = world_module.Host._execute

    def checked(host: Any, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Send | Multicast):
                seen[check_destinations(host.core, effect)] += 1
        original(host, effects)

    monkeypatch.setattr(world_module.Host, "_execute", checked)
    result = run(load_scenario(SCENARIOS / f"{scenario}.toml"), seed=1)
    assert result.valid, result.verdicts
    rows = {"orf_token", "memb_commit_token", "mcast", "MembJoin"}
    rows |= {"memb_merge_detect", "token_hold_cancel"}
    if scenario == "crash-restart":
        rows.add("MembLeave")  # the scenario's clean leave
        rows.add("mcast carrier")  # a crashed member's mcasts re-sent in recovery
    else:
        rows.add("memb_join probe")  # a merge-detect across the healed partition (MEM-8.4-3)
    assert rows <= set(seen), seen


# ------------------------------------------------------------------ TRN-4.1-1, TRN-6-1: a driver


def _driver(multicast: Any = None) -> tuple[Driver, ScriptedCore, list[tuple[bytes, Any]]]:
    core = ScriptedCore()
    core.config = type(core.config)(node_id=1, nodes=(1, 2, 3), token_timeout_ns=400_000_000)
    sent: list[tuple[bytes, Any]] = []
    recorder = FlightRecorder(
        core.config, seed=0, boot_id=1, cluster_name="t", key=None, capacity=0
    )
    peers = {2: ("127.0.0.1", 9002), 3: ("127.0.0.1", 9003)}
    driver = Driver(
        asyncio.get_running_loop(),
        core,  # type: ignore[arg-type]
        Channel(1, 1, "t", bytes(32), peers=(1, 2, 3)),
        recorder,
        StateStore(None, 1),
        Listener(),
        peers,
        on_failure=lambda exc: None,
    )
    endpoint: Any = SimpleNamespace(
        transport=SimpleNamespace(sendto=lambda data, addr: sent.append((data, addr))),
        multicast=multicast,
        close=lambda: None,
        errors=0,
        rcvbuf_bytes=0,
        sndbuf_bytes=0,
    )
    driver.attach(endpoint)
    driver.start(None)
    return driver, core, sent


@pytest.mark.req("TRN-4.1-1")
async def test_a_frame_for_several_nodes_is_sealed_once() -> None:
    driver, core, sent = _driver()
    core.on_submit = [Multicast(MCAST, (2, 3)), Send(2, TOKEN), Send(2, TOKEN)]
    driver.submit(MCAST.records[0], False)
    assert [addr for _, addr in sent] == [("127.0.0.1", 9002), ("127.0.0.1", 9003)] + [
        ("127.0.0.1", 9002)
    ] * 2
    assert sent[0][0] == sent[1][0], "one seal, the same bytes to every destination"
    counters = [int.from_bytes(data[24:32], "big") for data, _ in sent]
    assert counters == [0, 0, 1, 2], "a frame sent again is sealed again (RFC 0005 SEC-11-2)"


@pytest.mark.req("TRN-6-1")
async def test_with_a_group_multicast_effects_go_once_to_it_tokens_stay_unicast() -> None:
    group = ("239.255.71.9", 9000)
    driver, core, sent = _driver(multicast=group)
    core.on_submit = [Multicast(MCAST, (2, 3)), Send(3, TOKEN)]
    driver.submit(MCAST.records[0], False)
    assert [addr for _, addr in sent] == [group, ("127.0.0.1", 9003)]


@pytest.mark.req("TRN-4.1-3")
async def test_a_refused_send_is_counted_and_the_node_goes_on() -> None:
    """Port 0 is no destination: the kernel refuses the send; the driver counts it, no fail."""
    core = ScriptedCore()
    loop = asyncio.get_running_loop()
    recorder = FlightRecorder(
        core.config, seed=0, boot_id=1, cluster_name="t", key=None, capacity=0
    )
    driver = Driver(
        loop,
        core,  # type: ignore[arg-type]
        Channel(1, 1, "t", bytes(32), peers=(1, 2)),
        recorder,
        StateStore(None, 1),
        Listener(),
        {2: ("127.0.0.1", 0)},
        on_failure=lambda exc: None,
    )
    (port,) = free_ports(1)
    endpoint = await open_endpoint(
        loop, ("127.0.0.1", port), socket.AF_INET, driver.datagram_received, buffer_bytes=0
    )
    driver.attach(endpoint)
    driver.start(None)
    try:
        core.on_submit = [Send(2, TOKEN)]
        driver.submit(MCAST.records[0], False)
        driver.submit(MCAST.records[0], False)
        await wait_until(lambda: driver.statistics().send_errors >= 2)
        assert driver.failure is None
    finally:
        await driver.close()


# ------------------------------------------------------------------ TRN §3: real sockets


@pytest.mark.req("TRN-3.1-1")
def test_one_address_family_per_configuration() -> None:
    nodes = {1: "127.0.0.1:5405", 2: "[::1]:5405"}
    with pytest.raises(ConfigError, match="mixes IPv4 and IPv6"):
        gcs.Config(cluster_name="t", node_id=1, nodes=nodes)
    with pytest.raises(ConfigError, match="mixes IPv4 and IPv6"):
        gcs.Config(cluster_name="t", node_id=1, nodes={1: "[::1]:5405"}, bind="0.0.0.0:5405")


@pytest.mark.req("TRN-3.3-1", "TRN-3.2-1", "TRN-3.3-2")
async def test_sources_are_ignored_answers_go_to_configured_addresses(
    tmp_path: Path,
) -> None:
    """TRN-3.2-1, TRN-3.3-1, TRN-3.3-2. Node 2 is a plain socket at its configured address: node 1
    sends from its own address; a join in node 2's name sent from an unrelated port is
    accepted; node 1 answers at node 2's configured address only."""
    key = make_key(tmp_path)
    cfg = configs(2, key_file=key)[0]
    _, node2_port = (a.port for a in cfg.addresses)
    node2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    node2.bind(("127.0.0.1", node2_port))
    stranger.bind(("127.0.0.1", 0))
    for sock in (node2, stranger):
        sock.setblocking(False)
    channel = Channel(2, 1, "test", key.read_bytes(), peers=(1, 2))
    node = gcs.Node(cfg)
    try:
        await node.start()
        frames = await _received(node2, channel, 1)
        assert {src for src, _ in frames} == {("127.0.0.1", cfg.own_address.port)}  # TRN-3.2-1
        join = channel.seal(MembJoin(2, frozenset({1, 2}), frozenset(), 0))
        stranger.sendto(join, ("127.0.0.1", cfg.own_address.port))
        await wait_until(lambda: node.statistics().channel.opened >= 1)  # TRN-3.3-1
        answers = await _received(
            node2, channel, 5, lambda f: isinstance(f, MembJoin) and 2 in f.proc_set
        )
        assert answers, "node 1 answered node 2's join at node 2's configured address"
        with pytest.raises(BlockingIOError):
            stranger.recvfrom(65536)  # TRN-3.3-2: nothing to the source address
    finally:
        await node.close()
        node2.close()
        stranger.close()


async def _received(
    sock: socket.socket, channel: Channel, count: int, want: Any = lambda f: True
) -> list[tuple[Any, Any]]:
    """Datagrams on ``sock`` (source address, frame) until ``count`` match ``want``."""
    out: list[tuple[Any, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT_S
    while sum(want(f) for _, f in out) < count:
        assert loop.time() < deadline, f"timed out; got {out}"
        try:
            data, src = sock.recvfrom(65536)
        except BlockingIOError:
            await asyncio.sleep(0.01)
            continue
        opened = channel.receive(data)
        if opened is not None:
            out.append((src, opened[1]))
    return out


# ------------------------------------------------------------------ every TRN id is cited
