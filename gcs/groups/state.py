"""Closed process groups multiplexed over the one ring, with CPG semantics (RFC 0006 §3).

Theory of operation. A *member* is ``Member(node, handle)``: a handle a node allocated when one
of its applications joined a group. Joining and leaving are records (``RecordFlags.JOIN`` /
``LEAVE``) sent through the total order like any message, so every node applies them at the same
point of the delivered stream and computes the same group view there. ``GroupState`` is a pure
function of that stream — ``Configuration`` and ``Deliver`` effects in the order the core emitted
them — plus this node's own joins and leaves; it does no I/O and never blocks.

Ring configuration changes. A transitional configuration removes the members of departed nodes:
every view that lists one of them is replaced by the same view without them (a transitional
``View``), and the regular configuration that follows gives those groups a regular view with the
same members. Nodes that move together from one ring to the next delivered the same stream
(extended virtual synchrony), so they hold the same group state and need no exchange. When the
regular configuration *adds* nodes (a node started, partitions merged), the sides' states differ:
every node then announces all its local members of all groups in one record (the
*announcement*, RFC 0006 §3.4) and the group layer is *unsettled* until the announcement of every
member of the new ring has been delivered. Each node is the authority on its own members, so
once all announcements are in, every node holds the same state, and at that point — the same
position of the stream everywhere — every group with local members gets one regular view.

The barrier (RFC 0006 §3.7). While unsettled in a regular configuration, every record but the
announcements and last_man_standing decisions — joins, leaves, messages, point-to-point
messages — is *held*, in stream order, and has no effect yet; an announcement lists its node's
members as of the announcement, so the state takes the node's members as they were when the hold
began (the announcement minus the effect of that node's held joins and leaves, undone in reverse
order). At the settling view every node holds that same state, and the held records are then
replayed in stream order exactly as records of a settled ring: joins and leaves make views at their
own positions, messages are delivered in views that list their senders, at the same position at
every member (sender-in-view, API-3.7-1). A ring change that ends the hold first (a transitional
configuration before the round completes) flushes it as an unsettled layer always did: joins and
leaves change the state without views, and messages reach only the members whose view lists their
sender — the same rule for messages the core delivers in that transitional configuration.
Departures still shrink views at once.

View ids are derived from what caused the view, never from local counters: a record's view is
named by the record's (origin ring, seq, index in its mcast); a configuration's view by the new
ring's id (and, for a transitional view, the lowest node id of the transitional configuration,
which tells the two sides of a partition apart). While the state is unsettled a view is derived
from the member's previous view, and its id carries a digest of the previous id (``lineage``),
so members whose previous views differed get different ids. Within a group: same id, same
members, at every member.

Quorum and primary components (RFC 0008). With quorum rules, every regular configuration gets a
``gcs.quorum.rules`` verdict at a point of the stream that is the same at every member (delegated to
``gcs.quorum.primary.QuorumTracker``); members that asked for it receive it as a ``Quorum`` event,
and members in primary-component mode receive messages only in quorate configurations. Group-layer
*control records* (group ``""``, kind DATA) carry point-to-point messages (``send_to``) and
``last_man_standing`` decisions; their first byte says which.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from gcs.errors import NodeListRefused
from gcs.groups.records import (
    ANNOUNCE_GROUP,
    decode_announcement_ext,
    decode_directed,
    encode_announcement,
    valid_group_name,
)
from gcs.groups.views import (
    Member,
    Message,
    Reason,
    View,
    ViewId,
    ViewReason,
    new_message,
)
from gcs.quorum.nodelist import (
    CONTROL_NODES,
    ChangeOp,
    NodeChange,
    NodeEntry,
    NodeList,
    PersistNodes,
    check_change,
    decode_change,
    encode_change,
)
from gcs.quorum.primary import (
    CONTROL_DIRECTED,
    CONTROL_LMS,
    TAIL,
    Held,
    LmsTimer,
    Persist,
    PersistQuorum,
    QuorumTracker,
    decode_lms,
    encode_lms,
)
from gcs.quorum.rules import Quorum, QuorumRules
from gcs.totem.effects import Configuration, ConfigurationKind, Deliver, ReasonKind
from gcs.wire.frames import Record, RecordFlags, RingId

__all__ = [
    "PRIMARY",
    "QUORUM_EVENTS",
    "TAILS",
    "AnnounceNeeded",
    "Emit",
    "EmitMessages",
    "GroupState",
    "MemberClosed",
    "NodeListEvent",
    "Output",
]

_LOG = logging.getLogger("gcs.groups")

_KIND = int(RecordFlags.KIND_MASK)
_DATA, _JOIN, _LEAVE = int(RecordFlags.DATA), int(RecordFlags.JOIN), int(RecordFlags.LEAVE)
_SAFE = int(RecordFlags.SAFE)
PRIMARY = 1
"""Local member mode: primary-component member (receives messages only when quorate)."""
QUORUM_EVENTS = 2
"""Local member mode: receives ``Quorum`` events (implied by PRIMARY)."""
TAILS = 4
"""Local member mode (with PRIMARY): receives its last quorate ring's tail, marked uncommitted."""


# ---------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class Emit:
    """Append ``event`` to the streams of the local members ``handles`` of ``group``."""

    group: str
    handles: tuple[int, ...]
    event: View | Message | Quorum


@dataclass(frozen=True, slots=True)
class EmitMessages:
    """Append ``messages``, in order, to the streams of the local members ``handles`` of ``group``.

    Why apart from ``Emit``: an mcast packed with many small messages for one group would cost an
    ``Emit`` per message; consecutive messages of one delivery for the same members share this
    one output instead, so the group layer makes one object per delivered message, the
    ``Message``. Only the data path makes it, for two messages or more.
    """

    group: str
    handles: tuple[int, ...]
    messages: list[Message]

    def emits(self) -> list[Emit]:
        """The same outputs, one ``Emit`` per message (for readers that want them one by one)."""
        return [Emit(self.group, self.handles, message) for message in self.messages]


@dataclass(frozen=True, slots=True)
class MemberClosed:
    """The leave of local member ``handle`` was delivered: its stream ends here."""

    group: str
    handle: int


@dataclass(frozen=True, slots=True)
class AnnounceNeeded:
    """Submit ``GroupState.announcement()`` (after the current batch of effects)."""

    ring: RingId


@dataclass(frozen=True, slots=True)
class NodeListEvent:
    """A change record was delivered, or a merge brought a newer list (RFC 0008 §3.7).

    ``change`` is the delivered record's change (None for a list adopted at a merge);
    ``refused`` says why it did not apply (None: it did); ``sender`` is the node that sent it;
    ``nodes`` is the list this node holds after it.
    """

    nodes: NodeList
    change: NodeChange | None
    refused: str | None
    sender: int


Output = (
    Emit
    | EmitMessages
    | MemberClosed
    | AnnounceNeeded
    | PersistQuorum
    | PersistNodes
    | LmsTimer
    | NodeListEvent
)

_SENDER_CACHE = 4096
"""Senders (``Member`` values) the data path keeps for reuse before it starts afresh."""


# ---------------------------------------------------------------------- the state


@dataclass(slots=True)
class _Sync:
    """An announcement round: which members of ``ring`` have not been heard from yet."""

    ring: RingId
    waiting: set[int]
    reason: Reason


@dataclass(slots=True)
class _LocalGroup:
    """This node's members of one group: handle -> active (has seen a view listing it)."""

    handles: dict[int, bool] = field(default_factory=dict)
    last_view: View | None = None
    active: tuple[int, ...] = ()
    """The active handles, kept up to date: every delivered message needs them."""
    modes: dict[int, int] = field(default_factory=dict)
    """handle -> mode bits (PRIMARY, QUORUM_EVENTS); absent: a plain member."""
    primary: tuple[int, ...] = ()
    quorum: tuple[int, ...] = ()
    """The active primary-component handles; the active handles that receive Quorum events."""

    def refresh(self) -> None:
        self.active = active = tuple(h for h, on in self.handles.items() if on)
        modes = self.modes
        if not modes:
            self.primary = self.quorum = ()
            return
        self.primary = tuple(h for h in active if modes.get(h, 0) & PRIMARY)
        self.quorum = tuple(h for h in active if modes.get(h, 0))


class GroupState:
    """The group layer of one node: feed it the core's configurations and deliveries in order.

    Inputs: ``on_configuration``, ``on_deliver`` (the delivered stream); ``add_local`` (an
    application asked to join), ``note_submitted`` (a join or leave record of ours reached the
    core's send queue), ``announcement`` (build our announcement when the driver can submit it).
    Outputs: lists of ``Emit``, ``MemberClosed`` and ``AnnounceNeeded``. Never raises on
    anything received from the ring; malformed records are ignored and counted, identically at
    every node because every node sees the same bytes.
    """

    def __init__(
        self,
        node_id: int,
        quorum: QuorumRules | None = None,
        stored_expected_votes: int | None = None,
        nodes: NodeList | None = None,
    ) -> None:
        self.me = node_id
        self.quorum_tracker = (
            None if quorum is None else QuorumTracker(node_id, quorum, stored_expected_votes, nodes)
        )
        """Quorum verdicts and the primary-component hold (None: no quorum rules)."""
        self.undeliverable = 0
        """Point-to-point messages for a member of this node that is not (any more) here."""
        self.members: dict[str, set[Member]] = {}
        self.local: dict[str, _LocalGroup] = {}
        self.intent: dict[str, set[int]] = {}
        self.ring = RingId(seq=0, rep=node_id)
        self.config_nodes: frozenset[int] = frozenset({node_id})
        self.transitional = False
        self.settled = False
        self._senders: dict[int, dict[int, Member]] = {}
        """node -> handle -> the ``Member`` value of that sender (see ``_sender``)."""
        self._sender_count = 0
        self.sync: _Sync | None = None
        self.trans_changed: dict[str, Reason] = {}
        self.barrier: list[tuple[Deliver, int, Record]] = []
        """Records held while unsettled in a regular configuration: (delivery, index, record)."""
        self._quorum_follows = False
        """Set while emitting views that a Quorum event for every member will follow."""
        self.ignored_records = 0
        """Malformed or impossible records (a buggy or hostile member): counted as drops."""
        self.stale_records = 0
        """Announcements made for an earlier ring, joins of departed nodes: normal, not drops."""
        self.held_records = 0
        """Records the barrier held (API-3.7-1): they reach members after the settling view."""
        self.outside_view = 0
        """Messages not delivered because their sender was in no view of the receiver: held
        records flushed by a ring change, and transitional deliveries, while unsettled
        (API-3.7-2)."""

    # ------------------------------------------------------------------ local side

    def add_local(
        self,
        group: str,
        handle: int,
        *,
        primary: bool = False,
        quorum_events: bool = False,
        tails: bool = False,
    ) -> None:
        """An application on this node asked to join: it becomes a member at its first view.

        ``primary``: it receives messages only in quorate configurations (RFC 0008 §4);
        ``quorum_events``: it receives ``Quorum`` events (implied by ``primary``); ``tails``
        (with ``primary``): it also receives the tails of RFC 0008 §4.2, marked uncommitted.
        All need quorum rules.
        """
        if (primary or quorum_events) and self.quorum_tracker is None:
            raise ValueError("primary-component mode and quorum events need quorum rules")
        if tails and not primary:
            raise ValueError("tails are for primary-component members")
        local = self.local.setdefault(group, _LocalGroup())
        local.handles[handle] = False
        mode = (PRIMARY | QUORUM_EVENTS) if primary else (QUORUM_EVENTS if quorum_events else 0)
        if tails:
            mode |= TAILS
        if mode:
            local.modes[handle] = mode

    @property
    def quorum(self) -> Quorum | None:
        """This node's current quorum verdict (provisional and not quorate while pending)."""
        tracker = self.quorum_tracker
        return None if tracker is None else tracker.current

    def lms_record(self, ring: RingId) -> Record | None:
        """The last_man_standing record for ``ring`` if it still applies (RFC 0008 §3.5)."""
        tracker = self.quorum_tracker
        if tracker is None or ring != self.ring or self.transitional or not self.settled:
            return None
        if not tracker.lms_applies(ring):
            return None
        return Record(ANNOUNCE_GROUP, 0, _DATA, encode_lms(ring))

    @property
    def nodes(self) -> NodeList | None:
        """The node list this node holds (None without quorum rules)."""
        tracker = self.quorum_tracker
        return None if tracker is None else tracker.nodes

    def node_change_record(self, op: ChangeOp, entry: NodeEntry) -> Record:
        """The control record that makes this change, if it may be made now (QRM-3.7-1).

        Raises ``NodeListRefused``: ``disabled`` without quorum rules or ``node_changes``;
        ``not_quorate`` unless this configuration is quorate and settled; or the reason
        ``check_change`` gives against the list held now. The record is safe (QRM-3.7-2); it
        applies only if no configuration change or other change comes first.
        """
        tracker = self.quorum_tracker
        if tracker is None or not tracker.base_rules.node_changes:
            raise NodeListRefused("disabled", "the node list is fixed (quorum.node_changes)")
        if self.transitional or not self.settled or not tracker.may_change(self.ring):
            raise NodeListRefused("not_quorate", "only a quorate configuration may change it")
        change = NodeChange(self.ring, tracker.nodes.version, op, entry)
        refusal = check_change(tracker.nodes, change)
        if refusal is not None:
            raise NodeListRefused(refusal.value, f"node {entry.node_id}")
        return Record(ANNOUNCE_GROUP, 0, _DATA | _SAFE, encode_change(change))

    def drop_local(self, group: str, handle: int) -> None:
        """Forget a local member without a delivered leave (the node is closing or failed)."""
        local = self.local.get(group)
        if local is not None:
            local.handles.pop(handle, None)
            local.modes.pop(handle, None)
            local.refresh()
            if not local.handles:
                del self.local[group]
            elif not local.active:
                local.last_view = None  # only pending members remain: none has seen a view

    def note_submitted(self, record: Record) -> None:
        """Our join or leave record entered the send queue: announcements must reflect it.

        Records of one sender are delivered in the order submitted (FIFO), so an announcement
        built now is delivered after every join and leave noted before it.
        """
        kind = record.flags & _KIND
        if record.group == ANNOUNCE_GROUP:
            return
        if kind == _JOIN:
            self.intent.setdefault(record.group, set()).add(record.handle)
        elif kind == _LEAVE:
            handles = self.intent.get(record.group)
            if handles is not None:
                handles.discard(record.handle)
                if not handles:
                    del self.intent[record.group]

    def announcement(self) -> Record | None:
        """Our announcement for the round in progress, or None if no round waits for us."""
        sync = self.sync
        if sync is None or self.me not in sync.waiting:
            return None
        tracker = self.quorum_tracker
        quorum = None if tracker is None else tracker.wire_state()
        nodes = None if tracker is None else tracker.wire_nodes()
        data = encode_announcement(sync.ring, self.intent, quorum, nodes)
        return Record(ANNOUNCE_GROUP, 0, _JOIN, data)

    # ------------------------------------------------------------------ the stream

    def on_configuration(self, conf: Configuration) -> list[Output]:
        out: list[Output] = []
        if self.barrier:
            self._flush(out)  # the ring changed before the round completed (API-3.7-2)
        self.ring = conf.ring_id
        self.config_nodes = frozenset(conf.members)
        self._remove_nodes_outside(conf.members)
        tracker = self.quorum_tracker
        if conf.kind is ConfigurationKind.TRANSITIONAL:
            self.transitional = True
            # A round cannot complete any more: members outside the transitional configuration
            # will not announce in it. The next regular configuration starts a new round.
            self.sync = None
            if tracker is not None:
                tracker.on_transitional(conf.ring_id, conf.members)
            self._transitional_views(conf, out)
            return out
        self.transitional = False
        verdict = None
        if tracker is not None:
            # The verdict is immediate unless it needs state only the other sides have.
            clean = self.settled and not conf.joined
            immediate = tracker.rules.static or clean
            verdict, released, persist = tracker.on_regular(
                conf.ring_id, conf.members, immediate, clean
            )
            self._put_held(released, out)
            out.extend(persist)
            if verdict is None and tracker.pending is not None:
                self._quorum_out(tracker.pending, out)  # marks the change; the verdict follows
        # Groups that changed in the transitional configuration get a regular view with the same
        # members. When the ring adds nodes, each side makes its own: the lineage keeps them apart.
        shared = self.settled and not conf.joined
        self._quorum_follows = verdict is not None
        for group, reason in self.trans_changed.items():
            local = self.local.get(group)
            if local is not None and local.last_view is not None:
                previous = local.last_view
                lineage = 0 if shared else previous.view_id.derived()
                view_id = ViewId(conf.ring_id, 0, 0, lineage)
                self._emit(group, view_id, previous.members, (), (), reason, out)
        self.trans_changed.clear()
        self._quorum_follows = False
        if verdict is not None:
            self._quorum_out(verdict, out)
        if conf.joined or not self.settled:
            self.settled = False
            reason = Reason(ViewReason.NODE_UP, conf.joined, str(conf.reason))
            self.sync = _Sync(conf.ring_id, set(conf.members), reason)
            out.append(AnnounceNeeded(conf.ring_id))
        return out

    def on_deliver(self, deliver: Deliver) -> list[Output]:
        out: list[Output] = []
        local = self.local
        for index, record in enumerate(deliver.records):
            if not self.settled and self._hold(deliver, index, record):
                continue
            kind = record.flags & _KIND
            if kind == _DATA:
                if record.group == ANNOUNCE_GROUP:
                    self._on_control(deliver, record, out)
                    continue
                group = local.get(record.group)
                if group is not None and group.last_view is not None:
                    active = group.active
                    if active:
                        sender = self._sender(deliver.sender, record.handle)
                        if not self.settled and not _lists(group.last_view, sender):
                            self.outside_view += 1  # in a transitional configuration (API-3.7-2)
                            continue
                        msg = new_message(
                            sender,
                            record.data,
                            deliver.safe,
                            group.last_view.view_id,
                            deliver.origin,
                            deliver.seq,
                        )
                        if group.primary:
                            self._route(record.group, group, active, msg, True, out)
                        else:
                            _emit_message(out, record.group, active, msg)
                continue
            self._on_membership(deliver, index, record, kind, out)
        return out

    def _sender(self, node: int, handle: int) -> Member:
        """The ``Member`` value for a sender, reused across its messages (no object per message).

        Two nested dicts keyed by the ints the record already holds: a key of its own (a tuple,
        a combined int) would be an object per message again. Bounded: past ``_SENDER_CACHE``
        senders it starts afresh (handles are never reused, so churn would grow it forever).
        """
        by_node = self._senders.get(node)
        if by_node is None:
            by_node = self._senders[node] = {}
        member = by_node.get(handle)
        if member is None:
            self._sender_count += 1
            if self._sender_count > _SENDER_CACHE:
                self._senders.clear()
                self._sender_count = 1
                by_node = self._senders[node] = {}
            member = by_node[handle] = Member(node, handle)
        return member

    def _on_membership(
        self, deliver: Deliver, index: int, record: Record, kind: int, out: list[Output]
    ) -> None:
        """A record of kind JOIN or LEAVE: an announcement, a member's join or leave."""
        view_id = ViewId(deliver.origin, deliver.seq, index)
        if record.group == ANNOUNCE_GROUP:
            if kind == _JOIN and record.handle == 0:
                self._on_announcement(deliver.sender, record.data, view_id, out)
            else:
                self.ignored_records += 1
        elif record.handle == 0 or not valid_group_name(record.group):
            self.ignored_records += 1
        elif kind == _JOIN:
            self._on_join(Member(deliver.sender, record.handle), record.group, view_id, out)
        elif kind == _LEAVE:
            self._on_leave(Member(deliver.sender, record.handle), record.group, view_id, out)
        else:
            self.ignored_records += 1

    # ------------------------------------------------------------------ the barrier

    def _hold(self, deliver: Deliver, index: int, record: Record) -> bool:
        """Hold ``record`` if the barrier applies to it (API-3.7-1); True if it was held.

        Only in a regular configuration: in a transitional one nothing can settle, so records
        are delivered at once under API-3.7-2. The group layer's own records that drive the round
        — announcements, last_man_standing decisions — are never held.
        """
        if self.transitional:
            return False
        if record.group == ANNOUNCE_GROUP and record.handle == 0:
            return False  # an announcement, or a quorum decision (a control record of the node)
        self.barrier.append((deliver, index, record))
        self.held_records += 1
        return True

    def _unwind(self, node: int, groups: dict[str, frozenset[int]]) -> dict[str, frozenset[int]]:
        """Node ``node``'s members when the hold began: its announcement without the effect of
        its held joins and leaves, which were delivered before it (FIFO), so it counts them."""
        mine = [
            r
            for d, _, r in self.barrier
            if d.sender == node and r.handle and r.flags & _KIND in (_JOIN, _LEAVE)
        ]
        mine = [r for r in mine if valid_group_name(r.group)]
        if not mine:
            return groups
        members = {group: set(handles) for group, handles in groups.items()}
        for record in reversed(mine):
            handles = members.setdefault(record.group, set())
            if record.flags & _KIND == _JOIN:
                handles.discard(record.handle)
            else:
                handles.add(record.handle)
        return {group: frozenset(handles) for group, handles in members.items() if handles}

    def _release(self, out: list[Output]) -> None:
        """The layer settled: replay the held records, in order, as records of a settled ring."""
        held, self.barrier = self.barrier, []
        for deliver, index, record in held:
            self._replay(deliver, index, record, out, flushed=False)

    def _flush(self, out: list[Output]) -> None:
        """A ring change ended the hold first: the held records, in order, as an unsettled layer
        takes them — joins and leaves change the state, messages reach only members whose view
        lists their sender (API-3.7-2)."""
        held, self.barrier = self.barrier, []
        for deliver, index, record in held:
            self._replay(deliver, index, record, out, flushed=True)

    def _replay(
        self, deliver: Deliver, index: int, record: Record, out: list[Output], flushed: bool
    ) -> None:
        kind = record.flags & _KIND
        if kind != _DATA:
            self._on_membership(deliver, index, record, kind, out)
        elif record.group == ANNOUNCE_GROUP:
            self._on_control(deliver, record, out, held=True)
        else:
            self._deliver_held(deliver, record, out, flushed)

    def _deliver_held(
        self, deliver: Deliver, record: Record, out: list[Output], flushed: bool
    ) -> None:
        """A held message, to the group's active members (never to primary members, RFC 0008
        QRM-4.1-1: it was delivered by the ring while the layer was unsettled)."""
        group = self.local.get(record.group)
        if group is None or group.last_view is None or not group.active:
            return
        sender = Member(deliver.sender, record.handle)
        if flushed and not _lists(group.last_view, sender):
            self.outside_view += 1
            return
        handles = group.active
        if group.primary:
            handles = tuple(h for h in handles if h not in group.primary)
            if self.quorum_tracker is not None:
                self.quorum_tracker.filtered += 1
        if handles:
            view_id = group.last_view.view_id
            msg = Message(sender, record.data, deliver.safe, view_id, deliver.origin, deliver.seq)
            out.append(Emit(record.group, handles, msg))

    # ------------------------------------------------------------------ control records

    def _on_control(
        self, deliver: Deliver, record: Record, out: list[Output], held: bool = False
    ) -> None:
        """A group-layer control record: a point-to-point message or a quorum decision."""
        data = record.data
        kind = data[0] if data else -1
        if kind == CONTROL_DIRECTED and record.handle != 0:
            self._on_directed(deliver, record, out, held)
        elif kind == CONTROL_NODES and record.handle == 0 and self.quorum_tracker is not None:
            self._on_node_change(deliver, record, out)
        elif kind == CONTROL_LMS and record.handle == 0 and self.quorum_tracker is not None:
            ring = decode_lms(data)
            if ring is None:
                self.ignored_records += 1
                return
            regular = deliver.config.kind is ConfigurationKind.REGULAR
            regular = regular and not self.transitional and self.settled
            members = tuple(sorted(self.config_nodes))
            result = self.quorum_tracker.on_lms(ring, self.ring, members, regular)
            self._after_verdict(result, out)
            if result[0] is None:
                self.stale_records += 1
        else:
            self.ignored_records += 1

    def _on_node_change(self, deliver: Deliver, record: Record, out: list[Output]) -> None:
        """A node-list change record: applied at this point of the stream, or not at all."""
        tracker = self.quorum_tracker
        assert tracker is not None
        change = decode_change(record.data)
        if change is None or not deliver.safe:
            self.ignored_records += 1
            return
        regular = deliver.config.kind is ConfigurationKind.REGULAR and not self.transitional
        members = tuple(sorted(self.config_nodes))
        refused, result = tracker.on_node_change(change, self.ring, members, regular)
        self._after_verdict(result, out)
        out.append(NodeListEvent(tracker.nodes, change, refused, deliver.sender))
        if refused is not None:
            self.stale_records += 1
            _LOG.info(
                "node %d: node-list change from node %d not applied (%s)",
                self.me,
                deliver.sender,
                refused,
            )

    def _on_directed(
        self, deliver: Deliver, record: Record, out: list[Output], held: bool = False
    ) -> None:
        """A point-to-point message; ``held``: replayed by the barrier (API-3.7-1, API-3.7-2)."""
        parsed = decode_directed(record.data)
        if parsed is None:
            self.ignored_records += 1
            return
        group, to, payload = parsed
        if to.node != self.me:
            return  # for a member of another node: every node sees it, one delivers it
        local = self.local.get(group)
        if local is None or local.last_view is None or not local.handles.get(to.handle):
            self.undeliverable += 1  # its member left, or never became active
            return
        sender = Member(deliver.sender, record.handle)
        if not self.settled and not _lists(local.last_view, sender):
            self.outside_view += 1  # flushed by a ring change, or delivered in it (API-3.7-2)
            return
        view_id = local.last_view.view_id
        msg = Message(sender, payload, deliver.safe, view_id, deliver.origin, deliver.seq, to)
        if held and to.handle in local.primary:
            if self.quorum_tracker is not None:
                self.quorum_tracker.filtered += 1
            return
        self._route(group, local, (to.handle,), msg, True, out)

    # ------------------------------------------------------------------ quorum output

    def _route(
        self,
        group: str,
        local: _LocalGroup,
        handles: tuple[int, ...],
        event: View | Message | Quorum,
        message: bool,
        out: list[Output],
    ) -> None:
        """Emit ``event`` to ``handles``; primary members' share goes through the hold."""
        primary = local.primary
        tracker = self.quorum_tracker
        if not primary or tracker is None:
            out.append(Emit(group, handles, event))
            return
        mine = tuple(h for h in handles if h in primary)
        others = tuple(h for h in handles if h not in primary) if mine != handles else ()
        if others:
            out.append(Emit(group, others, event))
        if mine:
            item = tracker.route(group, mine, event, message)
            if item is not None:
                out.append(Emit(group, mine, event))

    def _put_held(self, items: list[Held], out: list[Output]) -> None:
        for group, handles, event, kind in items:
            if event is None:
                out.append(MemberClosed(group, handles[0]))
            elif kind == TAIL:
                self._put_tail(group, handles, event, out)
            else:
                assert isinstance(event, View | Message | Quorum)
                out.append(Emit(group, handles, event))

    def _put_tail(
        self, group: str, handles: tuple[int, ...], event: object, out: list[Output]
    ) -> None:
        """A tail message: to the members that resolve tails, marked; dropped for the rest."""
        local = self.local.get(group)
        assert isinstance(event, Message)
        wanted = () if local is None else tuple(h for h in handles if local.modes.get(h, 0) & TAILS)
        tracker = self.quorum_tracker
        if tracker is not None and len(wanted) < len(handles):
            tracker.filtered += 1
        if wanted:
            out.append(Emit(group, wanted, replace(event, uncommitted=True)))

    def _quorum_out(self, verdict: Quorum, out: list[Output]) -> None:
        """A new verdict: to every member that asked for Quorum events; maybe an LMS window."""
        for group, local in self.local.items():
            if local.quorum:
                self._route(group, local, local.quorum, verdict, False, out)
        tracker = self.quorum_tracker
        if tracker is not None:
            timer = tracker.lms_timer(verdict)
            if timer is not None:
                out.append(timer)

    def _after_verdict(
        self,
        result: tuple[Quorum | None, list[Held], list[Persist]],
        out: list[Output],
    ) -> None:
        verdict, released, persist = result
        out.extend(persist)  # stored before anything the change causes (QRM-3.7-4)
        self._put_held(released, out)
        if verdict is not None:
            self._quorum_out(verdict, out)

    # ------------------------------------------------------------------ records

    def _on_join(self, member: Member, group: str, view_id: ViewId, out: list[Output]) -> None:
        if member.node not in self.config_nodes:
            # Delivered after the transitional configuration that removed its node (RFC 0006
            # §3.3): the member is gone already, and adding it back would leave a ghost.
            self.stale_records += 1
            return
        members = self.members.setdefault(group, set())
        if member in members:
            return  # announced already, or a duplicate: nothing changes
        members.add(member)
        if self.settled:
            reason = Reason(ViewReason.JOIN, (member.node,))
            self._emit_view(group, view_id, (member,), (), reason, out)

    def _on_leave(self, member: Member, group: str, view_id: ViewId, out: list[Output]) -> None:
        members = self.members.get(group)
        present = members is not None and member in members
        if members is not None and present:
            members.discard(member)
            if not members:
                del self.members[group]
        if member.node == self.me:
            local = self.local.get(group)
            if local is not None and member.handle in local.handles:
                primary = member.handle in local.primary
                self.drop_local(group, member.handle)
                tracker = self.quorum_tracker
                if primary and tracker is not None:
                    item = tracker.route(group, (member.handle,), None, False)
                    if item is not None:
                        out.append(MemberClosed(group, member.handle))
                else:
                    out.append(MemberClosed(group, member.handle))
        if self.settled and present:
            reason = Reason(ViewReason.LEAVE, (member.node,))
            self._emit_view(group, view_id, (), (member,), reason, out)

    def _on_announcement(self, node: int, data: bytes, view_id: ViewId, out: list[Output]) -> None:
        sync = self.sync
        parsed = decode_announcement_ext(data)
        if parsed is None:
            self.ignored_records += 1
            _LOG.warning("node %d: malformed announcement from node %d ignored", self.me, node)
            if sync is None or node not in sync.waiting:
                return
            parsed = (sync.ring, {}, {})  # count it as empty, so the round can still complete
        ring, groups, ext = parsed
        if sync is None or ring != sync.ring or node not in sync.waiting:
            self.stale_records += 1  # made for an earlier ring, or a repeat
            return
        groups = self._unwind(node, groups)
        if self.quorum_tracker is not None:
            self.quorum_tracker.on_announced(node, ext.get("quorum"), ext.get("nodes"))
        for group in list(self.members):
            self._replace_node(group, node, groups.get(group, frozenset()))
        for group, handles in groups.items():
            if group not in self.members:
                self._replace_node(group, node, handles)
        sync.waiting.discard(node)
        if not sync.waiting:
            self._settle(sync, view_id, out)

    def _replace_node(self, group: str, node: int, handles: Iterable[int]) -> None:
        members = self.members.get(group, set())
        members = {m for m in members if m.node != node}
        members.update(Member(node, h) for h in handles)
        if members:
            self.members[group] = members
        else:
            self.members.pop(group, None)

    def _settle(self, sync: _Sync, view_id: ViewId, out: list[Output]) -> None:
        """Every member of the ring announced: one view per group, at the same point everywhere."""
        self.settled = True
        self.sync = None
        verdict = None
        tracker = self.quorum_tracker
        if tracker is not None:
            # What was held came before this point; the settling views come after it.
            tracker.in_sync = True
            version = tracker.nodes.version
            verdict, released, persist = tracker.on_settled(sync.ring, self.config_nodes)
            out.extend(persist)
            self._put_held(released, out)
            if tracker.nodes.version != version:
                out.append(NodeListEvent(tracker.nodes, None, None, self.me))
        self._quorum_follows = verdict is not None
        for group in list(self.local):
            local = self.local[group]
            members = self.members.get(group, set())
            previous = set(local.last_view.members) if local.last_view is not None else set()
            joined = tuple(sorted(members - previous))
            left = tuple(sorted(previous - members))
            self._emit_view(group, view_id, joined, left, sync.reason, out)
        self._quorum_follows = False
        if verdict is not None:
            self._quorum_out(verdict, out)
        self._release(out)

    # ------------------------------------------------------------------ configurations

    def _remove_nodes_outside(self, nodes: tuple[int, ...]) -> None:
        keep = set(nodes)
        for group in list(self.members):
            members = self.members[group]
            members.difference_update([m for m in members if m.node not in keep])
            if not members:
                del self.members[group]

    def _transitional_views(self, conf: Configuration, out: list[Output]) -> None:
        """Members of departed nodes leave every view that lists them, settled or not.

        The new view is the previous one minus those members: members that move together had
        the same previous view (same id, same members), so they compute the same new view, and
        members that part ways always change views, as virtual synchrony needs (RFC 0006 §3.3).
        """
        kind = ViewReason.LEAVE if conf.reason.kind is ReasonKind.LEAVE else ViewReason.NODE_DOWN
        reason = Reason(kind, conf.left, str(conf.reason))
        keep = self.config_nodes
        for group, local in self.local.items():
            previous = local.last_view
            if previous is None:
                continue
            gone = tuple(m for m in previous.members if m.node not in keep)
            if gone:
                members = tuple(m for m in previous.members if m.node in keep)
                view_id = ViewId(conf.ring_id, 0, min(conf.members), self._lineage(previous))
                self._emit(group, view_id, members, (), gone, reason, out)

    def _transitional_lineage(self) -> int:
        """The lineage of a view a record causes in a transitional configuration (API-3.5-1).

        EVS delivers some old-ring records in the regular configuration at one node and in the
        transitional configuration at another, where the departed members are gone: the view
        differs, so its id must too. Every node of one transitional configuration derives the
        same lineage, from the transitional configuration's own view id.
        """
        return ViewId(self.ring, 0, min(self.config_nodes)).derived()

    def _lineage(self, previous: View) -> int:
        return 0 if self.settled else previous.view_id.derived()

    def _emit_view(
        self,
        group: str,
        view_id: ViewId,
        joined: tuple[Member, ...],
        left: tuple[Member, ...],
        reason: Reason,
        out: list[Output],
    ) -> None:
        """A view of the settled state of ``group`` (the same at every node of the ring)."""
        members = tuple(sorted(self.members.get(group, ())))
        if self.transitional and view_id.seq:
            view_id = replace(view_id, lineage=self._transitional_lineage())
        self._emit(group, view_id, members, joined, left, reason, out)

    def _emit(
        self,
        group: str,
        view_id: ViewId,
        members: tuple[Member, ...],
        joined: tuple[Member, ...],
        left: tuple[Member, ...],
        reason: Reason,
        out: list[Output],
    ) -> None:
        """Give the local members of ``group`` listed in ``members`` a view; they become active."""
        local = self.local.get(group)
        if local is None:
            return
        mine = tuple(h for h in local.handles if Member(self.me, h) in members)
        if not mine:
            return  # only pending members here: their own join will bring their first view
        view = View(view_id, members, joined, left, self.transitional, reason)
        fresh = tuple(h for h in mine if not local.handles[h] and local.modes.get(h))
        for handle in mine:
            local.handles[handle] = True
        local.refresh()
        local.last_view = view
        if self.transitional:
            self.trans_changed[group] = reason  # owes a regular view when the ring installs
        self._route(group, local, mine, view, False, out)
        tracker = self.quorum_tracker
        if tracker is not None and fresh and not self._quorum_follows:
            # A member's stream starts with its view, then the verdict it is in (if known).
            verdict = tracker.verdict
            if verdict is not None and tracker.pending is None:
                self._route(group, local, fresh, verdict, False, out)


def _lists(view: View, sender: Member) -> bool:
    """Whether a message of ``sender`` may be delivered in ``view`` (API-3.7-1): the view lists
    it, or the view is transitional and ``sender`` departed at it (API-3.3-2)."""
    return sender in view.members or (view.transitional and sender in view.left)


def _emit_message(out: list[Output], group: str, handles: tuple[int, ...], msg: Message) -> None:
    """Append ``msg`` for ``handles`` of ``group``, joining it to the output just before it when
    that output is for the same members (``EmitMessages``); one ``Emit`` if it stands alone."""
    if out:
        last = out[-1]
        if type(last) is EmitMessages:
            if last.handles is handles and last.group == group:
                last.messages.append(msg)
                return
        elif type(last) is Emit and last.handles is handles and last.group == group:
            first = last.event
            if type(first) is Message:
                out[-1] = EmitMessages(group, handles, [first, msg])
                return
    out.append(Emit(group, handles, msg))
