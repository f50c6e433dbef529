"""The history of a run: what every process incarnation did, in the order it did it.

This module is the one schema of a history. The simulator records its runs in it
(``gcs.sim.world``), a real node writes its own in it (``gcs.history.writer``), and the
checkers read only it (never core internals), so the same checkers judge simulated runs and
runs of real processes (RFC 0004 §11, RFC 0007 §3). Each process incarnation is modelled
separately: a restarted node is a new process with the same node id and a higher
``incarnation``.

A message is identified by ``MsgId`` = (sender node, sender incarnation, counter): the workload
puts these three numbers in the first 16 bytes of every payload (see ``encode_payload``), so a
checker can verify integrity from the delivered bytes alone. Which records of an mcast are
workload messages, and which message each originated mcast carries, is decided here too
(``workload_ids``, ``Originations``), so the simulator and the runtime count them alike.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from gcs.wire.frames import Mcast, Record, RecordFlags, RingId

__all__ = [
    "Conf",
    "Crash",
    "Deliver",
    "Event",
    "Fault",
    "History",
    "Invariant",
    "Leave",
    "MsgId",
    "Originate",
    "PAYLOAD_HEADER",
    "Originations",
    "Persist",
    "RecordFilter",
    "Start",
    "State",
    "Submit",
    "application_record",
    "decode_payload",
    "encode_payload",
    "load_jsonl",
    "to_json",
    "workload_ids",
]

PAYLOAD_HEADER = struct.Struct(">IIQ")  # sender node, sender incarnation, counter
_KIND = int(RecordFlags.KIND_MASK)
_DATA = int(RecordFlags.DATA)
_POSITION = int(RecordFlags.FRAGMENT_MASK)
_WHOLE = int(RecordFlags.WHOLE)
_FIRST = int(RecordFlags.FIRST)
_LAST = int(RecordFlags.LAST)

RecordFilter = Callable[[Record], bool]
"""Which records of an mcast are workload messages (None where one is needed: all of them)."""


class MsgId(NamedTuple):
    """(sender node, sender incarnation, counter). A tuple: hashing and ordering run in C,
    which matters to checkers indexing hundreds of thousands of deliveries."""

    node: int
    incarnation: int
    counter: int

    def __str__(self) -> str:
        return f"{self.node}/{self.incarnation}/{self.counter}"


def encode_payload(msg_id: MsgId, size: int) -> bytes:
    """A workload payload of ``size`` bytes (at least 16) naming its message id."""
    head = PAYLOAD_HEADER.pack(msg_id.node, msg_id.incarnation, msg_id.counter)
    if size <= len(head):
        return head
    # Deterministic filler derived from the id, so corruption of the body is detectable too.
    fill = (head * (size // len(head) + 1))[: size - len(head)]
    return head + fill


def decode_payload(data: bytes) -> MsgId | None:
    """The message id in a workload payload, or None if the bytes are not one (no creation)."""
    if len(data) < PAYLOAD_HEADER.size:
        return None
    node, inc, counter = PAYLOAD_HEADER.unpack_from(data)
    msg_id = MsgId(node, inc, counter)
    if encode_payload(msg_id, len(data)) != data:
        return None
    return msg_id


def application_record(record: Record) -> bool:
    """A record an application sent: kind DATA in a named group. The group layer's own records
    (joins, leaves, and everything in the reserved group ``""``) are not workload messages."""
    return record.flags & _KIND == _DATA and record.group != ""


def workload_ids(
    records: Iterable[Record],
    accept: RecordFilter | None = None,
    known: Mapping[bytes, MsgId] | None = None,
) -> tuple[tuple[MsgId, ...], int]:
    """The message ids of the workload ``records`` of a delivery, and how many did not decode.

    ``known`` maps payloads already seen to their ids (a lookup instead of a decode, and a
    payload whose bytes changed on the way misses and is decoded, and caught, in full).
    """
    ids: list[MsgId] = []
    corrupt = 0
    for record in records:
        if accept is not None and not accept(record):
            continue
        msg_id = None if known is None else known.get(record.data)
        if msg_id is None:
            msg_id = decode_payload(record.data)
        if msg_id is None:
            corrupt += 1
        else:
            ids.append(msg_id)
    return tuple(ids), corrupt


class Originations:
    """Which workload messages each new mcast of one process carries (the EVS send event).

    A retransmission of an mcast already seen, and an mcast re-sent inside another in
    recovery, originate nothing (``of`` returns None). A fragmented message is originated by the
    mcast that carries its *last* fragment, the one whose seq its delivery reports.
    """

    __slots__ = ("_accept", "_fragment", "_last")

    def __init__(self, accept: RecordFilter | None = None) -> None:
        self._accept = accept
        self._last: dict[RingId, int] = {}
        self._fragment: MsgId | None = None

    def of(self, mcast: Mcast) -> tuple[MsgId, ...] | None:
        if mcast.encapsulated is not None:
            return None
        if mcast.seq <= self._last.get(mcast.ring_id, 0):
            return None  # a retransmission of one of this process's mcasts
        self._last[mcast.ring_id] = mcast.seq
        accept = self._accept
        ids: list[MsgId] = []
        for record in mcast.records:
            if accept is not None and not accept(record):
                continue
            position = record.flags & _POSITION
            if position == _WHOLE:
                msg_id = decode_payload(record.data)
                if msg_id is not None:
                    ids.append(msg_id)
            elif position == _FIRST and len(record.data) >= PAYLOAD_HEADER.size:
                self._fragment = MsgId(*PAYLOAD_HEADER.unpack_from(record.data))
            elif position == _LAST and self._fragment is not None:
                ids.append(self._fragment)
                self._fragment = None
        return tuple(ids)


@dataclass(frozen=True, slots=True)
class _Base:
    time_ns: int
    node: int
    incarnation: int


@dataclass(frozen=True, slots=True)
class Start(_Base):
    """A process incarnation started (``stored_ring_seq`` is what it found in its store)."""

    stored_ring_seq: int | None


@dataclass(frozen=True, slots=True)
class Crash(_Base):
    """The incarnation stopped without warning. Nothing more is recorded for it."""


@dataclass(frozen=True, slots=True)
class Leave(_Base):
    """The incarnation shut down cleanly (sent a leave). Nothing more is recorded for it."""


@dataclass(frozen=True, slots=True)
class Submit(_Base):
    """The application handed a message to the core (it is queued; not yet originated)."""

    msg_id: MsgId
    safe: bool
    size: int


@dataclass(frozen=True, slots=True)
class Originate(_Base):
    """The core assigned a seq on ring ``ring_id`` to an mcast carrying these messages.

    This is the EVS "send" event (RFC 0006 §4.3, RFC 0003 ORD-4.6-2). A fragmented message is
    originated once per fragment; ``msg_ids`` lists a message only in the mcast that carries its
    *last* fragment (the one whose seq its delivery reports).
    """

    ring_id: RingId
    seq: int
    safe: bool
    msg_ids: tuple[MsgId, ...]


@dataclass(frozen=True, slots=True)
class Deliver(_Base):
    """The incarnation delivered these messages (one mcast) in configuration ``config``."""

    config_kind: str  # "regular" | "transitional"
    config_ring: RingId
    origin_ring: RingId
    seq: int
    sender: int
    safe: bool
    msg_ids: tuple[MsgId, ...]
    corrupt: int = 0  # records whose bytes did not decode as a workload payload


@dataclass(frozen=True, slots=True)
class Conf(_Base):
    """The incarnation installed a configuration."""

    kind: str  # "regular" | "transitional"
    ring_id: RingId
    members: tuple[int, ...]
    left: tuple[int, ...]
    joined: tuple[int, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class State(_Base):
    """A membership state change, from the core's trace (for timelines and liveness)."""

    old: str
    new: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Persist(_Base):
    """The store durably recorded a ring seq for this node (survives crashes)."""

    ring_seq: int


@dataclass(frozen=True, slots=True)
class Invariant(_Base):
    """The core raised InvariantViolation: always a failed run."""

    message: str


@dataclass(frozen=True, slots=True)
class Fault:
    """A nemesis action (partition, heal, loss change, crash, pause, ...), for reports and liveness.

    ``node`` is 0 when the fault is not about one node.
    """

    time_ns: int
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)
    node: int = 0
    incarnation: int = 0


Event = (
    Start
    | Crash
    | Leave
    | Submit
    | Originate
    | Deliver
    | Conf
    | State
    | Persist
    | Invariant
    | Fault
)


class History:
    """An append-only list of events in global (virtual time, then record) order."""

    def __init__(self, events: Iterable[Event] = ()) -> None:
        self.events: list[Event] = list(events)

    def append(self, event: Event) -> None:
        self.events.append(event)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def of(self, node: int, incarnation: int) -> list[Event]:
        """One incarnation's own stream, in order."""
        return [
            e
            for e in self.events
            if not isinstance(e, Fault) and e.node == node and e.incarnation == incarnation
        ]

    def incarnations(self) -> list[tuple[int, int]]:
        """Every (node, incarnation) that started, in start order."""
        return [(e.node, e.incarnation) for e in self.events if isinstance(e, Start)]

    def to_jsonl(self) -> Iterator[str]:
        """One JSON object per line; ``type`` names the event class.

        Each line is ``to_json`` of one event.
        """
        for event in self.events:
            yield to_json(event)

    @classmethod
    def from_jsonl(cls, lines: Iterable[str]) -> History:
        """Rebuild a history from ``to_jsonl`` lines (or a real node's, ``gcs.history.writer``).

        Blank lines are skipped. Raises ``ValueError`` naming the line for anything that is not
        an event of this schema.
        """
        events: list[Event] = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                events.append(_event_from_row(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"history line {number}: {exc}") from exc
        return cls(events)


def to_json(event: Event) -> str:
    """One event as one line of JSON; ``type`` names the event class.

    Ring ids are ``[rep, seq]`` and message ids ``[node, incarnation, counter]``. Fields are
    taken one level deep on purpose: ``dataclasses.asdict`` would turn a ``RingId`` into a dict
    the reader does not expect.
    """
    row = {name: getattr(event, name) for name in _FIELD_NAMES[type(event)]}
    row["type"] = type(event).__name__
    return json.dumps(row, sort_keys=True, default=_json_default)


def load_jsonl(*paths: str | os.PathLike[str]) -> History:
    """One history from the JSONL files of several processes, merged in time order.

    Each file is one process's own stream (a real node's, ``gcs.history.writer``, or a test
    harness's ``Crash``/``Fault`` events); the merge is stable, so events with equal times keep
    their file order. A last line without its newline is ignored: its process was killed while
    writing it, and nothing it wrote after that line exists.
    """
    events: list[Event] = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        lines = text.split("\n")
        if lines and lines[-1]:
            lines.pop()  # cut short by a kill
        try:
            events.extend(History.from_jsonl(lines))
        except ValueError as exc:
            raise ValueError(f"{os.fspath(path)}: {exc}") from exc
    events.sort(key=lambda e: e.time_ns)
    return History(events)


def _ring(value: list[int] | dict[str, int]) -> RingId:
    if isinstance(value, dict):  # the form to_jsonl wrote before ring ids became [rep, seq]
        return RingId(seq=int(value["seq"]), rep=int(value["rep"]))
    rep, seq = value
    return RingId(seq=int(seq), rep=int(rep))


def _ids(values: list[list[int]]) -> tuple[MsgId, ...]:
    return tuple(MsgId(*map(int, v)) for v in values)


def _ints(values: list[int]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "ring_id": _ring,
    "config_ring": _ring,
    "origin_ring": _ring,
    "msg_id": lambda v: MsgId(*map(int, v)),
    "msg_ids": _ids,
    "members": _ints,
    "left": _ints,
    "joined": _ints,
}

_EVENT_TYPES = (Start, Crash, Leave, Submit, Originate, Deliver, Conf, State, Persist, Invariant)
_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {
    cls: tuple(f.name for f in fields(cls)) for cls in (*_EVENT_TYPES, Fault)
}
_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in _EVENT_TYPES}


def _event_from_row(row: dict[str, Any]) -> Event:
    type_name = row.pop("type")
    if type_name == "Fault":
        return Fault(**row)
    cls = _TYPES.get(type_name)
    if cls is None:
        raise ValueError(f"unknown event type {type_name!r}")
    values = {k: (_CONVERT[k](v) if k in _CONVERT else v) for k, v in row.items()}
    event: Event = cls(**values)
    return event


def _json_default(value: object) -> object:
    if isinstance(value, RingId):
        return [value.rep, value.seq]
    if isinstance(value, MsgId):
        return [value.node, value.incarnation, value.counter]
    raise TypeError(f"not JSON-serialisable: {value!r}")
