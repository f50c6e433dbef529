"""State transfer and merges as a pure state machine over a group's event stream (RFC 0008 §5).

Why pure. The protocol is a function of the group's stream (views, messages, quorum verdicts) plus
the application's snapshots, so the same code runs under the asyncio wrapper
(``gcs.transfer.group.StateGroup``, for embedded nodes and daemon clients alike: it only uses the
public ``Group`` API) and inside the simulator (``gcs.sim.workloads.kv``), where swarm runs check it
under every fault the nemesis knows. It does no I/O: ``feed`` and ``snapshot_taken`` return actions
the driver executes in order.

Theory of operation. Every member of a group that uses state transfer runs this machine. A
member is a *holder* (its application has the group's state) or a *needer* (it joined and has
none). Each holder's state has a *lineage*: an opaque id shared by holders whose states are
identical — the members that moved together since the state was founded, merged or
transferred; a transitional view changes it (the sides of a partition diverge).

Rounds. At a regular view that adds members, or while some member needs state, or after a round
failed (and, in primary-component mode, only while the configuration is quorate), every member
starts a *round* at the same point of the stream and multicasts ``HELLO`` (safe): its status
and lineage. Holders stop passing events to the application — its state stays at the round's
*cut* — and every member counts the HELLOs of the round's members. When the last one is
delivered (the same point everywhere):

* no holders: every member *founds* the state (the application's initial state);
* one lineage: its lowest holder (the *provider*) snapshots its state at the cut and streams it
  to the needers in chunks (``send_to``, windowed by the driver); holders resume at once;
* several lineages (a partition healed): the lowest holder of each lineage multicasts its
  snapshot (safe); when every side's snapshot is in, every member passes them, in lineage order,
  to the application's merge hook and installs the result; then everyone resumes.

A needer buffers everything from its first view; when a transfer for one of its rounds is
complete it installs the snapshot and replays the events after that round's cut (nothing lost,
nothing applied twice), then multicasts ``DONE``. A round that a view change interrupts before
its last HELLO or snapshot fails: its holders' buffered events are applied as if there had been
no round — except in primary-component mode, where they are dropped at every member (a merge's
sides must not apply messages to diverging states); the next regular view starts a new round.
A view that adds members fails the round in progress too, and every member — the new ones,
for whom it is the first view, included — starts the next round right there, so the members
of a round always start it at the same point. Rounds start only under settled views (view id
lineage 0: every member computed the view from the same state), so the sides of a merge never
run rounds of their own.

Tails (primary mode, RFC 0008 §4.2). A safe message delivered in a quorate configuration by
some members may reach others only in their transitional configuration, and those then go into
a configuration that is not quorate: they must not apply it alone, and must not lose it either,
for the next primary may form without anyone that applied it. The group layer hands such
messages over marked ``uncommitted``; a holder keeps them as its *tail*, and tracks the
*position* (ring, seq, index) of the last message it applied. In a round, the freshest side —
the highest position — provides (its state goes to the needers, or is installed by every member
of a merge instead of calling the merge hook), and the union of the tails beyond its position is
applied by everyone, in ring order, before anything else: every message that any member of the
last primary applied is still applied by the next one, and nothing twice.

Messages. Protocol messages start with ``MAGIC`` and a kind byte; an application message that
happens to start with ``MAGIC`` is sent escaped (kind 0), so any byte string round-trips and
ordinary messages carry no overhead. Malformed protocol messages are ignored and counted.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import cbor2

from gcs.groups.views import Member, Message, View, ViewId
from gcs.quorum.rules import Quorum
from gcs.wire.frames import RingId

__all__ = [
    "CHUNK_BYTES",
    "MAGIC",
    "Cancel",
    "Deliver",
    "Fail",
    "Install",
    "Installed",
    "Merge",
    "Send",
    "Snapshot",
    "Stream",
    "Transfer",
    "encode_chunk",
    "escape",
]

MAGIC = b"\xa7\x1fgcs-st"
"""First bytes of every state-transfer protocol message."""
CHUNK_BYTES = 256 * 1024
"""Default snapshot chunk size (one record each; the core fragments it into frames)."""
_APP, _HELLO, _CHUNK, _DONE = 0, 1, 2, 3
_CHUNK_HEAD = struct.Struct(">8sIQIQIQ")  # key, owner node/handle, dest node/handle, index, count
Event = View | Message | Quorum
Pos = tuple[int, int, int, int]
"""A message's place in the primary lineage: ring seq, ring rep, mcast seq, index in it."""
_ORIGIN: Pos = (0, 0, 0, 0)


def _key(view_id: ViewId, count: int) -> bytes:
    """A round's id: the view it started under and how many rounds started since that view."""
    return hashlib.blake2b(f"{view_id}|{count}".encode(), digest_size=8).digest()


def _derive(*parts: bytes) -> bytes:
    return hashlib.blake2b(b"|".join(parts), digest_size=16).digest()


def escape(data: bytes) -> bytes:
    """An application message as sent: unchanged unless it starts with ``MAGIC``."""
    return MAGIC + bytes([_APP]) + data if data.startswith(MAGIC) else data


def encode_chunk(
    key: bytes, owner: Member, dest: Member | None, index: int, count: int, piece: bytes
) -> bytes:
    """One snapshot chunk message (``dest`` None: for every member, a merge)."""
    to = dest or Member(0, 0)
    head = _CHUNK_HEAD.pack(key, owner.node, owner.handle, to.node, to.handle, index, count)
    return MAGIC + bytes([_CHUNK]) + head + piece


# ---------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Deliver:
    """Hand ``event`` to the application (in the order of the actions)."""

    event: Event


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Take the application's snapshot now (it is at the cut) and pass it to
    ``snapshot_taken(key, data)``."""

    key: bytes


@dataclass(frozen=True, slots=True)
class Install:
    """Replace the application's state with ``state`` (a needer's transfer completed)."""

    state: bytes


@dataclass(frozen=True, slots=True)
class Merge:
    """Call the merge hook with each side's (holders, state), in this order; install its result."""

    sides: tuple[tuple[tuple[Member, ...], bytes], ...]


@dataclass(frozen=True, slots=True)
class Send:
    """Multicast a protocol message to the group."""

    data: bytes
    safe: bool


@dataclass(frozen=True, slots=True)
class Stream:
    """Send ``data`` in chunks (``encode_chunk``): to each of ``to``, or multicast if None."""

    key: bytes
    owner: Member
    to: tuple[Member, ...] | None
    data: bytes
    safe: bool


@dataclass(frozen=True, slots=True)
class Cancel:
    """Stop sending the chunks of round ``key`` that are not sent yet."""

    key: bytes


@dataclass(frozen=True, slots=True)
class Installed:
    """This member has the group's state now (founded, transferred or merged)."""

    how: str  # "found" | "transfer" | "merge" | "restored"


@dataclass(frozen=True, slots=True)
class Fail:
    """The transfer cannot continue (a buffer limit); the driver ends the member."""

    reason: str


Action = Deliver | Snapshot | Install | Merge | Send | Stream | Cancel | Installed | Fail


# ---------------------------------------------------------------------- rounds


class Phase(enum.Enum):
    HELLO = "hello"  # waiting for every member's HELLO
    MERGE = "merge"  # waiting for every side's snapshot


@dataclass(slots=True)
class _Hello:
    holder: bool
    lineage: bytes


@dataclass(slots=True)
class _Round:
    key: bytes
    members: set[Member]
    cut: int
    """Index in the machine's buffer where the events after the cut start."""
    view: View
    quorum: Quorum | None
    hellos: dict[Member, _Hello] = field(default_factory=dict)
    phase: Phase = Phase.HELLO
    sides: list[tuple[bytes, tuple[Member, ...]]] = field(default_factory=list)
    states: dict[Member, bytes] = field(default_factory=dict)
    incoming: dict[Member, list[bytes]] = field(default_factory=dict)


@dataclass(slots=True)
class _Pending:
    """A round whose transfer a needer can still install: its cut, and who streams it."""

    cut: int
    view: View
    quorum: Quorum | None
    provider: Member
    lineage: bytes
    chunks: list[bytes] = field(default_factory=list)


class Transfer:
    """One member's state-transfer machine. See the module docstring.

    ``lineage``: the member starts as a holder of that lineage (its application restored a
    state, e.g. from disk); None: it needs the group's state. ``primary``: the group is in
    primary-component mode (rounds only while quorate; failed merges drop messages).
    ``buffer_limit``: bytes of application messages a needer may buffer before it fails.
    ``restore``: with ``lineage``, what ``export()`` returned before the member stopped.
    """

    def __init__(
        self,
        me: Member,
        *,
        primary: bool = False,
        lineage: bytes | None = None,
        buffer_limit: int = 1 << 30,
        restore: bytes | None = None,
    ) -> None:
        self.me = me
        self.primary = primary
        self.lineage = lineage
        self.buffer_limit = buffer_limit
        self.buffer: list[Event] = []
        self.buffered_bytes = 0
        self.round: _Round | None = None
        self.pending: dict[bytes, _Pending] = {}
        self.needers: set[Member] = set()
        self.streams: dict[bytes, set[Member]] = {}
        self.view: View | None = None
        self.quorum: Quorum | None = None
        self.due = True
        self.since_view = 0
        self.quorum_after_view = False
        self.await_settle = False
        self.unmerged = False
        """Primary mode, from a failed round until a round completes: the view may hold
        members of several lineages, so no state may take messages (RFC 0008 XFR-5.5-2)."""
        self.dropped = 0
        self.ignored = 0
        """Malformed or impossible protocol messages (RFC 0008 XFR-5.6-1)."""
        self.rounds = 0
        self.failed_rounds = 0
        self.pos: Pos = _ORIGIN
        """The position of the last message this member's application applied (primary)."""
        self.tail: dict[Pos, Message] = {}
        """Uncommitted messages of the last primary, by position (primary mode)."""
        self._positions: dict[int, Pos] = {}
        self._mcast: tuple[RingId | None, int] | None = None
        self._index = 0
        if restore is not None and lineage is not None:
            unwrapped = self._unwrap(restore)
            if unwrapped is not None:
                _, self.pos, self.tail = unwrapped

    def export(self) -> bytes:
        """What a holder stores with its application's state, to restore it (``restore=``):
        its position and its tail; the lineage is stored beside it."""
        return self._wrap(b"")

    @property
    def holder(self) -> bool:
        return self.lineage is not None

    @property
    def buffering(self) -> bool:
        return not self.holder or self.round is not None

    # ------------------------------------------------------------------ input

    def feed(self, event: Event) -> list[Action]:
        """The next event of the group's stream (``group.events()``)."""
        out: list[Action] = []
        if type(event) is Message:
            pos = self._position(event)
            data = event.data
            protocol = data.startswith(MAGIC) and len(data) > len(MAGIC)
            if protocol and data[len(MAGIC)] != _APP:
                if not event.uncommitted:
                    self._on_protocol(event, out)
                return out
            if protocol:
                event = replace(event, data=data[len(MAGIC) + 1 :])
            if event.uncommitted:
                self._on_tail(event, pos)
                return out
            self._positions[id(event)] = pos
            self._app(event, out)
        elif type(event) is View:
            self._on_view(event, out)
        elif type(event) is Quorum:
            self._on_quorum(event, out)
        return out

    def snapshot_taken(self, key: bytes, data: bytes) -> list[Action]:
        """The application's snapshot for round ``key`` (after a ``Snapshot`` action)."""
        out: list[Action] = []
        rnd = self.round
        wrapped = self._wrap(data)
        if rnd is not None and rnd.key == key and rnd.phase is Phase.MERGE:
            # Not kept locally: the merge completes where the last side's last chunk is
            # delivered, the same point at every member — the owner's own chunks included.
            out.append(Stream(key, self.me, None, wrapped, True))
            return out
        needers = self.streams.get(key)
        if needers:
            out.append(Stream(key, self.me, tuple(sorted(needers)), wrapped, False))
        return out

    # ------------------------------------------------------------------ positions and tails

    def _position(self, msg: Message) -> Pos:
        """Ring, seq and index of a multicast message (point-to-point ones only count 0)."""
        ring = msg.ring_id
        mcast = (ring, msg.seq)
        if msg.to is None:
            if mcast == self._mcast:
                self._index += 1
            else:
                self._mcast, self._index = mcast, 0
        index = self._index if msg.to is None else 0
        return (0, 0, msg.seq, index) if ring is None else (ring.seq, ring.rep, msg.seq, index)

    def _on_tail(self, msg: Message, pos: Pos) -> None:
        if self.primary and self.holder and pos > self.pos:
            self.tail.setdefault(pos, msg)

    def _tail_after(self, pos: Pos, tails: list[dict[Pos, Message]]) -> list[tuple[Pos, Message]]:
        union: dict[Pos, Message] = {}
        for tail in tails:
            for where, msg in tail.items():
                if where > pos:
                    union.setdefault(where, msg)
        return sorted(union.items(), key=lambda item: item[0])

    def _apply_tail(self, entries: list[tuple[Pos, Message]], out: list[Action]) -> None:
        """Apply resolved tail messages, in ring order, as ordinary messages."""
        for where, msg in entries:
            out.append(Deliver(replace(msg, uncommitted=False)))
            self.pos = max(self.pos, where)
        self.tail = {}

    def _wrap(self, data: bytes) -> bytes:
        """A snapshot as it travels: the application's state, its position and its tail."""
        tail = [
            [*where, m.sender.node, m.sender.handle, m.data, m.safe]
            for where, m in sorted(self.tail.items())
        ]
        return bytes(cbor2.dumps([data, list(self.pos), tail], canonical=True))

    def _unwrap(self, wrapped: bytes) -> tuple[bytes, Pos, dict[Pos, Message]] | None:
        try:
            data, pos, tail = cbor2.loads(wrapped)
            where_of = tuple(int(v) for v in pos)
            entries: dict[Pos, Message] = {}
            view_id = (
                self.view.view_id if self.view is not None else ViewId(RingId(seq=0, rep=0), 0, 0)
            )
            for rs, rr, seq, idx, node, handle, body, safe in tail:
                ring = RingId(seq=int(rs), rep=int(rr))
                entries[(int(rs), int(rr), int(seq), int(idx))] = Message(
                    Member(int(node), int(handle)), bytes(body), bool(safe), view_id, ring, int(seq)
                )
            if len(where_of) != 4 or type(data) is not bytes:
                raise ValueError("malformed")
        except Exception:  # cbor2 and unpacking raise several types; any means malformed
            self.ignored += 1
            return None
        return data, (where_of[0], where_of[1], where_of[2], where_of[3]), entries

    # ------------------------------------------------------------------ stream events

    def _app(self, event: Event, out: list[Action]) -> None:
        if self.unmerged and self.round is None and type(event) is Message:
            # XFR-5.5-2: between a failed round and the next one, no state may take it (inside
            # a round everything is buffered, and its end decides for every member alike).
            self.dropped += 1
            self._positions.pop(id(event), None)
            return
        if self.buffering:
            self.buffer.append(event)
            if type(event) is Message:
                self.buffered_bytes += len(event.data)
                if not self.holder and self.buffered_bytes > self.buffer_limit:
                    out.append(Fail(f"buffered more than {self.buffer_limit} bytes"))
        else:
            self._deliver(event, out)

    def _deliver(self, event: Event, out: list[Action]) -> None:
        if type(event) is Message:
            where = self._positions.pop(id(event), None)
            if where is not None and where > self.pos:
                self.pos = where
        out.append(Deliver(event))

    def _on_view(self, view: View, out: list[Action]) -> None:
        previous = self.view
        self.view = view
        self.since_view = 0
        if previous is None or previous.view_id.ring != view.view_id.ring:
            self.quorum_after_view = False
        if not view.transitional and not view.view_id.lineage:
            self.await_settle = False
        rnd = self.round
        if view.transitional:
            if self.holder and self.lineage is not None:
                self.lineage = _derive(b"split", self.lineage, str(view.view_id).encode())
            if view.joined:
                self.due = True  # a join delivered late: the next regular view starts a round
            self._app(view, out)
            if rnd is not None:
                self._fail(rnd, out)
            self._forget_departed(view)
            return
        self._app(view, out)
        self._forget_departed(view)
        if view.joined or self.needers or not self.holder or self.tail:
            self.due = True
        if rnd is not None:
            if view.joined:
                self._fail(rnd, out)  # the new members start with everyone, below
            else:
                self._round_view(rnd, view, out)
                return
        self._try_start(out)

    def _on_quorum(self, verdict: Quorum, out: list[Action]) -> None:
        previous, self.quorum = self.quorum, verdict
        self.quorum_after_view = True
        self._app(verdict, out)
        new_ring = previous is None or previous.ring_id != verdict.ring_id
        grew = previous is not None and not set(verdict.members) <= set(previous.members)
        if self.primary and new_ring and grew:
            # Nodes joined the ring: the group layer passes no messages until it is settled,
            # and a view marks that point (RFC 0006 API-3.4-3). Rounds wait for it.
            self.await_settle = True
        if self.primary and new_ring:
            # The ring changed under an unchanged group view: primary-component filtering may
            # have dropped this round's messages (or a transfer's chunks) on the way.
            if self.needers or not self.holder or self.tail:
                self.due = True
            rnd = self.round
            if rnd is not None:
                self._fail(rnd, out)
        if self.round is None:
            self._try_start(out)

    def _forget_departed(self, view: View) -> None:
        present = set(view.members)
        self.needers &= present
        for needers in self.streams.values():
            needers.intersection_update(present)

    def _quorate(self) -> bool:
        if not self.primary:
            return True
        verdict, view = self.quorum, self.view
        if verdict is None or view is None or not verdict.quorate:
            return False
        return verdict.ring_id == view.view_id.ring or self.quorum_after_view

    # ------------------------------------------------------------------ rounds

    def _try_start(self, out: list[Action]) -> None:
        view = self.view
        if not self.due or view is None or view.transitional or view.view_id.lineage:
            return  # not under a view every member computed from the same state
        if self.await_settle:
            return
        if not self._quorate():
            return
        key = _key(view.view_id, self.since_view)
        self.since_view += 1
        self._start(view, key, out)

    def _start(self, view: View, key: bytes, out: list[Action]) -> None:
        self.due = False
        self.rounds += 1
        cut = len(self.buffer)
        self.round = _Round(key, set(view.members), cut, view, self.quorum)
        if not self.holder:
            self.pending[key] = _Pending(cut, view, self.quorum, Member(0, 0), b"")
        hello = [key, self.holder, self.lineage or b""]
        out.append(Send(_protocol(_HELLO, hello), True))

    def _round_view(self, rnd: _Round, view: View, out: list[Action]) -> None:
        """A view that only removes members: those will not HELLO; a lost snapshot fails."""
        gone = rnd.members - set(view.members)
        reps = [holders[0] for _, holders in rnd.sides]
        if any(rep in gone and rep not in rnd.states for rep in reps):
            self._fail(rnd, out)
            return
        rnd.members -= gone
        if rnd.phase is Phase.HELLO:
            self._maybe_decided(rnd, out)

    def _on_hello(self, sender: Member, body: Any, out: list[Action]) -> None:
        if not (type(body) is list and len(body) == 3):
            self.ignored += 1
            return
        key, holder, lineage = body
        if type(key) is not bytes or type(holder) is not bool or type(lineage) is not bytes:
            self.ignored += 1
            return
        rnd = self.round
        if rnd is None or rnd.key != key or rnd.phase is not Phase.HELLO:
            return  # a round that failed here, or one that ended
        if sender in rnd.members and sender not in rnd.hellos:
            rnd.hellos[sender] = _Hello(holder, lineage)
            self._maybe_decided(rnd, out)

    def _maybe_decided(self, rnd: _Round, out: list[Action]) -> None:
        if not rnd.members <= set(rnd.hellos):
            return
        hellos = {m: h for m, h in rnd.hellos.items() if m in rnd.members}
        by_lineage: dict[bytes, list[Member]] = {}
        for member, hello in sorted(hellos.items()):
            if hello.holder:
                by_lineage.setdefault(hello.lineage, []).append(member)
        sides = sorted(((lin, tuple(ms)) for lin, ms in by_lineage.items()), key=lambda s: s[1])
        self.needers = {m for m, h in hellos.items() if not h.holder}
        if not sides:
            self._found(rnd, out)
        elif len(sides) == 1:
            self._transfer(rnd, sides[0], out)
        else:
            rnd.phase = Phase.MERGE
            rnd.sides = sides
            if any(self.me == holders[0] for _, holders in sides):
                out.append(Snapshot(rnd.key))

    def _found(self, rnd: _Round, out: list[Action]) -> None:
        lineage = _derive(b"found", rnd.key)
        self.needers.clear()
        if not self.holder:
            self._install(rnd.key, lineage, None, out, "found")
        self._end(out)

    def _transfer(
        self, rnd: _Round, side: tuple[bytes, tuple[Member, ...]], out: list[Action]
    ) -> None:
        lineage, holders = side
        provider = holders[0]
        pending = self.pending.get(rnd.key)
        if pending is not None:
            pending.provider, pending.lineage = provider, lineage
        if self.holder and self.tail:
            # One lineage in a quorate round: its tail is committed now (RFC 0008 §4.2).
            self._apply_tail(self._tail_after(self.pos, [self.tail]), out)
        if self.me == provider and self.needers:
            self.streams[rnd.key] = set(self.needers)
            out.append(Snapshot(rnd.key))
        self._end(out)

    def _end(self, out: list[Action]) -> None:
        """The round is over: holders resume."""
        self.round = None
        self.unmerged = False
        if self.holder:
            self._release(out)

    def _release(self, out: list[Action]) -> None:
        events, self.buffer = self.buffer, []
        self.buffered_bytes = 0
        for event in events:
            self._deliver(event, out)
        self._positions.clear()

    def _fail(self, rnd: _Round, out: list[Action]) -> None:
        """A view change cut the round short (see the module docstring)."""
        self.failed_rounds += 1
        self.round = None
        self.pending.pop(rnd.key, None)
        self.due = True
        if self.primary:
            self.unmerged = True
            kept = self.buffer[: rnd.cut] + [
                e for e in self.buffer[rnd.cut :] if type(e) is not Message
            ]
            self.buffer = kept
            self.buffered_bytes = sum(len(e.data) for e in kept if type(e) is Message)
        if self.holder:
            self._release(out)

    # ------------------------------------------------------------------ protocol messages

    def _on_protocol(self, msg: Message, out: list[Action]) -> None:
        data = msg.data
        kind = data[len(MAGIC)]
        if kind == _CHUNK:
            self._on_chunk(msg.sender, data[len(MAGIC) + 1 :], out)
            return
        try:
            body = cbor2.loads(data[len(MAGIC) + 1 :])
        except Exception:  # cbor2 raises several types on bad input; any means malformed
            self.ignored += 1
            return
        if kind == _HELLO:
            self._on_hello(msg.sender, body, out)
        elif kind == _DONE and type(body) is list and body and type(body[0]) is bytes:
            self._on_done(msg.sender, body[0], out)
        else:
            self.ignored += 1

    def _on_done(self, sender: Member, key: bytes, out: list[Action]) -> None:
        self.needers.discard(sender)
        for stream_key, needers in list(self.streams.items()):
            needers.discard(sender)
            if not needers:
                del self.streams[stream_key]
                out.append(Cancel(stream_key))

    def _on_chunk(self, sender: Member, body: bytes, out: list[Action]) -> None:
        if len(body) < _CHUNK_HEAD.size:
            self.ignored += 1
            return
        key, o_node, o_handle, d_node, d_handle, index, count = _CHUNK_HEAD.unpack_from(body)
        owner, piece = Member(o_node, o_handle), body[_CHUNK_HEAD.size :]
        if owner != sender or count < 1 or index >= count:
            self.ignored += 1
            return
        rnd = self.round
        if d_node == 0:
            if rnd is not None and rnd.key == key and rnd.phase is Phase.MERGE:
                self._merge_chunk(rnd, owner, index, count, piece, out)
            return
        if Member(d_node, d_handle) != self.me or self.holder:
            return
        pending = self.pending.get(key)
        if pending is None or pending.provider != owner or index != len(pending.chunks):
            return  # an abandoned transfer, or one this member has lost a chunk of
        pending.chunks.append(piece)
        if len(pending.chunks) == count:
            unwrapped = self._unwrap(b"".join(pending.chunks))
            if unwrapped is None:
                pending.chunks.clear()  # a broken snapshot: wait for the next round's
                return
            state, where, _ = unwrapped
            self._install(key, pending.lineage, Install(state), out, "transfer", where)

    def _merge_chunk(
        self, rnd: _Round, owner: Member, index: int, count: int, piece: bytes, out: list[Action]
    ) -> None:
        reps = {holders[0] for _, holders in rnd.sides}
        if owner not in reps or owner in rnd.states:
            return
        chunks = rnd.incoming.setdefault(owner, [])
        if index != len(chunks):
            self.ignored += 1
            return
        chunks.append(piece)
        if len(chunks) == count:
            rnd.states[owner] = b"".join(rnd.incoming.pop(owner))
            self._maybe_merged(rnd, out)

    def _maybe_merged(self, rnd: _Round, out: list[Action]) -> None:
        if any(holders[0] not in rnd.states for _, holders in rnd.sides):
            return
        unwrapped = [(holders, self._unwrap(rnd.states[holders[0]])) for _, holders in rnd.sides]
        sides = [(holders, u) for holders, u in unwrapped if u is not None]
        self.needers.clear()
        lineage = _derive(b"merge", rnd.key)
        if not sides:
            self._fail(rnd, out)
            return
        action: Install | Merge
        tail: list[tuple[Pos, Message]] = []
        if self.primary:
            # One lineage ever applies in primary mode: the freshest side is the state, and
            # the tails beyond it are the rest of the last primary (RFC 0008 §4.2, §5.5).
            _, (state, where, _) = max(sides, key=lambda side: side[1][1])
            tail = self._tail_after(where, [u[2] for _, u in sides] + [self.tail])
            action = Install(state)
        else:
            where = _ORIGIN
            action = Merge(tuple((holders, u[0]) for holders, u in sides))
        if self.holder:
            self.lineage = lineage
            self.pos = where
            out.append(action)
            self._apply_tail(tail, out)
            out.append(Installed("merge"))
            self._end(out)
            return
        self._install(rnd.key, lineage, action, out, "merge", where, tail)
        self._end(out)

    # ------------------------------------------------------------------ installing

    def _install(
        self,
        key: bytes,
        lineage: bytes,
        action: Install | Merge | None,
        out: list[Action],
        how: str,
        where: Pos = _ORIGIN,
        tail: list[tuple[Pos, Message]] | None = None,
    ) -> None:
        """A needer gets the state at round ``key``'s cut, then the events after it."""
        pending = self.pending.get(key)
        if pending is None:
            return
        rnd = self.round
        stop = len(self.buffer) if rnd is None or rnd.key == key else rnd.cut
        after = self.buffer[pending.cut : stop]
        for event in after:
            if type(event) is View and event.transitional:
                lineage = _derive(b"split", lineage, str(event.view_id).encode())
        self.lineage = lineage
        self.pending.clear()
        # A later round still running keeps what came after its cut: this member is now a
        # holder in it and resumes with the others.
        self.buffer = self.buffer[stop:] if stop < len(self.buffer) else []
        if rnd is not None and rnd.key != key:
            rnd.cut = 0
        self.buffered_bytes = sum(len(e.data) for e in self.buffer if type(e) is Message)
        if action is not None:
            out.append(action)
        self.pos = where
        self._apply_tail(tail or [], out)
        out.append(Installed(how))
        out.append(Deliver(pending.view))
        if pending.quorum is not None:
            out.append(Deliver(pending.quorum))
        for event in after:
            self._deliver(event, out)
        self._positions = {
            id(e): self._positions[id(e)] for e in self.buffer if id(e) in self._positions
        }
        out.append(Send(_protocol(_DONE, [key]), False))


def _protocol(kind: int, body: Sequence[Any]) -> bytes:
    return MAGIC + bytes([kind]) + bytes(cbor2.dumps(list(body), canonical=True))
