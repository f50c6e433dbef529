"""Configuration checkers: agreement and lists (RFC 0004 EVS-11-1), ring ids (EVS-11-2) and the
shape of a change (EVS-11-3)."""

from __future__ import annotations

from gcs.sim.checkers import CheckParams

from .histories import HistoryBuilder, assert_fails, assert_valid, failing, ring

R8, R12, R16 = ring(8), ring(12), ring(16)


def three_formed() -> HistoryBuilder:
    h = HistoryBuilder()
    h.boot(1, 2, 3)
    h.form(R8, {1, 2, 3})
    return h


# ---------------------------------------------------------------------- 4, 7 agreement and lists


def test_same_regular_ring_with_different_members_is_reported() -> None:
    h = HistoryBuilder()
    h.boot(1, 2, 3)
    h.change(1, R8, {1, 2, 3}, trans={1})
    h.change(2, R8, {1, 2, 3}, trans={2})
    h.change(3, R8, {1, 3}, trans={3})
    assert_fails(h.build(), "config_agreement", "regular 1.8", "node 3/1", "{1,3}", "{1,2,3}")


def test_same_transitional_config_with_different_members_is_reported() -> None:
    h = three_formed()
    h.change(1, R12, {1, 2}, trans={1, 2})
    h.change(2, R12, {1, 2}, trans={2})  # 2 forgets that 1 came from 1.8 too
    history = h.build()
    assert_fails(history, "config_agreement", "transitional 1.12 (from 1.8)", "{2}", "{1,2}")
    assert_fails(history, "change_shape", "omits node 1")


def test_two_transitional_configs_may_share_a_ring_id() -> None:
    h = HistoryBuilder()
    h.boot(1, 2, 3, 4)
    h.form(R8, {1, 2})
    h.form(ring(8, 3), {3, 4})
    h.form(R12, {1, 2, 3, 4}, reason="merge")  # trans {1,2} from 1.8 and {3,4} from 3.8
    assert_valid(h.build())


def test_wrong_left_list_on_transitional_is_reported() -> None:
    h = three_formed()
    h.transitional(1, R12, {1, 2})
    h.conf(2, "transitional", R12, {1, 2}, left=[])  # 3 left, but node 2 does not say so
    h.regular(1, R12, {1, 2})
    h.regular(2, R12, {1, 2})
    assert_fails(h.build(), "config_agreement", "node 2/1", "left={}", "expected {3}")


def test_wrong_joined_list_on_regular_is_reported() -> None:
    h = three_formed()
    h.transitional(1, R12, {1})
    h.regular(1, R12, {1}, joined=[2])
    assert_fails(h.build(), "config_agreement", "regular 1.12", "joined={2}", "expected {}")


def test_startup_singleton_must_list_itself_as_joined() -> None:
    h = HistoryBuilder()
    h.start(1)
    h.regular(1, ring(4, 1), {1}, joined=[])
    assert_fails(h.build(), "config_agreement", "joined={}", "expected {1}")


# ---------------------------------------------------------------------- 5 ring ids


def test_regular_ring_seq_going_back_is_reported() -> None:
    h = three_formed()
    h.change(1, ring(6), {1})
    assert_fails(h.build(), "ring_ids", "regular 1.6", "does not move forward", "1.8")


def test_restart_must_not_reuse_older_ring_seqs() -> None:
    h = three_formed()
    h.crash(3)
    h.boot(3, seq=8, stored_ring_seq=None)  # singleton 3.8: not above 1.8
    history = h.build()
    assert_fails(history, "ring_ids", "regular 3.8 at node 3/2", "earlier incarnation 3/1")
    assert "ring_ids" not in failing(history, CheckParams(wiped=frozenset({(3, 2)})))
    assert "ring_ids" not in failing(history, CheckParams(all_restarts_wiped=True))


def test_restart_above_the_old_rings_is_fine() -> None:
    h = three_formed()
    h.crash(3)
    h.boot(3, seq=12)
    h.form(R16, {1, 2, 3}, reason="join")
    assert_valid(h.build())


def test_installed_ring_must_exceed_the_stored_seq() -> None:
    h = HistoryBuilder()
    h.boot(1, seq=4, stored_ring_seq=20)
    assert_fails(h.build(), "ring_ids", "ring seq 4", "not above the seq 20")


def test_install_before_persist_is_reported_when_persists_are_recorded() -> None:
    h = HistoryBuilder()
    for node in (1, 2):
        h.start(node)
        h.persist(node, 4)
        h.regular(node, ring(4, node), {node}, reason="startup")
    h.persist(1, 8)
    h.change(1, R8, {1, 2}, trans={1})
    h.change(2, R8, {1, 2}, trans={2})  # node 2 never persisted 8
    assert_fails(h.build(), "ring_ids", "regular 1.8 at node 2/1", "before ring seq 8")


def test_restart_must_read_back_the_persisted_seq() -> None:
    h = HistoryBuilder()
    h.start(1)
    h.persist(1, 4)
    h.regular(1, ring(4, 1), {1})
    h.crash(1)
    h.start(1, stored_ring_seq=None)  # the store lost it
    h.persist(1, 8)
    h.regular(1, ring(8, 1), {1})
    history = h.build()
    assert_fails(history, "ring_ids", "node 1/2", "reading ring seq None", "persisted into")
    assert "ring_ids" not in failing(history, CheckParams(wiped=frozenset({(1, 2)})))


def test_a_wipe_starts_a_new_store() -> None:
    h = HistoryBuilder()
    h.start(1)
    h.persist(1, 40)
    h.regular(1, ring(40, 1), {1})
    h.crash(1)
    h.start(1)  # wiped: reads nothing
    h.persist(1, 4)
    h.regular(1, ring(4, 1), {1})
    h.crash(1)
    h.start(1, stored_ring_seq=4)  # reads what its predecessor wrote after the wipe
    h.persist(1, 8)
    h.regular(1, ring(8, 1), {1})
    wiped = CheckParams(wiped=frozenset({(1, 2)}))
    assert "ring_ids" not in failing(h.build(), wiped)
    assert "ring_ids" in failing(h.build())


# ---------------------------------------------------------------------- 6 shape


def test_skipped_transitional_configuration_is_reported() -> None:
    h = three_formed()
    for node in (1, 2, 3):
        h.regular(node, R12, {1, 2, 3})
    assert_fails(h.build(), "change_shape", "regular 1.12", "without a transitional one")


def test_first_configuration_must_be_the_singleton() -> None:
    h = HistoryBuilder()
    h.start(1)
    h.start(2)
    h.regular(1, R8, {1, 2})
    h.regular(2, R8, {1, 2})
    assert_fails(h.build(), "change_shape", "not the regular singleton {1}")


def test_transitional_must_be_followed_by_its_regular() -> None:
    h = three_formed()
    h.transitional(1, R12, {1})
    h.regular(1, R16, {1})
    assert_fails(h.build(), "change_shape", "regular 1.16", "not the regular 1.12")


def test_transitional_members_must_come_from_the_previous_ring() -> None:
    h = HistoryBuilder()
    h.boot(1, 2, 3)
    h.form(R8, {1, 2})
    h.change(1, R12, {1, 2, 3}, trans={1, 2, 3})  # 3 was not in 1.8
    v = assert_fails(h.build(), "change_shape", "not a subset of the previous regular 1.8")
    assert "node 1/1" in v.problems[0]


def test_transitional_must_not_list_a_node_from_another_ring() -> None:
    h = HistoryBuilder()
    h.boot(1, 2, 3)
    h.form(R8, {1, 2, 3})
    h.change(3, ring(12, 3), {3})
    h.change(1, R16, {1, 2, 3}, trans={1, 2, 3})
    h.change(2, R16, {1, 2, 3}, trans={1, 2, 3})
    h.change(3, R16, {1, 2, 3}, trans={3})
    history = h.build()
    assert_fails(history, "change_shape", "lists node 3", "from 3.12, not from 1.8")


def test_installing_node_must_be_a_member() -> None:
    h = three_formed()
    h.change(1, R12, {2, 3}, trans={2, 3})
    assert_fails(h.build(), "change_shape", "does not list the installing node")


def test_ending_on_a_transitional_needs_a_crash() -> None:
    h = three_formed()
    h.transitional(3, R12, {3})
    assert_fails(h.build(), "change_shape", "neither installed regular 1.12 nor crashed")
    h.crash(3)
    assert "change_shape" not in failing(h.build())
