"""Every Totem frame as a frozen, slotted dataclass (RFC 0002 §4).

These are the only objects that cross the boundary between the wire layer and the protocol core
(RFC 0001 §4): the core never sees bytes, the codec never sees protocol state.
Field names follow the Totem paper and corosync (``ring_id``, ``aru``, ``aru_id``, ``rtr``) so the
RFC, the code and the literature read the same.

Integers on the wire are unsigned 64-bit; node ids are positive (0 means "nobody", as
corosync's ``aru_addr``). Sequence numbers start at 0 ("nothing originated yet") on every ring and
the first message of a ring has seq 1.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FRAME_TYPES",
    "Frame",
    "FrameType",
    "MembCommitToken",
    "MembJoin",
    "MembLeave",
    "MembMergeDetect",
    "Mcast",
    "MemberEntry",
    "OrfToken",
    "Record",
    "RecordFlags",
    "RingId",
    "RtrEntry",
    "TokenHoldCancel",
]


class FrameType(enum.IntEnum):
    """Frame type codes (RFC 0002 §3, the registry). Codes match corosync's where both exist."""

    ORF_TOKEN = 0
    MCAST = 1
    MEMB_MERGE_DETECT = 2
    MEMB_JOIN = 3
    MEMB_COMMIT_TOKEN = 4
    TOKEN_HOLD_CANCEL = 5
    MEMB_LEAVE = 6


class RecordFlags(enum.IntFlag):
    """Bits of ``Record.flags`` (RFC 0002 §4.2.1).

    Bits 0-1: record kind; bits 2-3: fragment position; bit 4: safe. Safe is really a property of
    the enclosing mcast (records of different guarantees are never packed together,
    RFC 0002 §4.2.1); the bit is repeated per record so a reassembled or unpacked record
    keeps it, and the decoder rejects a record whose bit disagrees with its mcast.
    """

    DATA = 0
    JOIN = 1
    LEAVE = 2
    KIND_MASK = 0b11
    WHOLE = 0
    FIRST = 1 << 2
    MIDDLE = 2 << 2
    LAST = 3 << 2
    FRAGMENT_MASK = 0b11 << 2
    SAFE = 1 << 4


RECORD_FLAGS_ALL = 0b11111


@dataclass(frozen=True, slots=True, order=True, kw_only=True)
class RingId:
    """A ring's identity: (representative node id, ring seq). Ordered by seq first.

    Ring seqs only grow (by 4 per new ring, RFC 0004), so ``seq`` alone orders the rings a node
    installs; ``rep`` disambiguates concurrent rings formed in different partitions.
    """

    seq: int
    rep: int

    def __str__(self) -> str:
        return f"{self.rep}.{self.seq}"

    def __reduce__(self) -> tuple[Any, tuple[int, int]]:
        return (_ring_id, (self.seq, self.rep))


def _ring_id(seq: int, rep: int) -> RingId:
    """Unpickle a ``RingId`` (its fields are keyword-only)."""
    return RingId(seq=seq, rep=rep)


@dataclass(frozen=True, slots=True)
class RtrEntry:
    """One retransmission request carried on the token: message ``seq`` of ring ``ring_id``."""

    ring_id: RingId
    seq: int


@dataclass(frozen=True, slots=True)
class OrfToken:
    """The ordering (regular) token, unicast around the ring (RFC 0003 §4)."""

    ring_id: RingId
    token_seq: int
    seq: int
    aru: int
    aru_id: int
    fcc: int
    backlog: int
    retrans_flg: bool
    rtr: tuple[RtrEntry, ...]


@dataclass(frozen=True, slots=True)
class Record:
    """One application-level record inside an mcast payload (RFC 0002 §4.2.1).

    ``group`` names the process group, ``handle`` the sending member on its node, ``flags`` are
    ``RecordFlags`` bits and ``data`` the (possibly fragment of the) application bytes.
    """

    group: str
    handle: int
    flags: int
    data: bytes

    def __reduce__(self) -> tuple[type[Record], tuple[str, int, int, bytes]]:
        # Pickling (the flight recorder's core snapshots) through a slotted dataclass's own
        # __getstate__ walks fields() for every object; this is several times cheaper.
        return (Record, (self.group, self.handle, self.flags, self.data))

    @property
    def kind(self) -> int:
        return self.flags & RecordFlags.KIND_MASK

    @property
    def fragment(self) -> int:
        return self.flags & RecordFlags.FRAGMENT_MASK

    @property
    def safe(self) -> bool:
        return bool(self.flags & RecordFlags.SAFE)


@dataclass(frozen=True, slots=True)
class Mcast:
    """A multicast message: one seq on one ring, carrying records or one encapsulated old mcast.

    ``encapsulated`` is set only during recovery (RFC 0004 §6): the outer mcast belongs to the new
    ring and gets a new-ring seq, the inner one keeps its old ring id, old seq and original
    sender. An encapsulated mcast has no records of its own, and nesting is one level deep.
    """

    sender: int
    ring_id: RingId
    seq: int
    safe: bool
    records: tuple[Record, ...]
    encapsulated: Mcast | None = None

    def __reduce__(self) -> tuple[type[Mcast], tuple[Any, ...]]:
        fields = (self.sender, self.ring_id, self.seq, self.safe, self.records, self.encapsulated)
        return (Mcast, fields)


@dataclass(frozen=True, slots=True)
class MembJoin:
    """A join, broadcast while gathering (RFC 0004 §3). Never retransmitted, never delivered."""

    sender: int
    proc_set: frozenset[int]
    fail_set: frozenset[int]
    ring_seq: int


@dataclass(frozen=True, slots=True)
class MembLeave:
    """A clean-shutdown leave: a join variant whose fail set names the sender (RFC 0004 §3.4).

    It has its own type code, where corosync overloads a join with node id 0, so that a receiver
    never has to guess, and so that the leaver's id stays authenticated by the channel.
    """

    sender: int
    proc_set: frozenset[int]
    fail_set: frozenset[int]
    ring_seq: int


@dataclass(frozen=True, slots=True)
class MemberEntry:
    """One member's line in the commit token (RFC 0004 §5)."""

    node_id: int
    old_ring_id: RingId
    aru: int
    high_delivered: int
    received_flg: bool


@dataclass(frozen=True, slots=True)
class MembCommitToken:
    """The commit token, unicast twice around the proposed ring (RFC 0004 §5).

    ``members`` is in ring order (ascending node id, representative first). ``memb_index`` counts
    the entries filled in so far during the first rotation.
    """

    ring_id: RingId
    token_seq: int
    memb_index: int
    members: tuple[MemberEntry, ...]


@dataclass(frozen=True, slots=True)
class MembMergeDetect:
    """Sent by a representative to configured nodes outside its ring, so partitions meet."""

    sender: int
    ring_id: RingId


@dataclass(frozen=True, slots=True)
class TokenHoldCancel:
    """Multicast by a member with new data to wake a representative that is holding the token."""

    sender: int
    ring_id: RingId


Frame = (
    OrfToken | Mcast | MembJoin | MembLeave | MembCommitToken | MembMergeDetect | TokenHoldCancel
)

FRAME_TYPES: dict[type[Frame], FrameType] = {
    OrfToken: FrameType.ORF_TOKEN,
    Mcast: FrameType.MCAST,
    MembMergeDetect: FrameType.MEMB_MERGE_DETECT,
    MembJoin: FrameType.MEMB_JOIN,
    MembCommitToken: FrameType.MEMB_COMMIT_TOKEN,
    TokenHoldCancel: FrameType.TOKEN_HOLD_CANCEL,
    MembLeave: FrameType.MEMB_LEAVE,
}
