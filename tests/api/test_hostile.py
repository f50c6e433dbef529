"""Garbage at a live node's socket: it keeps running, counts every drop by reason, and the ring
does not notice (no configuration change, messages still flow)."""

from __future__ import annotations

import asyncio
import os
import random
import socket
from pathlib import Path
from typing import Any

import gcs
from gcs.wire.channel import Channel
from gcs.wire.frames import RingId, TokenHoldCancel
from tests.runtime.cluster import configs, make_key, messages, running, wait_until


def _address(cfg: gcs.Config, node_id: int) -> tuple[str, int]:
    address = next(a for a in cfg.addresses if a.node_id == node_id)
    return address.host, address.port


async def test_hostile_datagrams_are_dropped_and_counted(tmp_path: Path) -> None:
    cfgs = configs(3, key_file=make_key(tmp_path))
    async with running(cfgs) as nodes:
        target = nodes[0]
        target_addr = _address(cfgs[0], 1)
        captured: list[bytes] = []
        driver: Any = nodes[1]._driver
        original = driver._sendto

        def capture(data: bytes, addr: Any) -> None:
            if tuple(addr[:2]) == target_addr:
                captured.append(data)  # datagrams node 1 receives anyway: replays if re-sent
            original(data, addr)

        driver._sendto = capture
        groups = await asyncio.gather(*(n.join("g") for n in nodes))
        await (await groups[1].send(b"before")).delivered()
        await messages(groups[0], 1)
        before = target.statistics()
        assert captured

        rng = random.Random(7)
        # A newer boot of node 2 under another key: refused by authentication, and since state
        # only moves on authenticated datagrams, node 2's real traffic is not disturbed.
        wrong_key = Channel(2, nodes[1].boot_id + 1, "test", os.urandom(32), peers=(1, 2, 3))
        unkeyed = Channel(2, 1, "test", None, peers=(1, 2, 3))
        old_boot = Channel(2, 1, "test", os.urandom(32), peers=(1, 2, 3))
        frame = TokenHoldCancel(2, RingId(seq=1, rep=1))
        junk = [rng.randbytes(rng.randrange(0, 1500)) for _ in range(200)]
        junk += [b"GC" + rng.randbytes(40) for _ in range(20)]
        junk += [wrong_key.seal(frame) for _ in range(30)]
        junk += [unkeyed.seal(frame) for _ in range(10)]
        junk += [old_boot.seal(frame) for _ in range(10)]
        junk += [os.urandom(3000) for _ in range(10)]
        junk += captured[:50]
        rng.shuffle(junk)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for datagram in junk:
                sock.sendto(datagram, target_addr)

        total = len(junk)
        await _wait_for_drops(target, before.channel.dropped_total + total)
        after = target.statistics()
        drops = after.drops
        for reason in ("auth", "too_large", "unsealed", "replay", "bad_magic", "old_boot"):
            assert drops.get(reason, 0) > 0, f"no {reason!r} drop in {dict(drops)}"
        assert after.channel.dropped_total - before.channel.dropped_total == total
        assert after.core.configurations == before.core.configurations, "the ring did not change"
        assert target.view is not None and target.view.ring_id == nodes[1].view.ring_id  # type: ignore[union-attr]
        await (await groups[2].send(b"after")).delivered()
        assert [m.data for m in await messages(groups[0], 1)] == [b"after"]


async def _wait_for_drops(node: gcs.Node, expected: int) -> None:
    await wait_until(lambda: node.statistics().channel.dropped_total >= expected)
