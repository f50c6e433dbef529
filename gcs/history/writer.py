"""Record a real node's history in the simulator's schema, so the simulator's checkers judge it.

Why. The simulator proves the guarantees on simulated networks; a run of real processes over
real sockets (loopback, network namespaces with iptables faults) should be judged by the *same*
checkers, not by a second, weaker set of test assertions. The checkers read only a history:
starts, submits, originations, deliveries, configurations, state changes, persisted ring seqs,
ends. This module writes those events from the runtime, one JSON object per line, exactly as
``gcs.history.events.History.to_jsonl`` does, and ``gcs.history.events.load_jsonl`` reads them back.
The runtime must not import the simulator (an import-linter contract), so the schema and the
workload payload format are restated here; ``tests/history/test_writer.py`` checks that both
sides agree.

What is recorded (a ``Tap``, ``gcs.runtime.tap``): ``Start`` (the stored ring seq), ``Submit``
for every accepted data record whose bytes are a workload payload, ``Originate`` for every new
mcast this node puts on a ring, ``Deliver`` for every delivered mcast, ``Conf`` for every
configuration, ``State`` for the core's membership state changes, ``Persist`` for each confirmed
ring-seq write, and at the end ``Leave`` (clean shutdown), ``Invariant`` or ``Crash``
(fail-stop). A process killed with SIGKILL records nothing more; whoever killed it adds the
``Crash``. Group-layer records (joins, leaves, announcements) are not workload messages: they
appear in no message list, and a delivery of only such records is like a fragment-only mcast.
A data record that is not a workload payload is counted as ``corrupt``, so record only
workloads that use the payload encoding.

Times are ``time.monotonic_ns()``, which on Linux is one clock for every process of the host
(network namespaces do not change it), so the histories of several processes merge into one
ordered history by time. Each batch of lines is written with one ``os.write`` to a file opened
with ``O_APPEND`` before the core's effects are executed, so a process killed at any moment
leaves a history that ends before anything it sent: nothing another node delivered from it is
missing from its own history.

Incarnations. The simulator numbers a node's process incarnations 1, 2, ...; workload payloads
carry that number in 32 bits, and the boot id (a wall-clock figure) does not fit. A node that
appends to an existing history file therefore takes the next number after the last ``Start``
of that node in the file (``next_incarnation``).
"""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path
from typing import Any

from gcs.errors import InvariantViolation
from gcs.history.recorder import InputKind
from gcs.totem.effects import Configuration, Deliver, Effect, Multicast, Trace
from gcs.wire.frames import Mcast, Record, RecordFlags, RingId

__all__ = ["HistoryWriter", "decode_workload", "next_incarnation"]

_PAYLOAD_HEADER = struct.Struct(">IIQ")  # node, incarnation, counter (gcs.history.events)
_KIND = int(RecordFlags.KIND_MASK)
_DATA = int(RecordFlags.DATA)
_POSITION = int(RecordFlags.FRAGMENT_MASK)
_WHOLE = int(RecordFlags.WHOLE)
_FIRST = int(RecordFlags.FIRST)
_LAST = int(RecordFlags.LAST)

MsgIdTuple = tuple[int, int, int]


def decode_workload(data: bytes) -> MsgIdTuple | None:
    """(node, incarnation, counter) of a workload payload, or None (``gcs.history.events``)."""
    size = _PAYLOAD_HEADER.size
    if len(data) < size:
        return None
    head = data[:size]
    if len(data) > size and (head * (len(data) // size + 1))[: len(data) - size] != data[size:]:
        return None
    node, incarnation, counter = _PAYLOAD_HEADER.unpack(head)
    return node, incarnation, counter


def next_incarnation(path: str | os.PathLike[str], node_id: int) -> int:
    """One more than the last incarnation of ``node_id`` started in the history at ``path``.

    Blocking (it reads the file): call it in an executor or before the loop runs.
    """
    last = 0
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if '"Start"' not in line:
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a killed process
                if row.get("type") == "Start" and row.get("node") == node_id:
                    last = max(last, int(row.get("incarnation", 0)))
    except FileNotFoundError:
        pass
    return last + 1


def _ring(ring: RingId) -> list[int]:
    return [ring.rep, ring.seq]


class HistoryWriter:
    """A ``Tap`` that appends this node's events to a JSONL history (module docstring)."""

    def __init__(self, path: str | os.PathLike[str], node_id: int, incarnation: int) -> None:
        self.path = Path(path)
        self.node_id = node_id
        self.incarnation = incarnation
        self._fd: int | None = os.open(
            self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600
        )
        self._last_ns = 0
        self._leaving = False
        self._last_origin: dict[RingId, int] = {}
        self._fragment: MsgIdTuple | None = None
        self.events = 0

    # ------------------------------------------------------------------ Tap

    def on_input(self, kind: InputKind, arg1: object, arg2: object) -> None:
        if kind is InputKind.START:
            self._write([self._row("Start", stored_ring_seq=arg1)])
        elif kind is InputKind.SUBMIT:
            assert isinstance(arg1, Record)
            row = self._submit(arg1, bool(arg2))
            if row is not None:
                self._write([row])
        elif kind is InputKind.PERSISTED:
            self._write([self._row("Persist", ring_seq=arg1)])
        elif kind is InputKind.LEAVE:
            self._leaving = True  # written after the leave's own effects

    def on_effects(self, effects: list[Effect]) -> None:
        if self._fd is None:
            return
        rows: list[dict[str, Any]] = []
        for effect in effects:
            kind = type(effect)
            if kind is Deliver:
                rows.append(self._deliver(effect))  # type: ignore[arg-type]
            elif kind is Multicast:
                frame = effect.frame  # type: ignore[union-attr]
                if type(frame) is Mcast and frame.sender == self.node_id:
                    row = self._originate(frame)
                    if row is not None:
                        rows.append(row)
            elif kind is Configuration:
                rows.append(self._conf(effect))  # type: ignore[arg-type]
            elif kind is Trace and effect.event == "state":  # type: ignore[union-attr]
                data = effect.data  # type: ignore[union-attr]
                rows.append(
                    self._row(
                        "State",
                        old=str(data["old"]),
                        new=str(data["new"]),
                        reason=str(data.get("reason", "")),
                    )
                )
        if self._leaving:
            rows.append(self._row("Leave"))
        if rows:
            self._write(rows)
        if self._leaving:
            self.close()

    def on_failure(self, exc: BaseException) -> None:
        if self._fd is None:
            return
        if isinstance(exc, InvariantViolation):
            self._write([self._row("Invariant", message=str(exc))])
        else:
            self._write([self._row("Crash")])
        self.close()

    def close(self) -> None:
        """Stop recording (a process that closes without a ``Leave`` is ended by its reader)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # ------------------------------------------------------------------ rows

    def _row(self, type_name: str, **fields: Any) -> dict[str, Any]:
        now = time.monotonic_ns()
        now = max(now, self._last_ns)
        self._last_ns = now
        fields.update(type=type_name, time_ns=now, node=self.node_id, incarnation=self.incarnation)
        return fields

    def _submit(self, record: Record, safe: bool) -> dict[str, Any] | None:
        if record.flags & _KIND != _DATA:
            return None
        msg_id = decode_workload(record.data)
        if msg_id is None:
            return None
        return self._row("Submit", msg_id=list(msg_id), safe=safe, size=len(record.data))

    def _originate(self, mcast: Mcast) -> dict[str, Any] | None:
        if mcast.encapsulated is not None:
            return None
        if mcast.seq <= self._last_origin.get(mcast.ring_id, 0):
            return None  # a retransmission of one of our mcasts
        self._last_origin[mcast.ring_id] = mcast.seq
        ids: list[list[int]] = []
        for record in mcast.records:
            if record.flags & _KIND != _DATA:
                continue
            position = record.flags & _POSITION
            if position == _WHOLE:
                msg_id = decode_workload(record.data)
                if msg_id is not None:
                    ids.append(list(msg_id))
            elif position == _FIRST and len(record.data) >= _PAYLOAD_HEADER.size:
                self._fragment = _PAYLOAD_HEADER.unpack_from(record.data)
            elif position == _LAST and self._fragment is not None:
                ids.append(list(self._fragment))
                self._fragment = None
        return self._row(
            "Originate", ring_id=_ring(mcast.ring_id), seq=mcast.seq, safe=mcast.safe, msg_ids=ids
        )

    def _deliver(self, deliver: Deliver) -> dict[str, Any]:
        ids: list[list[int]] = []
        corrupt = 0
        for record in deliver.records:
            if record.flags & _KIND != _DATA:
                continue
            msg_id = decode_workload(record.data)
            if msg_id is None:
                corrupt += 1
            else:
                ids.append(list(msg_id))
        return self._row(
            "Deliver",
            config_kind=deliver.config.kind.value,
            config_ring=_ring(deliver.config.ring_id),
            origin_ring=_ring(deliver.origin),
            seq=deliver.seq,
            sender=deliver.sender,
            safe=deliver.safe,
            msg_ids=ids,
            corrupt=corrupt,
        )

    def _conf(self, conf: Configuration) -> dict[str, Any]:
        return self._row(
            "Conf",
            kind=conf.kind.value,
            ring_id=_ring(conf.ring_id),
            members=list(conf.members),
            left=list(conf.left),
            joined=list(conf.joined),
            reason=str(conf.reason),
        )

    def _write(self, rows: list[dict[str, Any]]) -> None:
        if self._fd is None:
            return
        text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
        os.write(self._fd, text.encode("utf-8"))
        self.events += len(rows)
