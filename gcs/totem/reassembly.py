"""Per-sender reassembly of fragmented records, scoped to one configuration.

Fragments of one record travel in consecutive mcasts of one sender, and a sender has at most one
record in flight (``sendqueue``), so one partial buffer per sender suffices. Two events make a
partial buffer untrustworthy and drop it (RFC 0003 §8.3):

* a skipped seq during transitional delivery (``gap``): the missing mcast may have carried the
  next fragment of a sender outside the transitional configuration, and splicing across it
  would deliver corrupt bytes (corosync's history, RFC 0003 ORD-8.3-2). A sender *inside* it cannot
  have lost a fragment: recovery gave every transitional member every mcast any of them held,
  and a member holds all of its own unreleased mcasts (RFC 0004 §7.2), so its partial record
  survives the gap and its own messages are still self-delivered;
* a configuration change (``reset``): a sender restarts an interrupted record from its first
  fragment in the next ring (``SendQueue.restart_partial``).

Every record this returns is complete and flagged WHOLE.
"""

from __future__ import annotations

from gcs.wire.frames import Record, RecordFlags

__all__ = ["Reassembler"]

# Plain ints: IntFlag arithmetic is several times slower on this hot path.
_POSITION = int(RecordFlags.FRAGMENT_MASK)
_FIRST = int(RecordFlags.FIRST)
_MIDDLE = int(RecordFlags.MIDDLE)
_LAST = int(RecordFlags.LAST)


class Reassembler:
    """Turns the records of delivered mcasts into complete records."""

    __slots__ = ("_partial", "dropped")

    def __init__(self) -> None:
        self._partial: dict[int, list[Record]] = {}
        self.dropped = 0

    def complete(self, sender: int, records: tuple[Record, ...]) -> tuple[Record, ...]:
        """The complete records finished by this mcast, in order."""
        if not self._partial:
            for record in records:
                if record.flags & _POSITION:
                    break
            else:
                return records  # the common case: nothing fragmented anywhere
        out: list[Record] = []
        for record in records:
            position = record.flags & _POSITION
            if position == 0:
                out.append(record)
            elif position == _FIRST:
                if self._partial.pop(sender, None) is not None:
                    self.dropped += 1
                self._partial[sender] = [record]
            elif (parts := self._partial.get(sender)) is None:
                self.dropped += 1  # continuation without a start: its start was lost
            elif record.group != parts[0].group or record.handle != parts[0].handle:
                del self._partial[sender]  # cannot happen with a correct sender: refuse to splice
                self.dropped += 1
            elif position == _MIDDLE:
                parts.append(record)
            else:
                parts.append(record)
                del self._partial[sender]
                out.append(_join(parts))
        return tuple(out)

    def gap(self, keep: frozenset[int] | set[int] = frozenset()) -> None:
        """A seq was skipped: partial records of senders outside ``keep`` may not continue."""
        for sender in [s for s in self._partial if s not in keep]:
            del self._partial[sender]
            self.dropped += 1

    def reset(self) -> None:
        """A new configuration starts: partial records from the old one can never complete."""
        self.gap()


def _join(parts: list[Record]) -> Record:
    first = parts[0]
    flags = first.flags & ~_POSITION
    return Record(first.group, first.handle, flags, b"".join(p.data for p in parts))
