"""A one-way link fault in a five-node ring of real processes costs one reconfiguration.

Five keyed node processes, one per network namespace, default timers (token 1 s, consensus
1.2 s), light traffic. Node 2's namespace drops everything from node 1 for 15 s (1 -> 2 is
broken, 2 -> 1 works), then the rule goes. The ring cannot hold both 1 and 2, so one of them
is excluded; what that must cost (RFC 0004 MEM-8.4-1, MEM-8.4-2, MEM-8.4-3), counted from the
nodes' own recorded histories (RFC 0007 SIM-7.2-3, ``gcs.sim.report.oneway``):

* the nodes that are neither end of the link install at most one regular configuration during
  the fault (the exclusion itself; before the rules they installed four or five);
* the isolated end is settled (operational in the ring it stays in until the heal) within
  2 x (token + consensus) of the block;
* one ring of all five forms within one merge interval and two joins at the longest join
  interval of the unblock (MEM-8.4-3: the next merge-detect crosses the repaired link, is
  answered by a probe, and the gather that starts needs a join round or two): 1 s with these
  timers.

The bounds are computed from the configuration the node processes run with (``Config.totem``),
so they follow the timers if the harness's defaults change.

The times are the nodes' own monotonic timestamps in their histories (the clock the harness
stamps the faults with), so a loaded machine slows the waits, not the protocol's figures.
Every checker must then pass on the merged history.
"""

from __future__ import annotations

import time

import pytest

from gcs.config import Config
from gcs.sim.report.oneway import one_way_faults
from gcs.totem.config import TotemConfig
from tests.netns.conftest import LabCluster
from tests.procs.cluster import ProcCluster, wait_for
from tests.procs.judge import judge, liveness_params

pytestmark = pytest.mark.netns

TOKEN_MS = 1000  # the default; consensus then defaults to 1.2 s
BLOCK_S = 15.0
RATE = 5.0


def _bounds(cluster: ProcCluster) -> tuple[int, int]:
    """(settle bound, merge bound) in ns, from the timers node 1 runs with."""
    timers: TotemConfig = Config.load(cluster.config_path(1)).totem()
    settle_ns = 2 * (timers.token_timeout_ns + timers.consensus_timeout_ns)
    merge_ns = timers.merge_timeout_ns + 2 * timers.join_timeout_max_ns
    return settle_ns, merge_ns


def _sent(cluster: ProcCluster, nodes: list[int], at_least: int) -> None:
    base = {n: cluster.count(n, "Submit") for n in nodes}
    wait_for(
        f"{at_least} more submissions at nodes {nodes} ({cluster.run_dir})",
        lambda: all(cluster.count(n, "Submit") >= base[n] + at_least for n in nodes),
    )


def test_a_one_way_fault_costs_one_reconfiguration_and_merges_fast(
    lab_cluster: LabCluster,
) -> None:
    lab, cluster = lab_cluster(5, token_timeout_ms=TOKEN_MS)
    everyone = list(lab.ids)
    cluster.start_all(rate=RATE)
    cluster.wait_ring(everyone)
    _sent(cluster, everyone, 5)

    # Each fault is recorded just before it takes effect, so the figures measured from the
    # records are, if anything, a few milliseconds too long.
    cluster.fault("block", src=1, dst=2)
    lab.drop_one_way(1, 2)
    time.sleep(BLOCK_S)  # the fault's duration: the protocol runs its course meanwhile
    assert lab.dropped(2) > 0, "the one-way rule dropped nothing"
    healed_ns = cluster.fault("unblock", src=1, dst=2)
    lab.heal()
    cluster.wait_ring(everyone)
    _sent(cluster, everyone, 3)
    cluster.quiet()
    params = liveness_params(healed_ns, cluster.live())
    history = cluster.settle(params)
    judge(cluster.paths(), history=history, params=params, what="one-way 1->2 for 15 s")

    [fault] = one_way_faults(history)
    settle_bound, merge_bound = _bounds(cluster)
    where = f"run directory {cluster.run_dir}: {fault}; bounds {settle_bound}, {merge_bound} ns"
    print(where)
    assert fault.isolated in (1, 2), f"neither end was excluded; {where}"
    assert fault.majority_views <= 1, f"the majority reconfigured more than once; {where}"
    assert fault.settled, f"the isolated node was still changing at the unblock; {where}"
    assert fault.settle_ns is not None
    assert fault.settle_ns <= settle_bound, f"settled later than {settle_bound} ns; {where}"
    assert fault.merge_ns is not None, f"no ring of all five formed; {where}"
    assert fault.merge_ns <= merge_bound, f"merged later than {merge_bound} ns; {where}"
    cluster.close()
    judge(cluster.paths(), what="one-way 1->2, complete history after every process stopped")
