"""Node-list changes on real nodes over loopback UDP (RFC 0008 §3.7, RFC 0006 §3.8):
add a node to a running three-node ring, start it, remove a dead node, remove a live one."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import pytest

import gcs
from gcs.errors import InvalidArgument, NodeFailed, NodeListRefused
from gcs.runtime.persist import NODES_FILE
from tests.runtime.cluster import configs, one_ring, wait_until

QUORUM = {"node_changes": True}


def _only(cfg: gcs.Config, ids: set[int]) -> gcs.Config:
    nodes = {n: a for n, a in cfg.nodes.items() if n in ids}
    return dataclasses.replace(cfg, nodes=nodes)


@pytest.mark.req(
    "QRM-3.7-1",
    "QRM-3.7-4",
    "QRM-3.7-5",
    "QRM-3.7-6",
    "MEM-3.2-4",
    "MEM-3.2-5",
    "MEM-3.2-6",
    "API-3.8-1",
    "API-3.8-2",
    "API-3.8-3",
)
async def test_add_start_and_remove_nodes_without_restarting_the_others(tmp_path: Path) -> None:
    cfgs = configs(4, state_root=tmp_path, quorum=QUORUM)
    first = [gcs.Node(_only(c, {1, 2, 3})) for c in cfgs[:3]]
    fourth: gcs.Node | None = None
    try:
        await asyncio.gather(*(n.start() for n in first))
        await wait_until(lambda: one_ring(first))
        await wait_until(lambda: all(n.quorum is not None and n.quorum.quorate for n in first))
        assert first[0].nodes().version == 0 and first[0].nodes().ids == (1, 2, 3)

        with pytest.raises(NodeListRefused) as refused:
            await first[1].add_node(3, "127.0.0.1:9")
        assert refused.value.reason == "listed"
        with pytest.raises(InvalidArgument):
            await first[1].add_node(4, "no port")
        with pytest.raises(NodeListRefused) as refused:
            await first[1].add_node(4, "127.0.0.1:9", votes=3)
        assert refused.value.reason == "unsafe_votes"

        added = await first[0].add_node(4, cfgs[3].nodes[4])
        assert added.version == 1 and added.ids == (1, 2, 3, 4)
        await wait_until(lambda: all(n.nodes().version == 1 for n in first))
        for node in first:
            verdict = node.quorum
            assert verdict is not None and verdict.quorate and verdict.expected_votes == 4
        stored = json.loads((tmp_path / "node2" / NODES_FILE).read_text())
        assert stored[0] == 1 and [e[0] for e in stored[1]] == [1, 2, 3, 4]

        fourth = gcs.Node(_only(cfgs[3], {1, 4}))  # it knows itself and node 1 (MEM-3.2-5)
        await fourth.start()
        everyone = [*first, fourth]
        await wait_until(lambda: one_ring(everyone))
        await wait_until(lambda: fourth is not None and fourth.nodes().version == 1)

        await first[1].close()  # node 2 goes away for good
        remaining = [first[0], first[2], fourth]
        await wait_until(lambda: one_ring(remaining))
        await wait_until(lambda: all(n.quorum is not None and n.quorum.quorate for n in remaining))
        shrunk = await fourth.remove_node(2)
        assert shrunk.version == 2 and shrunk.ids == (1, 3, 4)
        await wait_until(lambda: all(n.nodes().version == 2 for n in remaining))
        for node in remaining:
            verdict = node.quorum
            assert verdict is not None and verdict.expected_votes == 3

        # A live node that is removed is told so by the record itself, and stops.
        await first[0].remove_node(3)
        # Node 3 is heard until a consensus fails it out of the ring (MEM-3.2-6).
        ring = first[0].view
        assert ring is None or 3 not in ring.members or _accepts(first[0], 3), ring
        await wait_until(lambda: first[2].closed)
        with pytest.raises(NodeFailed, match="removed from the cluster's node list"):
            await first[2].join("g")
        survivors = [first[0], fourth]
        await wait_until(lambda: one_ring(survivors))
        await wait_until(lambda: all(n.quorum is not None and n.quorum.quorate for n in survivors))
        assert {n.nodes().ids for n in survivors} == {(1, 4)}
        assert not any(_accepts(n, 3) for n in survivors)
    finally:
        await asyncio.gather(
            *(n.close() for n in [*first, *([fourth] if fourth else [])]), return_exceptions=True
        )


def _accepts(node: gcs.Node, sender: int) -> bool:
    """Whether ``node``'s channel takes datagrams from ``sender`` (a white-box look)."""
    channel = node._channel
    return channel is not None and channel.peers is not None and sender in channel.peers


@pytest.mark.req("QRM-3.7-4", "API-3.8-4")
async def test_a_restart_holds_the_stored_list_and_a_removed_node_is_refused(
    tmp_path: Path,
) -> None:
    cfgs = configs(3, state_root=tmp_path, quorum=QUORUM)
    nodes = [gcs.Node(c) for c in cfgs]
    try:
        await asyncio.gather(*(n.start() for n in nodes))
        await wait_until(lambda: one_ring(nodes))
        await wait_until(lambda: all(n.quorum is not None and n.quorum.quorate for n in nodes))
        await nodes[2].close()
        await wait_until(lambda: one_ring(nodes[:2]))
        await wait_until(lambda: all(n.quorum is not None and n.quorum.quorate for n in nodes[:2]))
        await nodes[0].remove_node(3)
        await wait_until(lambda: all(n.nodes().version == 1 for n in nodes[:2]))
    finally:
        await asyncio.gather(*(n.close() for n in nodes), return_exceptions=True)
    again = gcs.Node(cfgs[0])
    try:
        await again.start()
        assert again.nodes().version == 1 and again.nodes().ids == (1, 2)
    finally:
        await again.close()
    removed = gcs.Node(cfgs[2])
    with pytest.raises(gcs.ConfigError, match=r"was removed.*stored version 1"):
        # Node 3's own state dir holds version 0 only; it learns nothing. Give it node 1's list.
        (tmp_path / "node3" / NODES_FILE).write_text((tmp_path / "node1" / NODES_FILE).read_text())
        await removed.start()
