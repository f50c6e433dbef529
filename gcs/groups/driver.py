"""The one driver of the group layer: the ring's stream in, every output of ``GroupState`` out.

Why one. ``GroupState`` (``gcs.groups.state``) is a pure function of the delivered stream plus
this node's joins and leaves; its outputs say what must happen — append an event to members'
streams, end a member's stream, announce this node's members, store expected votes, open a
last_man_standing window. This module is the only place that interprets them. The embedded node
(``gcs.api.node``, and through it the daemon) and the simulator's hosts (``gcs.sim.layer``) run
the same ``GroupDriver``, so the group layer behaves the same wherever it runs.

Inputs from below are those of a runtime listener (``gcs.runtime.driver.Listener``, or the
simulated host's calls): ``on_configuration``, ``on_deliver`` and ``on_send_window`` while the
core's effects are executed, ``after_effects`` once they all were, and ``on_timeout`` at
``next_deadline_ns``. Like the core's inputs they carry ``now_ns``. Outputs go up to the
``Application`` (the node's member table, or a simulated application) and down as records
through ``submit`` (the runtime's or the simulated host's submit into the core).

Sending (the outbox). Two queues feed the core. Control records — joins, leaves,
last_man_standing decisions and this node's announcement (RFC 0006 §3.4) — go first and ignore
the send window: they are tiny, and a view change must not wait behind a backlog of data. Data
records wait for the window (RFC 0006 API-6-1), in FIFO order across all members of the node, so a
small message never overtakes a large one that waits for room. A record the core refuses for
lack of room (``SendQueueFull``) stays at the head of its queue until the next ``drain``, after
the next batch of effects (room appears only through effects). Records asked for while effects
are being executed are queued, and submitted after the batch: the core is never re-entered from
inside one of its effects. Nothing is submitted before the first ``after_effects``, the end of
the core's first input (``start``): a simulated host makes its layer, and its members' joins,
before it starts the core.

Self-delivery (RT-1). Every record of a sender is delivered in the order it was submitted (FIFO
per sender) and a sender delivers its own records while it runs (self-delivery), so the records
this node submitted form a queue that its own deliveries consume from the front; a data record's
``SendTag`` learns of its delivery there (``gcs.api.outbox`` settles its ticket). A mismatch
would be a broken guarantee: ``InvariantViolation``, fail-stop.

Timers. The last_man_standing window (RFC 0008 §3.5) is the layer's one timer. It is a deadline,
like the core's (``next_deadline_ns``, ``on_timeout``): the runtime keeps one ``loop.call_at``
for both, and the simulator one timer event per host.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar, assert_never

from gcs.errors import InvariantViolation, SendQueueFull
from gcs.groups.records import ANNOUNCE_GROUP
from gcs.groups.state import (
    AnnounceNeeded,
    Emit,
    EmitMessages,
    GroupState,
    MemberClosed,
    NodeListEvent,
    Output,
)
from gcs.groups.views import Message, View
from gcs.quorum.nodelist import (
    ChangeOp,
    NodeChange,
    NodeEntry,
    NodeList,
    PersistNodes,
    decode_change,
)
from gcs.quorum.primary import LmsTimer, PersistQuorum
from gcs.quorum.rules import Quorum
from gcs.totem.effects import Configuration, Deliver
from gcs.wire.frames import Record, RecordFlags, RingId

__all__ = ["Application", "GroupDriver", "SendTag", "Submit", "Tag"]

_KIND = int(RecordFlags.KIND_MASK)
_JOIN, _LEAVE = int(RecordFlags.JOIN), int(RecordFlags.LEAVE)

Submit = Callable[[Record, bool], None]
"""Hand one record (and whether it is safe) to the core; raises ``SendQueueFull`` while the core
has no room for it, ``MessageTooLarge`` or ``NodeClosed`` when it never will."""


class Application(Protocol):
    """What the group layer hands upwards."""

    def on_ring(self, configuration: Configuration) -> None:
        """The ring configuration changed (called before the group layer's events for it)."""

    def on_event(
        self, group: str, handles: tuple[int, ...], event: View | Message | Quorum
    ) -> None:
        """Append ``event`` to the streams of the local members ``handles`` of ``group``."""

    def on_member_closed(self, group: str, handle: int) -> None:
        """The leave of local member ``handle`` was delivered: its stream ends here."""

    def on_persist_quorum(self, expected_votes: int) -> None:
        """Store last_man_standing's expected votes durably (the latest value wins)."""

    def on_persist_nodes(self, nodes: NodeList) -> None:
        """Store the node list durably before returning: it takes effect after (QRM-3.7-4)."""

    def on_node_list(self, event: NodeListEvent) -> None:
        """A change record was delivered (applied or not), or a merge brought a newer list."""


class SendTag(Protocol):
    """What the sender of a data record learns of it (``gcs.api.outbox`` makes these)."""

    def sent(self) -> None:
        """The record entered the core's send queue."""

    def refused(self, error: Exception) -> None:
        """The core refused the record for good (too large, node closed): it was dropped."""

    def delivered(self) -> None:
        """This node delivered the record."""


Tag = TypeVar("Tag", bound=SendTag)


class _Outgoing(Generic[Tag]):
    """A data record waiting for the window, and its sender's tag. A plain class: the compiled
    build cannot make a generic dataclass with slots (and its classes have fixed attributes)."""

    def __init__(self, record: Record, safe: bool, tag: Tag | None) -> None:
        self.record = record
        self.safe = safe
        self.tag = tag
        self.sent = False


class GroupDriver(Generic[Tag]):
    """Drives one node's ``GroupState`` (see the module docstring); ``Tag`` is the type of the
    tags its sender gives data records."""

    def __init__(self, state: GroupState, submit: Submit, app: Application) -> None:
        self.state = state
        self._submit = submit
        self._app = app
        self._control: deque[Record] = deque()
        self._announce = False
        self._data: deque[_Outgoing[Tag]] = deque()
        # Submitted, not yet delivered back, oldest first: the records, and in step with them
        # each data record's tag (None for a control record). Two deques rather than one of
        # pairs: a busy sender then keeps no extra object per message for the collector to walk.
        self._sent: deque[Record] = deque()
        self._tags: deque[Tag | None] = deque()
        self._timers: list[tuple[int, int, RingId]] = []
        """last_man_standing windows: (deadline, order, ring), a heap."""
        self._timer_count = 0
        self._draining = False
        self._stepping = False
        self._started = False
        self._closed = False
        self.window_open = True
        self.blocked = False
        """The last drain stopped at a record the core had no room for (it waits for room)."""

    @property
    def waiting(self) -> int:
        """Data records waiting for flow control."""
        return len(self._data)

    @property
    def in_flight(self) -> int:
        """Records in the core (or on the ring) not yet delivered back to this node."""
        return len(self._sent)

    # ------------------------------------------------------------------ local requests

    def join(
        self,
        group: str,
        handle: int,
        *,
        primary: bool = False,
        quorum_events: bool = False,
        tails: bool = False,
    ) -> None:
        """A local member joins ``group``: it becomes a member at its first view."""
        self.state.add_local(
            group, handle, primary=primary, quorum_events=quorum_events, tails=tails
        )
        self.control(Record(group, handle, _JOIN, b""))

    def leave(self, group: str, handle: int) -> list[Tag]:
        """A local member leaves: its waiting data is withdrawn (returned), its leave queued."""
        withdrawn = self.withdraw_member(group, handle)
        self.control(Record(group, handle, _LEAVE, b""))
        return withdrawn

    def withdraw_member(self, group: str, handle: int) -> list[Tag]:
        """Take back the data of one member that has not reached the core yet.

        Its point-to-point records too: they travel in the reserved group under the member's
        handle, and handles are unique on a node, so the handle names them.
        """
        groups = (group, ANNOUNCE_GROUP)
        return self.withdraw(lambda record, _: record.handle == handle and record.group in groups)

    def withdraw(self, which: Callable[[Record, Tag | None], bool]) -> list[Tag]:
        """Take back the waiting data records ``which`` selects; their tags, in order."""
        keep: deque[_Outgoing[Tag]] = deque()
        taken: list[Tag] = []
        for item in self._data:
            if which(item.record, item.tag):
                if item.tag is not None:
                    taken.append(item.tag)
            else:
                keep.append(item)
        self._data = keep
        return taken

    def control(self, record: Record) -> None:
        """Queue a control record: it goes ahead of data, whatever the window."""
        self._control.append(record)
        if self._started and not self._stepping:
            self.drain()

    def change_nodes(self, op: ChangeOp, entry: NodeEntry) -> NodeChange:
        """Submit a node-list change (RFC 0008 §3.7); ``NodeListRefused`` if it may not be made.

        Its outcome arrives as a ``NodeListEvent`` from this node (``change`` equal to the one
        returned) when the record is delivered.
        """
        record = self.state.node_change_record(op, entry)
        change = decode_change(record.data)
        assert change is not None
        self.control(record)
        return change

    def send(self, record: Record, safe: bool, tag: Tag | None = None) -> bool:
        """Queue a data record behind the others; True if it reached the core at once."""
        item = _Outgoing(record, safe, tag)
        self._data.append(item)
        if self._started and not self._stepping:
            self.drain()
        return item.sent

    def try_send(self, record: Record, safe: bool, tag: Tag | None = None) -> bool:
        """Submit a data record now, or leave no trace: True if it reached the core.

        False (nothing queued) when data already waits, the window is closed, the core has no
        room, or the driver is inside its own step; a record the core refuses for good is
        reported to ``tag.refused`` as with ``send``. What ``send_nowait`` is made of (RFC 0006
        API-6-2): nothing ever waits behind an earlier send, so FIFO order holds.
        """
        if self._data or not self.window_open or self._stepping or not self._started:
            return False
        item = _Outgoing(record, safe, tag)
        data = self._data
        data.append(item)
        self.drain()
        if not item.sent and data and data[-1] is item:
            data.pop()  # not taken: the caller waits (or gives up) without a queued copy
        return item.sent

    def close(self) -> list[Tag]:
        """Stop submitting and timing; the tags of everything waiting or in flight."""
        self._closed = True
        tags = [item.tag for item in self._data if item.tag is not None]
        tags += [tag for tag in self._tags if tag is not None]
        self._data.clear()
        self._control.clear()
        self._announce = False
        self._sent.clear()
        self._tags.clear()
        self._timers.clear()
        return tags

    def cancel_timers(self) -> None:
        """Forget the open windows (the node is leaving: it makes no more decisions)."""
        self._timers.clear()

    # ------------------------------------------------------------------ the ring's stream

    def on_configuration(self, now_ns: int, configuration: Configuration) -> None:
        self._stepping = True
        try:
            self._app.on_ring(configuration)
            self._apply(now_ns, self.state.on_configuration(configuration))
        finally:
            self._stepping = False

    def on_deliver(self, now_ns: int, deliver: Deliver) -> None:
        if not deliver.records:
            return
        self._stepping = True
        try:
            if deliver.sender == self.state.me:
                for record in deliver.records:
                    self._own_delivered(record)
            self._apply(now_ns, self.state.on_deliver(deliver))
        finally:
            self._stepping = False

    def on_send_window(self, is_open: bool) -> None:
        self.window_open = is_open

    def after_effects(self, now_ns: int) -> None:
        self._started = True
        self.drain()

    @property
    def next_deadline_ns(self) -> int | None:
        timers = self._timers
        return timers[0][0] if timers else None

    def on_timeout(self, now_ns: int) -> None:
        """Windows that ended: propose lowering expected votes where it still applies."""
        timers = self._timers
        while timers and timers[0][0] <= now_ns:
            _, _, ring = heapq.heappop(timers)
            record = self.state.lms_record(ring)
            if record is not None:
                self.control(record)

    def _apply(self, now_ns: int, outputs: list[Output]) -> None:
        for out in outputs:
            match out:
                case Emit():
                    self._app.on_event(out.group, out.handles, out.event)
                case EmitMessages():
                    on_event, group, handles = self._app.on_event, out.group, out.handles
                    for message in out.messages:
                        on_event(group, handles, message)
                case MemberClosed():
                    self._app.on_member_closed(out.group, out.handle)
                case AnnounceNeeded():
                    self._announce = True  # built when it can be submitted, after the batch
                case LmsTimer():
                    self._timer_count += 1
                    entry = (now_ns + out.delay_ns, self._timer_count, out.ring_id)
                    heapq.heappush(self._timers, entry)
                case PersistQuorum():
                    self._app.on_persist_quorum(out.expected_votes)
                case PersistNodes():
                    self._app.on_persist_nodes(out.nodes)
                case NodeListEvent():
                    self._app.on_node_list(out)
                case _:
                    assert_never(out)

    def _own_delivered(self, record: Record) -> None:
        """One of this node's records was delivered: it must be the oldest outstanding one."""
        if not self._sent:
            raise InvariantViolation(
                f"RT-1: delivered a record of this node that it never submitted ({record.group!r})"
            )
        mine = self._sent.popleft()
        tag = self._tags.popleft()
        if not (
            mine.group == record.group
            and mine.handle == record.handle
            and mine.flags & _KIND == record.flags & _KIND
            and mine.data == record.data
        ):
            raise InvariantViolation(
                f"RT-1: own records delivered out of submission order: expected "
                f"{mine.group!r}/{mine.handle:x}, got {record.group!r}/{record.handle:x}"
            )
        if tag is not None:
            tag.delivered()

    # ------------------------------------------------------------------ draining

    def drain(self) -> bool:
        """Submit what may go now: control first, then data while the window is open.

        False when the core refused a record for lack of room (it waits at the head of its
        queue). Never re-entered: a submit's own effects cannot start a nested drain.
        """
        if self._draining or self._closed or not self._started:
            return True
        self._draining = True
        try:
            self.blocked = not (self._drain_control() and self._drain_data())
        finally:
            self._draining = False
        return not self.blocked

    def _drain_control(self) -> bool:
        if self._announce:
            record = self.state.announcement()
            if record is not None:
                try:
                    self._submit_control(record)
                except SendQueueFull:
                    return False
            self._announce = False
        control = self._control
        while control:
            try:
                self._submit_control(control[0])
            except SendQueueFull:
                return False
            control.popleft()
        return True

    def _drain_data(self) -> bool:
        data = self._data
        while data and self.window_open:
            item = data[0]
            try:
                self._submit(item.record, item.safe)
            except SendQueueFull:
                return False
            except Exception as exc:  # too large, or the node closed: this record cannot go
                data.popleft()
                if item.tag is not None:
                    item.tag.refused(exc)
                continue
            data.popleft()
            item.sent = True
            self._sent.append(item.record)
            self._tags.append(item.tag)
            if item.tag is not None:
                item.tag.sent()
        return True

    def _submit_control(self, record: Record) -> None:
        # Node-list changes are safe (QRM-3.7-2): delivered in a configuration only once every
        # member holds them, so the members that move on together all apply them or none does.
        self._submit(record, bool(record.flags & int(RecordFlags.SAFE)))
        self._sent.append(record)
        self._tags.append(None)
        self.state.note_submitted(record)
