"""The replicated key-value store the ``kv`` workload runs, and the log its checkers read.

Why a separate log. The simulator's ``History`` is the ring-level record every checker shares
(and real processes write too); the key-value service adds application facts — which write a
replica applied at which version, which it acknowledged, which quorum verdict each node reached
— that only the kv and quorum checkers read. They live in a ``KvLog`` beside the history, in
virtual time order, so the checkers stay pure functions of recorded facts (RFC 0008 §7).

The store (``KvReplica``). Writes are workload messages (their payload names their ``MsgId``),
so a write's key and value are functions of its id: key ``hash(id) mod keys``, value the id.
A replica applies a write by bumping its version and extending a hash chain
``chain(v) = H(chain(v-1), id)``; two replicas with the same (version, chain) hold the same
history, so the checkers can compare histories without shipping them. The snapshot is the
whole store; the merge hook keeps the side with the highest version (in primary-component mode
only one lineage ever applies writes, so the highest is the freshest).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cbor2

from gcs.groups.views import Member
from gcs.history.events import MsgId
from gcs.wire.frames import RingId

__all__ = [
    "Ack",
    "Apply",
    "Final",
    "Install",
    "KvLog",
    "KvReplica",
    "NodesHeld",
    "Verdict",
    "VerdictEnd",
]

GENESIS = b"\x00" * 16


def chain_step(chain: bytes, msg_id: MsgId) -> bytes:
    text = f"{msg_id.node}/{msg_id.incarnation}/{msg_id.counter}".encode()
    return hashlib.blake2b(chain + text, digest_size=16).digest()


@dataclass(frozen=True, slots=True)
class Apply:
    """Replica (node, incarnation) applied write ``msg_id`` as version ``version``."""

    time_ns: int
    node: int
    incarnation: int
    version: int
    msg_id: MsgId
    chain: bytes


@dataclass(frozen=True, slots=True)
class Install:
    """A replica's state was replaced (transfer or merge) by one at ``version``/``chain``."""

    time_ns: int
    node: int
    incarnation: int
    version: int
    chain: bytes
    how: str


@dataclass(frozen=True, slots=True)
class Ack:
    """The write's origin applied it: a client would have been told it is committed."""

    time_ns: int
    node: int
    incarnation: int
    msg_id: MsgId
    version: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """A node's quorum verdict for a ring (final verdicts only)."""

    time_ns: int
    node: int
    incarnation: int
    ring_id: RingId
    members: tuple[int, ...]
    quorate: bool
    total_votes: int
    expected_votes: int
    nodes_version: int = 0
    """The version of the node list the node held at the verdict (RFC 0008 §3.7)."""


@dataclass(frozen=True, slots=True)
class NodesHeld:
    """A node holds a node list from here (RFC 0008 §3.7): at start (``how`` "start", with
    ``disk_kept`` when its state directory survived), "applied" (a change record), "adopted"
    (a merge). ``entries`` are (node, votes) pairs, ascending."""

    time_ns: int
    node: int
    incarnation: int
    version: int
    entries: tuple[tuple[int, int], ...]
    how: str
    disk_kept: bool = True


@dataclass(frozen=True, slots=True)
class VerdictEnd:
    """The node left the configuration of its last verdict (transitional, crash, leave)."""

    time_ns: int
    node: int
    incarnation: int


@dataclass(frozen=True, slots=True)
class Final:
    """At the end of the run: a live replica's state."""

    node: int
    incarnation: int
    version: int
    chain: bytes
    installed: bool
    ring_id: RingId | None
    quorate: bool


KvEvent = Apply | Install | Ack | Verdict | VerdictEnd | NodesHeld


@dataclass(slots=True)
class KvLog:
    events: list[KvEvent] = field(default_factory=list)
    finals: list[Final] = field(default_factory=list)
    two_node: bool = False
    last_man_standing: bool = False
    node_changes: bool = False


class KvReplica:
    """One replica's store (see the module docstring)."""

    def __init__(self, keys: int) -> None:
        self.keys = keys
        self.version = 0
        self.chain = GENESIS
        self.data: dict[int, tuple[int, MsgId]] = {}

    def apply(self, msg_id: MsgId) -> None:
        self.version += 1
        self.chain = chain_step(self.chain, msg_id)
        self.data[_key_of(msg_id, self.keys)] = (self.version, msg_id)

    def snapshot(self) -> bytes:
        items = [[k, v, list(m)] for k, (v, m) in sorted(self.data.items())]
        return bytes(cbor2.dumps([self.version, self.chain, items], canonical=True))

    def install(self, state: bytes) -> None:
        version, chain, items = _decode(state)
        self.version, self.chain = version, chain
        self.data = {k: (v, MsgId(*m)) for k, v, m in items}

    @staticmethod
    def merge(sides: Sequence[tuple[tuple[Member, ...], bytes]]) -> bytes:
        """The side with the highest version (ties: the highest chain), deterministically."""

        def rank(side: tuple[tuple[Member, ...], bytes]) -> tuple[int, bytes]:
            version, chain, _ = _decode(side[1])
            return version, chain

        return max(sides, key=rank)[1]


def _key_of(msg_id: MsgId, keys: int) -> int:
    digest = hashlib.blake2b(f"{msg_id}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % keys


def _decode(state: bytes) -> tuple[int, bytes, list[Any]]:
    version, chain, items = cbor2.loads(state)
    return int(version), bytes(chain), list(items)
