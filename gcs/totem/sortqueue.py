"""One ring's messages indexed by seq, with the all-received-up-to (aru) bookkeeping.

The sort queue is where the total order lives: a message's position is its seq, assigned by the
token. ``aru`` is the highest seq below which nothing is missing (the paper's ``my_aru``),
``high_seq`` the highest seq received (``my_high_seq_received``). Messages at or below
``released`` have been garbage-collected: they were safe (every member had them) and delivered
locally (RFC 0003 §7.4), so nobody can ask for them again.
"""

from __future__ import annotations

from collections.abc import Iterator

from gcs.wire.frames import Mcast

__all__ = ["SortQueue"]


class SortQueue:
    """Messages of one ring by seq. Adding is idempotent; duplicates are reported, not stored."""

    __slots__ = ("_items", "aru", "high_seq", "released")

    def __init__(self) -> None:
        self._items: dict[int, Mcast] = {}
        self.aru = 0
        self.high_seq = 0
        self.released = 0

    def add(self, mcast: Mcast) -> bool:
        """Store ``mcast``; False when it is a duplicate (already held or already released)."""
        seq = mcast.seq
        if seq <= self.aru or seq in self._items:
            return False
        self._items[seq] = mcast
        self.high_seq = max(self.high_seq, seq)
        if seq == self.aru + 1:
            items = self._items
            aru = seq
            while aru + 1 in items:
                aru += 1
            self.aru = aru
        return True

    def get(self, seq: int) -> Mcast | None:
        return self._items.get(seq)

    def __contains__(self, seq: int) -> bool:
        return seq in self._items

    def __len__(self) -> int:
        return len(self._items)

    def holds(self, seq: int) -> bool:
        """True if this node can serve ``seq`` (held and not yet released)."""
        return seq in self._items

    def missing(self, low: int, high: int) -> Iterator[int]:
        """Seqs in [low, high] that are neither held nor released, ascending."""
        items = self._items
        for seq in range(max(low, self.aru + 1), high + 1):
            if seq not in items:
                yield seq

    def release(self, upto: int) -> int:
        """Free every message with seq <= ``upto`` (never beyond aru). Returns how many."""
        upto = min(upto, self.aru)
        if upto <= self.released:
            return 0
        items = self._items
        freed = 0
        for seq in range(self.released + 1, upto + 1):
            if items.pop(seq, None) is not None:
                freed += 1
        self.released = upto
        return freed

    def in_order(self, low: int, high: int) -> Iterator[tuple[int, Mcast | None]]:
        """(seq, message or None) for every seq in [low, high]: the delivery walk."""
        items = self._items
        for seq in range(low, high + 1):
            yield seq, items.get(seq)

    def values(self) -> Iterator[Mcast]:
        """Held messages in seq order."""
        for seq in sorted(self._items):
            yield self._items[seq]
