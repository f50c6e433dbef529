"""The flight recorder: every input of a live core, kept so its decisions can be replayed.

Why (RFC 0006 Appendix B): the core is a deterministic function of its configuration,
its rng seed and its inputs, so a record of the inputs turns a bug seen on a real network into a
reproducible run. The runtime records, before each core call, what it is about to feed the core
— ``start``, every authenticated frame with its source, timer firings, submits, leaves and
persistence confirmations, each with the ``now_ns`` it passes — and, after the call, how many
effects came back (or that it raised). A received frame is kept as the datagram it arrived in,
so recording costs two appends on the hot path and holds nothing the garbage collector must
scan; the datagram is opened again (decrypted) only when a dump is written.

Bounded memory. Inputs are kept in segments of at most ``capacity`` inputs and about
``segment_bytes`` of datagrams and submitted data (``SEGMENT_BYTES``, 8 MiB, by default: without
it, a node receiving 1,400-byte datagrams would hold 28 MB for 2 x 10,000 inputs and a sender of
16 KiB messages 320 MB). When a segment fills, the recorder snapshots the core (``pickle`` of the
whole state machine, taken between two inputs) and starts a new segment; it keeps the previous
segment and its starting point, so a dump always holds at least one full segment (``capacity``
inputs, or fewer carrying ``segment_bytes``), at most two, and starts at a known state: either
a fresh core (config + seed) or a snapshot.

Dump format (CBOR map, RFC 0006 appendix B)::

    {"format": "gcs-flight-recorder", "version": 1, "gcs": str, "reason": str,
     "node_id": int, "boot_id": int, "cluster_id": int, "seed": int, "totem": {field: value},
     "origin": null | bytes (pickled core) | "lost", "inputs": [input, ...]}
    input = [kind, now_ns, arg1, arg2, effects]   (effects: count, or -1 if the call raised)

with ``kind`` / args: 0 start (stored ring seq or null), 1 receive (source node, frame as CBOR per
RFC 0002), 2 timeout, 3 submit ([group, handle, flags, data], safe), 4 leave, 5 persisted (seq).

``replay(dump)`` feeds the inputs to a fresh (or unpickled) core and returns every effect it
produced; it raises ``ReplayError`` as soon as a step's effect count or raising differs from what
the live node recorded. A dump whose origin is a snapshot is unpickled: replay only dumps you
trust, as you would only run code you trust.

This module is pure (no asyncio, no sockets): ``gcs simulate replay-node`` imports it.
"""

from __future__ import annotations

import enum
import logging
import os
import pickle
import random
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import cbor2

from gcs.errors import ReplayError
from gcs.totem.config import TotemConfig
from gcs.totem.effects import Effect
from gcs.totem.node import Node as Core
from gcs.wire.codec import cluster_id_for, decode_frame, encode_frame
from gcs.wire.frames import Frame, Record
from gcs.wire.limits import HEADER_BYTES, MAX_DATAGRAM_CEILING, WireLimits
from gcs.wire.seal import HEADER, KeySchedule, Suite, nonce_for

__all__ = [
    "DUMP_FORMAT",
    "DUMP_VERSION",
    "RAISED",
    "SEGMENT_BYTES",
    "Dump",
    "FlightRecorder",
    "Input",
    "InputKind",
    "ReplayStep",
    "decode_dump",
    "load_dump",
    "replay",
    "replay_steps",
]

_LOG = logging.getLogger("gcs.runtime.recorder")

DUMP_FORMAT = "gcs-flight-recorder"
DUMP_VERSION = 1
RAISED = -1
"""The effect count recorded for a call that raised (submit refused, or an invariant broke)."""

_LOST = "lost"
SEGMENT_BYTES = 8 * 1024 * 1024
"""Default bound on the datagram and record bytes one segment holds (two are kept)."""
_REPLAY_LIMITS = WireLimits(
    max_datagram_bytes=MAX_DATAGRAM_CEILING,
    max_rtr_entries=1 << 20,
    max_nodes=1 << 20,
    max_records=1 << 20,
    max_record_data_bytes=1 << 30,
)


class InputKind(enum.IntEnum):
    """What the driver fed the core; the values are the dump's ``kind`` codes."""

    START = 0
    RECEIVE = 1
    TIMEOUT = 2
    SUBMIT = 3
    LEAVE = 4
    PERSISTED = 5


Entry = tuple[InputKind, int, Any, Any]
"""In memory: ``(kind, now_ns, arg1, arg2)``; effect counts live in a parallel ``array``.

Tuples of plain values and an ``array`` of ints are invisible to the cyclic garbage collector,
so a full recorder does not lengthen the collector's pauses (which stall the loop, §8.3)."""


@dataclass(frozen=True, slots=True)
class Input:
    """One recorded input, decoded from a dump."""

    kind: InputKind
    now_ns: int
    arg1: Any
    arg2: Any
    effects: int


@dataclass(frozen=True, slots=True)
class Dump:
    """A decoded flight-recorder dump."""

    node_id: int
    boot_id: int
    cluster_id: int
    seed: int
    totem: TotemConfig
    origin: bytes | None
    """None: the inputs start at a fresh core; bytes: a pickled core to start from."""
    complete: bool
    """False when the start of the recording was lost (a snapshot failed): not replayable."""
    reason: str
    gcs_version: str
    inputs: tuple[Input, ...]


class FlightRecorder:
    """Records a core's inputs in bounded segments (see the module docstring).

    A received frame is recorded as the datagram it came in (the bytes object the socket
    already made: no copy, no object the collector must scan); the dump decrypts it again with
    ``key`` when it is written. ``key`` never goes into a dump.
    """

    def __init__(
        self,
        totem: TotemConfig,
        *,
        seed: int,
        boot_id: int,
        cluster_name: str,
        key: bytes | None,
        capacity: int,
        segment_bytes: int = 0,
    ) -> None:
        self.totem = totem
        self.seed = seed
        self.boot_id = boot_id
        self.cluster_name = cluster_name
        self.cluster_id = cluster_id_for(cluster_name)
        self._key = key
        self.capacity = capacity
        self.segment_bytes = segment_bytes or SEGMENT_BYTES
        self._bytes = 0  # datagram and record data bytes held by the current segment
        self.core: Core | None = None
        self._prev_origin: bytes | str | None = None
        self._prev: tuple[list[Entry], array[int]] = ([], array("q"))
        self._origin: bytes | str | None = None
        self._entries: list[Entry] = []
        self._effects: array[int] = array("q")
        self.snapshots = 0
        self.recorded = 0

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def record(self, kind: InputKind, now_ns: int, arg1: Any = None, arg2: Any = None) -> int:
        """Note an input about to be fed to the core; pass the result to ``done`` after it.

        For ``RECEIVE``, ``arg2`` is the datagram the frame came in (or the frame itself).
        """
        if len(self._entries) >= self.capacity:
            self._rebase()
        self._entries.append((kind, now_ns, arg1, arg2))
        self._effects.append(RAISED)
        self.recorded += 1
        return len(self._effects) - 1

    def record_receive(self, now_ns: int, src: int, datagram: bytes) -> int:
        """``record(RECEIVE, now_ns, src, datagram)``, counting the datagram's bytes."""
        if len(self._entries) >= self.capacity or self._bytes >= self.segment_bytes:
            self._rebase()
        self._bytes += len(datagram)
        self._entries.append((InputKind.RECEIVE, now_ns, src, datagram))
        self._effects.append(RAISED)
        self.recorded += 1
        return len(self._effects) - 1

    def record_submit(self, now_ns: int, record: Record, safe: bool) -> int:
        """``record(SUBMIT, now_ns, record, safe)``, keeping the record as a tuple of its fields.

        A tuple of plain values is untracked by the cyclic garbage collector after its first
        collection; an entry holding the ``Record`` object would be walked by every full
        collection for as long as the recorder keeps it (a busy sender submits thousands per
        second, and GC pauses stall the token).
        """
        if len(self._entries) >= self.capacity or self._bytes >= self.segment_bytes:
            self._rebase()
        self._bytes += len(record.data)
        fields_ = (record.group, record.handle, record.flags, record.data)
        self._entries.append((InputKind.SUBMIT, now_ns, fields_, safe))
        self._effects.append(RAISED)
        self.recorded += 1
        return len(self._effects) - 1

    def done(self, index: int, effects: int) -> None:
        """The call recorded at ``index`` returned ``effects`` effects (unset: it raised)."""
        self._effects[index] = effects

    def _rebase(self) -> None:
        """Start a new segment at a snapshot of the core, keeping one segment behind it."""
        try:
            snapshot: bytes | str = pickle.dumps(self.core, protocol=pickle.HIGHEST_PROTOCOL)
            self.snapshots += 1
        except Exception as exc:  # a core that cannot be pickled is a bug, not a reason to stop
            if self._origin != _LOST:
                _LOG.warning(
                    "flight recorder: cannot snapshot the core (%s); dumps will start at an "
                    "unknown state and cannot be replayed",
                    exc,
                )
            snapshot = _LOST
        self._prev_origin, self._prev = self._origin, (self._entries, self._effects)
        self._origin, self._entries, self._effects = snapshot, [], array("q")
        self._bytes = 0

    def export(self, reason: str) -> dict[str, Any]:
        """A consistent copy of what to dump (references only); encode it with ``encode``."""
        entries, effects = self._prev
        return {
            "reason": reason,
            "origin": self._prev_origin,
            "entries": entries + self._entries,
            "effects": effects.tolist() + self._effects.tolist(),
        }

    def encode(self, exported: dict[str, Any]) -> bytes:
        """Encode an ``export()`` as CBOR. CPU work (it decrypts datagrams): run it off the loop."""
        from gcs import __version__

        opener = _Opener(self._key, self.cluster_name)
        inputs = [
            _encode_input(entry, count, self.cluster_id, opener)
            for entry, count in zip(exported["entries"], exported["effects"], strict=True)
        ]
        return bytes(
            cbor2.dumps(
                {
                    "format": DUMP_FORMAT,
                    "version": DUMP_VERSION,
                    "gcs": __version__,
                    "reason": exported["reason"],
                    "node_id": self.totem.node_id,
                    "boot_id": self.boot_id,
                    "cluster_id": self.cluster_id,
                    "seed": self.seed,
                    "totem": _totem_to_map(self.totem),
                    "origin": exported["origin"],
                    "inputs": inputs,
                }
            )
        )


class _Opener:
    """Recovers the CBOR frame of a datagram the channel already accepted (RFC 0005 §3)."""

    def __init__(self, key: bytes | None, cluster_name: str) -> None:
        self._keys = None if key is None else KeySchedule(key, cluster_name)

    def body(self, datagram: bytes) -> bytes:
        header = datagram[:HEADER_BYTES]
        _, _, suite, _, sender, boot_id, epoch, _ = HEADER.unpack(header)
        if suite == Suite.NONE or self._keys is None:
            return datagram[HEADER_BYTES:]
        aead = self._keys.aead(suite, sender, boot_id, epoch)
        return aead.decrypt(nonce_for(header), datagram[HEADER_BYTES:], header)


def write_dump(path: Path, data: bytes) -> Path:
    """Write a dump atomically, readable by its owner only (it holds application data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with open(fd, "wb", closefd=True) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


# ---------------------------------------------------------------------- encoding


def _encode_input(entry: Entry, effects: int, cluster_id: int, opener: _Opener) -> list[Any]:
    kind, now_ns, arg1, arg2 = entry
    match kind:
        case InputKind.RECEIVE:
            frame = opener.body(arg2) if isinstance(arg2, bytes) else encode_frame(arg2, cluster_id)
            return [int(kind), now_ns, arg1, frame, effects]
        case InputKind.SUBMIT:
            if isinstance(arg1, Record):
                fields_ = [arg1.group, arg1.handle, arg1.flags, arg1.data]
            else:
                fields_ = list(arg1)  # (group, handle, flags, data), from record_submit
            return [int(kind), now_ns, fields_, bool(arg2), effects]
        case _:
            return [int(kind), now_ns, arg1, None, effects]


def _totem_to_map(config: TotemConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        out[f.name] = value.value if isinstance(value, enum.Enum) else value
    return out


def _totem_from_map(values: dict[str, Any]) -> TotemConfig:
    kwargs: dict[str, Any] = {}
    for f in fields(TotemConfig):
        if f.name not in values:
            continue
        value = values[f.name]
        if isinstance(f.default, enum.Enum):
            value = type(f.default)(value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return TotemConfig(**kwargs)


def load_dump(path: str | os.PathLike[str]) -> Dump:
    """Read and decode a dump file; raises ``ReplayError`` if it is not one."""
    return decode_dump(Path(path).read_bytes())


def decode_dump(data: bytes) -> Dump:
    """Decode dump bytes; raises ``ReplayError`` naming what is wrong."""
    try:
        raw = cbor2.loads(data)
    except Exception as exc:
        raise ReplayError(f"not a flight-recorder dump: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format") != DUMP_FORMAT:
        raise ReplayError("not a flight-recorder dump (format field missing)")
    if raw.get("version") != DUMP_VERSION:
        raise ReplayError(f"dump version {raw.get('version')!r}, this gcs reads {DUMP_VERSION}")
    try:
        cluster_id = int(raw["cluster_id"])
        inputs = tuple(_decode_input(item, cluster_id) for item in raw["inputs"])
        origin = raw["origin"]
        return Dump(
            node_id=int(raw["node_id"]),
            boot_id=int(raw["boot_id"]),
            cluster_id=cluster_id,
            seed=int(raw["seed"]),
            totem=_totem_from_map(raw["totem"]),
            origin=origin if isinstance(origin, bytes) else None,
            complete=origin != _LOST,
            reason=str(raw.get("reason", "")),
            gcs_version=str(raw.get("gcs", "")),
            inputs=inputs,
        )
    except ReplayError:
        raise
    except Exception as exc:
        raise ReplayError(f"malformed dump: {exc!r}") from exc


def _decode_input(item: list[Any], cluster_id: int) -> Input:
    kind = InputKind(item[0])
    now_ns, arg1, arg2, effects = item[1], item[2], item[3], item[4]
    if kind is InputKind.RECEIVE:
        arg2 = decode_frame(arg2, cluster_id, _REPLAY_LIMITS)
    elif kind is InputKind.SUBMIT:
        group, handle, flags, payload = arg1
        arg1 = Record(group, handle, flags, payload)
    return Input(kind, now_ns, arg1, arg2, effects)


# ---------------------------------------------------------------------- replay


@dataclass(frozen=True, slots=True)
class ReplayStep:
    """One replayed input, the effects the fresh core produced, and what it raised (if any)."""

    input: Input
    effects: tuple[Effect, ...]
    raised: BaseException | None


def replay_steps(dump: Dump | str | os.PathLike[str]) -> Iterator[ReplayStep]:
    """Feed a dump's inputs into a fresh core, one step at a time.

    Raises ``ReplayError`` when the dump cannot be replayed (its start was lost, or a snapshot
    was taken by another gcs version) and, at the offending step, when the core's behaviour
    differs from the recording (a different effect count, or raising where the live node did
    not, or the reverse).
    """
    if not isinstance(dump, Dump):
        dump = load_dump(dump)
    core = _initial_core(dump)
    for index, item in enumerate(dump.inputs):
        effects: tuple[Effect, ...] = ()
        raised: BaseException | None = None
        try:
            effects = tuple(_feed(core, item))
        except Exception as exc:  # the live node raised here too, or replay diverges below
            raised = exc
        got = RAISED if raised is not None else len(effects)
        if got != item.effects:
            what = f"raised {raised!r}" if raised is not None else f"{got} effects"
            expected = "raised" if item.effects == RAISED else f"{item.effects} effects"
            raise ReplayError(
                f"replay diverged at input {index} ({item.kind.name.lower()} at "
                f"{item.now_ns} ns): the core {what}, the live node {expected}"
            )
        yield ReplayStep(item, effects, raised)


def replay(dump: Dump | str | os.PathLike[str]) -> list[Effect]:
    """Replay a dump (a ``Dump`` or a file path); return every effect, in order.

    See ``replay_steps`` for the errors. This is the function behind
    ``gcs simulate replay-node FILE``.
    """
    out: list[Effect] = []
    for step in replay_steps(dump):
        out.extend(step.effects)
    return out


def _initial_core(dump: Dump) -> Core:
    if not dump.complete:
        raise ReplayError("the dump does not start at a known state (a core snapshot failed)")
    if dump.origin is None:
        return Core(dump.totem, random.Random(dump.seed))
    from gcs import __version__

    if dump.gcs_version != __version__:
        raise ReplayError(
            f"the dump starts at a core snapshot taken by gcs {dump.gcs_version}; "
            f"this is gcs {__version__}"
        )
    core = pickle.loads(dump.origin)  # documented: replay only dumps you trust
    if not isinstance(core, Core):
        raise ReplayError("the dump's snapshot is not a core")
    return core


def _feed(core: Core, item: Input) -> list[Effect]:
    now = item.now_ns
    match item.kind:
        case InputKind.START:
            return core.start(now, item.arg1)
        case InputKind.RECEIVE:
            frame: Frame = item.arg2
            return core.receive(now, item.arg1, frame)
        case InputKind.TIMEOUT:
            return core.on_timeout(now)
        case InputKind.SUBMIT:
            return core.submit(now, item.arg1, safe=bool(item.arg2))
        case InputKind.LEAVE:
            return core.leave(now)
        case InputKind.PERSISTED:
            return core.on_persisted(now, item.arg1)
    raise ReplayError(f"unknown input kind {item.kind!r}")
