"""Which datagrams a receiver may accept: boots, epochs, replay windows, liveness (RFC 0005 §7-§8).

A receiver keeps, per sender, a bounded amount of state — at most two boots, at most two epoch
windows per boot, one pending epoch jump per boot — and decides from the clear header alone
whether a datagram can be fresh (``Admission.check``, before any cryptography), then, once the
tag verified, what the datagram changes (``Admission.commit``). Nothing moves before the tag
verified (SEC-8.4-1).

Why time matters here. Without it, one event a receiver never forgets can take a healthy sender
out of service for good: a second process started by mistake with the same node id (its newer
boot id would shadow the real node's for ever), or one authentic datagram of an epoch the sender
has not reached (its window would evict the real one). So every boot and epoch records when it
was last heard, and the rules only ever set a *live* boot or epoch aside for another one that is
explained (a restart, the next epoch) or after the live one has been silent for ``silence_ns``
(the driver passes the token timeout). Replay state is never thrown away for a boot or epoch
that can still be accepted, so no datagram is accepted twice (the argument is RFC 0005 §7.2).

Why addresses matter. The sender id is authenticated as "some key holder", not as an address,
so an address never makes a datagram acceptable. But when two processes send under one node id,
the one at the node's configured address is the one the others can answer (every peer sends to
that address), so a receiver prefers it, and never lets a boot from elsewhere take over from it
(SEC-7.1-1). And the addresses name the culprits: the receiver reports the id, both boots and both
addresses once, and counts it (SEC-7.1-2).
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from gcs.wire.errors import AlreadyAccepted, DropReason, FrameError
from gcs.wire.seal import Aead

__all__ = [
    "BOOTS_KEPT",
    "DEFAULT_SILENCE_NS",
    "EPOCHS_KEPT",
    "REPLAY_WINDOW",
    "Admission",
    "Boot",
    "DuplicateSighting",
    "Window",
]

_LOG = logging.getLogger("gcs.wire")

REPLAY_WINDOW = 4096
"""Counters a receiver remembers behind the highest one accepted, per (sender, boot, epoch)."""

BOOTS_KEPT = 2
"""Boots a receiver keeps replay state for, per sender: the newest and one other (SEC-7.1-1)."""

EPOCHS_KEPT = 2
"""Epoch windows a receiver keeps per sender boot (SEC-8.3-1)."""

SIGHTINGS_KEPT = 256
"""Duplicate-node-id sightings remembered, so each is logged once; the oldest goes first."""

DEFAULT_SILENCE_NS = 1_000_000_000
"""How long a boot or epoch must go unheard to count as gone, unless the driver says (the
drivers pass the token timeout, whose default this is)."""

RECENT_SIGHTINGS = 8
"""Sightings kept with their details for ``gcs status``."""

_WINDOW_MASK = (1 << REPLAY_WINDOW) - 1
_ACCEPTED = "was already accepted"

# What the header allows, decided before any cryptography (``Admission.check``).
ACCEPT = 0
"""Fresh, of the boot being accepted: accept once authentic (the common case)."""
RESUME = 1
"""Fresh, of the preferred boot, after datagrams of the other boot were accepted: accept."""
NEW_BOOT = 2
"""A sender never heard, or a boot newer than every boot kept (a restart): accept once
authentic; the boot becomes the newest."""
NEW_SHADOWED = 3
"""A newer boot from elsewhere than the configured address while a boot from it is kept:
authenticate, keep it, report the duplicate, drop as ``shadowed_boot``."""
FALLBACK = 4
"""Fresh, of the kept boot that is not preferred, while the preferred one is silent: accept."""
SHADOWED = 5
"""Of the kept boot that is not preferred, while the preferred one is live (or is at the
configured address and this one is not): authenticate, report, drop as ``shadowed_boot``."""
JUMP = 6
"""An epoch more than one ahead of the highest kept, not yet confirmed: authenticate, note it,
drop as ``epoch_jump``."""
SHADOWED_JUMP = 7
"""``SHADOWED``, and a jump besides: authenticate, report, drop; its epoch opens no window."""


class Window:
    """Anti-replay state of one (sender, boot id, epoch), and the cipher that goes with it.

    ``bitmap`` bit i set means counter ``top - i`` was accepted (bit 0 is ``top`` itself). A
    Python int is the bitmap: shifting 4,096 bits is a few machine words of work.
    """

    __slots__ = ("aead", "bitmap", "heard_ns", "suite", "top")

    def __init__(self, suite: int, aead: Aead | None, now_ns: int) -> None:
        self.suite = suite
        self.aead = aead
        self.top = -1
        self.bitmap = 0
        self.heard_ns = now_ns
        """When a datagram of this epoch was last accepted."""

    def seen(self, counter: int) -> str | None:
        """Why ``counter`` must be refused (a detail string), or None if it is fresh."""
        if counter > self.top:
            return None
        behind = self.top - counter
        if behind >= REPLAY_WINDOW:
            return f"counter {counter} is {behind} behind the newest, outside the window"
        if self.bitmap >> behind & 1:
            return _ACCEPTED
        return None

    def accept(self, counter: int, now_ns: int) -> None:
        """Record ``counter`` (already checked with ``seen`` and authenticated)."""
        self.heard_ns = now_ns
        if counter > self.top:
            shift = counter - self.top
            self.bitmap = (
                ((self.bitmap << shift) | 1) & _WINDOW_MASK if shift < REPLAY_WINDOW else 1
            )
            self.top = counter
        else:
            self.bitmap |= 1 << (self.top - counter)


class Boot:
    """What a receiver knows about one boot of one sender: epoch windows, liveness, origin."""

    __slots__ = ("first_ns", "heard_ns", "home", "jump", "source", "windows")

    def __init__(self, now_ns: int, source: Hashable | None, home: bool) -> None:
        self.windows: dict[int, Window] = {}
        self.first_ns = now_ns
        """When this boot first authenticated here."""
        self.heard_ns = now_ns
        """When a datagram of this boot last authenticated here, accepted or not."""
        self.source = source
        """Where its first datagram came from (None if the driver did not say)."""
        self.home = home
        """A datagram of it came from the sender's configured address (or either is unknown)."""
        self.jump: tuple[int, int, int] | None = None
        """An epoch jump waiting for confirmation: (epoch, first heard, highest counter)."""

    def rank(self) -> tuple[bool, int]:
        """Which of two boots to keep when a third arrives: at home first, then heard last."""
        return self.home, self.heard_ns


class _Peer:
    """What a receiver knows about one sender: at most ``BOOTS_KEPT`` boots."""

    __slots__ = ("boots", "newest", "preferred", "serving")

    def __init__(self) -> None:
        self.boots: dict[int, Boot] = {}
        self.newest = -1
        """The highest boot id ever authenticated from this sender; always kept."""
        self.preferred = -1
        """The kept boot accepted whenever it is live: at home first, then the newest."""
        self.serving = -1
        """The boot whose datagram was last accepted (to count and log a fallback once)."""


@dataclass(frozen=True, slots=True)
class DuplicateSighting:
    """Evidence that two processes send under one node id (RFC 0005 SEC-7.1-2)."""

    node_id: int
    boots: tuple[int, int]
    """The two boot ids (equal when one boot came from two addresses)."""
    sources: tuple[str, str]
    """Where each came from ("?" where the driver did not say)."""


class Admission:
    """The receiver state of one channel, and the rules that read and move it (module doc).

    ``addresses`` maps peer ids to the source address their datagrams should come from, in the
    form the driver passes as ``source``; None (or a missing id) means "unknown", and a boot
    of unknown origin counts as at home.
    """

    def __init__(
        self, node_id: int, silence_ns: int, addresses: Mapping[int, Hashable] | None = None
    ) -> None:
        if type(silence_ns) is not int or silence_ns <= 0:
            raise ValueError(f"silence_ns must be a positive int, got {silence_ns!r}")
        self.node_id = node_id
        self.silence_ns = silence_ns
        self.addresses = None if addresses is None else dict(addresses)
        self._peers: dict[int, _Peer] = {}
        self._sighted: OrderedDict[tuple[int, frozenset[tuple[int, str]]], None] = OrderedDict()
        self.recent: deque[DuplicateSighting] = deque(maxlen=RECENT_SIGHTINGS)
        self.duplicates = 0
        self.fallbacks = 0

    def _home(self, sender: int, source: Hashable | None) -> bool:
        """Whether a first datagram from ``source`` makes a boot of ``sender`` at home."""
        expected = None if self.addresses is None else self.addresses.get(sender)
        return expected is None or source is None or source == expected

    def _at_home(self, sender: int, source: Hashable | None) -> bool:
        """Whether ``source`` is, for certain, ``sender``'s configured address."""
        expected = None if self.addresses is None else self.addresses.get(sender)
        return expected is not None and source == expected

    def _came_home(self, sender: int, boot_id: int, boot: Boot, verdict: int) -> int:
        """A boot first seen from elsewhere has now authenticated from its configured address.

        At home from now on (a node's first datagram after a restart may well reach this
        receiver replayed from elsewhere, ahead of its own); if that makes it the preferred
        boot, this datagram is accepted after all.
        """
        boot.home = True
        peer = self._peers[sender]
        peer.preferred = max(peer.boots, key=lambda b: (peer.boots[b].home, b))
        if boot_id != peer.preferred:
            return verdict
        return {SHADOWED: RESUME, SHADOWED_JUMP: JUMP}.get(verdict, verdict)

    # ------------------------------------------------------------ before cryptography

    def check(
        self,
        suite: int,
        sender: int,
        boot_id: int,
        epoch: int,
        counter: int,
        now_ns: int,
        source: Hashable | None,
    ) -> tuple[Window | None, Boot | None, int]:
        """(window, boot, verdict) for these header fields, or raise ``FrameError``.

        ``window`` is the existing replay window (its cipher can be reused), ``boot`` the kept
        boot (None for a new one), ``verdict`` one of the module's verdicts. Raises for what is
        refused without cryptography: old boot, old epoch, impossible epoch, replay, suite change.
        """
        peer = self._peers.get(sender)
        if peer is None:
            return None, None, NEW_BOOT
        if boot_id > peer.newest:
            if peer.boots[peer.preferred].home and not self._home(sender, source):
                return None, None, NEW_SHADOWED
            return None, None, NEW_BOOT
        boot = peer.boots.get(boot_id)
        if boot is None:
            raise FrameError(
                DropReason.OLD_BOOT, f"node {sender} boot {boot_id} is older than {peer.newest}"
            )
        if boot_id == peer.preferred:
            verdict = ACCEPT if peer.serving == boot_id else RESUME
        else:
            preferred = peer.boots[peer.preferred]
            silent = now_ns - preferred.heard_ns >= self.silence_ns
            verdict = FALLBACK if silent and boot.home == preferred.home else SHADOWED
        window = boot.windows.get(epoch)
        if window is None:
            return None, boot, self._new_epoch(sender, boot, epoch, counter, now_ns, verdict)
        if window.suite != suite:
            raise FrameError(DropReason.BAD_SUITE, f"node {sender} changed suite within a boot")
        why = window.seen(counter)
        if why is _ACCEPTED:
            raise AlreadyAccepted(DropReason.REPLAY, f"node {sender}: counter {counter} {why}")
        if why is not None:
            raise FrameError(DropReason.REPLAY, f"node {sender}: {why}")
        return window, boot, verdict

    def _new_epoch(
        self, sender: int, boot: Boot, epoch: int, counter: int, now_ns: int, verdict: int
    ) -> int:
        """The verdict for an epoch this boot has no window for (SEC-8.3-1, SEC-8.3-2)."""
        windows = boot.windows
        if not windows:
            return verdict  # first contact with this boot: nothing to explain the epoch by
        lowest, highest = min(windows), max(windows)
        full = len(windows) >= EPOCHS_KEPT
        if full and epoch < lowest:
            raise FrameError(DropReason.OLD_EPOCH, f"node {sender} epoch {epoch} < {lowest}")
        silence = self.silence_ns
        if full and now_ns - windows[lowest].heard_ns < silence:
            raise FrameError(
                DropReason.EPOCH_JUMP,
                f"node {sender} epoch {epoch} while epochs {lowest} and {highest} are both live",
            )
        if epoch > highest + 1 and not _jump_confirmed(boot, epoch, counter, now_ns, silence):
            return SHADOWED_JUMP if verdict == SHADOWED else JUMP
        return verdict

    # ------------------------------------------------------------ after authentication

    def commit(
        self,
        verdict: int,
        window: Window | None,
        boot: Boot | None,
        suite: int,
        aead: Aead | None,
        header: tuple[int, int, int, int],
        now_ns: int,
        source: Hashable | None,
    ) -> None:
        """Apply an authenticated datagram; raise ``FrameError`` if it is not to be accepted.

        ``header`` is (sender, boot id, epoch, counter).
        """
        sender, boot_id, epoch, counter = header
        if boot is None:
            boot = self._new_boot(sender, boot_id, now_ns, source)
            if verdict == NEW_SHADOWED:
                self._shadowed(sender, boot_id, source)
        else:
            boot.heard_ns = now_ns
            if not boot.home and self._at_home(sender, source):
                verdict = self._came_home(sender, boot_id, boot, verdict)
            if verdict in (SHADOWED, SHADOWED_JUMP):
                if window is None and verdict == SHADOWED:
                    # Follow its epochs (nothing is accepted: the window stays empty), so
                    # that if it is accepted again its current epoch is not taken for a jump.
                    _open_window(boot, suite, aead, epoch, now_ns)
                self._shadowed(sender, boot_id, source)
            if verdict == FALLBACK:
                self._sight_boots(sender, boot_id, source)
            if verdict == JUMP:
                _note_jump(boot, epoch, counter, now_ns)
                raise FrameError(
                    DropReason.EPOCH_JUMP,
                    f"node {sender} epoch {epoch}, more than one past {max(boot.windows)}",
                )
            if source is not None and source != boot.source:
                self._sight_sources(sender, boot_id, boot, source)
        if window is None:
            window = _open_window(boot, suite, aead, epoch, now_ns)
        window.accept(counter, now_ns)
        peer = self._peers[sender]
        if peer.serving != boot_id:
            self._serve(sender, peer, boot_id)

    def _new_boot(self, sender: int, boot_id: int, now_ns: int, source: Hashable | None) -> Boot:
        """A first or newer boot: it becomes the newest, and one other is kept (SEC-7.1-1).

        The other kept is, of the two it could be, the one at the configured address, else the
        one heard last: after a duplicate node id, the real or the live process, not the other.
        """
        peer = self._peers.get(sender)
        if peer is None:
            peer = self._peers[sender] = _Peer()
        boot = Boot(now_ns, source, self._home(sender, source))
        kept = sorted(peer.boots.items(), key=lambda item: item[1].rank())
        peer.boots = dict(kept[len(kept) - (BOOTS_KEPT - 1) :])
        peer.boots[boot_id] = boot
        peer.newest = boot_id
        peer.preferred = max(peer.boots, key=lambda b: (peer.boots[b].home, b))
        return boot

    def _shadowed(self, sender: int, boot_id: int, source: Hashable | None) -> None:
        """Report the second process, then refuse its datagram."""
        self._sight_boots(sender, boot_id, source)
        peer = self._peers[sender]
        raise FrameError(
            DropReason.SHADOWED_BOOT,
            f"node {sender} boot {boot_id}: its boot {peer.preferred} is preferred and live "
            "(two processes with one node id)",
        )

    def _serve(self, sender: int, peer: _Peer, boot_id: int) -> None:
        """Note which boot is being accepted; count and log a fallback from the preferred one."""
        peer.serving = boot_id
        if boot_id != peer.preferred:
            self.fallbacks += 1
            boots = peer.boots
            silent_ms = (boots[boot_id].heard_ns - boots[peer.preferred].heard_ns) / 1e6
            _LOG.warning(
                "node %d: accepting node %d's boot %d again: its boot %d has been silent for "
                "%.0f ms (two processes with node id %d?)",
                self.node_id,
                sender,
                boot_id,
                peer.preferred,
                silent_ms,
                sender,
            )

    # ------------------------------------------------------------ duplicate node ids

    def _sight_boots(self, sender: int, boot_id: int, source: Hashable | None) -> None:
        """The boot that is not preferred is sending too: two processes under one id."""
        peer = self._peers[sender]
        preferred = peer.boots[peer.preferred]
        self._sighting(sender, (peer.preferred, preferred.source), (boot_id, source))

    def _sight_sources(
        self, sender: int, boot_id: int, boot: Boot, source: Hashable | None
    ) -> None:
        """One boot from a second address: two processes (or a relay) under one node id."""
        if boot.source is None:
            boot.source = source
            return
        self._sighting(sender, (boot_id, boot.source), (boot_id, source))

    def _sighting(
        self, sender: int, first: tuple[int, Hashable | None], second: tuple[int, Hashable | None]
    ) -> None:
        a = (first[0], _address(first[1]))
        b = (second[0], _address(second[1]))
        key = (sender, frozenset((a, b)))
        if key in self._sighted:
            return
        self._sighted[key] = None
        if len(self._sighted) > SIGHTINGS_KEPT:
            self._sighted.popitem(last=False)
        self.duplicates += 1
        self.recent.append(DuplicateSighting(sender, (a[0], b[0]), (a[1], b[1])))
        _LOG.warning(
            "node %d: DUPLICATE NODE ID %d: boot %d from %s and boot %d from %s are both "
            "sending; give every process its own node id (RFC 0005 SEC-7.1-1 picks which is heard)",
            self.node_id,
            sender,
            a[0],
            a[1],
            b[0],
            b[1],
        )


def _jump_confirmed(boot: Boot, epoch: int, counter: int, now_ns: int, silence: int) -> bool:
    """SEC-8.3-2: a jump is believed when the same epoch authenticated before, at least
    ``silence`` ago with a lower counter, and the newest kept epoch has been silent as long."""
    jump = boot.jump
    if jump is None or jump[0] != epoch or counter <= jump[2] or now_ns - jump[1] < silence:
        return False
    return now_ns - boot.windows[max(boot.windows)].heard_ns >= silence


def _note_jump(boot: Boot, epoch: int, counter: int, now_ns: int) -> None:
    jump = boot.jump
    if jump is None or jump[0] != epoch:
        boot.jump = (epoch, now_ns, counter)
    elif counter > jump[2]:
        boot.jump = (epoch, jump[1], counter)


def _open_window(boot: Boot, suite: int, aead: Aead | None, epoch: int, now_ns: int) -> Window:
    """A window for an authenticated new epoch; the lowest goes if more than two (SEC-8.3-1)."""
    window = Window(suite, aead, now_ns)
    windows = boot.windows
    windows[epoch] = window
    if len(windows) > EPOCHS_KEPT:
        del windows[min(windows)]
    if boot.jump is not None and boot.jump[0] <= epoch:
        boot.jump = None
    return window


def _address(source: Hashable | None) -> str:
    """An address as an operator reads it: host:port for socket addresses."""
    if source is None:
        return "?"
    if isinstance(source, tuple) and len(source) >= 2:
        host, port = source[0], source[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(source)
