"""The state directory: the ring seq and the boot id, durably, off the event loop.

Why it matters. Ring ids must increase across restarts (a node that comes back with an old ring
seq could form a ring whose id was already used, corosync's commit 3675dace), so the core emits
``PersistRingSeq`` and does not install a ring until the driver confirms the write (RFC 0004
§2.3). The boot id must strictly increase across restarts too, because the AEAD nonce is a
counter per (sender, boot id, epoch) and receivers drop datagrams of an older boot (RFC 0005 §7).

How. Each value is one small text file written atomically: a temporary file in the same
directory, ``fsync``, ``rename`` over the old file, then ``fsync`` of the directory so the
rename itself is durable. The writes run in the default executor (an ``fsync`` can take seconds
on a busy disk, longer than a token timeout, corosync#520); ``RingSeqWriter`` serialises them and
confirms each seq on the loop. A ``lock`` file (``flock``) stops two nodes sharing a directory.

Boot ids are ``max(stored + 1, wall-clock milliseconds)``, written durably before the node
seals anything (RFC 0005 §7.3): the stored counter makes them increase even if the clock steps
back, and the clock keeps them increasing if the directory is wiped; only both at once defeat
it. Without a state dir only the clock is available (kept increasing within the process).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gcs.errors import ConfigError

__all__ = ["RingSeqWriter", "StateStore", "StoredState"]

_LOG = logging.getLogger("gcs.runtime.persist")

RING_SEQ_FILE = "ring_seq"
BOOT_ID_FILE = "boot_id"
QUORUM_FILE = "quorum_expected_votes"
"""last_man_standing's dynamic expected votes (RFC 0008 §3.5); absent until it first changes."""
NODES_FILE = "node_list"
"""The node list once it changed at run time (RFC 0008 §3.7), as one line of JSON text; the
runtime stores it opaquely (the group layer above owns its format)."""
LOCK_FILE = "lock"
_U64 = (1 << 64) - 1

_last_boot_lock = threading.Lock()
_last_boot: dict[int, int] = {}


@dataclass(frozen=True, slots=True)
class StoredState:
    """What a node starts from: the stored ring seq (None if never stored) and its new boot id."""

    ring_seq: int | None
    boot_id: int


class StateStore:
    """One node's state directory (or none). Every method blocks: call them in an executor."""

    def __init__(self, path: str | os.PathLike[str] | None, node_id: int) -> None:
        self.path = None if path is None else Path(path)
        self.node_id = node_id
        self._lock_fd: int | None = None

    def open(self) -> StoredState:
        """Lock the directory, read the ring seq, and durably advance the boot id."""
        now_ms = time.time_ns() // 1_000_000
        if self.path is None:
            return StoredState(None, _next_boot(self.node_id, now_ms))
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock()
            ring_seq = self._read(RING_SEQ_FILE)
            stored_boot = self._read(BOOT_ID_FILE)
            boot_id = _next_boot(self.node_id, max(now_ms, (stored_boot or 0) + 1))
            self._write(BOOT_ID_FILE, boot_id)
        except OSError as exc:
            self.close()
            raise ConfigError("state_dir", f"cannot use {self.path}: {exc}") from exc
        return StoredState(ring_seq, boot_id)

    def write_ring_seq(self, seq: int) -> None:
        if self.path is not None:
            self._write(RING_SEQ_FILE, seq)

    def read_quorum_votes(self) -> int | None:
        """The stored dynamic expected votes, or None (no state dir, or never stored)."""
        return None if self.path is None else self._read(QUORUM_FILE)

    def write_quorum_votes(self, expected_votes: int) -> None:
        if self.path is not None:
            self._write(QUORUM_FILE, expected_votes)

    def read_node_list(self) -> str | None:
        """The stored node list text, or None (no state dir, or the list never changed)."""
        if self.path is None:
            return None
        try:
            return (self.path / NODES_FILE).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def write_node_list(self, text: str) -> None:
        """Store the node list text durably (atomic replace, fsync'd) before returning."""
        if self.path is not None:
            self._write_text(NODES_FILE, text)

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def _lock(self) -> None:
        assert self.path is not None
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            import fcntl
        except ImportError:  # not POSIX: no advisory locks, the directory is trusted to be ours
            self._lock_fd = fd
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(
                "state_dir", f"{self.path} is in use by another running node"
            ) from None
        self._lock_fd = fd

    def _read(self, name: str) -> int | None:
        assert self.path is not None
        try:
            text = (self.path / name).read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        if not text.isdigit() or int(text) > _U64:
            raise ConfigError("state_dir", f"{self.path / name} does not hold a u64: {text!r}")
        return int(text)

    def _write(self, name: str, value: int) -> None:
        self._write_text(name, f"{value}\n")

    def _write_text(self, name: str, text: str) -> None:
        assert self.path is not None
        target = self.path / name
        tmp = self.path / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8", closefd=True) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_dir(self.path)


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _next_boot(node_id: int, candidate: int) -> int:
    """Keep boot ids increasing within this process too (a node closed and reopened in 1 ms)."""
    with _last_boot_lock:
        boot = max(candidate, _last_boot.get(node_id, 0) + 1)
        _last_boot[node_id] = boot
        return boot


class RingSeqWriter:
    """Writes ring seqs one at a time in an executor and confirms each on the loop.

    Requests that arrive while a write is in flight collapse into one write of the highest seq;
    confirming a higher seq confirms every lower one (the core takes the maximum).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        store: StateStore,
        on_done: Callable[[int], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        self._loop = loop
        self._store = store
        self._on_done = on_done
        self._on_error = on_error
        self._wanted = -1
        self._busy: asyncio.Future[None] | None = None
        self._closed = False
        self.writes = 0

    def persist(self, seq: int) -> None:
        """Request that ``seq`` be stored; ``on_done(seq)`` runs later, never from this call."""
        self._wanted = max(self._wanted, seq)
        if self._busy is None and not self._closed:
            self._start()

    def _start(self) -> None:
        seq = self._wanted
        busy: asyncio.Future[None]
        if self._store.path is None:
            busy = self._loop.create_future()
            busy.set_result(None)
        else:
            busy = self._loop.run_in_executor(None, self._store.write_ring_seq, seq)
        self._busy = busy
        # Done callbacks run via call_soon: the confirmation never re-enters the core from
        # inside the effect that asked for the write.
        busy.add_done_callback(lambda fut: self._finished(seq, fut))

    def _finished(self, seq: int, fut: asyncio.Future[None]) -> None:
        self._busy = None
        if self._closed:
            return
        exc = fut.exception()
        if exc is not None:
            _LOG.error("cannot store ring seq %d: %s", seq, exc)
            self._on_error(exc)
            return
        self.writes += 1
        self._on_done(seq)
        if self._wanted > seq and self._busy is None:
            self._start()

    async def wait_idle(self) -> None:
        """Wait for the write in flight (at close: a half-written seq must still land)."""
        busy = self._busy
        if busy is not None:
            await asyncio.wait([busy])

    def close(self) -> None:
        self._closed = True
