"""Quorum on real nodes over loopback: node.quorum, Quorum events, last_man_standing persisted.

(RFC 0008 §3; partitions need namespaces and are in tests/examples.)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import gcs
from gcs.runtime.persist import QUORUM_FILE
from tests.runtime.cluster import configs, running, wait_until


async def _verdicts(group: gcs.Group, until: int) -> list[gcs.Quorum]:
    out: list[gcs.Quorum] = []
    async for event in group.events():
        if isinstance(event, gcs.Quorum):
            out.append(event)
            if len(out) >= until:
                return out
    return out


@pytest.mark.req("QRM-3.3-1", "QRM-3.3-2")
async def test_members_see_the_verdict_of_each_configuration() -> None:
    """QRM-3.3-1, QRM-3.3-2: node.quorum and Quorum events agree; a clean leave shrinks it."""
    async with running(configs(3)) as nodes:
        await wait_until(lambda: all(n.quorum is not None and n.quorum.quorate for n in nodes))
        assert {n.quorum for n in nodes} == {nodes[0].quorum}
        assert nodes[0].quorum is not None and nodes[0].quorum.total_votes == 3
        groups = [await n.join("q", quorum_events=True) for n in nodes[:2]]
        first = await asyncio.wait_for(_verdicts(groups[0], 1), 20)
        assert first[0].quorate, "a member's stream starts with its view, then the verdict"
        await nodes[2].close()
        later = await asyncio.wait_for(_verdicts(groups[0], 1), 20)
        assert later[-1].quorate and later[-1].members == (1, 2) and later[-1].quorum == 2
        assert groups[0].quorum == later[-1]
        plain = await nodes[0].join("plain")
        async for event in plain:  # a plain member's stream has no verdicts
            assert not isinstance(event, gcs.Quorum)
            break


@pytest.mark.req("QRM-3.5-3", "QRM-3.5-5")
async def test_last_man_standing_lowers_and_stores_expected_votes(tmp_path: Path) -> None:
    """QRM-3.5-3, QRM-3.5-5: after the window the survivors lower E, durably."""
    quorum = {"wait_for_all": True, "last_man_standing": True, "last_man_standing_window_ms": 300}
    cfgs = configs(3, state_root=tmp_path, quorum=quorum)
    async with running(cfgs) as nodes:
        await wait_until(lambda: all(n.quorum is not None and n.quorum.quorate for n in nodes))
        await nodes[2].close()
        await wait_until(
            lambda: all(
                n.quorum is not None and n.quorum.quorate and n.quorum.expected_votes == 2
                for n in nodes[:2]
            )
        )
        stored = tmp_path / "node1" / QUORUM_FILE
        await wait_until(lambda: stored.exists() and stored.read_text().strip() == "2")
