"""The pure quorum rules (gcs.quorum.rules): verdicts, options, merging, last_man_standing
(RFC 0008 §3).

No sockets, no group layer: every verdict is a function of members, rules and state.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

import gcs
from gcs.quorum.rules import (
    QuorumOptions,
    QuorumReason,
    QuorumRules,
    QuorumState,
    decide,
    initial_state,
    lowered,
    merge_states,
    state_from_wire,
    state_to_wire,
)
from gcs.wire.frames import RingId

RING = RingId(seq=8, rep=1)


def rules(nodes: int = 5, votes: dict[int, int] | None = None, **options: object) -> QuorumRules:
    return QuorumRules.build(range(1, nodes + 1), votes, QuorumOptions(**options))  # type: ignore[arg-type]


def verdict(
    r: QuorumRules, members: tuple[int, ...], state: QuorumState | None = None
) -> gcs.Quorum:
    return decide(r, RING, members, state or initial_state(r))[0]


@pytest.mark.req("QRM-3.1-1")
def test_majority_of_votes_is_quorate() -> None:
    """QRM-3.1-1: quorum is expected // 2 + 1 votes; a configuration with that many is quorate."""
    r = rules(5)
    assert verdict(r, (1, 2, 3)).quorate
    q = verdict(r, (1, 2))
    assert not q.quorate and q.quorum == 3 and q.total_votes == 2 and q.expected_votes == 5
    assert q.reason is QuorumReason.MINORITY
    weighted = rules(3, votes={1: 3})
    assert verdict(weighted, (1,)).quorate, "3 of 5 votes"
    assert not verdict(weighted, (2, 3)).quorate


@pytest.mark.req("QRM-3.1-1")
def test_expected_votes_above_the_sum_raises_the_bar() -> None:
    """QRM-3.1-1: a configured expected_votes larger than the nodes' votes counts."""
    r = rules(3, expected_votes=5)
    assert not verdict(r, (1, 2)).quorate
    assert verdict(r, (1, 2, 3)).quorate


@pytest.mark.req("QRM-3.1-2", "QRM-3.5-1", "QRM-3.5-2", "QRM-3.5-4")
@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"expected_votes": 2}, "quorum.expected_votes"),
        ({"expected_votes": 0}, "quorum.expected_votes"),
        ({"two_node": True}, "quorum.two_node"),
        ({"last_man_standing": True}, "quorum.last_man_standing"),
        ({"auto_tie_breaker": True, "auto_tie_breaker_node": 9}, "quorum.auto_tie_breaker_node"),
        (
            {"auto_tie_breaker": True, "auto_tie_breaker_node": "middle"},
            "quorum.auto_tie_breaker_node",
        ),
        ({"last_man_standing_window_ms": 0}, "quorum.last_man_standing_window_ms"),
        ({"wait_for_all": 1}, "quorum.wait_for_all"),
        ({"wait_for_all": True, "expected_votes": 4}, "quorum.wait_for_all"),
    ],
)
def test_bad_options_name_their_field(options: dict[str, object], field: str) -> None:
    """QRM-3.1-2, QRM-3.5-1, QRM-3.5-2, QRM-3.5-4: refused with errors naming the field."""
    with pytest.raises(gcs.ConfigError) as info:
        rules(3, **options)
    assert info.value.field == field


def test_bad_votes_and_unknown_keys_name_their_field() -> None:
    with pytest.raises(gcs.ConfigError) as info:
        rules(3, votes={4: 1})
    assert info.value.field == "votes[4]"
    with pytest.raises(gcs.ConfigError) as info:
        rules(3, votes={1: -1})
    assert info.value.field == "votes[1]"
    with pytest.raises(gcs.ConfigError) as info:
        QuorumOptions.from_mapping({"wait_for_al": True})
    assert info.value.field == "quorum.wait_for_al"
    with pytest.raises(gcs.ConfigError) as info:
        rules(3, votes={1: 2}, last_man_standing=True, wait_for_all=True)
    assert info.value.field == "quorum.last_man_standing"


def test_config_reads_quorum_table_and_node_votes(tmp_path: object) -> None:
    """The [quorum] table and [[nodes]] votes reach the rules; errors name nodes[i].votes."""
    raw = {
        "cluster_name": "q",
        "node_id": 1,
        "nodes": [
            {"id": 1, "address": "127.0.0.1:7001", "votes": 2},
            {"id": 2, "address": "127.0.0.1:7002"},
            {"id": 3, "address": "127.0.0.1:7003"},
        ],
        "quorum": {"wait_for_all": True, "expected_votes": 4},
    }
    config = gcs.Config.from_mapping(raw)
    r = config.quorum_rules()
    assert r.votes == {1: 2, 2: 1, 3: 1} and r.expected_votes == 4 and r.wait_for_all
    raw["nodes"][1]["votes"] = "x"  # type: ignore[index]
    with pytest.raises(gcs.ConfigError) as info:
        gcs.Config.from_mapping(raw)
    assert info.value.field == "nodes[1].votes"


@pytest.mark.req("QRM-3.5-1")
def test_two_node_keeps_one_node_quorate_after_both_were_seen() -> None:
    """QRM-3.5-1: two_node needs one vote; wait_for_all is on by default and blocks at start."""
    r = rules(2, two_node=True)
    assert r.wait_for_all
    alone = verdict(r, (1,))
    assert not alone.quorate and alone.reason is QuorumReason.WAIT_FOR_ALL
    both, state = decide(r, RING, (1, 2), initial_state(r))
    assert both.quorate
    one = decide(r, RING, (2,), state)[0]
    assert one.quorate and one.quorum == 1 and one.reason is QuorumReason.TWO_NODE


@pytest.mark.req("QRM-3.5-2")
def test_wait_for_all_rearms_when_not_quorate() -> None:
    """QRM-3.5-2: armed at start and whenever not quorate; then only all votes clear it."""
    r = rules(5, wait_for_all=True)
    start = initial_state(r)
    assert start.wfa_armed
    assert verdict(r, (1, 2, 3), start).reason is QuorumReason.WAIT_FOR_ALL
    full, state = decide(r, RING, (1, 2, 3, 4, 5), start)
    assert full.quorate and not state.wfa_armed
    three, state = decide(r, RING, (1, 2, 3), state)
    assert three.quorate, "already complete once: a majority suffices"
    two, state = decide(r, RING, (1, 2), state)
    assert not two.quorate and state.wfa_armed
    assert not decide(r, RING, (1, 2, 3), state)[0].quorate, "re-armed: needs all again"


@pytest.mark.req("QRM-3.5-6")
def test_tie_breaker_decides_an_exact_half() -> None:
    """QRM-3.5-6: an exact half of an even expected count is quorate with the tie-breaker."""
    low = rules(4, auto_tie_breaker=True)
    assert verdict(low, (1, 2)).quorate and verdict(low, (1, 2)).reason is QuorumReason.TIE_BREAKER
    assert not verdict(low, (3, 4)).quorate
    high = rules(4, auto_tie_breaker=True, auto_tie_breaker_node="highest")
    assert verdict(high, (3, 4)).quorate and not verdict(high, (1, 2)).quorate
    chosen = rules(4, auto_tie_breaker=True, auto_tie_breaker_node=3)
    assert verdict(chosen, (2, 3)).quorate and not verdict(chosen, (1, 4)).quorate
    odd = rules(5, auto_tie_breaker=True)
    assert not verdict(odd, (1, 2)).quorate, "no exact half of an odd count"


@pytest.mark.req("QRM-3.5-3")
def test_last_man_standing_lowers_and_total_votes_raise() -> None:
    """QRM-3.5-3: lowered to the members' votes in a quorate configuration, raised by more."""
    r = rules(5, last_man_standing=True, wait_for_all=True)
    _, state = decide(r, RING, (1, 2, 3, 4, 5), initial_state(r))
    q3, state = decide(r, RING, (1, 2, 3), state)
    assert q3.quorate and q3.expected_votes == 5
    result = lowered(r, RING, (1, 2, 3), state)
    assert result is not None
    low, state = result
    assert low.quorate and low.expected_votes == 3 and low.quorum == 2
    assert decide(r, RING, (1, 2), state)[0].quorate, "2 of the lowered 3"
    assert lowered(r, RING, (1, 2, 3), state) is None, "nothing left to lower"
    grown, state = decide(r, RING, (1, 2, 3, 4), state)
    assert grown.expected_votes == 4, "more votes than expected raise the count"
    assert lowered(rules(5), RING, (1, 2, 3), state) is None, "only with the option"


@pytest.mark.req("QRM-3.5-5")
def test_stored_expected_votes_apply_only_to_last_man_standing() -> None:
    """QRM-3.5-5: a stored lowered count is used after a restart, never above the configured."""
    lms = rules(5, last_man_standing=True, wait_for_all=True)
    assert initial_state(lms, 3).expected_votes == 3
    assert initial_state(lms, 9).expected_votes == 5
    assert initial_state(rules(5), 3).expected_votes == 5


@pytest.mark.req("QRM-3.4-2")
def test_merge_takes_quorate_members_as_the_authority() -> None:
    """QRM-3.4-2: quorate members' expected votes win; a quorate member clears wait_for_all."""
    r = rules(5, last_man_standing=True, wait_for_all=True)
    survivors = QuorumState(2, False, True)
    returning = QuorumState(5, True, False)
    merged = merge_states(r, [returning, survivors, returning])
    assert merged == QuorumState(2, False, False)
    assert decide(r, RING, (1, 2, 3), merged)[0].quorate
    cold = merge_states(r, [returning, QuorumState(3, True, False)])
    assert cold.expected_votes == 5 and cold.wfa_armed


@pytest.mark.req("QRM-3.4-1")
def test_state_wire_round_trip_and_cautious_default() -> None:
    """QRM-3.4-1: announced states round-trip; a malformed one is the most cautious state."""
    r = rules(5, wait_for_all=True)
    state = QuorumState(4, False, True)
    assert state_from_wire(r, state_to_wire(state)) == state
    cautious = QuorumState(5, True, False)
    for bad in (None, [], [4, False], [9, False, True], [4, 1, True], ["4", False, True], 7):
        assert state_from_wire(r, bad) == cautious


# ---------------------------------------------------------------------- safety, exhaustively


def _static_rules() -> st.SearchStrategy[QuorumRules]:
    @st.composite
    def build(draw: st.DrawFn) -> QuorumRules:
        nodes = draw(st.integers(1, 7))
        votes = {n: draw(st.integers(0, 3)) for n in range(1, nodes + 1)}
        if sum(votes.values()) == 0:
            votes[1] = 1
        extra = draw(st.integers(0, 2))
        atb = draw(st.booleans())
        return rules(
            nodes,
            votes=votes,
            expected_votes=sum(votes.values()) + extra,
            auto_tie_breaker=atb,
            auto_tie_breaker_node=draw(st.sampled_from(["lowest", "highest"])),
        )

    return build()


@pytest.mark.req("QRM-3.6-1")
@given(_static_rules())
def test_two_disjoint_configurations_are_never_both_quorate(r: QuorumRules) -> None:
    """QRM-3.6-1: under static rules, any two quorate member sets intersect."""
    nodes = sorted(r.votes)
    quorate = []
    for size in range(1, len(nodes) + 1):
        for members in itertools.combinations(nodes, size):
            if verdict(r, members).quorate:
                quorate.append(set(members))
    for a, b in itertools.combinations(quorate, 2):
        assert a & b, f"disjoint quorate configurations {a} and {b} under {r}"


@pytest.mark.req("QRM-3.2-1")
@given(_static_rules(), st.data())
def test_members_agree_on_the_verdict(r: QuorumRules, data: st.DataObject) -> None:
    """QRM-3.2-1: the verdict depends only on the members, the rules and the shared state."""
    nodes = sorted(r.votes)
    members = tuple(sorted(data.draw(st.sets(st.sampled_from(nodes), min_size=1))))
    shuffled = data.draw(st.permutations(members))
    assert verdict(r, members) == verdict(r, tuple(shuffled))
