"""The runtime's side of redundant links (RFC 0010 §5, §6): sockets per link, copies, probes.

Unit tests drive ``LinkDriver`` with fake sockets and a hand-moved clock; the loopback tests run
three real nodes in this process with link 0 on 127.0.0.1 and link 1 on 127.0.0.2.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import gcs
from gcs.links import LinkMode, Links, LinkTimings
from gcs.runtime.links import LinkDriver
from gcs.wire.channel import Channel
from gcs.wire.frames import LinkProbe
from tests.runtime.cluster import free_ports, make_key, messages, one_ring, wait_until
from tests.runtime.test_driver import make_driver

MS = 1_000_000
DOWN = 300 * MS
ADDRS = {
    2: (("127.0.0.1", 5402), ("127.0.0.2", 5402)),
    3: (("127.0.0.1", 5403), ("127.0.0.2", 5403)),
}


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def fake_endpoint(outbox: list[tuple[int, bytes, Any]], link: int) -> Any:
    transport = SimpleNamespace(sendto=lambda data, addr: outbox.append((link, data, addr)))
    return SimpleNamespace(transport=transport, errors=0)


def link_driver(mode: LinkMode) -> tuple[LinkDriver, Clock, list[tuple[int, bytes, Any]]]:
    clock = Clock()
    machine = Links(1, [1, 2, 3], 2, mode, LinkTimings(DOWN, DOWN), 0)
    channel = Channel(1, 1, "t", None, peers=(1, 2, 3))
    loop: Any = SimpleNamespace()  # the tests call the machine's timer themselves
    driver = LinkDriver(loop, machine, channel, dict(ADDRS), clock)
    outbox: list[tuple[int, bytes, Any]] = []
    driver.attach([fake_endpoint(outbox, 0), fake_endpoint(outbox, 1)])
    return driver, clock, outbox


@pytest.mark.req("LNK-5-4")
def test_one_datagram_byte_for_byte_on_each_link_of_the_route() -> None:
    driver, _, outbox = link_driver(LinkMode.ACTIVE)
    assert driver.multicast(b"sealed once", (2, 3)) == 4
    assert sorted((link, addr) for link, _, addr in outbox) == [
        (0, ADDRS[2][0]),
        (0, ADDRS[3][0]),
        (1, ADDRS[2][1]),
        (1, ADDRS[3][1]),
    ]
    assert {data for _, data, _ in outbox} == {b"sealed once"}
    outbox.clear()
    passive, _, outbox = link_driver(LinkMode.PASSIVE)
    assert passive.send(b"token", 2) == 1
    assert outbox == [(0, b"token", ADDRS[2][0])]


@pytest.mark.req("LNK-5-5")
def test_a_new_route_gets_the_last_token_again_on_its_new_link() -> None:
    driver, clock, outbox = link_driver(LinkMode.PASSIVE)
    clock.now = 10 * MS
    driver.send(b"token for 2", 2)
    outbox.clear()
    # node 2 is heard on link 1 only from now on: link 0 goes quiet, then down
    for t in range(20 * MS, 2 * DOWN, 10 * MS):
        clock.now = t
        driver.heard(1, 2, t)
        driver.heard(0, 3, t)
        driver.heard(1, 3, t)
        if t >= driver.machine.next_deadline_ns:
            driver._apply(driver.machine.on_timeout(t))
    resent = [(link, addr) for link, data, addr in outbox if data == b"token for 2"]
    assert resent == [(1, ADDRS[2][1])], "the token again, on link 1, once"
    assert driver.report().resends == 1
    assert driver.machine.routes[2] == (1,)


@pytest.mark.req("LNK-5-5")
def test_an_old_token_is_not_sent_again() -> None:
    driver, clock, outbox = link_driver(LinkMode.PASSIVE)
    driver.send(b"old token", 2)
    clock.now = 2 * DOWN  # older than the link-down time when the route changes
    for t in range(2 * DOWN, 4 * DOWN, 10 * MS):
        clock.now = t
        driver.heard(1, 2, t)
        if t >= driver.machine.next_deadline_ns:
            driver._apply(driver.machine.on_timeout(t))
    assert driver.machine.routes[2] == (1,)
    assert [d for _, d, _ in outbox if d == b"old token"] == [b"old token"]


@pytest.mark.req("LNK-6-4")
def test_every_link_address_of_a_peer_is_its_own_address() -> None:
    driver, _, _ = link_driver(LinkMode.ACTIVE)
    assert driver.source(("127.0.0.2", 5402)) == ("127.0.0.1", 5402)
    assert driver.source(("127.0.0.2", 5403, 0, 0)) == ("127.0.0.1", 5403)
    assert driver.source(("127.0.0.9", 5402)) == ("127.0.0.9", 5402)


@pytest.mark.req("LNK-6-1")
async def test_a_node_with_one_link_drops_a_link_probe_and_counts_it() -> None:
    driver, core, _, peer = make_driver()
    driver.datagram_received(peer.seal(LinkProbe(0, 1, False, True)))
    await asyncio.sleep(0)
    assert core.calls == []
    assert driver.statistics().link_probes_ignored == 1
    await driver.close()


def two_link_configs(tmp_path: Path, mode: str) -> list[gcs.Config]:
    first, second = free_ports(3, "127.0.0.1"), free_ports(3, "127.0.0.2")
    nodes = {i + 1: [f"127.0.0.1:{first[i]}", f"127.0.0.2:{second[i]}"] for i in range(len(first))}
    key = make_key(tmp_path)
    return [
        gcs.Config(
            cluster_name="t",
            node_id=n,
            nodes=nodes,
            key_file=key,
            # D = 400 ms: three nodes share one event loop, and a loaded machine stalls it
            token_timeout_ms=1200,
            link_mode=mode,
        )
        for n in nodes
    ]


def links_settled(stats: gcs.NodeStatistics) -> bool:
    """Every (peer, link) is up and the standby link has a round-trip time: a link comes up
    only after answering steadily (LNK-4-4), which a loaded machine can delay."""
    report = stats.runtime.links
    return report is not None and all(
        p.up and (p.link == 0 or p.rtt_ns is not None) for p in report.pairs
    )


async def exchange(
    cfgs: list[gcs.Config], count: int, *, settle_links: bool = False
) -> list[gcs.NodeStatistics]:
    """Start three nodes, exchange ``count`` messages, check one order and no duplicate, and
    return each node's statistics, taken before the nodes close (with ``settle_links``, once
    every link is up)."""
    nodes = [gcs.Node(c) for c in cfgs]
    try:
        await asyncio.gather(*(n.start() for n in nodes))
        await wait_until(lambda: one_ring(nodes))
        groups = [await n.join("g") for n in nodes]
        for i in range(count):
            await groups[i % 3].send(f"{i}".encode())
        got = [await messages(g, count) for g in groups]
        orders = [[(m.sender, m.data) for m in ms] for ms in got]
        assert orders[0] == orders[1] == orders[2], "one total order"
        assert sorted(int(p) for _, p in orders[0]) == list(range(count)), "each message once"
        with pytest.raises(asyncio.TimeoutError):  # and nothing more: no copy delivered
            await asyncio.wait_for(groups[0].__anext__(), 0.3)
        if settle_links:
            await wait_until(lambda: all(links_settled(n.statistics()) for n in nodes))
        return [n.statistics() for n in nodes]
    finally:
        await asyncio.gather(*(n.close() for n in nodes), return_exceptions=True)


@pytest.mark.req("LNK-6-2", "LNK-6-3", "LNK-5-2")
async def test_active_mode_copies_are_dropped_by_the_replay_window(tmp_path: Path) -> None:
    for stats in await exchange(two_link_configs(tmp_path, "active"), 60):
        report = stats.runtime.links
        assert report is not None and report.mode == "active"
        assert stats.channel.copies > 0, "the second copy of each datagram arrived"
        assert stats.channel.dropped.get("replay", 0) == 0, "copies are not counted as replays"
        assert report.traffic[0].sent > 0 and report.traffic[1].sent > 0
        assert sum(t.copies for t in report.traffic) == stats.channel.copies


@pytest.mark.req("LNK-5-1")
async def test_passive_mode_sends_only_heartbeats_on_the_standby_link(tmp_path: Path) -> None:
    for stats in await exchange(two_link_configs(tmp_path, "passive"), 60):
        report = stats.runtime.links
        assert report is not None and report.changes == 0
        assert [(s.link, s.routed) for s in report.pairs] == [(0, True), (1, False)] * 2
        standby = report.traffic[1]
        assert standby.probes_sent > 0, "the standby link is kept alive by heartbeats"
        # frames went there only while a peer was still starting (its link 0 was quiet)
        assert report.traffic[0].sent > 10 * (standby.sent - standby.probes_sent)


async def test_status_shows_each_link_to_each_peer_and_metrics_per_link(tmp_path: Path) -> None:
    """RFC 0010 §8: ``gcs status`` lines and metric families per (peer, link)."""
    from gcs.cli.daemon import format_links
    from gcs.daemon.metrics import link_families
    from gcs.daemon.status import link_status

    stats = (await exchange(two_link_configs(tmp_path, "passive"), 10, settle_links=True))[0]
    shown = link_status(stats.runtime.links)
    assert shown is not None and shown["mode"] == "passive"
    assert [(p["peer"], p["link"], p["up"]) for p in shown["peers"]] == [
        (2, 0, True),
        (2, 1, True),
        (3, 0, True),
        (3, 1, True),
    ]
    assert all(p["rtt_ms"] is not None and p["rtt_ms"] >= 0 for p in shown["peers"][1::2])
    lines = format_links(shown)
    # a loaded machine may take a link down and up while the nodes start: any count is right
    assert re.match(r"  links         passive, \d+ changes", lines[0]), lines[0]
    assert sum("node 2" in line for line in lines) == 2
    assert sum(line.strip().startswith("link ") for line in lines) == 2
    metrics = {f.name: f for f in link_families(shown, ["1", "t"])}
    assert {"gcs_link_up", "gcs_link_rtt_seconds", "gcs_link_copies_dropped"} <= set(metrics)
    up = {(s.labels["peer"], s.labels["link"]): s.value for s in metrics["gcs_link_up"].samples}
    assert up == {("2", "0"): 1, ("2", "1"): 1, ("3", "0"): 1, ("3", "1"): 1}
    assert link_status(None) is None and format_links(None) == []
