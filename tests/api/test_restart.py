"""The state directory: ring ids and boot ids keep increasing across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

import gcs
from tests.runtime.cluster import configs, one_ring, running, wait_until


async def test_ring_seq_is_higher_after_a_restart(tmp_path: Path) -> None:
    (cfg,) = configs(1, state_root=tmp_path)
    async with gcs.Node(cfg) as node:
        await wait_until(lambda: node.view is not None and not node.view.transitional)
        assert node.view is not None
        first_ring, first_boot = node.view.ring_id, node.boot_id
    stored = int((tmp_path / "node1" / "ring_seq").read_text())
    assert stored >= first_ring.seq
    async with gcs.Node(cfg) as again:
        assert again.view is not None
        assert again.view.ring_id.seq > stored >= first_ring.seq, "ring ids never go back"
        assert again.boot_id > first_boot


async def test_restarted_node_rejoins_with_a_newer_ring(tmp_path: Path) -> None:
    cfgs = configs(3, state_root=tmp_path)
    async with running(cfgs) as nodes:
        before = nodes[0].view
        assert before is not None
        await nodes[2].close()
        await wait_until(lambda: one_ring(nodes[:2]))
        async with gcs.Node(cfgs[2]) as back:
            everyone = [nodes[0], nodes[1], back]
            await wait_until(lambda: one_ring(everyone))
            assert back.view is not None and back.view.ring_id.seq > before.ring_id.seq
            g1 = await nodes[0].join("after-restart")
            g3 = await back.join("after-restart")
            await (await g3.send(b"hello again")).delivered()
            async for event in g1:
                if isinstance(event, gcs.Message):
                    assert event.data == b"hello again" and event.sender == g3.member
                    break


async def test_a_state_dir_serves_one_node_at_a_time(tmp_path: Path) -> None:
    (cfg,) = configs(1, state_root=tmp_path)
    async with gcs.Node(cfg):
        with pytest.raises(gcs.ConfigError, match="state_dir"):
            await gcs.Node(cfg).start()


@pytest.mark.req("API-3.1-1")
async def test_member_handles_are_never_reused_across_joins_and_restarts(tmp_path: Path) -> None:
    (cfg,) = configs(1, state_root=tmp_path)
    members: list[gcs.Member] = []
    for _ in range(2):  # two incarnations of node 1, with the same state directory
        async with gcs.Node(cfg) as node:
            await wait_until(lambda: node.view is not None and not node.view.transitional)
            for _ in range(2):  # join, leave, join again: a new member each time
                group = await node.join("handles")
                members.append(group.member)
                await group.leave()
    assert len(set(members)) == len(members) == 4, members
    assert all(m.node == 1 and m.handle != 0 for m in members), "handle 0 is the node's own"
