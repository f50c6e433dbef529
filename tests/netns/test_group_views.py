"""Real group members across partitions, a one-way block and a kill -9 (RFC 0006 API-3.7-1).

Five node processes, one per network namespace, each with a member of the group ``work`` that
sends at a steady rate: a partition 2|3 and its heal, a one-way block and its end, a SIGKILL and
a restart, all under traffic from every node. Every member logs what it receives
(``node_proc --member-log``); no message may be delivered in a view that does not list its
sender (API-3.7-1, API-3.3-2's departed senders in transitional views excepted), and members that go
from one view to the same next view received the same messages in it (API-3.6-3). Before the
barrier, this run delivered hundreds of messages outside their sender's view (issue 14).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.netns.conftest import LabCluster
from tests.netns.member_log import judge_members
from tests.procs.cluster import ProcCluster, wait_for
from tests.procs.judge import judge, liveness_params

pytestmark = pytest.mark.netns

RATE = 40.0
ENOUGH = 15
ALL = [1, 2, 3, 4, 5]


def _log(cluster: ProcCluster, node: int) -> Path:
    return cluster.run_dir / f"members{node}.jsonl"


def _start(cluster: ProcCluster, node: int) -> None:
    cluster.start(node, rate=RATE, extra=["--member-log", str(_log(cluster, node))])


def _sent(cluster: ProcCluster, nodes: list[int], at_least: int) -> None:
    base = {n: cluster.count(n, "Submit") for n in nodes}
    wait_for(
        f"{at_least} more submissions at nodes {nodes} ({cluster.run_dir})",
        lambda: all(cluster.count(n, "Submit") >= base[n] + at_least for n in nodes),
    )


@pytest.mark.req("API-3.7-1", "API-3.6-3")
def test_members_receive_messages_only_in_views_that_list_their_senders(
    lab_cluster: LabCluster,
) -> None:
    lab, cluster = lab_cluster(5)
    for node in ALL:
        _start(cluster, node)
    cluster.wait_ring(ALL)
    _sent(cluster, ALL, ENOUGH)

    sides = [[1, 2], [3, 4, 5]]
    lab.partition(sides)
    cluster.fault("partition", groups=sides)
    for side in sides:
        cluster.wait_ring(side)
    _sent(cluster, ALL, ENOUGH)
    lab.heal()
    cluster.fault("heal")
    cluster.wait_ring(ALL)
    _sent(cluster, ALL, ENOUGH)

    lab.drop_one_way(1, 2)
    cluster.fault("block", src=1, dst=2)

    def apart() -> bool:
        rings = [cluster.procs[n].ring for n in (1, 2)]
        return all(r is not None and not {1, 2} <= set(r["members"]) for r in rings)

    wait_for(f"nodes 1 and 2 in rings without each other ({cluster.run_dir})", apart)
    _sent(cluster, ALL, ENOUGH // 2)
    lab.heal()
    cluster.fault("unblock", src=1, dst=2)
    cluster.wait_ring(ALL)
    _sent(cluster, ALL, ENOUGH)

    cluster.kill(4)
    cluster.wait_ring([1, 2, 3, 5])
    _sent(cluster, [1, 2, 3, 5], ENOUGH)
    _start(cluster, 4)
    healed_ns = cluster.fault("restarted", 4)
    cluster.wait_ring(ALL)
    _sent(cluster, ALL, ENOUGH)

    cluster.quiet()
    params = liveness_params(healed_ns, cluster.live())
    history = cluster.settle(params)
    judge(cluster.paths(), history=history, params=params, what="groups under faults")
    cluster.close()

    report = judge_members([_log(cluster, n) for n in ALL])
    print(
        f"member logs: {report.messages} messages, {report.views} views, {report.merges} "
        f"merging views, {len(report.outside)} outside their sender's view"
    )
    assert report.merges >= 3, "the partition, the block and the restart each merged"
    assert report.messages > 1000
    assert not report.outside, f"{len(report.outside)}: " + "\n".join(report.outside[:5])
    assert not report.unsynchronised, "\n".join(report.unsynchronised)
