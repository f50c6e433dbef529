"""Quorum: which configurations may act, decided the same way by every member (RFC 0008 §3).

Theory of operation. A ring splits into partitions; each goes on with its own ring (EVS). A
replicated service that must not change state in two partitions at once asks one question of
every regular configuration: *is it quorate?* Here the answer is a pure function of

* the configuration's members (node ids, identical at every member: GUAR-5-5),
* the quorum rules (``QuorumRules``: per-node votes, ``expected_votes`` and corosync
  votequorum's options, from the configuration file, identical at every node), and
* a small quorum state (``QuorumState``: dynamic expected votes, the wait-for-all flag, whether
  the previous configuration was quorate),

so every member reaches the same verdict without exchanging anything, as long as the members
share the state. They do whenever they moved together from the previous regular configuration
(the configuration added no nodes): they saw the same stream, so they updated the state at the
same points. When a configuration adds nodes, the state differs between the sides, and the
options that read it (``wait_for_all``, ``last_man_standing``) need the other sides' state: each
node carries its state in the announcement the group layer already makes at such a
configuration (RFC 0006 §3.4), and the verdict is reached where the last announcement is
delivered — again the same point everywhere. With only static rules (votes, ``expected_votes``,
``two_node``, ``auto_tie_breaker``) the verdict never needs the state and is immediate.

The verdict (``decide``): with ``T`` the votes of the members and ``E`` the expected votes
(``max(state.expected_votes, T)``), the configuration needs ``E // 2 + 1`` votes (1 with
``two_node``); ``wait_for_all`` blocks it while armed unless ``T == E``; an exact half
(``2T == E``) is quorate with ``auto_tie_breaker`` if it holds the tie-breaker node. Two
configurations that are quorate under the same ``E`` have a common member, so under static rules
at most one partition is quorate at a time (RFC 0008 §3.6 states what ``two_node`` and
``last_man_standing`` trade for availability).

Nothing here does I/O or reads a clock: ``last_man_standing``'s window is a duration the driver
times; the decision to lower ``expected_votes`` is a record in the total order
(``gcs.groups.state``), so every member lowers it at the same point.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from gcs.errors import ConfigError
from gcs.wire.frames import RingId

__all__ = [
    "MAX_VOTES",
    "abandoned",
    "Quorum",
    "QuorumOptions",
    "QuorumReason",
    "QuorumRules",
    "QuorumState",
    "decide",
    "initial_state",
    "lowered",
    "merge_states",
    "state_from_wire",
    "state_to_wire",
]

MS = 1_000_000
MAX_VOTES = 1000
"""Largest vote count of one node (corosync allows more; nobody needs it)."""
_HOUR_MS = 3_600_000
_U32 = (1 << 32) - 1


class QuorumReason(enum.StrEnum):
    """Why a configuration is (not) quorate."""

    MAJORITY = "majority"  # enough votes
    MINORITY = "minority"  # not enough votes
    WAIT_FOR_ALL = "wait_for_all"  # enough votes, but wait_for_all is armed and not all are here
    TIE_BREAKER = "tie_breaker"  # exactly half the votes, with the tie-breaker node
    TWO_NODE = "two_node"  # one of a two-node cluster (two_node = true)


@dataclass(frozen=True, slots=True)
class Quorum:
    """The quorum verdict of one regular configuration, as ``node.quorum`` and in group streams.

    ``quorum`` is the number of votes the configuration needed; ``pending`` is True only on
    ``node.quorum`` while the verdict waits for the other sides' announcements (it is then not
    quorate yet); stream events are never pending.
    """

    ring_id: RingId
    quorate: bool
    members: tuple[int, ...]
    total_votes: int
    expected_votes: int
    quorum: int
    reason: QuorumReason
    pending: bool = False

    def __str__(self) -> str:
        word = "quorate" if self.quorate else "not quorate"
        if self.pending:
            word = "pending"
        return (
            f"{word} in {self.ring_id}: {self.total_votes}/{self.expected_votes} votes, "
            f"{self.quorum} needed ({self.reason.value})"
        )


@dataclass(frozen=True, slots=True)
class QuorumState:
    """What the verdict depends on besides the members; identical at members that moved together.

    ``expected_votes`` is the dynamic expected vote count (``last_man_standing`` lowers it;
    more votes than expected raise it); ``wfa_armed`` is corosync's wait_for_all_status (armed at
    start and whenever the node is not quorate); ``quorate`` is the last verdict.
    """

    expected_votes: int
    wfa_armed: bool
    quorate: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class QuorumOptions:
    """The ``[quorum]`` table of the configuration file (corosync votequorum's option names).

    ``expected_votes`` None means the sum of all nodes' votes; ``wait_for_all`` None means
    ``two_node``; ``auto_tie_breaker_node`` is ``"lowest"``, ``"highest"`` or a node id.
    """

    expected_votes: int | None = None
    two_node: bool = False
    wait_for_all: bool | None = None
    last_man_standing: bool = False
    last_man_standing_window_ms: int = 10_000
    auto_tie_breaker: bool = False
    auto_tie_breaker_node: str | int = "lowest"
    node_changes: bool = False

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> QuorumOptions:
        """From a parsed ``[quorum]`` table; unknown keys are errors naming ``quorum.<key>``."""
        known = {f.name for f in fields(cls)}
        for key in raw:
            if key not in known:
                raise ConfigError(f"quorum.{key}", f"unknown setting (known: {sorted(known)})")
        return cls(**dict(raw))


@dataclass(frozen=True, slots=True)
class QuorumRules:
    """Validated, resolved quorum rules for a node list. Build with ``QuorumRules.build``."""

    votes: Mapping[int, int] = field(hash=False)
    expected_votes: int
    two_node: bool = False
    wait_for_all: bool = False
    last_man_standing: bool = False
    last_man_standing_window_ns: int = 10_000 * MS
    tie_breaker: int | None = None
    """The auto_tie_breaker node (resolved), or None when the option is off."""
    node_changes: bool = False
    """The node list may change at run time (RFC 0008 §3.7): verdicts at merges then wait for
    the announcements, which carry each node's list."""

    @property
    def static(self) -> bool:
        """True when no verdict depends on state exchanged between the sides of a merge."""
        return not (self.wait_for_all or self.last_man_standing or self.node_changes)

    def total(self, members: Iterable[int]) -> int:
        votes = self.votes
        return sum(votes.get(n, 0) for n in members)

    @classmethod
    def build(
        cls, nodes: Iterable[int], votes: Mapping[int, int] | None, options: QuorumOptions
    ) -> QuorumRules:
        """Check ``options`` against the node list; ConfigError names the offending field."""
        node_ids = tuple(sorted(nodes))
        resolved = _check_votes(node_ids, votes)
        total = sum(resolved.values())
        expected = _check_expected(options.expected_votes, total)
        _check_bools(options)
        two_node = options.two_node
        wfa = two_node if options.wait_for_all is None else options.wait_for_all
        if wfa and expected > total:
            raise ConfigError(
                "quorum.wait_for_all",
                f"can never be satisfied: expected_votes ({expected}) is more than the {total} "
                "votes of all configured nodes",
            )
        if two_node:
            _check_two_node(node_ids, resolved, expected, options)
        lms = options.last_man_standing
        window = options.last_man_standing_window_ms
        if type(window) is not int or not 1 <= window <= _HOUR_MS:
            raise ConfigError("quorum.last_man_standing_window_ms", f"{window!r} not in 1..3600000")
        if lms:
            _check_lms(resolved, wfa)
        if options.node_changes and (two_node or options.auto_tie_breaker):
            raise ConfigError(
                "quorum.node_changes",
                "cannot be combined with two_node or auto_tie_breaker: both name nodes of a "
                "fixed list (RFC 0008 §3.7)",
            )
        tie_breaker = None
        if options.auto_tie_breaker:
            tie_breaker = _tie_breaker(node_ids, resolved, options.auto_tie_breaker_node)
        return cls(
            votes=resolved,
            expected_votes=expected,
            two_node=two_node,
            wait_for_all=wfa,
            last_man_standing=lms,
            last_man_standing_window_ns=window * MS,
            tie_breaker=tie_breaker,
            node_changes=options.node_changes,
        )


def _check_votes(node_ids: tuple[int, ...], votes: Mapping[int, int] | None) -> dict[int, int]:
    resolved = dict.fromkeys(node_ids, 1)
    if votes is None:
        return resolved
    if not isinstance(votes, Mapping):
        raise ConfigError("votes", "expected a mapping of node id to a vote count")
    for node, count in votes.items():
        if node not in resolved:
            raise ConfigError(f"votes[{node!r}]", f"{node!r} is not one of nodes {list(node_ids)}")
        if type(count) is not int or not 0 <= count <= MAX_VOTES:
            raise ConfigError(f"votes[{node}]", f"{count!r} is not an integer in 0..{MAX_VOTES}")
        resolved[node] = count
    if sum(resolved.values()) < 1:
        raise ConfigError("votes", "at least one node must have a vote")
    return resolved


def _check_expected(expected: object, total: int) -> int:
    if expected is None:
        return total
    if type(expected) is not int or not 1 <= expected <= _U32:
        raise ConfigError("quorum.expected_votes", f"{expected!r} is not an integer in 1..2^32-1")
    if expected < total:
        raise ConfigError(
            "quorum.expected_votes",
            f"{expected} is less than the {total} votes of the configured nodes: two partitions "
            "could then both be quorate",
        )
    return expected


def _check_bools(options: QuorumOptions) -> None:
    for name in ("two_node", "last_man_standing", "auto_tie_breaker", "node_changes"):
        if type(getattr(options, name)) is not bool:
            raise ConfigError(f"quorum.{name}", "expected true or false")
    if options.wait_for_all is not None and type(options.wait_for_all) is not bool:
        raise ConfigError("quorum.wait_for_all", "expected true or false")


def _check_two_node(
    node_ids: tuple[int, ...], votes: dict[int, int], expected: int, options: QuorumOptions
) -> None:
    if len(node_ids) != 2 or any(v != 1 for v in votes.values()) or expected != 2:
        raise ConfigError(
            "quorum.two_node", "needs exactly two nodes with one vote each and expected_votes 2"
        )
    if options.auto_tie_breaker:
        raise ConfigError(
            "quorum.two_node", "cannot be combined with auto_tie_breaker (corosync disables it)"
        )
    if options.last_man_standing:
        raise ConfigError("quorum.two_node", "cannot be combined with last_man_standing")


def _check_lms(votes: dict[int, int], wfa: bool) -> None:
    if any(v != 1 for v in votes.values()):
        raise ConfigError(
            "quorum.last_man_standing", "needs every node to have exactly one vote (as corosync)"
        )
    if not wfa:
        raise ConfigError(
            "quorum.last_man_standing",
            "needs wait_for_all = true: without it, nodes that come back after the survivors "
            "lowered expected_votes can form a second quorate partition (RFC 0008 §3.6)",
        )


def _tie_breaker(node_ids: tuple[int, ...], votes: dict[int, int], choice: object) -> int:
    voters = [n for n in node_ids if votes[n] > 0]
    if choice == "lowest":
        return voters[0]
    if choice == "highest":
        return voters[-1]
    if type(choice) is int and choice in votes and votes[choice] > 0:
        return choice
    raise ConfigError(
        "quorum.auto_tie_breaker_node",
        f"{choice!r} is not 'lowest', 'highest' or the id of a configured node with votes",
    )


# ---------------------------------------------------------------------- the verdict


def initial_state(rules: QuorumRules, stored_expected: int | None = None) -> QuorumState:
    """A starting node's state: wait_for_all armed, not quorate, expected votes from the rules.

    ``stored_expected`` is the dynamic expected vote count persisted by an earlier incarnation;
    it is used only with ``last_man_standing`` (the one option that lowers it), and only below
    the configured value (a changed configuration wins).
    """
    expected = rules.expected_votes
    if rules.last_man_standing and stored_expected is not None:
        expected = max(1, min(expected, stored_expected))
    return QuorumState(expected, rules.wait_for_all, False)


def decide(
    rules: QuorumRules, ring_id: RingId, members: Iterable[int], state: QuorumState
) -> tuple[Quorum, QuorumState]:
    """The verdict for a configuration of ``members`` and the state that follows it."""
    nodes = tuple(sorted(members))
    total = rules.total(nodes)
    expected = max(state.expected_votes, total)
    needed = 1 if rules.two_node else expected // 2 + 1
    blocked = rules.wait_for_all and state.wfa_armed and total != expected
    if blocked:
        quorate, reason = False, QuorumReason.WAIT_FOR_ALL
    elif total >= needed:
        quorate = True
        reason = QuorumReason.TWO_NODE if rules.two_node and total == 1 else QuorumReason.MAJORITY
    elif _tie(rules, nodes, total, expected):
        quorate, reason = True, QuorumReason.TIE_BREAKER
    else:
        quorate, reason = False, QuorumReason.MINORITY
    verdict = Quorum(ring_id, quorate, nodes, total, expected, needed, reason)
    armed = rules.wait_for_all and not quorate
    return verdict, QuorumState(expected, armed, quorate)


def _tie(rules: QuorumRules, nodes: tuple[int, ...], total: int, expected: int) -> bool:
    """auto_tie_breaker: exactly half of an even expected count, holding the tie-breaker."""
    tb = rules.tie_breaker
    return tb is not None and expected % 2 == 0 and 2 * total == expected and tb in nodes


def merge_states(rules: QuorumRules, states: Iterable[QuorumState]) -> QuorumState:
    """The state a configuration that added nodes starts from, given every member's state.

    As corosync's votequorum: members that were quorate are the authority on expected votes
    (a member that was not adopts theirs), and a member that was quorate with wait_for_all clear
    clears it for everyone (the cluster was already complete once).
    """
    items = list(states)
    if not items:
        return initial_state(rules)
    authority = [s for s in items if s.quorate] or items
    expected = max(s.expected_votes for s in authority)
    cleared = any(s.quorate and not s.wfa_armed for s in items)
    return QuorumState(expected, rules.wait_for_all and not cleared, False)


def abandoned(rules: QuorumRules, state: QuorumState) -> QuorumState:
    """The state after a configuration whose verdict never arrived: as if it was not quorate."""
    return QuorumState(state.expected_votes, rules.wait_for_all, False)


def lowered(
    rules: QuorumRules, ring_id: RingId, members: Iterable[int], state: QuorumState
) -> tuple[Quorum, QuorumState] | None:
    """last_man_standing: expected votes down to the members' votes; None if nothing changes."""
    nodes = tuple(sorted(members))
    total = rules.total(nodes)
    if not (rules.last_man_standing and state.quorate) or total >= state.expected_votes:
        return None
    return decide(rules, ring_id, nodes, QuorumState(total, state.wfa_armed, state.quorate))


# ---------------------------------------------------------------------- exchange


def state_to_wire(state: QuorumState) -> list[int | bool]:
    """The announcement's ``quorum`` entry (RFC 0008 §3.4): ``[expected, wfa_armed, quorate]``."""
    return [state.expected_votes, state.wfa_armed, state.quorate]


def state_from_wire(rules: QuorumRules, item: object) -> QuorumState:
    """Parse an announced state; a missing or malformed one is the most cautious state.

    Cautious means: the configured expected votes (the highest a correct node can hold),
    wait_for_all armed, not quorate — so a broken announcement can block a verdict, never
    create one.
    """
    cautious = QuorumState(rules.expected_votes, rules.wait_for_all, False)
    if type(item) is not list or len(item) != 3:
        return cautious
    expected, armed, quorate = item
    if type(expected) is not int or not 1 <= expected <= rules.expected_votes:
        return cautious
    if type(armed) is not bool or type(quorate) is not bool:
        return cautious
    return QuorumState(expected, armed, quorate)
