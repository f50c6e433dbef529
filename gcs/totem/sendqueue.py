"""The bounded queue of records waiting for the token, with packing and fragmentation.

Applications submit records; the token holder takes *mcast payloads* from here (RFC 0003 §8):
consecutive records of the same guarantee are packed into one mcast up to the frame budget, and a
record larger than a frame is cut into fragments carried by consecutive mcasts of this sender.
Only one record can be in flight as fragments at a time (the queue is FIFO), so a receiver needs
one reassembly buffer per sender.

Why here and not in a layer above: a packed mcast gets one seq, so packing decides what the
total order and the safe guarantee apply to (RFC 0003 §8.2). Safe and agreed records
are never packed together, and a fragmented safe record is delivered only when its last
fragment is, which in strict seq order means every fragment was safe.

Backpressure (RFC 0003 §8.1): the queue is bounded in bytes. ``push`` raises ``SendQueueFull`` when
a record does not fit; crossing the high mark closes the send window and draining below the low
mark reopens it, each reported once as a ``SendWindow`` effect.
"""

from __future__ import annotations

from collections import deque

from mypy_extensions import mypyc_attr

from gcs.errors import MessageTooLarge, SendQueueFull
from gcs.totem.config import RECORD_OVERHEAD
from gcs.totem.effects import SendWindow
from gcs.wire.frames import Record, RecordFlags

__all__ = ["RECORD_OVERHEAD", "SendQueue", "record_cost"]

# Plain ints: records are built on the hot path and IntFlag arithmetic is slow.
_KIND = int(RecordFlags.KIND_MASK)
_SAFE = int(RecordFlags.SAFE)
_POSITION = int(RecordFlags.FRAGMENT_MASK)
_WHOLE = int(RecordFlags.WHOLE)
_FIRST = int(RecordFlags.FIRST)
_MIDDLE = int(RecordFlags.MIDDLE)
_LAST = int(RecordFlags.LAST)

# Bytes a record costs in a frame beyond its data and group name: CBOR array and item headers
# (1 + 1..3 for the group + 1..9 for the handle + 1 flags + 1..5 for the data length), rounded up.
# Defined with the configuration, whose wire limits depend on it.
_GROUP_CACHE = 256  # group names whose UTF-8 length the queue remembers


def record_cost(group: str, data_len: int) -> int:
    """Upper bound of the encoded size of a record (used for packing and queue accounting)."""
    return data_len + len(group.encode()) + RECORD_OVERHEAD


_Columns = tuple[list[str], list[int], list[int], list[bytes]]
_State = tuple[_Columns, int, int, int, int, int, int, int, bool]


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
class SendQueue:
    """FIFO of records awaiting origination; takes out whole mcast payloads.

    The queue holds the records themselves and nothing per record besides: a record's guarantee
    is its SAFE bit (set exactly when it was submitted safe, ORD-8.1-2) and its cost is computed
    again when it leaves, so a busy sender keeps one object per queued message for the garbage
    collector to walk, not two. Only the head can be partly sent (``_offset`` of its data).
    """

    __slots__ = (
        "_budget",
        "_entries",
        "_group_bytes",
        "_high",
        "_low",
        "_max",
        "_max_message",
        "_offset",
        "bytes",
        "open",
    )

    def __init__(
        self, *, max_bytes: int, high_bytes: int, low_bytes: int, budget: int, max_message: int
    ) -> None:
        self._entries: deque[Record] = deque()
        self._offset = 0  # bytes of the head's data already carried by fragments
        self._max = max_bytes
        self._high = high_bytes
        self._low = low_bytes
        self._budget = budget
        self._max_message = max_message
        self._group_bytes: dict[str, int] = {}
        self.bytes = 0
        self.open = True

    def __len__(self) -> int:
        return len(self._entries)

    # The flight recorder pickles the whole core every few thousand inputs (gcs.history.recorder)
    # and a busy sender's queue holds tens of thousands of records: as four columns of plain
    # values they pickle about four times faster than as objects.
    def __getstate__(self) -> _State:
        entries = self._entries
        columns = (
            [r.group for r in entries],
            [r.handle for r in entries],
            [r.flags for r in entries],
            [r.data for r in entries],
        )
        limits = (self._max, self._high, self._low, self._budget, self._max_message)
        return (columns, self._offset, *limits, self.bytes, self.open)

    def __setstate__(self, state: _State) -> None:
        (groups, handles, flags, data), self._offset = state[0], state[1]
        self._max, self._high, self._low, self._budget, self._max_message = state[2:7]
        self.bytes, self.open = state[7], state[8]
        self._entries = deque(map(Record, groups, handles, flags, data))
        self._group_bytes = {}

    def _cost(self, group: str, data_len: int) -> int:
        """``record_cost`` with the group's UTF-8 length remembered (a sender uses few groups)."""
        size = self._group_bytes.get(group)
        if size is None:
            if len(self._group_bytes) >= _GROUP_CACHE:
                self._group_bytes.clear()
            size = self._group_bytes[group] = len(group.encode())
        return data_len + size + RECORD_OVERHEAD

    def payload_bytes(self, records: tuple[Record, ...]) -> int:
        """What ``records`` cost of a frame's budget (RFC 0003 §8.1): the byte window's unit."""
        return sum([self._cost(r.group, len(r.data)) for r in records])

    @property
    def backlog(self) -> int:
        """Estimated mcasts needed to drain the queue (the token's backlog unit)."""
        if not self._entries:
            return 0
        return max(1, -(-self.bytes // self._budget))

    def push(self, record: Record, safe: bool) -> SendWindow | None:
        """Queue ``record``; raise MessageTooLarge or SendQueueFull; maybe close the window."""
        if len(record.data) > self._max_message:
            raise MessageTooLarge(len(record.data), self._max_message)
        if self._cost(record.group, 1) > self._budget:
            # Not even one byte of data would fit next to the group name: it could never be sent.
            raise ValueError(
                f"group name of {len(record.group.encode())} bytes leaves no room in a "
                f"{self._budget}-byte frame (raise frame_payload_bytes or shorten the name)"
            )
        cost = self._cost(record.group, len(record.data))
        if self.bytes + cost > self._max and self._entries:
            raise SendQueueFull(f"send queue holds {self.bytes} of {self._max} bytes")
        flags = (record.flags & _KIND) | (_SAFE if safe else 0)
        if flags != record.flags:
            record = Record(record.group, record.handle, flags, record.data)
        self._entries.append(record)
        self.bytes += cost
        if self.open and self.bytes >= self._high:
            self.open = False
            return SendWindow(open=False)
        return None

    def take(self) -> tuple[bool, tuple[Record, ...]] | None:
        """The next mcast payload: (safe, records), or None when the queue is empty."""
        entries = self._entries
        if not entries:
            return None
        safe_bit = entries[0].flags & _SAFE
        out: list[Record] = []
        room = budget = self._budget
        while entries and entries[0].flags & _SAFE == safe_bit and room > RECORD_OVERHEAD:
            record = entries[0]
            whole_cost = self._cost(record.group, len(record.data) - self._offset)
            if self._offset == 0 and whole_cost <= room:
                out.append(record)
                room -= whole_cost
                entries.popleft()
                self.bytes -= whole_cost
                continue
            if self._offset == 0 and whole_cost <= budget:
                break  # fits whole in the next frame: never fragment what need not be
            fragment = self._fragment(record, room, fresh=not out)
            if fragment is None:
                break
            out.append(fragment)
            room = 0
        return bool(safe_bit), tuple(out)

    def _fragment(self, record: Record, room: int, *, fresh: bool) -> Record | None:
        """Cut the next fragment of the head ``record`` to fit ``room``; None if not worth it."""
        overhead = self._cost(record.group, 0)
        chunk = room - overhead
        offset = self._offset
        remaining = len(record.data) - offset
        if offset == 0 and not fresh and chunk < self._budget // 2:
            # Start a large record in a fresh frame rather than after others with a sliver.
            return None
        if chunk <= 0:
            return None
        first = offset == 0
        last = remaining <= chunk
        piece = record.data[offset : offset + chunk]
        position = _WHOLE if first and last else _FIRST if first else _LAST if last else _MIDDLE
        flags = (record.flags & ~_POSITION) | position
        if last:
            self._entries.popleft()
            self._offset = 0
            self.bytes -= self._cost(record.group, len(record.data))
        else:
            self._offset = offset + len(piece)
        return Record(record.group, record.handle, flags, piece)

    def window_change(self) -> SendWindow | None:
        """Reopen the window once the queue drained below the low mark."""
        if not self.open and self.bytes <= self._low:
            self.open = True
            return SendWindow(open=True)
        return None

    def restart_partial(self) -> None:
        """A configuration change interrupted a fragmented record: send it whole next time.

        Receivers drop partial reassemblies at every configuration change (RFC 0003 §8.3), so the
        fragments already originated can never complete; starting over keeps the record intact
        and delivered exactly once.
        """
        self._offset = 0
