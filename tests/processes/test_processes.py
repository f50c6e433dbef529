"""Real node processes on 127.0.0.1, judged by the simulator's checkers.

Each test starts node processes (``tests.procs.node_proc``) that record their histories, drives
them through one scenario — concurrent senders, ``kill -9`` and a restart, a clean leave —,
lets the workload go quiet, waits until the merged history shows the cluster converged
(``ProcCluster.settle``), and then requires every checker, liveness included, to pass on that
history; after all processes stopped, the complete history must pass the safety checkers again.
The outcome assertions on top (identical sequences, the shape of the configuration change, the
reason, the ring ids) say in test terms what the checkers already cover.
"""

from __future__ import annotations

import time

import pytest

from gcs.history import events as h
from tests.processes.conftest import MakeCluster
from tests.procs.cluster import ProcCluster, wait_for
from tests.procs.judge import judge, liveness_params

pytestmark = pytest.mark.processes

RATE = 40.0  # messages per second per node
ENOUGH = 25  # submissions per node before the scenario moves on


def _sent(cluster: ProcCluster, nodes: list[int], at_least: int) -> None:
    """Wait until each of ``nodes`` has submitted ``at_least`` more messages than now."""
    base = {n: cluster.count(n, "Submit") for n in nodes}
    wait_for(
        f"{at_least} more submissions at nodes {nodes} ({cluster.run_dir})",
        lambda: all(cluster.count(n, "Submit") >= base[n] + at_least for n in nodes),
    )


def _converge_and_judge(cluster: ProcCluster, quiet_from_ns: int, what: str) -> h.History:
    """Quiet the workload, wait for convergence, judge with liveness; return that history."""
    cluster.quiet()
    params = liveness_params(quiet_from_ns, cluster.live())
    history = cluster.settle(params)
    judge(cluster.paths(), history=history, params=params, what=what)
    return history


def _final_judgement(cluster: ProcCluster, what: str) -> None:
    cluster.close()
    judge(cluster.paths(), what=f"{what}, complete history after every process stopped")


def _confs(history: h.History, node: int, incarnation: int, after_ns: int) -> list[h.Conf]:
    return [
        e for e in history.of(node, incarnation) if isinstance(e, h.Conf) and e.time_ns > after_ns
    ]


@pytest.mark.parametrize("size,keyed", [(3, False), (5, True)], ids=["3-unkeyed", "5-keyed"])
def test_concurrent_senders_deliver_one_sequence(
    loopback: MakeCluster, size: int, keyed: bool
) -> None:
    started_ns = time.monotonic_ns()
    cluster = loopback(size, keyed=keyed)
    nodes = list(range(1, size + 1))
    cluster.start_all(rate=RATE)
    cluster.wait_ring(nodes)
    _sent(cluster, nodes, ENOUGH)
    history = _converge_and_judge(cluster, started_ns, f"{size} concurrent senders")
    final = {e.ring_id for e in history if isinstance(e, h.Conf) and e.kind == "regular"}
    ring = max(final, key=lambda r: r.seq)
    sequences = {
        node: [
            m
            for e in history.of(node, 1)
            if isinstance(e, h.Deliver) and e.config_ring == ring and e.config_kind == "regular"
            for m in e.msg_ids
        ]
        for node in nodes
    }
    assert all(seq == sequences[1] for seq in sequences.values()), "one sequence everywhere"
    senders = {m.node for m in sequences[1]}
    assert senders == set(nodes), f"every node's messages were delivered in {ring}"
    _final_judgement(cluster, f"{size} concurrent senders")


@pytest.mark.parametrize("size", [3, 5])
def test_kill_minus_nine_then_restart(loopback: MakeCluster, size: int) -> None:
    cluster = loopback(size, keyed=size == 5)
    nodes = list(range(1, size + 1))
    victim, survivors = nodes[-1], nodes[:-1]
    cluster.start_all(rate=RATE)
    cluster.wait_ring(nodes)
    _sent(cluster, nodes, ENOUGH)
    killed_ns = cluster.kill(victim)
    cluster.wait_ring(survivors)
    _sent(cluster, survivors, ENOUGH // 2)  # the survivors' ring carries traffic
    restarted_ns = time.monotonic_ns()  # the restart fault is recorded just after this
    proc = cluster.start(victim, rate=RATE)
    assert proc.incarnation == 2
    cluster.wait_ring(nodes)
    _sent(cluster, nodes, ENOUGH // 2)
    history = _converge_and_judge(cluster, restarted_ns, f"kill -9 of node {victim}, restart")

    for node in survivors:
        confs = _confs(history, node, 1, killed_ns)
        first, second = confs[0], confs[1]
        assert (first.kind, second.kind) == ("transitional", "regular"), confs[:2]
        assert first.ring_id == second.ring_id
        assert set(first.members) == set(second.members) == set(survivors)
        assert victim in first.left
    old = [e.ring_id.seq for e in history.of(victim, 1) if isinstance(e, h.Conf)]
    new = [e.ring_id.seq for e in history.of(victim, 2) if isinstance(e, h.Conf)]
    assert old and new and min(new) > max(old), (old, new)
    _final_judgement(cluster, f"kill -9 of node {victim}, restart")


@pytest.mark.req("API-3.2-2")
def test_clean_leave_gives_the_survivors_reason_leave(loopback: MakeCluster) -> None:
    """SIGTERM: the node leaves its group and the ring cleanly; nobody waits for a timeout.

    Ring reasons are local observations (RFC 0004 §9.1): a survivor that hears the other
    survivor's join before the leaver's leave reports that join. So the ring-level assertion is
    that the change began with the leave (``leave 2`` at some survivor, and only that or a
    survivor's join anywhere); the group level promises ``leave`` at every survivor (API-3.2-2).
    """
    cluster = loopback(3)
    cluster.start_all(rate=RATE)
    cluster.wait_ring([1, 2, 3])
    _sent(cluster, [1, 2, 3], ENOUGH)
    stopped_ns = cluster.stop(2)
    cluster.wait_ring([1, 3])
    history = _converge_and_judge(cluster, stopped_ns, "SIGTERM of node 2")
    assert isinstance(history.of(2, 1)[-1], h.Leave)
    reasons = set()
    for node in (1, 3):
        changes = [c for c in _confs(history, node, 1, stopped_ns) if 2 in c.left]
        assert changes, f"node {node} recorded no configuration without node 2"
        reasons |= {c.reason for c in changes}
        views = [e for e in cluster.procs[node].events if e["event"] == "view" and 2 in e["left"]]
        assert views and all(v["reason"] == "leave" for v in views), views
    assert "leave 2" in reasons and reasons <= {"leave 2", "join 1", "join 3"}, reasons
    _final_judgement(cluster, "SIGTERM of node 2")
