"""The group layer's quorum bookkeeping: verdicts in the stream, and primary-component members.

``gcs.groups.state.GroupState`` composes one ``QuorumTracker`` when the node has quorum rules. The
tracker turns configurations into ``gcs.quorum.rules`` verdicts at the right point of the stream
(RFC 0008 §3.3): at the regular configuration when the verdict needs nothing from other nodes,
else where the last announcement of the round is delivered (announcements carry each node's
quorum state). It also keeps the one piece of quorum state that changes inside a configuration:
``last_man_standing`` lowers the expected votes when a *record* says so (``encode_lms``), so
every member lowers it at the same point.

Primary-component members (RFC 0008 §4). A member that joined with ``primary=True`` receives
messages only where they belong to the history of a quorate configuration:

* delivered in a regular configuration whose verdict is quorate, while the group layer is
  settled (every node holds the same group state): passed on;
* delivered in a regular configuration that is not quorate, or while the group layer is not
  settled (a configuration that added nodes, until its announcements are in): dropped
  (counted) — the sides that just met may hold different application states, and only the
  application (state transfer, ``gcs.transfer.machine``) can reconcile them;
* delivered in a transitional configuration, or while the verdict is pending: *held*, together
  with the views and stream ends that follow them (so the stream keeps its order), until the
  next verdict; then passed on only if that configuration is quorate *and* consists exactly of
  the members that moved together from the old one (it added no nodes; the layer was
  settled), and dropped otherwise. A configuration whose verdict never arrives (a
  transitional configuration cut its round short) counts as not quorate.

With safe messages this gives virtual synchrony inside the primary component: members of a
quorate configuration that deliver a safe message in it know every member has it, and a member
that delivers it later, in the transitional configuration, applies it only if it moves on, with
the members it moved with and nobody else, into the next quorate configuration — never in a
minority, and never into a merge where the other side may have gone further (a node paused
through a whole quorate configuration of the others would otherwise apply old messages on
top of a stale state). RFC 0008 §4.3 has the argument.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, replace

from gcs.quorum.nodelist import (
    NodeChange,
    NodeList,
    PersistNodes,
    adjust_state,
    apply_change,
    check_change,
    list_from_wire,
    list_to_wire,
    rules_for,
)
from gcs.quorum.rules import (
    Quorum,
    QuorumReason,
    QuorumRules,
    QuorumState,
    abandoned,
    decide,
    initial_state,
    lowered,
    merge_states,
    state_from_wire,
    state_to_wire,
)
from gcs.wire.frames import RingId

__all__ = [
    "CONTROL_DIRECTED",
    "CONTROL_LMS",
    "TAIL",
    "LmsTimer",
    "Persist",
    "PersistQuorum",
    "QuorumTracker",
    "decode_lms",
    "encode_lms",
]

CONTROL_DIRECTED = 1
"""First byte of a group-layer control record carrying a point-to-point message."""
CONTROL_LMS = 2
"""First byte of a control record lowering expected votes (last_man_standing)."""
_LMS = struct.Struct(">BQI")  # type, ring seq, ring rep


@dataclass(frozen=True, slots=True)
class PersistQuorum:
    """The dynamic expected vote count changed (last_man_standing): store it durably."""

    expected_votes: int


Persist = PersistQuorum | PersistNodes
"""What the driver stores for the group layer, in the order given."""


@dataclass(frozen=True, slots=True)
class LmsTimer:
    """After ``delay_ns``, submit ``GroupState.lms_record(ring_id)`` if it returns a record."""

    ring_id: RingId
    delay_ns: int


def encode_lms(ring: RingId) -> bytes:
    """The control record data asking every member of ``ring`` to lower its expected votes."""
    return _LMS.pack(CONTROL_LMS, ring.seq, ring.rep)


def decode_lms(data: bytes) -> RingId | None:
    if len(data) != _LMS.size or data[0] != CONTROL_LMS:
        return None
    _, seq, rep = _LMS.unpack(data)
    return RingId(seq=seq, rep=rep)


Held = tuple[str, tuple[int, ...], object, int]
"""(group, handles, event or None for a stream end, kind): one output, in stream order."""
OTHER, MESSAGE, TAIL_CANDIDATE, TAIL = 0, 1, 2, 3
"""Held kinds: a view, verdict or end; a message; a message delivered in the transitional
configuration after a quorate, settled one (its ring's *tail*); such a message released into a
configuration it may not be applied in — handed, marked uncommitted, to members that resolve
tails (``gcs.transfer.machine``), dropped for the others."""


class QuorumTracker:
    """Verdicts and the primary-component hold for one node (see the module docstring)."""

    def __init__(
        self,
        node_id: int,
        rules: QuorumRules,
        stored_expected: int | None,
        nodes: NodeList | None = None,
    ) -> None:
        self.me = node_id
        self.base_rules = rules
        """The configuration file's rules; ``rules`` follows the node list from them."""
        self.nodes = NodeList.bootstrap(rules.votes) if nodes is None else nodes
        """The node list this node holds (RFC 0008 §3.7): version 0 is the file's."""
        self.rules = rules_for(rules, self.nodes)
        rules = self.rules
        self.state: QuorumState = initial_state(rules, stored_expected)
        self.verdict: Quorum | None = None
        """The last final verdict (of the current configuration, or an earlier one)."""
        self.pending: Quorum | None = None
        """A provisional, not-quorate value while a verdict waits for the announcements."""
        self.holding = False
        self.quorate = False
        self.in_transitional = False
        self.tail_ok = False
        """In a transitional configuration that followed a quorate, settled one."""
        self.in_sync = False
        """Set by the group layer: it is settled (same group state at every node of the ring)."""
        self.held: list[Held] = []
        self.announced: dict[int, object] = {}
        self.announced_nodes: dict[int, NodeList | None] = {}
        self.node_conflicts = 0
        """Merges that met two different lists of one version (RFC 0008 QRM-3.7-7)."""
        self.filtered = 0
        """Messages primary-component members did not receive (not quorate)."""
        self._stored = self.state.expected_votes

    def restore(self, stored_expected: int | None) -> None:
        """Before the first configuration: the expected votes an earlier incarnation stored."""
        self.state = initial_state(self.rules, stored_expected)
        self._stored = self.state.expected_votes

    def restore_nodes(self, nodes: NodeList) -> None:
        """Before the first configuration: the list an earlier incarnation stored (QRM-3.7-4)."""
        if nodes.version > self.nodes.version:
            self.nodes = nodes
            self.rules = rules_for(self.base_rules, nodes)
            self.state = initial_state(self.rules, None)
            self._stored = self.state.expected_votes

    @property
    def current(self) -> Quorum | None:
        return self.pending or self.verdict

    def wire_state(self) -> list[int | bool]:
        return state_to_wire(self.state)

    def wire_nodes(self) -> list[object] | None:
        """The announcement's ``nodes`` entry, when the list may change (QRM-3.7-6)."""
        return list_to_wire(self.nodes) if self.base_rules.node_changes else None

    # ------------------------------------------------------------------ configurations

    def on_transitional(self, ring: RingId, members: tuple[int, ...]) -> None:
        """Hold from here; a verdict still pending is abandoned (its held messages dropped).

        The nodes that moved together are judged too (RFC 0008 QRM-3.4-3): a node that left a
        quorate configuration with too few of its votes is no longer an authority on expected
        votes or wait_for_all when it meets other nodes — else it could lend a quorum to a
        second partition while the rest of its old configuration goes on quorate.
        """
        if self.pending is not None:
            self.pending = None
            self.state = abandoned(self.rules, self.state)
            self._drop_held_messages()
        if self.state.quorate:
            moved, _ = decide(self.rules, ring, members, self.state)
            if not moved.quorate:
                self.state = abandoned(self.rules, self.state)
        self.tail_ok = self.quorate and self.in_sync and not self.holding
        self.in_transitional = True
        self.holding = True
        self.quorate = False

    def on_regular(
        self, ring: RingId, members: tuple[int, ...], immediate: bool, clean: bool
    ) -> tuple[Quorum | None, list[Held], list[Persist]]:
        """A regular configuration: its verdict now (and the released hold), or pending.

        ``clean``: its members are exactly those that moved together from the previous one,
        which was settled — the only case in which held old-ring messages may be passed on.
        """
        self.announced = {}
        self.announced_nodes = {}
        self.in_sync = clean
        self.in_transitional = False
        if immediate:
            return self._final(decide(self.rules, ring, members, self.state), keep=clean)
        total = self.rules.total(members)
        expected = max(self.state.expected_votes, total)
        self.pending = Quorum(
            ring, False, members, total, expected, expected // 2 + 1, QuorumReason.MINORITY, True
        )
        self.holding = True
        return None, [], []

    def on_announced(self, node: int, item: object, nodes_item: object = None) -> None:
        """Keep a member's announced state (parsed at the settling point, under the merged list)."""
        self.announced[node] = item
        if self.base_rules.node_changes:
            self.announced_nodes[node] = list_from_wire(nodes_item)

    def on_settled(
        self, ring: RingId, members: Iterable[int]
    ) -> tuple[Quorum | None, list[Held], list[Persist]]:
        """Every member announced: the pending verdict, from the merged states and lists."""
        if self.pending is None:
            return None, [], []
        nodes = tuple(sorted(members))
        persist: list[Persist] = []
        conflict = False
        if self.base_rules.node_changes:
            conflict = self._merge_lists(nodes, persist)
        rules = self.rules
        states = [state_from_wire(rules, self.announced.get(n)) for n in nodes]  # absent: cautious
        merged = merge_states(rules, states)
        result = decide(rules, ring, nodes, merged)
        if conflict:
            result = (
                replace(result[0], quorate=False, reason=QuorumReason.MINORITY),
                abandoned(rules, result[1]),
            )
        # What was held came before the settling point: from a transitional configuration that
        # led into this merge, or from this configuration while unsettled. Never passed on.
        verdict, released, more = self._final(result, keep=False)
        return verdict, released, persist + more

    def _merge_lists(self, nodes: tuple[int, ...], persist: list[Persist]) -> bool:
        """Adopt the newest announced list (QRM-3.7-6); True if one version had two lists."""
        lists = [self.announced_nodes.get(n) for n in nodes if n != self.me]
        newest = self.nodes
        conflict = False
        for other in lists:
            if other is None:
                continue
            if other.version > newest.version:
                newest = other
        for other in [*lists, self.nodes]:
            if other is not None and other.version == newest.version and other != newest:
                conflict = True
        if conflict:
            self.node_conflicts += 1
        if newest is not self.nodes and newest != self.nodes:
            self._adopt(newest, persist)
        return conflict

    def _adopt(self, nodes: NodeList, persist: list[Persist]) -> None:
        """Hold ``nodes`` from here: stored first, then its rules and expected votes."""
        persist.append(PersistNodes(nodes))
        delta = nodes.total_votes() - self.nodes.total_votes()
        self.nodes = nodes
        self.rules = rules_for(self.base_rules, nodes)
        self.state = adjust_state(self.state, delta)

    def on_node_change(
        self, change: NodeChange, current: RingId, members: tuple[int, ...], regular: bool
    ) -> tuple[str | None, tuple[Quorum | None, list[Held], list[Persist]]]:
        """A change record delivered: apply it if it may (QRM-3.7-2), else say why not.

        Applies in the regular configuration of the ring it names while that configuration is
        quorate and settled, or in the transitional configuration right after it if it was; on
        the list version it names; and only if ``check_change`` accepts it.
        """
        nothing: tuple[Quorum | None, list[Held], list[Persist]] = (None, [], [])
        why = self._change_gate(change, current, regular)
        if why is not None:
            return why, nothing
        refusal = check_change(self.nodes, change)
        if refusal is not None:
            return refusal.value, nothing
        persist: list[Persist] = []
        self._adopt(apply_change(self.nodes, change), persist)
        if not regular:
            return None, (None, [], persist)
        verdict, released, more = self._final(
            decide(self.rules, current, members, self.state), keep=True
        )
        return None, (verdict, released, persist + more)

    def _change_gate(self, change: NodeChange, current: RingId, regular: bool) -> str | None:
        if not self.base_rules.node_changes:
            return "disabled"
        verdict = self.verdict
        if verdict is None or change.ring != verdict.ring_id:
            return "superseded"
        if regular:
            ok = (
                change.ring == current
                and self.pending is None
                and not self.holding
                and verdict.quorate
                and self.in_sync
            )
        else:
            ok = self.in_transitional and self.tail_ok
        if not ok:
            return "not_quorate"
        if change.base != self.nodes.version:
            return "superseded"
        return None

    def may_change(self, ring: RingId) -> bool:
        """Whether a change made now in ``ring`` would apply (the submitter's check)."""
        verdict = self.verdict
        return (
            self.base_rules.node_changes
            and self.pending is None
            and not self.holding
            and self.in_sync
            and verdict is not None
            and verdict.ring_id == ring
            and verdict.quorate
        )

    def on_lms(
        self, ring: RingId, current: RingId, members: tuple[int, ...], regular: bool
    ) -> tuple[Quorum | None, list[Held], list[Persist]]:
        """A last_man_standing record delivered: lower expected votes if it still applies."""
        if not regular or ring != current or self.pending is not None:
            return None, [], []
        result = lowered(self.rules, ring, members, self.state)
        if result is None:
            return None, [], []
        return self._final(result, keep=True)

    def _final(
        self, result: tuple[Quorum, QuorumState], keep: bool
    ) -> tuple[Quorum, list[Held], list[Persist]]:
        verdict, state = result
        persist: list[Persist] = []
        if self.rules.last_man_standing and state.expected_votes != self._stored:
            self._stored = state.expected_votes
            persist.append(PersistQuorum(state.expected_votes))
        self.verdict, self.pending, self.state = verdict, None, state
        self.quorate = verdict.quorate
        released = self._release(keep and verdict.quorate)
        return verdict, released, persist

    def lms_timer(self, verdict: Quorum) -> LmsTimer | None:
        """The lowest member of a shrunk quorate configuration starts the window (§3.5)."""
        rules = self.rules
        if not (rules.last_man_standing and verdict.quorate):
            return None
        if verdict.total_votes >= verdict.expected_votes or min(verdict.members) != self.me:
            return None
        return LmsTimer(verdict.ring_id, rules.last_man_standing_window_ns)

    def lms_applies(self, ring: RingId) -> bool:
        verdict = self.verdict
        return (
            self.pending is None
            and not self.holding
            and verdict is not None
            and verdict.ring_id == ring
            and verdict.quorate
            and verdict.total_votes < verdict.expected_votes
        )

    # ------------------------------------------------------------------ the hold

    def route(
        self, group: str, handles: tuple[int, ...], event: object, message: bool
    ) -> Held | None:
        """Where an output for primary members goes: held, passed on (returned), or dropped."""
        kind = MESSAGE if message else OTHER
        if self.holding:
            if message and self.in_transitional and self.tail_ok:
                kind = TAIL_CANDIDATE
            self.held.append((group, handles, event, kind))
            return None
        if message and not (self.quorate and self.in_sync):
            self.filtered += 1
            return None
        return (group, handles, event, kind)

    def _release(self, keep_messages: bool) -> list[Held]:
        out: list[Held] = []
        for group, handles, event, kind in self.held:
            if kind in (MESSAGE, TAIL_CANDIDATE) and keep_messages:
                out.append((group, handles, event, MESSAGE))
            elif kind == TAIL_CANDIDATE:
                out.append((group, handles, event, TAIL))
            elif kind == MESSAGE:
                self.filtered += 1
            else:
                out.append((group, handles, event, kind))
        self.held = []
        self.holding = False
        return out

    def _drop_held_messages(self) -> None:
        """An abandoned verdict: its own messages go; an earlier ring's tail stays held."""
        kept = [item for item in self.held if item[3] != MESSAGE]
        self.filtered += len(self.held) - len(kept)
        self.held = kept
