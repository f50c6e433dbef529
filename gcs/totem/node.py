"""``gcs.totem.Node``: the Totem single-ring protocol as a deterministic state machine.

Theory of operation (RFC 0003 ordering, RFC 0004 membership). A node has three inputs — frames
from the network (``receive``), the passage of time (``on_timeout``) and its application
(``submit``, ``leave``) — plus the driver's confirmation that a ring seq reached stable storage
(``on_persisted``). Every call takes ``now_ns`` and returns the effects the driver must carry
out, in order. The node never reads a clock, never touches a socket and draws randomness only
from the ``random.Random`` it was given, so the asyncio runtime and the simulator drive exactly
the same code, and a seed reproduces a run.

The work is split by concern: ``ordering`` (the token, retransmission, delivery), ``membership``
(gather, joins, consensus, the commit token), ``recovery`` (old-ring messages across a change and
the atomic installation of a configuration). This module owns the state they share, dispatches
inputs and keeps the timers.

Any exception other than ``InvariantViolation`` (from any entry point) or the documented
``SendQueueFull`` / ``MessageTooLarge`` (from ``submit``) is a bug.
"""

from __future__ import annotations

import random
from dataclasses import replace

from mypy_extensions import mypyc_attr

from gcs.errors import InvariantViolation, NodeClosed
from gcs.totem import membership, ordering, recovery
from gcs.totem.config import TotemConfig
from gcs.totem.effects import (
    ChangeReason,
    ConfigId,
    Configuration,
    ConfigurationKind,
    Effect,
    MembState,
    PersistRingSeq,
    ReasonKind,
    Trace,
)
from gcs.totem.reassembly import Reassembler
from gcs.totem.ring import RingState
from gcs.totem.sendqueue import SendQueue
from gcs.totem.stats import Counters, Statistics
from gcs.totem.timers import Deadlines, Timer
from gcs.wire.frames import (
    Frame,
    Mcast,
    MembCommitToken,
    MembJoin,
    MembLeave,
    MembMergeDetect,
    OrfToken,
    Record,
    RingId,
    TokenHoldCancel,
)

__all__ = ["Node"]

RING_SEQ_STEP = 4  # a new ring's seq is 4 above the highest known (RFC 0004 §5.1)

# Enum members bound once (see gcs.totem.ordering: Enum class attributes are slow in 3.11).
_STARTING = MembState.STARTING
_OPERATIONAL = MembState.OPERATIONAL
_LEFT = MembState.LEFT
_FAILED = MembState.FAILED
_COMMIT = MembState.COMMIT


# Compiled (gcs.build): pickled by the flight recorder, and subclassed by the trace generator.
# mypyc runs __init__ for a serializable class built from interpreted code only when it also
# allows interpreted subclasses, so the core's serializable classes say both.
@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
class Node:
    """One member of a Totem ring, sans I/O. See the module docstring for the contract."""

    def __init__(self, config: TotemConfig, rng: random.Random) -> None:
        self.config = config
        self.me = config.node_id
        self.rng = rng
        self.state = _STARTING
        self.timers = Deadlines()
        self.out: list[Effect] = []
        self.counters = Counters()
        self.sendq = SendQueue(
            max_bytes=config.send_queue_max_bytes,
            high_bytes=config.send_queue_high_bytes,
            low_bytes=config.send_queue_low_bytes,
            budget=config.frame_payload_bytes,
            max_message=config.max_message_bytes,
        )
        me_only = (self.me,)
        self.ring = RingState(RingId(seq=0, rep=self.me), me_only, self.me)
        self.config_id = ConfigId(ConfigurationKind.REGULAR, self.ring.ring_id)
        self.reassembler = Reassembler()
        # Membership (RFC 0004 §3).
        self.proc_set: set[int] = {self.me}
        self.fail_set: set[int] = set()
        self.consensus: set[int] = {self.me}
        self.token_ring_id_seq = 0
        self.gather_reason: ChangeReason | None = None
        self.heard: set[int] = set()
        self.suspects: set[int] = set()
        self.left_nodes: set[int] = set()
        self.join_round = 0
        self.penalties: dict[int, membership.Penalty] = {}
        # One-way links (RFC 0004 §8.4): whose word each fail-set entry was taken on; the nodes
        # it went alone from in this change; nodes kept out of the installed ring; nodes it went
        # alone from in the last change, with the ring seq they parted at; the probe (the sender
        # of the evidence probed about, and when the next may go).
        self.adopted_from: dict[int, int] = {}
        self.went_alone_from: set[int] = set()
        self.kept_out_until: dict[int, int] = {}
        self.parted: dict[int, int] = {}
        self.probed: int | None = None
        self.probe_ready_ns = 0
        self.distrust_joins_until_ns = -1
        self.pause_seen = False
        # Commit and recovery (RFC 0004 §5-§7).
        self.commit: recovery.CommitState | None = None
        self.recovery: recovery.RecoveryState | None = None
        self.old_ring_frozen = False
        self.obligation: set[int] = set()
        self.carry_high_delivered = 0
        self.last_commit_seq = 0  # highest ring seq this node entered COMMIT for
        # Stable storage (RFC 0004 MEM-2.3-2, REC-5.3-2).
        self.persisted_seq = -1
        self.learning = False
        """Set by the driver while the node holds the file's node list and lists may change:
        nodes named by a listed node's join are accepted too (RFC 0004 MEM-3.2-5)."""
        self.pending_persist_seq = 0
        # A token or commit token sent to this node itself (singleton rings).
        self.self_frame: OrfToken | MembCommitToken | None = None
        # The last token or commit token sent, re-sent on TOKEN_RETRANSMIT.
        self.last_sent: tuple[int, OrfToken | MembCommitToken] | None = None

    # ------------------------------------------------------------------ the contract

    def start(self, now_ns: int, stored_ring_seq: int | None) -> list[Effect]:
        """Begin: adopt a ring seq above anything stored, persist it, then form a singleton ring."""
        self.out = []
        stored = stored_ring_seq or 0
        seq = stored + RING_SEQ_STEP
        self.token_ring_id_seq = seq
        self.pending_persist_seq = seq
        self.out.append(PersistRingSeq(seq))
        self.trace("start", stored_ring_seq=stored)
        return self.out

    def set_learning(self, learning: bool) -> None:
        """Accept nodes a listed node's join names (RFC 0004 MEM-3.2-5) while True."""
        self.learning = learning

    def set_nodes(self, nodes: tuple[int, ...]) -> None:
        """The node list changed (RFC 0008 §3.7, RFC 0004 MEM-3.2-4): from now on frames of
        unlisted nodes are dropped (but not those of a member of the installed ring, MEM-3.2-6),
        joins go to the listed nodes, and a member no longer listed is failed at the next
        membership change. Raises ``ConfigError`` without this node."""
        self.config = replace(self.config, nodes=tuple(sorted(set(nodes))))

    def on_persisted(self, now_ns: int, seq: int) -> list[Effect]:
        """The driver confirms ``PersistRingSeq(seq)`` reached stable storage."""
        self.out = []
        self.persisted_seq = max(self.persisted_seq, seq)
        try:
            if self.state is _STARTING and seq >= self.pending_persist_seq:
                self._install_singleton(now_ns)
            elif self.state is _COMMIT and self.commit is not None:
                recovery.on_persisted(self, now_ns)
        except InvariantViolation:
            self._fail_stop()
            raise
        return self.out

    def receive(self, now_ns: int, src: int, frame: Frame) -> list[Effect]:
        """Handle one authenticated frame from node ``src``. Never raises on bad input."""
        self.out = []
        if self.state in (_STARTING, _LEFT, _FAILED):
            self.counters.drop(f"frame_while_{self.state.value}")
            return self.out
        if src == self.me or not self._heard(src):
            self.counters.drop("bad_source")
            return self.out
        try:
            self._catch_up(now_ns)
            self._dispatch(now_ns, src, frame)
        except InvariantViolation:
            self._fail_stop()
            raise
        return self.out

    def on_timeout(self, now_ns: int) -> list[Effect]:
        """Fire every timer due at ``now_ns``."""
        self.out = []
        if self.state not in (_LEFT, _FAILED):
            try:
                self._catch_up(now_ns)
            except InvariantViolation:
                self._fail_stop()
                raise
        return self.out

    def submit(self, now_ns: int, record: Record, *, safe: bool = False) -> list[Effect]:
        """Queue ``record`` for total-order multicast. Raises SendQueueFull / MessageTooLarge."""
        if self.state in (_LEFT, _FAILED):
            raise NodeClosed(f"node {self.me} is {self.state.value}")
        self.out = []
        window = self.sendq.push(record, safe)
        self.counters.records_submitted += 1
        if window is not None:
            self.out.append(window)
        if self.state is _OPERATIONAL:
            try:
                ordering.wake_held_token(self, now_ns)
            except InvariantViolation:
                self._fail_stop()
                raise
        return self.out

    def leave(self, now_ns: int) -> list[Effect]:
        """Shut down cleanly: tell the others, so they reform at once (RFC 0004 §3.4)."""
        self.out = []
        if self.state in (_LEFT, _FAILED):
            return self.out
        if self.state is not _STARTING:
            membership.send_leave(self)
        self.set_state(_LEFT, "leave")
        self.timers.cancel_all()
        return self.out

    @property
    def next_deadline_ns(self) -> int | None:
        return self.timers.next_ns

    @property
    def ring_id(self) -> RingId:
        return self.ring.ring_id

    @property
    def members(self) -> tuple[int, ...]:
        return self.ring.members

    def statistics(self) -> Statistics:
        c = self.counters
        values = {name: getattr(c, name) for name in Statistics.counter_names()}
        values["drops"] = dict(c.drops)
        values["fragments_dropped"] = self.reassembler.dropped
        return Statistics(
            state=self.state.value,
            ring_id=str(self.ring.ring_id),
            members=self.ring.members,
            send_queue_bytes=self.sendq.bytes,
            send_queue_records=len(self.sendq),
            sort_queue_len=len(self.ring.queue),
            **values,
        )

    # ------------------------------------------------------------------ shared helpers

    def trace(self, event: str, **data: object) -> None:
        self.out.append(Trace(event, data))

    def set_state(self, new: MembState, reason: str) -> None:
        old = self.state
        self.state = new
        self.trace("state", old=old.value, new=new.value, reason=reason)

    def configuration(
        self,
        kind: ConfigurationKind,
        ring_id: RingId,
        members: tuple[int, ...],
        left: tuple[int, ...],
        joined: tuple[int, ...],
        reason: ChangeReason,
    ) -> None:
        """Emit a configuration change and make it the one later deliveries belong to."""
        self.config_id = ConfigId(kind, ring_id)
        self.counters.configurations += 1
        self.out.append(Configuration(kind, ring_id, members, left, joined, reason))

    def penalized(self, node: int, now_ns: int) -> bool:
        penalty = self.penalties.get(node)
        return penalty is not None and now_ns < penalty.until_ns

    def kept_out(self, node: int, now_ns: int) -> bool:
        """Kept out of the installed ring on a ring-mate's word (RFC 0004 MEM-8.4-2)."""
        until = self.kept_out_until.get(node)
        return until is not None and now_ns < until

    # ------------------------------------------------------------------ internals

    def _heard(self, src: int) -> bool:
        """A listed node, or a member of the installed ring the list no longer names: it is
        heard until a consensus fails it out (RFC 0004 MEM-3.2-6), or the mcasts it sent
        before it learnt of its removal would be a gap no node can fill."""
        return src in self.config.nodes or src in self.ring.members

    def _fail_stop(self) -> None:
        """An invariant broke: stop for good (RFC 0003 §11, RFC 0006 API-7-1)."""
        self.state = _FAILED
        self.timers.cancel_all()
        self.self_frame = None

    def _install_singleton(self, now_ns: int) -> None:
        ring_id = RingId(seq=self.pending_persist_seq, rep=self.me)
        self.ring = RingState(ring_id, (self.me,), self.me)
        self.set_state(_OPERATIONAL, "startup")
        self.configuration(
            ConfigurationKind.REGULAR,
            ring_id,
            (self.me,),
            (),
            (self.me,),
            ChangeReason(ReasonKind.STARTUP),
        )
        membership.gather_enter(self, now_ns, ChangeReason(ReasonKind.STARTUP))

    def _catch_up(self, now_ns: int) -> None:
        """Detect a process pause, then fire every timer already due."""
        due_at = self.timers.next_ns
        if due_at is None or due_at > now_ns:
            return
        if (
            self.config.pause_guard
            and due_at is not None
            and now_ns - due_at > self.config.token_timeout_ns // 2
        ):
            self.counters.pauses_detected += 1
            self.pause_seen = True
            self.distrust_joins_until_ns = now_ns + self.config.join_timeout_ns
            self.trace("pause_detected", overdue_ns=now_ns - due_at)
        for timer in self.timers.pop_expired(now_ns):
            if self.state in (_LEFT, _FAILED):
                return
            self._fire(now_ns, timer)

    def _fire(self, now_ns: int, timer: Timer) -> None:
        match timer:
            case Timer.SELF_TOKEN:
                frame, self.self_frame = self.self_frame, None
                if frame is not None:
                    self._dispatch(now_ns, self.me, frame)
            case Timer.TOKEN_RETRANSMIT:
                ordering.on_token_retransmit_timeout(self, now_ns)
            case Timer.HOLD:
                ordering.on_hold_timeout(self, now_ns)
            case Timer.TOKEN_LOSS:
                membership.on_token_loss_timeout(self, now_ns)
            case Timer.JOIN:
                membership.on_join_timeout(self, now_ns)
            case Timer.CONSENSUS | Timer.COMMIT_WAIT:
                membership.on_consensus_timeout(self, now_ns)
            case Timer.MERGE:
                membership.on_merge_timeout(self, now_ns)

    def _dispatch(self, now_ns: int, src: int, frame: Frame) -> None:
        match frame:
            case Mcast():
                ordering.on_mcast(self, now_ns, frame)
            case OrfToken():
                ordering.on_orf_token(self, now_ns, frame)
            case MembJoin():
                membership.on_memb_join(self, now_ns, src, frame)
            case MembLeave():
                membership.on_memb_leave(self, now_ns, src, frame)
            case MembCommitToken():
                recovery.on_commit_token(self, now_ns, frame)
            case MembMergeDetect():
                membership.on_merge_detect(self, now_ns, src, frame)
            case TokenHoldCancel():
                ordering.on_token_hold_cancel(self, now_ns, src, frame)
