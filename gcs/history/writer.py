"""Record a real node's history in the history schema, so the simulator's checkers judge it.

Why. The simulator proves the guarantees on simulated networks; a run of real processes over
real sockets (loopback, network namespaces with iptables faults) should be judged by the *same*
checkers, not by a second, weaker set of test assertions. The checkers read only a history:
starts, submits, originations, deliveries, configurations, state changes, persisted ring seqs,
ends. This module writes those events (``gcs.history.events``, the schema the simulator records
in) from the runtime, one JSON object per line (``events.to_json``), and ``events.load_jsonl``
reads them back.

What is recorded (a ``Tap``, ``gcs.runtime.tap``): ``Start`` (the stored ring seq), ``Submit``
for every accepted data record whose bytes are a workload payload, ``Originate`` for every new
mcast this node puts on a ring, ``Deliver`` for every delivered mcast, ``Conf`` for every
configuration, ``State`` for the core's membership state changes, ``Persist`` for each confirmed
ring-seq write, and at the end ``Leave`` (clean shutdown), ``Invariant`` or ``Crash``
(fail-stop). A process killed with SIGKILL records nothing more; whoever killed it adds the
``Crash``. Group-layer records (joins, leaves, announcements and the other records of the
reserved group ``""``) are not workload messages (``events.application_record``): they appear
in no message list, and a delivery of only such records is like a fragment-only mcast. An
application record that is not a workload payload is counted as ``corrupt``, so record only
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
import time
from pathlib import Path
from typing import assert_never

from gcs.errors import InvariantViolation
from gcs.history import events as h
from gcs.history.recorder import InputKind
from gcs.totem.effects import (
    Configuration,
    Deliver,
    Effect,
    Multicast,
    PersistRingSeq,
    Send,
    SendWindow,
    Trace,
)
from gcs.wire.frames import Mcast, Record

__all__ = ["HistoryWriter", "next_incarnation"]


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
        self._origins = h.Originations(h.application_record)
        self.events = 0

    # ------------------------------------------------------------------ Tap

    def on_input(self, kind: InputKind, arg1: object, arg2: object) -> None:
        me, inc = self.node_id, self.incarnation
        if kind is InputKind.START:
            assert arg1 is None or isinstance(arg1, int)
            self._write([h.Start(self._now(), me, inc, arg1)])
        elif kind is InputKind.SUBMIT:
            assert isinstance(arg1, Record)
            msg_id = h.decode_payload(arg1.data) if h.application_record(arg1) else None
            if msg_id is not None:
                self._write([h.Submit(self._now(), me, inc, msg_id, bool(arg2), len(arg1.data))])
        elif kind is InputKind.PERSISTED:
            assert isinstance(arg1, int)
            self._write([h.Persist(self._now(), me, inc, arg1)])
        elif kind is InputKind.LEAVE:
            self._leaving = True  # written after the leave's own effects

    def on_effects(self, effects: list[Effect]) -> None:
        if self._fd is None:
            return
        rows: list[h.Event] = []
        for effect in effects:
            match effect:
                case Deliver():
                    rows.append(self._deliver(effect))
                case Multicast(frame=Mcast() as mcast) if mcast.sender == self.node_id:
                    ids = self._origins.of(mcast)
                    if ids is not None:
                        rows.append(self._originate(mcast, ids))
                case Configuration():
                    rows.append(self._conf(effect))
                case Trace(event="state", data=data):
                    old, new, why = str(data["old"]), str(data["new"]), str(data.get("reason", ""))
                    rows.append(h.State(self._now(), self.node_id, self.incarnation, old, new, why))
                case Multicast() | Send() | PersistRingSeq() | SendWindow() | Trace():
                    pass  # not history events
                case _:
                    assert_never(effect)
        if self._leaving:
            rows.append(h.Leave(self._now(), self.node_id, self.incarnation))
        if rows:
            self._write(rows)
        if self._leaving:
            self.close()

    def on_failure(self, exc: BaseException) -> None:
        if self._fd is None:
            return
        me, inc = self.node_id, self.incarnation
        if isinstance(exc, InvariantViolation):
            self._write([h.Invariant(self._now(), me, inc, str(exc))])
        else:
            self._write([h.Crash(self._now(), me, inc)])
        self.close()

    def close(self) -> None:
        """Stop recording (a process that closes without a ``Leave`` is ended by its reader)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # ------------------------------------------------------------------ events

    def _now(self) -> int:
        """The host's monotonic clock, never going back (one clock for every local process)."""
        self._last_ns = max(time.monotonic_ns(), self._last_ns)
        return self._last_ns

    def _originate(self, mcast: Mcast, ids: tuple[h.MsgId, ...]) -> h.Originate:
        return h.Originate(
            self._now(), self.node_id, self.incarnation, mcast.ring_id, mcast.seq, mcast.safe, ids
        )

    def _deliver(self, deliver: Deliver) -> h.Deliver:
        ids, corrupt = h.workload_ids(deliver.records, h.application_record)
        return h.Deliver(
            self._now(),
            self.node_id,
            self.incarnation,
            deliver.config.kind.value,
            deliver.config.ring_id,
            deliver.origin,
            deliver.seq,
            deliver.sender,
            deliver.safe,
            ids,
            corrupt,
        )

    def _conf(self, conf: Configuration) -> h.Conf:
        return h.Conf(
            self._now(),
            self.node_id,
            self.incarnation,
            conf.kind.value,
            conf.ring_id,
            conf.members,
            conf.left,
            conf.joined,
            str(conf.reason),
        )

    def _write(self, rows: list[h.Event]) -> None:
        if self._fd is None:
            return
        text = "".join(h.to_json(row) + "\n" for row in rows)
        os.write(self._fd, text.encode("utf-8"))
        self.events += len(rows)
