"""The Channel: frames in, sealed datagrams out, and back (RFC 0005).

A ``Channel`` is everything one node needs to put frames on the network and take them off it,
with no I/O, clock or randomness of its own: both drivers (the asyncio runtime and the simulator)
compose one with the protocol core, so the simulator exercises exactly the bytes and the drops a
real node sees, and a run is reproducible from (key, node id, boot id) and the inputs.

Sending: ``seal(frame)`` encodes once and seals once; the same datagram goes to every
destination. It owns the send counter and moves to the next key epoch before the suite's usage
limit (RFC 0005 §6). A retransmission is a new ``seal`` call: re-sending old datagram bytes is a
replay, and receivers drop it.

Receiving: ``open(datagram, now_ns, source)`` checks, in this order (RFC 0005 §8) — size,
header, cluster, suite, sender, boot id, epoch, replay window — all before any cryptography,
then authenticates, then advances the state (boots, epoch windows, replay bitmap, when each was
last heard), then decodes the frame. State only ever moves on an authenticated datagram, so a
forger can make a node drop forged datagrams and nothing else. ``receive`` is the driver's entry
point: it never raises, counts every drop by reason and logs the first drop of each reason once.

Time and addresses come in as arguments, like everything else: ``now_ns`` (the driver's
monotonic clock) lets a receiver tell a sender's live boot or epoch from a silent one, which is
what keeps one stray event from being remembered for ever (RFC 0005 §7.1, §8.3: a duplicate node
id, a datagram from an epoch the sender could not have reached); ``source`` (the datagram's
address, any hashable, or None) tells a boot at its node's configured address from one
elsewhere, and names both when one node id sends from two places. The rules themselves live in
``gcs.wire.admission``.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Collection, Hashable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cryptography.exceptions import InvalidTag

from gcs.wire.admission import (
    ACCEPT,
    DEFAULT_SILENCE_NS,
    REPLAY_WINDOW,
    Admission,
    DuplicateSighting,
)
from gcs.wire.codec import U32_MAX, U64_MAX, cluster_id_for, decode_body, encode_frame
from gcs.wire.errors import AlreadyAccepted, DropReason, EncodeError, FrameError
from gcs.wire.frames import WireFrame
from gcs.wire.limits import HEADER_BYTES, TAG_BYTES, WIRE_VERSION, WireLimits
from gcs.wire.seal import (
    AEAD_SUITES,
    EPOCH_FRAMES,
    HEADER,
    MAGIC,
    Aead,
    KeySchedule,
    Suite,
    check_key_length,
    nonce_for,
    pack_header,
    seal_datagram,
)

__all__ = ["REPLAY_WINDOW", "Channel", "ChannelStatistics", "DuplicateSighting"]

_LOG = logging.getLogger("gcs.wire")
# Enum members bound once: attribute access on an Enum class is slow in CPython 3.11.
_UNKEYED = int(Suite.NONE)
_MISMATCH = DropReason.HEADER_MISMATCH

_EPOCH_COUNTER = struct.Struct(">IQ")
_SUITE_CODES = frozenset(int(s) for s in Suite)
_ACCEPT = ACCEPT


@dataclass(frozen=True, slots=True)
class ChannelStatistics:
    """A snapshot of a channel's counters (RFC 0005 §9)."""

    sealed: int
    opened: int
    dropped: Mapping[str, int]
    """Drops by ``DropReason`` value; only reasons that occurred are present."""
    auth_failures: int
    """Datagrams whose AEAD tag did not verify (equal to ``dropped["auth"]``)."""
    epoch: int
    """The send epoch now in use."""
    epoch_changes: int
    """How many times the send side moved to a new epoch (and subkey)."""
    derivations: int
    """Subkeys derived so far (send and receive)."""
    duplicate_node_id: int = 0
    """Distinct duplicate-node-id sightings (SEC-7.1-2): one per node id and pair of boots or
    addresses, however many datagrams showed it."""
    boot_fallbacks: int = 0
    """Times a sender's older kept boot was accepted again because its newer one fell silent."""
    duplicates: tuple[DuplicateSighting, ...] = ()
    """The most recent sightings (at most 8), oldest first."""
    copies: int = 0
    """Second copies of accepted datagrams, dropped by the replay window while copies are
    expected (several links, RFC 0010 LNK-6-2): counted here, not under ``dropped["replay"]``."""

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())


class Channel:
    """Seal frames into datagrams and open datagrams into authenticated frames (RFC 0005).

    ``key=None`` makes an unkeyed channel (suite 0): nothing is authenticated or encrypted,
    every datagram's sender id is a claim anyone can make, and it exists for tests and loopback
    demos only (it logs a warning saying so). With a key, ``suite`` picks the sending suite
    (AES-256-GCM by default); a keyed receiver accepts either AEAD suite, so a cluster can move
    from one to the other a node at a time.

    ``silence_ns`` is how long a sender's boot or epoch must go unheard before the receiver
    believes it is gone (RFC 0005 SEC-7.1-1, SEC-8.3-2); the drivers pass the token timeout. A
    caller that never passes ``now_ns`` lives at time 0, where nothing is ever silent: older boots
    stay refused, and a sender may not move past two epochs (tests that rotate epochs pass a
    clock).
    ``addresses`` maps peer ids to the source each should send from, in the form the driver
    passes as ``source``: a boot from elsewhere never takes over from one at that address.

    ``copies_expected``: the node has several links and its peers may send one datagram on
    each (RFC 0010 LNK-6-2). A datagram whose counter was already accepted is then still
    dropped as a replay, but counted as a copy (``statistics().copies``) and not logged.
    """

    def __init__(
        self,
        node_id: int,
        boot_id: int,
        cluster_name: str,
        key: bytes | None,
        suite: Suite | None = None,
        peers: Collection[int] | None = None,
        limits: WireLimits = WireLimits(),  # noqa: B008 (frozen, shared safely)
        epoch_frames: int | None = None,
        silence_ns: int = DEFAULT_SILENCE_NS,
        addresses: Mapping[int, Hashable] | None = None,
        copies_expected: bool = False,
    ) -> None:
        if type(node_id) is not int or not 0 < node_id <= U32_MAX:
            raise ValueError(f"node_id must be in 1..2^32-1, got {node_id!r}")
        if type(boot_id) is not int or not 0 <= boot_id <= U64_MAX:
            raise ValueError(f"boot_id must be in 0..2^64-1, got {boot_id!r}")
        self.node_id = node_id
        self.boot_id = boot_id
        self.cluster_id = cluster_id_for(cluster_name)
        self.suite = _choose_suite(key, suite)
        self.limits = limits
        self.peers = None if peers is None else frozenset(peers)
        self.epoch_frames = _choose_epoch_frames(self.suite, epoch_frames)
        self._keys = None if key is None else KeySchedule(key, cluster_name)
        self._epoch = 0
        self._counter = 0
        self._send_aead = self._aead(self.suite, node_id, boot_id, 0)
        # Everything in the header but epoch and counter is fixed for the channel's life.
        self._prefix = pack_header(self.suite, self.cluster_id, node_id, boot_id, 0, 0)[:20]
        self._admission = Admission(node_id, silence_ns, addresses)
        self._drops: dict[DropReason, int] = dict.fromkeys(DropReason, 0)
        self._logged: set[DropReason] = set()
        self._sealed = 0
        self._opened = 0
        self._epoch_changes = 0
        self.copies_expected = copies_expected
        self.copies = 0
        """Second copies dropped (see ``copies_expected``); a driver may read it per datagram."""
        if key is None:
            _LOG.warning(
                "node %d: UNKEYED channel: frames are neither authenticated nor encrypted, and "
                "any host that can reach this port can inject them. This mode is for tests and "
                "loopback demos only; configure a key file for anything else.",
                node_id,
            )

    # ------------------------------------------------------------ sending

    def seal(self, frame: WireFrame) -> bytes:
        """Encode and seal ``frame`` once; send the returned datagram to every destination."""
        body = encode_frame(frame, self.cluster_id)
        if len(body) > self.limits.max_frame_bytes:
            raise EncodeError(
                f"{type(frame).__name__} encodes to {len(body)} bytes, more than "
                f"max_frame_bytes={self.limits.max_frame_bytes}"
            )
        counter = self._counter
        if counter >= self.epoch_frames:
            self._next_epoch()
            counter = 0
        self._counter = counter + 1
        header = self._prefix + _EPOCH_COUNTER.pack(self._epoch, counter)
        self._sealed += 1
        return seal_datagram(self._send_aead, header, body)

    def _next_epoch(self) -> None:
        if self._epoch == U32_MAX:
            raise EncodeError("all 2^32 key epochs of this boot are used; restart the node")
        self._epoch += 1
        self._counter = 0
        self._epoch_changes += 1
        self._send_aead = self._aead(self.suite, self.node_id, self.boot_id, self._epoch)

    def _aead(self, suite: int, sender: int, boot_id: int, epoch: int) -> Aead | None:
        return None if self._keys is None else self._keys.aead(suite, sender, boot_id, epoch)

    # ------------------------------------------------------------ receiving

    def receive(
        self, datagram: bytes, now_ns: int = 0, source: Hashable | None = None
    ) -> tuple[int, WireFrame] | None:
        """``open`` for drivers: never raises; a dropped datagram returns None.

        Every drop is counted by reason (``drops``); the first drop of each reason is logged at
        WARNING with its detail, later ones only counted, so a flood cannot flood the log. An
        expected copy (``copies_expected``) is counted as a copy and not logged.
        """
        try:
            return self.open(datagram, now_ns, source)
        except FrameError as exc:
            if exc.reason not in self._logged and not self._expected_copy(exc):
                self._logged.add(exc.reason)
                _LOG.warning(
                    "node %d dropped a datagram (%s): %s; further drops for this reason are "
                    "counted, not logged",
                    self.node_id,
                    exc.reason.value,
                    exc.detail,
                )
            return None

    def open(
        self, datagram: bytes, now_ns: int = 0, source: Hashable | None = None
    ) -> tuple[int, WireFrame]:
        """Authenticate and decode one datagram: ``(sender id, frame)``, or raise ``FrameError``.

        ``now_ns`` is the driver's monotonic clock (never going backwards); ``source`` where the
        datagram came from, in the form of ``addresses`` (the runtime passes (host, port)). The
        sender id returned is the authenticated one from the clear header (for an unkeyed
        channel, a claim). Drops are counted here too, so ``statistics()`` is right whichever
        entry point a driver uses.
        """
        try:
            return self._open(datagram, now_ns, source)
        except FrameError as exc:
            if self._expected_copy(exc):
                self.copies += 1
            else:
                self._drops[exc.reason] += 1
            raise

    def _expected_copy(self, exc: FrameError) -> bool:
        return self.copies_expected and type(exc) is AlreadyAccepted

    def _open(self, datagram: bytes, now_ns: int, source: Hashable | None) -> tuple[int, WireFrame]:
        size = len(datagram)
        if size > self.limits.max_datagram_bytes:
            raise FrameError(DropReason.TOO_LARGE, f"datagram of {size} bytes")
        if size < HEADER_BYTES:
            raise FrameError(DropReason.TRUNCATED, f"datagram of {size} bytes has no header")
        magic, version, suite, cluster_id, sender, boot_id, epoch, counter = HEADER.unpack_from(
            datagram
        )
        if magic != MAGIC:
            raise FrameError(DropReason.BAD_MAGIC, f"magic {magic!r}")
        if version != WIRE_VERSION:
            raise FrameError(DropReason.BAD_VERSION, f"wire version {version} from node {sender}")
        if cluster_id != self.cluster_id:
            raise FrameError(DropReason.WRONG_CLUSTER, f"cluster id {cluster_id:#010x}")
        if suite != self.suite:
            self._check_suite(suite)
        if suite != _UNKEYED and size < HEADER_BYTES + TAG_BYTES:
            raise FrameError(DropReason.TRUNCATED, f"sealed datagram of {size} bytes has no tag")
        self._check_sender(sender)
        window, boot, verdict = self._admission.check(
            suite, sender, boot_id, epoch, counter, now_ns, source
        )
        if suite == _UNKEYED:
            body = datagram[HEADER_BYTES:]
            aead = None
        else:
            aead = window.aead if window is not None else self._aead(suite, sender, boot_id, epoch)
            assert aead is not None  # keyed channel: _check_suite refused suite 0 otherwise
            header = datagram[:HEADER_BYTES]
            try:
                body = aead.decrypt(nonce_for(header), datagram[HEADER_BYTES:], header)
            except InvalidTag:
                raise FrameError(DropReason.AUTH, f"tag did not verify (node {sender})") from None
        if verdict is _ACCEPT and window is not None and boot is not None and source == boot.source:
            window.accept(counter, now_ns)  # the common case, inline
            boot.heard_ns = now_ns
        else:
            self._admission.commit(
                verdict,
                window,
                boot,
                suite,
                aead,
                (sender, boot_id, epoch, counter),
                now_ns,
                source,
            )
        frame = decode_body(body, self.cluster_id, self.limits, _MISMATCH, _MISMATCH)
        self._opened += 1
        return sender, frame

    def _check_suite(self, suite: int) -> None:
        """Refuse a suite byte this channel cannot open (called only when it differs from ours)."""
        if suite not in _SUITE_CODES:
            raise FrameError(DropReason.BAD_SUITE, f"suite {suite}")
        if self._keys is None:
            raise FrameError(DropReason.SEALED_UNEXPECTED, f"suite {suite} at an unkeyed channel")
        if suite not in AEAD_SUITES:
            raise FrameError(DropReason.UNSEALED, "suite 0 (unkeyed) at a keyed channel")

    def add_peers(self, peers: Collection[int]) -> None:
        """Accept these senders too (a node learned from a join, RFC 0004 MEM-3.2-5)."""
        if self.peers is not None:
            self.peers = self.peers | frozenset(peers)

    def set_peers(self, peers: Collection[int], addresses: Mapping[int, Hashable]) -> None:
        """The node list changed (RFC 0008 §3.7): accept these senders, homed at these addresses.

        Replay state of a sender that left the list is kept (bounded as before), so a sender
        listed again cannot replay old datagrams."""
        self.peers = frozenset(peers)
        self._admission.addresses = dict(addresses)

    def _check_sender(self, sender: int) -> None:
        """Refuse our own id (a reflection) and ids that are not configured peers."""
        if sender == self.node_id:
            raise FrameError(DropReason.LOOPBACK, "datagram carries this node's own id")
        if sender == 0 or (self.peers is not None and sender not in self.peers):
            raise FrameError(
                DropReason.UNKNOWN_SENDER,
                f"node {sender} is not in the node list (to add it while the cluster runs: "
                f"gcs nodes add --config FILE {sender} ADDRESS, RFC 0008 §3.7)",
            )

    # ------------------------------------------------------------ counters

    @property
    def drops(self) -> Mapping[DropReason, int]:
        """Live, read-only drop counters, one per ``DropReason`` (zero if it never happened)."""
        return MappingProxyType(self._drops)

    @property
    def epoch(self) -> int:
        return self._epoch

    def statistics(self) -> ChannelStatistics:
        dropped = {reason.value: n for reason, n in self._drops.items() if n}
        return ChannelStatistics(
            sealed=self._sealed,
            opened=self._opened,
            dropped=MappingProxyType(dropped),
            auth_failures=self._drops[DropReason.AUTH],
            epoch=self._epoch,
            epoch_changes=self._epoch_changes,
            derivations=0 if self._keys is None else self._keys.derivations,
            duplicate_node_id=self._admission.duplicates,
            boot_fallbacks=self._admission.fallbacks,
            duplicates=tuple(self._admission.recent),
            copies=self.copies,
        )


def _choose_suite(key: bytes | None, suite: Suite | None) -> Suite:
    if key is None:
        if suite not in (None, Suite.NONE):
            raise ValueError(f"suite {suite!r} needs a key")
        return Suite.NONE
    check_key_length(key)
    if suite is None:
        return Suite.AES_256_GCM
    if suite not in AEAD_SUITES:
        raise ValueError(f"a keyed channel seals with an AEAD suite, not {suite!r}")
    return Suite(suite)


def _choose_epoch_frames(suite: Suite, epoch_frames: int | None) -> int:
    limit = EPOCH_FRAMES[suite]
    if epoch_frames is None:
        return limit
    if type(epoch_frames) is not int or not 1 <= epoch_frames <= limit:
        raise ValueError(f"epoch_frames must be in 1..{limit} for {suite.name}")
    return epoch_frames
