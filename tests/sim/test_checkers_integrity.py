"""Identity and integrity checkers (RFC 0004 EVS-11-5, EVS-11-6) and the stream well-formedness
check."""

from __future__ import annotations

from gcs.history.events import Crash, Deliver, History, MsgId
from gcs.sim.checkers import check_identity, check_no_creation

from .histories import (
    HistoryBuilder,
    assert_fails,
    assert_valid,
    failing,
    partition_heal_run,
    ring,
)

R8 = ring(8)


def formed(*nodes: int) -> HistoryBuilder:
    h = HistoryBuilder()
    h.boot(*nodes)
    h.form(R8, set(nodes))
    return h


def test_partition_heal_run_is_valid() -> None:
    h, params = partition_heal_run()
    assert_valid(h.build(), params)


# ---------------------------------------------------------------------- streams


def test_event_before_start_is_reported() -> None:
    h = formed(1, 2)
    h.history.events.insert(0, Crash(0, 9, 1))
    assert_fails(h.build(), "streams", "node 9/1", "never started")


def test_events_after_crash_are_reported() -> None:
    h = formed(1, 2)
    m = h.send(1)
    h.crash(2)
    h.deliver(2, m)
    assert_fails(h.build(), "streams", "node 2/1", "after its Crash", "Deliver")


def test_two_live_incarnations_of_one_node_are_reported() -> None:
    h = formed(1, 2)
    h.start(2)  # incarnation 2 while incarnation 1 never crashed
    assert_fails(h.build(), "streams", "node 2/2", "two live incarnations")


def test_time_going_backwards_is_reported() -> None:
    h = formed(1, 2)
    h.at(1_000).send(1)
    assert_fails(h.build(), "streams", "out of time order")


# ---------------------------------------------------------------------- 1 identity


def test_one_mcast_delivered_with_different_ids_is_reported() -> None:
    h = formed(1, 2)
    m = h.send(1)
    h.deliver(1, m)
    h.deliver(2, m, msg_ids=[MsgId(1, 1, 99)])
    v = assert_fails(h.build(), "identity", "ring 1.8 seq 1", "1/1/99", "1/1/1")
    assert "node 2/1" in v.problems[0]


def test_message_delivered_under_two_seqs_is_reported() -> None:
    h = formed(1, 2)
    m1 = h.send(1)
    m2 = h.originate(1, [])  # a fragment-only mcast that a buggy node reports as m1's
    h.deliver(1, m1)
    h.deliver(1, m2)
    h.deliver(2, m1)
    h.deliver(2, m2, msg_ids=[MsgId(1, 1, 1)])
    assert_fails(h.build(), "identity", "message 1/1/1", "seq 2", "seq 1", "node 2/1")


def test_sender_field_must_match_the_message_id() -> None:
    h = formed(1, 2)
    m = h.send(1)
    h.deliver(1, m)
    h.deliver(2, m, sender=2)
    assert_fails(h.build(), "identity", "message 1/1/1", "with sender 2, not 1")


# ---------------------------------------------------------------------- 2 duplicates


def test_mcast_delivered_twice_is_reported() -> None:
    h = formed(1, 2)
    m = h.send(1)
    h.deliver_everywhere(m, [1, 2])
    h.deliver(2, m)
    v = assert_fails(h.build(), "no_duplicates", "node 2/1", "ring 1.8 seq 1", "twice")
    assert v.problem_count == 1


def test_message_delivered_in_two_mcasts_is_reported() -> None:
    h = formed(1, 2)
    m1 = h.send(1)
    m2 = h.originate(1, [MsgId(1, 1, 1)])  # the same message originated again
    h.deliver_everywhere(m1, [1, 2])
    h.deliver_everywhere(m2, [1, 2])
    history = h.build()
    assert_fails(history, "no_duplicates", "message 1/1/1 twice", "seq 1", "seq 2")
    assert_fails(history, "no_creation", "message 1/1/1 was originated again")


def test_duplicate_delivery_in_two_configurations_names_both() -> None:
    h = formed(1, 2)
    m = h.send(1)
    h.deliver(1, m)
    h.transitional(1, ring(12), {1})
    h.deliver(1, m)
    h.regular(1, ring(12), {1})
    v = assert_fails(h.build(), "no_duplicates", "regular 1.8", "transitional 1.12 (from 1.8)")
    assert "twice" in v.problems[0]


# ---------------------------------------------------------------------- 3 creation


def test_delivery_of_an_unoriginated_mcast_is_creation() -> None:
    h = formed(1, 2)
    h.deliver(2, (R8, 5), sender=1, msg_ids=[MsgId(1, 1, 7)])
    history = h.build()
    assert_fails(history, "no_creation", "node 2/1", "ring 1.8 seq 5", "1/1/7", "no incarnation")


def test_corrupt_records_are_creation() -> None:
    h = formed(1, 2)
    m = h.send(1)
    h.deliver(1, m)
    h.deliver(2, m, corrupt=1)
    assert_fails(h.build(), "no_creation", "node 2/1", "1 record(s) that are not workload")


def test_originate_without_submit_is_creation() -> None:
    h = formed(1, 2)
    m = h.originate(1, [MsgId(1, 1, 42)])
    h.deliver_everywhere(m, [1, 2])
    assert_fails(h.build(), "no_creation", "1/1/42 was not submitted before")


def test_originate_outside_the_ring_is_creation() -> None:
    h = formed(1, 2)
    msg = h.submit(2)
    h.originate(2, [msg], ring_id=ring(20))
    assert_fails(h.build(), "no_creation", "node 2/1", "while in regular 1.8", "1.20")


def test_safe_flag_must_match_the_submission() -> None:
    h = formed(1, 2)
    msg = h.submit(1, safe=True)
    h.deliver_everywhere(h.originate(1, [msg], safe=False), [1, 2])
    assert_fails(h.build(), "no_creation", "safe=False", "submitted with safe=True")


def test_message_of_a_dead_incarnation_originated_by_its_successor() -> None:
    h = formed(1, 2)
    old = h.submit(2)
    h.crash(2)
    h.boot(2, seq=12)
    h.originate(2, [old], ring_id=ring(12, 2))
    assert_fails(h.build(), "no_creation", "message 2/1/1 belongs to another incarnation")


def test_seq_originated_twice_is_creation() -> None:
    h = formed(1, 2)
    h.send(1)
    msg = h.submit(2)
    h.originate(2, [msg], seq=1)
    assert_fails(h.build(), "no_creation", "ring 1.8 seq 1 was originated again")


def test_delivery_with_ids_that_differ_from_the_originate_is_creation() -> None:
    h = formed(1, 2)
    m = h.send(1, count=2)
    h.deliver(1, m)
    h.deliver(2, m, msg_ids=[MsgId(1, 1, 1)])
    assert_fails(h.build(), "no_creation", "node 2/1", "carrying [1/1/1, 1/1/2]")


def test_fragment_only_mcasts_are_fine() -> None:
    h = formed(1, 2)
    ids = [h.submit(1)]
    first = h.originate(1, [])  # first fragment: no ids
    last = h.originate(1, ids)  # last fragment lists the message
    for m in (first, last):
        h.deliver_everywhere(m, [1, 2])
    assert_valid(h.build())


# ---------------------------------------------------------------------- invariants


def test_invariant_events_fail_the_run() -> None:
    h = formed(1, 2)
    h.invariant(2, "aru > seq")
    assert failing(h.build()) == {"core_invariants"}
    assert_fails(h.build(), "core_invariants", "node 2/1", "aru > seq")


def test_checkers_accept_a_plain_history() -> None:
    h = formed(1, 2)
    m = h.send(1)
    h.deliver_everywhere(m, [1, 2])
    history = History(list(h.build()))
    assert check_identity(history).valid is True
    assert check_no_creation(history).valid is True
    extra = Deliver(h.now_ns + 1, 2, 1, "regular", R8, R8, 9, 1, False, ())
    history.append(extra)
    assert check_no_creation(history).valid is False


# ---------------------------------------------------------------------- 21 origination state


def test_originating_outside_operational_is_reported() -> None:
    h = formed(1, 2)
    h.state(1, "gather", "operational", "installed 1.8")
    h.deliver_everywhere(h.send(1), [1, 2])
    assert "origination_state" not in failing(h.build())
    h.state(1, "operational", "gather", "token_loss")
    h.state(1, "gather", "commit", "commit 1.12")
    h.state(1, "commit", "recovery", "recovery 1.12")
    h.send(1)
    assert_fails(
        h.build(), "origination_state", "node 1/1 originated ring 1.8 seq 2", "state recovery"
    )
