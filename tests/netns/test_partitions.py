"""Keyed node processes in their own network namespaces, with iptables faults between them.

Each test starts one node process per namespace (``NetLab`` + ``ProcCluster``), lets the
workload run, injects a fault — a partition into two sides, a one-way link, random loss at one
node —, checks what the fault must do to the membership, heals it, and then requires every
checker to pass on the merged history: liveness from the heal (one ring of everyone, everything
delivered), safety over the whole run, and safety again on the complete history once every
process stopped. Fault events go to the harness history, so the checkers can tell a reaction to
a fault from a spurious view change.
"""

from __future__ import annotations

import time

import pytest

from gcs.bench.netns import NetLab
from gcs.history import events as h
from gcs.wire.frames import RingId
from tests.netns.conftest import LabCluster
from tests.procs.cluster import ProcCluster, wait_for
from tests.procs.judge import judge, liveness_params

pytestmark = pytest.mark.netns

RATE = 30.0
ENOUGH = 15


def _sent(cluster: ProcCluster, nodes: list[int], at_least: int) -> None:
    base = {n: cluster.count(n, "Submit") for n in nodes}
    wait_for(
        f"{at_least} more submissions at nodes {nodes} ({cluster.run_dir})",
        lambda: all(cluster.count(n, "Submit") >= base[n] + at_least for n in nodes),
    )


def _heal_and_judge(
    lab: NetLab, cluster: ProcCluster, what: str, kind: str, node: int = 0, **detail: object
) -> h.History:
    """Heal, wait for one ring of all, quiet, settle, judge with liveness from the heal."""
    lab.heal()
    healed_ns = cluster.fault(kind, node, **detail)
    everyone = list(lab.ids)
    cluster.wait_ring(everyone)
    _sent(cluster, everyone, ENOUGH // 2)
    cluster.quiet()
    params = liveness_params(healed_ns, cluster.live())
    history = cluster.settle(params)
    judge(cluster.paths(), history=history, params=params, what=what)
    cluster.close()
    judge(cluster.paths(), what=f"{what}, complete history after every process stopped")
    return history


def _senders_in(history: h.History, node: int, ring: list[int]) -> set[int]:
    """Senders whose messages ``node`` delivered in ring ``[rep, seq]`` (its regular config)."""
    ring_id = RingId(rep=ring[0], seq=ring[1])
    return {
        m.node
        for e in history.of(node, 1)
        if isinstance(e, h.Deliver) and e.config_ring == ring_id and e.config_kind == "regular"
        for m in e.msg_ids
    }


def test_a_partition_gives_two_rings_and_healing_merges_them(lab_cluster: LabCluster) -> None:
    lab, cluster = lab_cluster(5)
    cluster.start_all(rate=RATE)
    cluster.wait_ring([1, 2, 3, 4, 5])
    _sent(cluster, [1, 2, 3, 4, 5], ENOUGH)

    sides = [[1, 2, 3], [4, 5]]
    lab.partition(sides)
    cluster.fault("partition", groups=sides)
    rings = [cluster.wait_ring(side) for side in sides]
    assert rings[0] != rings[1], "each side forms its own ring"
    _sent(cluster, [1, 2, 3, 4, 5], ENOUGH // 2)  # both sides keep working
    history = _heal_and_judge(lab, cluster, "partition 123|45, heal", "heal")

    for side, ring in zip(sides, rings, strict=True):
        for node in side:
            assert _senders_in(history, node, ring) == set(side), (node, ring)
    merged = [e for e in history if isinstance(e, h.Conf) and len(e.members) == 5]
    assert max(e.ring_id.seq for e in merged) > max(r[1] for r in rings)


def test_a_one_way_link_splits_the_ring_and_unblocking_merges_it(
    lab_cluster: LabCluster,
) -> None:
    """1 -> 2 is dropped, 2 -> 1 works: a ring cannot hold both, so one of them is excluded."""
    lab, cluster = lab_cluster(3)
    cluster.start_all(rate=RATE)
    cluster.wait_ring([1, 2, 3])
    _sent(cluster, [1, 2, 3], ENOUGH)

    lab.drop_one_way(1, 2)
    cluster.fault("block", src=1, dst=2)

    def apart() -> bool:
        rings = [cluster.procs[n].ring for n in (1, 2)]
        return all(r is not None and not {1, 2} <= set(r["members"]) for r in rings)

    wait_for(f"nodes 1 and 2 in rings without each other ({cluster.run_dir})", apart)
    assert lab.dropped(2) > 0
    _sent(cluster, [1, 2, 3], ENOUGH // 2)  # whatever the split, every node keeps working
    _heal_and_judge(lab, cluster, "one-way 1->2, unblock", "unblock", src=1, dst=2)


def test_random_loss_at_one_node_keeps_the_ring_working(lab_cluster: LabCluster) -> None:
    """15% of what node 2 receives is dropped; retransmission keeps it delivering."""
    lab, cluster = lab_cluster(3)
    cluster.start_all(rate=RATE)
    cluster.wait_ring([1, 2, 3])
    lab.loss(2, 0.15)
    lossy_ns = cluster.fault("loss", 2, value=0.15)
    _sent(cluster, [1, 2, 3], 3 * ENOUGH)
    assert lab.dropped(2) > 0
    lossy_until_ns = time.monotonic_ns()
    history = _heal_and_judge(lab, cluster, "15% loss at node 2, healed", "loss", 2, value=0.0)
    heard = {
        (m.node, e.config_ring)
        for e in history.of(2, 1)
        if isinstance(e, h.Deliver) and lossy_ns < e.time_ns <= lossy_until_ns
        for m in e.msg_ids
    }
    senders = {node for node, _ in heard}
    assert senders == {1, 2, 3}, f"node 2 delivered messages of {senders} while lossy"
