"""The runtime's side of redundant links: one socket per link, the link for each datagram.

``gcs.links.Links`` decides (which links are up, which carry frames to a peer, when a heartbeat
is due); this module carries it out on the event loop, for the driver (``gcs.runtime.driver``):

* every datagram for a peer goes, byte for byte, on each link of ``routes[peer]``, from that
  link's socket to the peer's address on that link (RFC 0010 LNK-3-1, LNK-5-1); one seal,
  however many links (TRN-4.1-1);
* the machine's heartbeats go out on their one link; its timer is a ``call_at`` of its own, so
  the core's timer is not re-armed for link bookkeeping;
* every link change is logged, one line each (up at INFO, down at WARNING), and counted;
* when the links to a peer change, the last ``Send`` datagram (a token or commit token) that
  went to that peer within the link-down time is sent again on the links new in the route
  (LNK-5-5): if the first copy was lost with the link, the token moves on without waiting for
  the token-retransmit timer; if it was not, the copy is dropped by the replay window;
* a datagram's source address is mapped to its node's first-link address before the channel
  sees it, so that every one of a peer's link addresses counts as the peer's own address for
  RFC 0005 SEC-7.1-1 (LNK-6-4).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gcs.links.health import LinkChange, Links, LinkStatus, Output, Reroute
from gcs.runtime.endpoint import Endpoint, SockAddr
from gcs.wire.channel import Channel
from gcs.wire.frames import LinkProbe

__all__ = ["LinkDriver", "LinkReport", "LinkTraffic"]

_LOG = logging.getLogger("gcs.runtime.links")


@dataclass(frozen=True, slots=True)
class LinkTraffic:
    """Datagrams on one local link (socket), all peers together."""

    link: int
    sent: int
    received: int
    copies: int
    """Second copies that arrived on this link and were dropped by the replay window."""
    probes_sent: int
    send_errors: int


@dataclass(frozen=True, slots=True)
class LinkReport:
    """The links of a node now: mode, each (peer, link), each local link's traffic."""

    mode: str
    now_ns: int
    pairs: tuple[LinkStatus, ...]
    traffic: tuple[LinkTraffic, ...]
    changes: int
    resends: int


class LinkDriver:
    """Sockets per link, route choice, heartbeats and link logs for one node (module doc).

    ``addresses[peer][k]`` is the peer's resolved address on link ``k``; ``now_ns`` is the
    driver's clock (monotonic, never going backwards).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        machine: Links,
        channel: Channel,
        addresses: dict[int, tuple[SockAddr, ...]],
        now_ns: Callable[[], int],
    ) -> None:
        self._loop = loop
        self.machine = machine
        self._channel = channel
        self._addresses = addresses
        self._now = now_ns
        self._homes = {addr[:2]: addrs[0][:2] for addrs in addresses.values() for addr in addrs}
        count = machine.count
        self._sendtos: list[Callable[[bytes, SockAddr], None]] = []
        self._endpoints: tuple[Endpoint, ...] = ()
        self._sent = [0] * count
        self._received = [0] * count
        self._copies = [0] * count
        self._probes = [0] * count
        self._last_send: dict[int, tuple[int, bytes]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._armed_ns: int | None = None
        self._running = False
        self.changes = 0
        self.resends = 0
        self.misrouted_logged = False

    def attach(self, endpoints: Sequence[Endpoint]) -> None:
        """The open sockets, one per link in link order."""
        self._endpoints = tuple(endpoints)
        self._sendtos = [e.transport.sendto for e in endpoints]

    def start(self) -> None:
        self._running = True
        self._fire()

    def close(self) -> None:
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None

    # ------------------------------------------------------------------ sending

    def send(self, datagram: bytes, dest: int) -> int:
        """A ``Send`` effect's datagram: on every link of the route; return how many sent."""
        now = self._now()
        self._last_send[dest] = (now, datagram)
        return self._send_routed(datagram, dest, now)

    def multicast(self, datagram: bytes, dests: tuple[int, ...]) -> int:
        """A ``Multicast`` effect's datagram, to each destination on its route."""
        sent = 0
        now = self._now()
        for dest in dests:
            sent += self._send_routed(datagram, dest, now)
        return sent

    def _send_routed(self, datagram: bytes, dest: int, now_ns: int) -> int:
        addrs = self._addresses.get(dest)
        if addrs is None:
            return 0
        route = self.machine.routes[dest]
        sendtos = self._sendtos
        sent = self._sent
        for link in route:
            sendtos[link](datagram, addrs[link])
            sent[link] += 1
        if len(route) == 1:
            self.machine.note_sent(now_ns, dest, route[0])
        return len(route)

    # ------------------------------------------------------------------ receiving

    def source(self, addr: SockAddr) -> SockAddr:
        """The address the channel sees: a peer's first-link address for any of its links."""
        host_port = addr[:2]
        return self._homes.get(host_port, host_port)

    def dropped(self, link: int, copies_before: int) -> None:
        """A datagram read on ``link`` was dropped by the channel (maybe as a second copy).

        ``copies_before`` is the channel's copy counter before it opened the datagram.
        """
        self._received[link] += 1
        if self._channel.copies != copies_before:
            self._copies[link] += 1

    def heard(self, link: int, src: int, now_ns: int) -> None:
        """An authenticated core frame from ``src`` arrived on ``link`` at ``now_ns``."""
        self._received[link] += 1
        out = self.machine.heard(now_ns, src, link)
        if out is not None:
            self._apply(out)

    def probe(self, link: int, src: int, probe: LinkProbe) -> None:
        """A heartbeat from ``src`` arrived on ``link``."""
        self._received[link] += 1
        if probe.link != link:
            self._misrouted(src, link, probe)
        self._apply(self.machine.on_probe(self._now(), src, link, probe))

    # ------------------------------------------------------------------ the machine's output

    def _apply(self, out: Output | None) -> None:
        if out is None:
            return
        for probe in out.probes:
            addrs = self._addresses.get(probe.peer)
            if addrs is not None:
                self._sendtos[probe.link](self._channel.seal(probe.frame), addrs[probe.link])
                self._sent[probe.link] += 1
                self._probes[probe.link] += 1
        for change in out.changes:
            self._log_change(change)
        for reroute in out.reroutes:
            self._reroute(reroute)

    def _log_change(self, change: LinkChange) -> None:
        self.changes += 1
        route = self.machine.routes.get(change.peer, ())
        links = ", ".join(map(str, route))
        if change.up:
            _LOG.info(
                "node %d: link %d to node %d is up (%s); frames to node %d go on link(s) %s",
                self.machine.me,
                change.link,
                change.peer,
                change.why,
                change.peer,
                links,
            )
        else:
            _LOG.warning(
                "node %d: link %d to node %d is DOWN (%s); frames to node %d go on link(s) %s",
                self.machine.me,
                change.link,
                change.peer,
                change.why,
                change.peer,
                links,
            )

    def _reroute(self, reroute: Reroute) -> None:
        """LNK-5-5: the last token for that peer, again, on the links new in its route."""
        _LOG.debug(
            "node %d: frames to node %d now on link(s) %s (were %s)",
            self.machine.me,
            reroute.peer,
            reroute.new,
            reroute.old,
        )
        last = self._last_send.get(reroute.peer)
        addrs = self._addresses.get(reroute.peer)
        if last is None or addrs is None:
            return
        sent_ns, datagram = last
        if self._now() - sent_ns >= self.machine.timings.down_ns:
            return
        for link in reroute.new:
            if link not in reroute.old:
                self._sendtos[link](datagram, addrs[link])
                self._sent[link] += 1
                self.resends += 1

    def _misrouted(self, src: int, link: int, probe: LinkProbe) -> None:
        if not self.misrouted_logged:
            self.misrouted_logged = True
            _LOG.warning(
                "node %d: node %d's heartbeat for its link %d arrived on our link %d: the two "
                "configurations list the addresses in another link order (RFC 0010 LNK-4-6); "
                "further ones are counted, not logged",
                self.machine.me,
                src,
                probe.link,
                link,
            )

    # ------------------------------------------------------------------ the timer

    def _fire(self) -> None:
        self._timer = None
        self._armed_ns = None
        if not self._running:
            return
        self._apply(self.machine.on_timeout(self._now()))
        self._arm()

    def _arm(self) -> None:
        deadline = self.machine.next_deadline_ns
        if not self._running or deadline == self._armed_ns:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._armed_ns = deadline
        delay_s = max(0.0, (deadline - time.monotonic_ns()) / 1e9)
        self._timer = self._loop.call_at(self._loop.time() + delay_s, self._fire)

    # ------------------------------------------------------------------ status

    def report(self) -> LinkReport:
        errors = [e.errors for e in self._endpoints] or [0] * self.machine.count
        traffic = tuple(
            LinkTraffic(
                link,
                self._sent[link],
                self._received[link],
                self._copies[link],
                self._probes[link],
                errors[link] if link < len(errors) else 0,
            )
            for link in range(self.machine.count)
        )
        return LinkReport(
            mode=self.machine.mode.value,
            now_ns=self._now(),
            pairs=self.machine.statuses(),
            traffic=traffic,
            changes=self.changes,
            resends=self.resends,
        )
