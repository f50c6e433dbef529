"""Every Totem frame as a frozen, slotted dataclass (RFC 0002 §4).

These are the only objects that cross the boundary between the wire layer and the protocol core
(RFC 0001 §4): the core never sees bytes, the codec never sees protocol state.
Field names follow the Totem paper and corosync (``ring_id``, ``aru``, ``aru_id``, ``rtr``) so the
RFC, the code and the literature read the same.

Integers on the wire are unsigned 64-bit; node ids are positive (0 means "nobody", as
corosync's ``aru_addr``). Sequence numbers start at 0 ("nothing originated yet") on every ring and
the first message of a ring has seq 1.

Why each class writes its own ``__init__`` (``init=False``). In the compiled build (mypyc,
``gcs.build``) the methods that ``dataclass`` generates stay interpreted Python, and a frozen
dataclass's generated ``__init__`` costs about 6,900 instructions for a four-field record there;
the same ``object.__setattr__`` calls written in the class are compiled to direct stores, about
410. The pure build runs the same code at the same cost as the generated one. A test checks that
every ``__init__`` takes exactly the fields, in order.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "FRAME_TYPES",
    "Frame",
    "FrameType",
    "LinkProbe",
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
    "WireFrame",
    "reduce_frozen",
]


def reduce_frozen(obj: Any) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """``__reduce__`` for a frozen dataclass: unpickle it through its constructor.

    Pickle normally rebuilds an object by setting its attributes, which a frozen dataclass
    compiled by mypyc (the compiled build, ``gcs.build``) refuses; the constructor works in both
    builds, and a pickle made by one loads in the other. The flight recorder pickles the core.
    """
    return (_construct, (type(obj), {f.name: getattr(obj, f.name) for f in fields(obj)}))


def _construct(cls: Callable[..., Any], values: dict[str, Any]) -> Any:
    return cls(**values)


class FrameType(enum.IntEnum):
    """Frame type codes (RFC 0002 §3, the registry). Codes match corosync's where both exist."""

    ORF_TOKEN = 0
    MCAST = 1
    MEMB_MERGE_DETECT = 2
    MEMB_JOIN = 3
    MEMB_COMMIT_TOKEN = 4
    TOKEN_HOLD_CANCEL = 5
    MEMB_LEAVE = 6
    LINK_PROBE = 7


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


@dataclass(frozen=True, slots=True, order=True, kw_only=True, init=False)
class RingId:
    """A ring's identity: (representative node id, ring seq). Ordered by seq first.

    Ring seqs only grow (by 4 per new ring, RFC 0004), so ``seq`` alone orders the rings a node
    installs; ``rep`` disambiguates concurrent rings formed in different partitions.
    """

    seq: int
    rep: int

    def __init__(self, *, seq: int, rep: int) -> None:
        object.__setattr__(self, "seq", seq)
        object.__setattr__(self, "rep", rep)

    def __str__(self) -> str:
        return f"{self.rep}.{self.seq}"

    def __reduce__(self) -> tuple[Any, tuple[int, int]]:
        return (_ring_id, (self.seq, self.rep))


def _ring_id(seq: int, rep: int) -> RingId:
    """Unpickle a ``RingId`` (its fields are keyword-only)."""
    return RingId(seq=seq, rep=rep)


@dataclass(frozen=True, slots=True, init=False)
class RtrEntry:
    """One retransmission request carried on the token: message ``seq`` of ring ``ring_id``."""

    ring_id: RingId
    seq: int

    def __init__(self, ring_id: RingId, seq: int) -> None:
        object.__setattr__(self, "ring_id", ring_id)
        object.__setattr__(self, "seq", seq)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


@dataclass(frozen=True, slots=True, init=False)
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

    def __init__(
        self,
        ring_id: RingId,
        token_seq: int,
        seq: int,
        aru: int,
        aru_id: int,
        fcc: int,
        backlog: int,
        retrans_flg: bool,
        rtr: tuple[RtrEntry, ...],
    ) -> None:
        object.__setattr__(self, "ring_id", ring_id)
        object.__setattr__(self, "token_seq", token_seq)
        object.__setattr__(self, "seq", seq)
        object.__setattr__(self, "aru", aru)
        object.__setattr__(self, "aru_id", aru_id)
        object.__setattr__(self, "fcc", fcc)
        object.__setattr__(self, "backlog", backlog)
        object.__setattr__(self, "retrans_flg", retrans_flg)
        object.__setattr__(self, "rtr", rtr)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


@dataclass(frozen=True, slots=True, init=False)
class Record:
    """One application-level record inside an mcast payload (RFC 0002 §4.2.1).

    ``group`` names the process group, ``handle`` the sending member on its node, ``flags`` are
    ``RecordFlags`` bits and ``data`` the (possibly fragment of the) application bytes.
    """

    group: str
    handle: int
    flags: int
    data: bytes

    def __init__(self, group: str, handle: int, flags: int, data: bytes) -> None:
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "handle", handle)
        object.__setattr__(self, "flags", flags)
        object.__setattr__(self, "data", data)

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


@dataclass(frozen=True, slots=True, init=False)
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

    def __init__(
        self,
        sender: int,
        ring_id: RingId,
        seq: int,
        safe: bool,
        records: tuple[Record, ...],
        encapsulated: Mcast | None = None,
    ) -> None:
        object.__setattr__(self, "sender", sender)
        object.__setattr__(self, "ring_id", ring_id)
        object.__setattr__(self, "seq", seq)
        object.__setattr__(self, "safe", safe)
        object.__setattr__(self, "records", records)
        object.__setattr__(self, "encapsulated", encapsulated)

    def __reduce__(self) -> tuple[type[Mcast], tuple[Any, ...]]:
        fields = (self.sender, self.ring_id, self.seq, self.safe, self.records, self.encapsulated)
        return (Mcast, fields)


@dataclass(frozen=True, slots=True, init=False)
class MembJoin:
    """A join, broadcast while gathering (RFC 0004 §3). Never retransmitted, never delivered."""

    sender: int
    proc_set: frozenset[int]
    fail_set: frozenset[int]
    ring_seq: int

    def __init__(
        self, sender: int, proc_set: frozenset[int], fail_set: frozenset[int], ring_seq: int
    ) -> None:
        object.__setattr__(self, "sender", sender)
        object.__setattr__(self, "proc_set", proc_set)
        object.__setattr__(self, "fail_set", fail_set)
        object.__setattr__(self, "ring_seq", ring_seq)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


@dataclass(frozen=True, slots=True, init=False)
class MembLeave:
    """A clean-shutdown leave: a join variant whose fail set names the sender (RFC 0004 §3.4).

    It has its own type code, where corosync overloads a join with node id 0, so that a receiver
    never has to guess, and so that the leaver's id stays authenticated by the channel.
    """

    sender: int
    proc_set: frozenset[int]
    fail_set: frozenset[int]
    ring_seq: int

    def __init__(
        self, sender: int, proc_set: frozenset[int], fail_set: frozenset[int], ring_seq: int
    ) -> None:
        object.__setattr__(self, "sender", sender)
        object.__setattr__(self, "proc_set", proc_set)
        object.__setattr__(self, "fail_set", fail_set)
        object.__setattr__(self, "ring_seq", ring_seq)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


@dataclass(frozen=True, slots=True, init=False)
class MemberEntry:
    """One member's line in the commit token (RFC 0004 §5)."""

    node_id: int
    old_ring_id: RingId
    aru: int
    high_delivered: int
    received_flg: bool

    def __init__(
        self, node_id: int, old_ring_id: RingId, aru: int, high_delivered: int, received_flg: bool
    ) -> None:
        object.__setattr__(self, "node_id", node_id)
        object.__setattr__(self, "old_ring_id", old_ring_id)
        object.__setattr__(self, "aru", aru)
        object.__setattr__(self, "high_delivered", high_delivered)
        object.__setattr__(self, "received_flg", received_flg)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


@dataclass(frozen=True, slots=True, init=False)
class MembCommitToken:
    """The commit token, unicast twice around the proposed ring (RFC 0004 §5).

    ``members`` is in ring order (ascending node id, representative first). ``memb_index`` counts
    the entries filled in so far during the first rotation.
    """

    ring_id: RingId
    token_seq: int
    memb_index: int
    members: tuple[MemberEntry, ...]

    def __init__(
        self, ring_id: RingId, token_seq: int, memb_index: int, members: tuple[MemberEntry, ...]
    ) -> None:
        object.__setattr__(self, "ring_id", ring_id)
        object.__setattr__(self, "token_seq", token_seq)
        object.__setattr__(self, "memb_index", memb_index)
        object.__setattr__(self, "members", members)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


@dataclass(frozen=True, slots=True, init=False)
class MembMergeDetect:
    """Sent by a representative to configured nodes outside its ring, so partitions meet."""

    sender: int
    ring_id: RingId

    def __init__(self, sender: int, ring_id: RingId) -> None:
        object.__setattr__(self, "sender", sender)
        object.__setattr__(self, "ring_id", ring_id)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


@dataclass(frozen=True, slots=True, init=False)
class TokenHoldCancel:
    """Multicast by a member with new data to wake a representative that is holding the token."""

    sender: int
    ring_id: RingId

    def __init__(self, sender: int, ring_id: RingId) -> None:
        object.__setattr__(self, "sender", sender)
        object.__setattr__(self, "ring_id", ring_id)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


@dataclass(frozen=True, slots=True, init=False)
class LinkProbe:
    """A link heartbeat (RFC 0002 §4.7, RFC 0010): a transport frame, never a core input.

    A node with several links sends one to a peer on one link, from that link's socket to the
    peer's address on it; the peer answers a probe (``reply`` false) at once, on the same link,
    with the same ``link`` and ``seq`` and ``reply`` true. ``hears`` says whether the sender
    currently hears the receiver on this link (its receive direction is up), so that a link cut
    in one direction is down at both ends.
    """

    link: int
    seq: int
    reply: bool
    hears: bool

    def __init__(self, link: int, seq: int, reply: bool, hears: bool) -> None:
        object.__setattr__(self, "link", link)
        object.__setattr__(self, "seq", seq)
        object.__setattr__(self, "reply", reply)
        object.__setattr__(self, "hears", hears)

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return reduce_frozen(self)


Frame = (
    OrfToken | Mcast | MembJoin | MembLeave | MembCommitToken | MembMergeDetect | TokenHoldCancel
)
"""The frames of the protocol core (RFC 0003, RFC 0004): what ``gcs.totem`` takes and makes."""

WireFrame = Frame | LinkProbe
"""Every frame a datagram can carry: the core's, and the drivers' own link probes."""

FRAME_TYPES: dict[type[WireFrame], FrameType] = {
    OrfToken: FrameType.ORF_TOKEN,
    Mcast: FrameType.MCAST,
    MembMergeDetect: FrameType.MEMB_MERGE_DETECT,
    MembJoin: FrameType.MEMB_JOIN,
    MembCommitToken: FrameType.MEMB_COMMIT_TOKEN,
    TokenHoldCancel: FrameType.TOKEN_HOLD_CANCEL,
    MembLeave: FrameType.MEMB_LEAVE,
    LinkProbe: FrameType.LINK_PROBE,
}
