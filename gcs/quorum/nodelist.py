"""The node list as replicated state: versions, change records, and the rules that follow it.

Why replicated. A node list read from each node's file can only change by editing every file and
restarting every node. Here the file's list is the bootstrap (version 0) and the list then changes
only by a *change record* in the total order (RFC 0008 §3.7): every member applies it at the same
position of the delivered stream, so members of one configuration hold the same list and reach
the same quorum verdict (QRM-3.2-1). A change adds or removes one node and names the ring it was
made in and the version it applies to; a member applies it only where that ring was quorate and
only on that version, so two partitions can never both move the list on (the argument is
RFC 0008 §3.7.4).

Why one node at a time. Any set holding a majority of the votes of a list and any set holding a
majority of the votes of the list one change later have a common node when the changed node has
at most one vote (the single-server change of Raft). With more votes they may not: such a change
is refused unless ``change_is_safe`` proves the overlap for the two vote totals.

Nothing here does I/O: the persistence a change needs before it takes effect is an output the
group layer hands its driver (``PersistNodes``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import cbor2

from gcs.quorum.rules import MAX_VOTES, QuorumRules, QuorumState
from gcs.wire.frames import RingId

__all__ = [
    "CONTROL_NODES",
    "MAX_ADDRESSES",
    "MAX_ADDRESS_BYTES",
    "ChangeOp",
    "NodeChange",
    "NodeEntry",
    "NodeList",
    "PersistNodes",
    "Refusal",
    "adjust_state",
    "apply_change",
    "change_is_safe",
    "check_change",
    "decode_change",
    "encode_change",
    "list_from_wire",
    "list_to_wire",
    "rules_for",
]

CONTROL_NODES = 3
"""First byte of a group-layer control record changing the node list (RFC 0008 Appendix B)."""
MAX_ADDRESSES = 8
"""Addresses one node entry may carry (one per link)."""
MAX_ADDRESS_BYTES = 300
"""Longest address text, in UTF-8 bytes."""
MAX_NODES = 384
"""Longest node list (the wire's node-set limit, RFC 0002)."""
_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1


class ChangeOp(enum.IntEnum):
    """What a change record does to the list."""

    ADD = 1
    REMOVE = 2


class Refusal(enum.StrEnum):
    """Why a change cannot be applied to a list (the same answer at every member)."""

    LISTED = "listed"  # add: the node is in the list already
    NOT_LISTED = "not_listed"  # remove: the node is not in the list
    NO_VOTES_LEFT = "no_votes_left"  # remove: no listed node would keep a vote
    TOO_MANY_NODES = "too_many_nodes"  # add: the list is full
    UNSAFE_VOTES = "unsafe_votes"  # the change could let two partitions both be quorate


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """One listed node: its id, its quorum votes and its addresses (``host:port``, per link)."""

    node_id: int
    votes: int
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeList:
    """A version of the node list; ``entries`` ascending by node id, ids unique."""

    version: int
    entries: tuple[NodeEntry, ...]

    @classmethod
    def bootstrap(
        cls, votes: Mapping[int, int], addresses: Mapping[int, tuple[str, ...]] | None = None
    ) -> NodeList:
        """Version 0: the list of the configuration file."""
        where = addresses or {}
        return cls(0, tuple(NodeEntry(n, votes[n], where.get(n, ())) for n in sorted(votes)))

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(e.node_id for e in self.entries)

    def votes(self) -> dict[int, int]:
        return {e.node_id: e.votes for e in self.entries}

    def total_votes(self) -> int:
        return sum(e.votes for e in self.entries)

    def get(self, node_id: int) -> NodeEntry | None:
        for entry in self.entries:
            if entry.node_id == node_id:
                return entry
        return None


@dataclass(frozen=True, slots=True)
class NodeChange:
    """A change record's content: in ``ring``, on list ``base``, add or remove ``entry``.

    A removal's entry carries only the node id (votes 0, no addresses).
    """

    ring: RingId
    base: int
    op: ChangeOp
    entry: NodeEntry


@dataclass(frozen=True, slots=True)
class PersistNodes:
    """Store ``nodes`` durably; the driver MUST finish the write before the outputs that follow.

    It precedes every output the change causes (the new verdict, the views after it), as a ring
    seq is stored before its ring is installed (QRM-3.7-4).
    """

    nodes: NodeList


# ---------------------------------------------------------------------- record format


def encode_change(change: NodeChange) -> bytes:
    """``0x03 | CBOR [ring seq, ring rep, base, op, node, votes, [address, ...]]`` (canonical)."""
    e = change.entry
    item: list[Any] = [
        change.ring.seq,
        change.ring.rep,
        change.base,
        int(change.op),
        e.node_id,
        e.votes,
    ]
    item.append(list(e.addresses))
    return bytes([CONTROL_NODES]) + bytes(cbor2.dumps(item, canonical=True))


def decode_change(data: bytes) -> NodeChange | None:
    """Parse a change record; None if malformed in any way (never raises).

    Malformed includes a non-canonical encoding: the record is re-encoded and compared, so one
    change has one byte string (the vectors check it byte for byte).
    """
    if len(data) < 2 or data[0] != CONTROL_NODES:
        return None
    try:
        item: Any = cbor2.loads(data[1:])
    except Exception:  # cbor2 raises several types on bad input; any means malformed
        return None
    change = _change_from_item(item)
    if change is None or encode_change(change) != data:
        return None
    return change


def _change_from_item(item: Any) -> NodeChange | None:
    if type(item) is not list or len(item) != 7:
        return None
    seq, rep, base, op, node, votes, addresses = item
    if not all(type(v) is int for v in (seq, rep, base, op, node, votes)):
        return None
    if not (0 <= seq <= _U64 and 1 <= rep <= _U32 and 0 <= base < _U64 and 1 <= node <= _U32):
        return None
    if op not in (ChangeOp.ADD, ChangeOp.REMOVE) or not _valid_addresses(addresses):
        return None
    if op == ChangeOp.ADD and not 0 <= votes <= MAX_VOTES:
        return None
    if op == ChangeOp.REMOVE and (votes != 0 or addresses):
        return None
    entry = NodeEntry(node, votes, tuple(addresses))
    return NodeChange(RingId(seq=seq, rep=rep), base, ChangeOp(op), entry)


def _valid_addresses(addresses: object) -> bool:
    if type(addresses) is not list or len(addresses) > MAX_ADDRESSES:
        return False
    for address in addresses:
        if type(address) is not str or not 1 <= len(address.encode()) <= MAX_ADDRESS_BYTES:
            return False
    return len(set(addresses)) == len(addresses)


def list_to_wire(nodes: NodeList) -> list[Any]:
    """The announcement's ``nodes`` entry: ``[version, [[node, votes, [address, ...]], ...]]``."""
    return [nodes.version, [[e.node_id, e.votes, list(e.addresses)] for e in nodes.entries]]


def list_from_wire(item: object) -> NodeList | None:
    """Parse an announced list; None if malformed (ids not ascending, bad votes or addresses)."""
    if type(item) is not list or len(item) != 2:
        return None
    version, raw = item
    if type(version) is not int or not 0 <= version <= _U64 or type(raw) is not list:
        return None
    if not 1 <= len(raw) <= MAX_NODES:
        return None
    entries: list[NodeEntry] = []
    for entry in raw:
        if type(entry) is not list or len(entry) != 3:
            return None
        node, votes, addresses = entry
        if type(node) is not int or not 1 <= node <= _U32:
            return None
        if type(votes) is not int or not 0 <= votes <= MAX_VOTES:
            return None
        if not _valid_addresses(addresses) or (entries and entries[-1].node_id >= node):
            return None
        entries.append(NodeEntry(node, votes, tuple(addresses)))
    nodes = NodeList(version, tuple(entries))
    return nodes if nodes.total_votes() >= 1 else None


# ---------------------------------------------------------------------- applying a change


def _needed(expected: int) -> int:
    return expected // 2 + 1


def change_is_safe(before: int, after: int, votes: int) -> bool:
    """Any majority of ``before`` votes meets any majority of ``after`` votes (QRM-3.7-3).

    One list has ``votes`` more than the other (the changed node's); the votes both share are
    ``min(before, after)``. Two disjoint majorities need at least ``needed(before) +
    needed(after) - votes`` shared votes, so they cannot exist when that exceeds the share.
    """
    return _needed(before) + _needed(after) - votes > min(before, after)


def check_change(nodes: NodeList, change: NodeChange) -> Refusal | None:
    """Why ``change`` cannot apply to ``nodes`` (None: it can). Ignores ring and version."""
    entry = change.entry
    listed = nodes.get(entry.node_id)
    total = nodes.total_votes()
    if change.op == ChangeOp.ADD:
        if listed is not None:
            return Refusal.LISTED
        if len(nodes.entries) >= MAX_NODES:
            return Refusal.TOO_MANY_NODES
        votes, after = entry.votes, total + entry.votes
    else:
        if listed is None:
            return Refusal.NOT_LISTED
        votes, after = listed.votes, total - listed.votes
        if after < 1:
            return Refusal.NO_VOTES_LEFT
    if not change_is_safe(total, after, votes):
        return Refusal.UNSAFE_VOTES
    return None


def apply_change(nodes: NodeList, change: NodeChange) -> NodeList:
    """The next version; ``check_change`` must have returned None."""
    entry = change.entry
    kept = [e for e in nodes.entries if e.node_id != entry.node_id]
    if change.op == ChangeOp.ADD:
        kept.append(entry)
        kept.sort(key=lambda e: e.node_id)
    return NodeList(nodes.version + 1, tuple(kept))


def rules_for(base: QuorumRules, nodes: NodeList) -> QuorumRules:
    """The quorum rules under ``nodes``: its votes, and the sum of its votes expected.

    Version 0 is the configuration file's list: its rules are the file's (``base``). From the
    first change on, ``expected_votes`` is the sum of the listed votes (QRM-3.7-5), as votequorum
    sets it on a node-list reload; a configured excess over the sum is not carried over, because
    the files of a joining node and of the members need not agree on it.
    """
    if nodes.version == 0:
        return base
    return replace(base, votes=nodes.votes(), expected_votes=nodes.total_votes())


def adjust_state(state: QuorumState, delta: int) -> QuorumState:
    """The dynamic quorum state after a change of ``delta`` listed votes (QRM-3.7-5)."""
    return replace(state, expected_votes=max(1, state.expected_votes + delta))
