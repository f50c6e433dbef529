"""Link health per (peer, link), heartbeats, and the links each frame goes on (RFC 0010).

Theory of operation. For every peer and every link, a node keeps one ``_Pair``: when it last
heard the peer on that link (any authenticated datagram arriving on the link's socket: traffic
and heartbeats alike, LNK-4-1), whether it *hears* the peer there (its receive direction, with
hysteresis), whether the peer says it hears us there (the ``hears`` flag of the peer's last
``LinkProbe``), and the heartbeat bookkeeping. A link to a peer is **up** when both directions
work: we hear the peer and the peer hears us. So a cut in one direction takes the link down at
both ends, and neither end keeps sending into it.

Timings (``LinkTimings``, all derived from ``down_ns``, the link-down time):

* ``down_ns``: a link on which nothing was heard for this long is no longer heard (down).
  The configuration's default is a third of the token timeout (LNK-3-3), so a cut is noticed,
  and traffic moved, well before the token is declared lost.
* ``stale_ns = down_ns / 2``: a link silent this long is *quiet*: still up, but in passive mode
  the next link takes the traffic too (below), so failover starts at half the down time.
* ``up_ns``: a link that is not heard comes back only after it has been heard for this long
  without a gap of ``stale_ns`` (hysteresis: a flapping link is not used until it is steady).
* ``ping_ns = down_ns / 4``: the heartbeat interval. A node sends a ``LinkProbe`` to a peer on a
  link when it sent that peer nothing on that link alone for ``ping_ns`` (an idle link), and at
  least once every ``down_ns`` on a busy one (for the round-trip time and the loss figures).
  The peer answers each probe at once on the same link (LNK-4-2). Copies sent on several links
  do not count as traffic: the receiver drops all but the first unauthenticated (RFC 0005), so
  they are no evidence on the other links, and in active mode every link gets heartbeats.

The choice of links (``routes``, LNK-5-1), recomputed whenever a pair changes state:

* passive: the lowest-numbered up link that is not quiet, preceded by any lower-numbered up
  links that went quiet (they may only be idle; a copy costs nothing, the replay window drops
  it). So a cut of the link in use moves traffic after ``stale_ns`` and the link is dropped
  from the route after ``down_ns``; a healed lower link takes the traffic back once it is up;
* active: every up link;
* no link up: every link. A peer whose every link is down is treated as with one link: frames
  to it go out, are lost, and the protocol (token loss, membership) deals with it.

A node starts with every link presumed up, as if just heard: it sends as a one-link node would,
a link that carries nothing is declared down ``down_ns`` later, and its peers see no link change
when it restarts.

Everything is a pure function of the calls and their ``now_ns``: no clock, no randomness, so the
simulator runs the very same machine the runtime does.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from gcs.wire.frames import LinkProbe
from gcs.wire.limits import MAX_LINKS

__all__ = [
    "LinkChange",
    "LinkMode",
    "LinkStatus",
    "LinkTimings",
    "Links",
    "Output",
    "ProbeOut",
    "Reroute",
]

MS = 1_000_000
_NEVER = -(1 << 62)
"""A time before everything: a heartbeat never sent is due at once."""
MIN_DOWN_NS = 3 * MS
"""The shortest link-down time: a third of the shortest token timeout a configuration allows."""


class LinkMode(enum.Enum):
    """How frames use the links that are up (RFC 0010)."""

    PASSIVE = "passive"
    """One link carries the traffic to a peer (the lowest-numbered up link); the others stand by."""
    ACTIVE = "active"
    """Every frame goes on every up link; the receiver's replay window drops the second copy."""


@dataclass(frozen=True, slots=True)
class LinkTimings:
    """The link-down time and the hysteresis; everything else derives from them (module doc)."""

    down_ns: int
    up_ns: int

    def __post_init__(self) -> None:
        if type(self.down_ns) is not int or self.down_ns < MIN_DOWN_NS:
            raise ValueError(f"down_ns must be an int >= {MIN_DOWN_NS}, got {self.down_ns!r}")
        if type(self.up_ns) is not int or self.up_ns <= 0:
            raise ValueError(f"up_ns must be a positive int, got {self.up_ns!r}")

    @classmethod
    def for_token(cls, token_timeout_ns: int) -> LinkTimings:
        """The defaults (LNK-3-3): down after a third of the token timeout, up after as long."""
        down = max(MIN_DOWN_NS, token_timeout_ns // 3)
        return cls(down, down)

    @property
    def stale_ns(self) -> int:
        return self.down_ns // 2

    @property
    def ping_ns(self) -> int:
        return self.down_ns // 4

    @property
    def busy_ping_ns(self) -> int:
        return self.down_ns


@dataclass(frozen=True, slots=True)
class LinkChange:
    """A link to a peer went up or down (the driver logs one line per change)."""

    peer: int
    link: int
    up: bool
    at_ns: int
    why: str


@dataclass(frozen=True, slots=True)
class Reroute:
    """The links frames to ``peer`` go on changed from ``old`` to ``new``."""

    peer: int
    old: tuple[int, ...]
    new: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ProbeOut:
    """Send ``frame`` to ``peer`` on ``link`` only (sealed like any frame)."""

    peer: int
    link: int
    frame: LinkProbe


@dataclass(slots=True)
class Output:
    """What one call asks the driver to do, in order: send probes, log changes, reroute."""

    probes: list[ProbeOut] = field(default_factory=list)
    changes: list[LinkChange] = field(default_factory=list)
    reroutes: list[Reroute] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """One link to one peer, as ``gcs status`` shows it."""

    peer: int
    link: int
    up: bool
    since_ns: int
    """When it last went up or down (the machine's start if never)."""
    heard_ns: int
    """When the peer was last heard on it (the machine's start if never)."""
    rtt_ns: int | None
    """Smoothed round-trip time of the heartbeats (None before the first answer)."""
    pings: int
    pongs: int
    lost: int
    """Heartbeats not answered before the next was sent."""
    heard: int
    """Authenticated datagrams from the peer that arrived on this link."""
    changes: int
    hears: bool
    """We hear the peer on this link (the receive direction)."""
    peer_hears: bool
    """The peer's last heartbeat said it hears us on this link."""
    routed: bool
    """Frames to the peer go on this link now."""
    misrouted: int
    """The peer's heartbeats for another link that arrived on this one (LNK-4-6)."""


class _Pair:
    """What a node knows about one peer on one link (module docstring)."""

    __slots__ = (
        "answered",
        "changes",
        "fresh",
        "heard",
        "heard_ns",
        "link",
        "lost",
        "misrouted",
        "peer",
        "peer_rx",
        "ping_ns",
        "ping_seq",
        "pings",
        "pongs",
        "rtt_ns",
        "rx_ok",
        "sent_ns",
        "since_ns",
        "streak_ns",
        "up",
    )

    def __init__(self, peer: int, link: int, now_ns: int) -> None:
        self.peer = peer
        self.link = link
        self.heard_ns = now_ns  # presumed heard at start (module docstring)
        self.streak_ns = now_ns
        self.rx_ok = True
        self.fresh = True
        self.peer_rx = True
        self.up = True
        self.since_ns = now_ns
        self.sent_ns = _NEVER
        self.ping_ns = _NEVER
        self.ping_seq = 0
        self.answered = True
        self.rtt_ns: int | None = None
        self.pings = 0
        self.pongs = 0
        self.lost = 0
        self.heard = 0
        self.changes = 0
        self.misrouted = 0


class Links:
    """The links of one node to its peers (module docstring). ``count`` links, 2..MAX_LINKS.

    Drivers call ``heard`` for every authenticated datagram that is not a probe, ``on_probe``
    for every probe, ``note_sent`` for every datagram sent to a peer on one link alone, and
    ``on_timeout`` once ``next_deadline_ns`` has passed; they send each frame to a peer on the
    links of ``routes[peer]``. Every call that returns an ``Output`` wants its probes sent,
    its changes logged and its reroutes applied, in that order.
    """

    def __init__(
        self,
        me: int,
        peers: Iterable[int],
        count: int,
        mode: LinkMode,
        timings: LinkTimings,
        now_ns: int,
    ) -> None:
        if not 1 <= count <= MAX_LINKS:
            raise ValueError(f"a node has 1..{MAX_LINKS} links, not {count}")
        self.me = me
        self.count = count
        self.mode = mode
        self.timings = timings
        self.started_ns = now_ns
        self._all = tuple(range(count))
        self._by_peer: dict[int, list[_Pair]] = {}
        self._pairs: list[_Pair] = []
        self.routes: dict[int, tuple[int, ...]] = {}
        """The links frames to each peer go on now (read on every send)."""
        self.set_peers(now_ns, peers)
        self.next_deadline_ns = now_ns
        """When ``on_timeout`` is due next (at least every ``ping_ns``)."""

    def set_peers(self, now_ns: int, peers: Iterable[int]) -> None:
        """Track exactly ``peers`` from now on; a new peer's links start presumed up."""
        wanted = sorted(set(peers) - {self.me})
        self._by_peer = {
            peer: self._by_peer.get(peer) or [_Pair(peer, link, now_ns) for link in self._all]
            for peer in wanted
        }
        self._pairs = [pair for peer in wanted for pair in self._by_peer[peer]]
        self.routes = {peer: self._route(peer) for peer in wanted}

    # ------------------------------------------------------------------ inputs (hot path first)

    def heard(self, now_ns: int, peer: int, link: int) -> Output | None:
        """An authenticated datagram from ``peer`` arrived on ``link`` (LNK-4-1)."""
        pairs = self._by_peer.get(peer)
        if pairs is None or not 0 <= link < self.count:
            return None
        pair = pairs[link]
        gap = now_ns - pair.heard_ns
        pair.heard_ns = now_ns
        pair.heard += 1
        if pair.fresh and pair.rx_ok:
            return None
        return self._revive(now_ns, pair, gap)

    def note_sent(self, now_ns: int, peer: int, link: int) -> None:
        """A datagram went to ``peer`` on ``link`` alone: the link is not idle (LNK-4-2)."""
        pairs = self._by_peer.get(peer)
        if pairs is not None:
            pairs[link].sent_ns = now_ns

    def on_probe(self, now_ns: int, peer: int, link: int, probe: LinkProbe) -> Output | None:
        """A probe from ``peer`` arrived on ``link``: heard, its ``hears`` flag, an answer."""
        out = self.heard(now_ns, peer, link)
        pairs = self._by_peer.get(peer)
        if pairs is None or not 0 <= link < self.count:
            return out
        pair = pairs[link]
        if probe.link != link:
            pair.misrouted += 1  # the peer lists our addresses in another link order
            return out
        if probe.hears != pair.peer_rx:
            pair.peer_rx = probe.hears
            out = out or Output()
            why = f"node {peer} hears us" if probe.hears else f"node {peer} does not hear us"
            self._update(now_ns, pair, out, why)
            out = self._reroute(peer, out)
        if not probe.reply:
            out = out or Output()
            pair.sent_ns = now_ns
            answer = LinkProbe(link, probe.seq, True, pair.rx_ok)
            out.probes.append(ProbeOut(peer, link, answer))
        elif probe.seq == pair.ping_seq and not pair.answered:
            pair.answered = True
            pair.pongs += 1
            sample = now_ns - pair.ping_ns
            pair.rtt_ns = sample if pair.rtt_ns is None else (7 * pair.rtt_ns + sample) // 8
        return out

    def on_timeout(self, now_ns: int) -> Output | None:
        """Declare quiet and silent links, send due heartbeats, reroute; set the next deadline."""
        timings = self.timings
        out: Output | None = None
        dirty: list[int] = []
        for pair in self._pairs:
            silent = now_ns - pair.heard_ns
            if pair.fresh and silent >= timings.stale_ns:
                pair.fresh = False
                dirty.append(pair.peer)
            if pair.rx_ok and silent >= timings.down_ns:
                pair.rx_ok = False
                out = out or Output()
                self._update(now_ns, pair, out, f"nothing heard on it for {silent // MS} ms")
                self._ping(now_ns, pair, out)  # tell the peer, in case only one way is cut
                dirty.append(pair.peer)
            elif self._ping_due(now_ns, pair):
                out = out or Output()
                self._ping(now_ns, pair, out)
        for peer in sorted(set(dirty)):
            out = self._reroute(peer, out)
        self.next_deadline_ns = self._deadline(now_ns)
        return out

    # ------------------------------------------------------------------ state changes

    def _revive(self, now_ns: int, pair: _Pair, gap: int) -> Output | None:
        """``heard`` on a pair that was quiet or not heard: freshness, hysteresis, reroute."""
        timings = self.timings
        if gap >= timings.stale_ns:
            pair.streak_ns = now_ns  # a gap breaks the streak of steady answers
        changed = not pair.fresh
        pair.fresh = True
        out: Output | None = None
        if not pair.rx_ok and now_ns - pair.streak_ns >= timings.up_ns:
            pair.rx_ok = True
            out = Output()
            steady = (now_ns - pair.streak_ns) // MS
            self._update(now_ns, pair, out, f"heard steadily for {steady} ms")
            self._ping(now_ns, pair, out)  # tell the peer we hear it again
            changed = True
        return self._reroute(pair.peer, out) if changed else out

    def _update(self, now_ns: int, pair: _Pair, out: Output, why: str) -> None:
        up = pair.rx_ok and pair.peer_rx
        if up == pair.up:
            return
        pair.up = up
        pair.since_ns = now_ns
        pair.changes += 1
        out.changes.append(LinkChange(pair.peer, pair.link, up, now_ns, why))

    def _route(self, peer: int) -> tuple[int, ...]:
        """The links for frames to ``peer`` (LNK-5-1, module docstring)."""
        pairs = self._by_peer[peer]
        if self.mode is LinkMode.ACTIVE:
            return tuple(p.link for p in pairs if p.up) or self._all
        route: list[int] = []
        for pair in pairs:
            if pair.up:
                route.append(pair.link)
                if pair.fresh:
                    break
        return tuple(route) or self._all

    def _reroute(self, peer: int, out: Output | None) -> Output | None:
        new = self._route(peer)
        old = self.routes[peer]
        if new == old:
            return out
        self.routes[peer] = new
        out = out or Output()
        out.reroutes.append(Reroute(peer, old, new))
        return out

    # ------------------------------------------------------------------ heartbeats

    def _ping_due(self, now_ns: int, pair: _Pair) -> bool:
        timings = self.timings
        soon = now_ns + timings.ping_ns // 8  # send heartbeats due shortly in this batch
        idle = max(pair.sent_ns, pair.ping_ns) + timings.ping_ns
        return soon >= idle or soon >= pair.ping_ns + timings.busy_ping_ns

    def _ping(self, now_ns: int, pair: _Pair, out: Output) -> None:
        if not pair.answered:
            pair.lost += 1
        pair.ping_seq += 1
        pair.ping_ns = now_ns
        pair.answered = False
        pair.pings += 1
        probe = LinkProbe(pair.link, pair.ping_seq, False, pair.rx_ok)
        out.probes.append(ProbeOut(pair.peer, pair.link, probe))

    def _deadline(self, now_ns: int) -> int:
        """The earliest time something may be due (a lower bound: traffic only postpones)."""
        timings = self.timings
        deadline = now_ns + timings.ping_ns
        for pair in self._pairs:
            heard = pair.heard_ns
            if pair.fresh:
                deadline = min(deadline, heard + timings.stale_ns)
            if pair.rx_ok:
                deadline = min(deadline, heard + timings.down_ns)
            idle = max(pair.sent_ns, pair.ping_ns) + timings.ping_ns
            deadline = min(deadline, idle, pair.ping_ns + timings.busy_ping_ns)
        return max(deadline, now_ns + 1)

    # ------------------------------------------------------------------ status

    def statuses(self) -> tuple[LinkStatus, ...]:
        """Every (peer, link), ascending."""
        return tuple(
            LinkStatus(
                peer=p.peer,
                link=p.link,
                up=p.up,
                since_ns=p.since_ns,
                heard_ns=p.heard_ns,
                rtt_ns=p.rtt_ns,
                pings=p.pings,
                pongs=p.pongs,
                lost=p.lost,
                heard=p.heard,
                changes=p.changes,
                hears=p.rx_ok,
                peer_hears=p.peer_rx,
                routed=p.link in self.routes[p.peer],
                misrouted=p.misrouted,
            )
            for p in self._pairs
        )
