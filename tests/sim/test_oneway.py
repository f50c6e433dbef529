"""The one-way fault figures (gcs.sim.report.oneway, RFC 0007 SIM-7.2-3) on hand-built histories."""

from __future__ import annotations

from gcs.sim.report.oneway import one_way_faults
from tests.sim.histories import HistoryBuilder, ring

S = 1_000_000_000


def _five_in_one_ring() -> HistoryBuilder:
    h = HistoryBuilder()
    h.boot(1, 2, 3, 4, 5)
    for node in (1, 2, 3, 4, 5):
        h.state(node, "starting", "operational")
    h.form(ring(8), [1, 2, 3, 4, 5])
    return h


def _exclude(h: HistoryBuilder, seq: int, isolated: int) -> None:
    rest = [n for n in (1, 2, 3, 4, 5) if n != isolated]
    for node in rest:
        h.state(node, "operational", "gather")
    h.form(ring(seq, rest[0]), rest)
    for node in rest:
        h.state(node, "gather", "operational")


def test_a_clean_one_way_fault_costs_one_change_and_merges() -> None:
    h = _five_in_one_ring()
    h.at(10 * S).fault("block", src=1, dst=2)
    h.at(12 * S)
    _exclude(h, 12, isolated=1)
    h.at(13 * S).state(1, "operational", "gather")
    h.at(14 * S).change(1, ring(16, 1), [1])
    h.state(1, "gather", "operational")
    h.at(25 * S).fault("unblock", src=1, dst=2)
    h.at(int(25.4 * S))
    for node in (1, 2, 3, 4, 5):
        h.state(node, "operational", "gather")
    h.form(ring(20, 1), [1, 2, 3, 4, 5])

    [fault] = one_way_faults(h.build())
    assert (fault.src, fault.dst, fault.isolated) == (1, 2, 1)
    assert fault.majority_views == 1
    assert fault.settled
    assert fault.settle_ns is not None and 4 * S <= fault.settle_ns < 4 * S + 10_000_000
    assert fault.merge_ns is not None and 0.4 * S <= fault.merge_ns < 0.5 * S


def test_churn_an_unsettled_isolated_node_and_no_merge_are_reported() -> None:
    h = _five_in_one_ring()
    h.at(10 * S).fault("block", src=1, dst=2)
    h.at(12 * S)
    _exclude(h, 12, isolated=1)
    h.at(15 * S)
    _exclude(h, 16, isolated=1)  # the majority reconfigured again for nothing
    h.at(19 * S).state(1, "operational", "gather")  # still gathering at the unblock
    h.at(20 * S).fault("unblock", src=1, dst=2)
    h.at(21 * S).fault("crash", 3)

    [fault] = one_way_faults(h.build())
    assert fault.majority_views == 2
    assert not fault.settled
    assert fault.settle_ns == 10 * S  # the whole block
    assert fault.merge_ns is None  # no ring of everyone before the next fault


def test_an_unseen_block_isolates_nobody() -> None:
    h = _five_in_one_ring()
    h.at(10 * S).fault("block", src=3, dst=4)
    h.at(10 * S + 1000).fault("unblock", src=3, dst=4)
    [fault] = one_way_faults(h.build())
    assert fault.isolated is None and fault.settle_ns is None
    assert fault.majority_views == 0 and fault.merge_ns == 0
