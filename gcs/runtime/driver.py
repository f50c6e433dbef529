"""The asyncio driver: one sans-I/O core, one Channel, one UDP socket, one timer.

Theory of operation (RFC 0001 §4, RFC 0003 §1.1 effects; the simulator's ``Host`` is the same
driver in virtual time). Every input reaches the core through one path: take ``now_ns`` from
``time.monotonic_ns()`` (never letting it go backwards), note the input in the flight recorder,
call the core, and execute the returned effects in order:

* ``Send`` / ``Multicast``: seal the frame once (``Channel.seal``) and ``sendto`` each
  destination, or the IP multicast group;
* ``Deliver`` / ``Configuration`` / ``SendWindow``: hand to the listener (the group layer's driver,
  ``gcs.groups.driver``), which queues events for applications and never calls back into the
  core from there;
* ``PersistRingSeq``: write in an executor; ``on_persisted`` follows later, from the loop;
* ``Trace``: log.

Then re-arm the one ``loop.call_at`` at the earlier of the core's and the listener's next
deadlines (the group layer's timers are deadlines too), and only then let the listener submit
what it has waiting (``after_effects``): the core is never re-entered from inside an effect.

Drain before token (RFC 0009 §4.3): data and tokens share the socket; a token (ORF token or
commit token) is queued and processed from a ``call_soon`` callback, so the mcasts read in the
same batch are applied first and the token does not request retransmission of messages that
were already in the buffer. Tokens keep their order among themselves.

Deliveries in slices (RFC 0006 API-5-3): one input can make thousands of records deliverable at
once (a token visit that completes a safe window, an mcast that fills a gap, 65,000-byte frames
of small records, or many mcasts read in one pass). The driver hands at most ``DELIVERY_SLICE``
records to the listener in one pass of the event loop, counted across inputs; the rest of the
effects wait, in order, in a backlog that a ``call_soon`` callback resumes on the next pass, so
readers, timers and other tasks run between slices and a reader that keeps reading is not cut
off by one burst (streams read as many per pass, ``gcs.api.stream.READ_SLICE``). While a
backlog waits, later inputs still reach the core but their effects join the backlog behind it,
and ``submit`` refuses with ``SendQueueFull`` (the group layer keeps the record and submits it
after the batch, as for a full queue): the listener never sees the core run ahead of the
effects it has been handed.

Fail-stop (RFC 0006 API-7-1, RFC 0003 §11): any exception from the core other than a refused
submit means the core can no longer be trusted. The driver stops feeding it, sends a leave if
the core can still produce one, closes the socket, and calls ``on_failure`` (the API dumps the
flight recorder and fails every pending and later call).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, assert_never

from gcs.errors import MessageTooLarge, NodeClosed, SendQueueFull
from gcs.history.recorder import FlightRecorder, InputKind
from gcs.runtime.endpoint import Endpoint, SockAddr
from gcs.runtime.lag import LagMonitor, LagStatistics
from gcs.runtime.links import LinkDriver, LinkReport
from gcs.runtime.persist import RingSeqWriter, StateStore
from gcs.runtime.tap import Tap
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
from gcs.totem.node import Node as Core
from gcs.wire.channel import Channel
from gcs.wire.frames import Frame, LinkProbe, MembCommitToken, OrfToken, Record

__all__ = ["Driver", "Listener", "RuntimeStatistics"]

_LOG = logging.getLogger("gcs.runtime")

DELIVERY_SLICE = 256
"""Records handed to the listener in one pass of the event loop before the rest of the effects
wait for the next pass (RFC 0006 API-5-3): as many as a reader takes in one pass
(``gcs.api.stream.READ_SLICE``). A slice ends after the ``Deliver`` that reaches it, so it is at
most this plus one mcast's records."""

_TRACE_LOG = logging.getLogger("gcs.totem.trace")


class Listener(Protocol):
    """What the driver hands upwards (the group layer's driver). Must not call the core from
    these; ``after_effects`` and ``on_timeout`` may submit. ``now_ns`` is the time of the input
    whose effects these are."""

    def on_deliver(self, now_ns: int, deliver: Deliver) -> None: ...
    def on_configuration(self, now_ns: int, configuration: Configuration) -> None: ...
    def on_send_window(self, is_open: bool) -> None: ...
    def after_effects(self, now_ns: int) -> None: ...
    @property
    def next_deadline_ns(self) -> int | None: ...
    def on_timeout(self, now_ns: int) -> None: ...


@dataclass(frozen=True, slots=True)
class RuntimeStatistics:
    """The driver's own counters (the core and the channel keep theirs)."""

    datagrams_received: int
    datagrams_sent: int
    bytes_received: int
    bytes_sent: int
    tokens_deferred: int
    delivery_slices: int
    """Times a burst of deliveries yielded to the loop with effects still waiting (API-5-3)."""
    timer_firings: int
    before_start: int
    """Datagrams that arrived after the socket opened but before the core started (dropped:
    a core gets no input before ``start``, and its peers re-send what matters)."""
    send_errors: int
    unknown_destination: int
    ring_seq_writes: int
    recorder_inputs: int
    recorder_snapshots: int
    rcvbuf_bytes: int
    sndbuf_bytes: int
    loop_lag: LagStatistics
    links: LinkReport | None = None
    """Each link to each peer, with several links (RFC 0010); None with one."""
    link_probes_ignored: int = 0
    """Link heartbeats received by a node with one link (a peer configured with several)."""


class Driver:
    """Composes ``Channel`` + core on an event loop (see the module docstring)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        core: Core,
        channel: Channel,
        recorder: FlightRecorder,
        store: StateStore,
        listener: Listener,
        peers: dict[int, SockAddr],
        *,
        on_failure: Callable[[BaseException], None],
        delivery_slice: int = DELIVERY_SLICE,
        links: Callable[[Callable[[], int]], LinkDriver] | None = None,
    ) -> None:
        if delivery_slice < 1:
            raise ValueError(f"delivery_slice must be at least 1, not {delivery_slice}")
        self._loop = loop
        self._core = core
        self._channel = channel
        self._recorder = recorder
        self._recording = recorder.enabled
        recorder.core = core
        self._listener = listener
        self._on_failure = on_failure
        self._peers = peers
        self._routes: dict[tuple[int, ...], tuple[tuple[SockAddr, ...], int]] = {}
        """Destination tuple -> (addresses, count without one): see ``_route``; emptied when the
        peers change."""
        self._nodes = core.config.nodes
        """The core's node list as the channel last heard of it (MEM-3.2-5 can grow it)."""
        self._writer = RingSeqWriter(loop, store, self._persisted, self._fail)
        self._endpoint: Endpoint | None = None
        self._endpoints: tuple[Endpoint, ...] = ()
        self._multicast_to: SockAddr | None = None
        self._sendto: Callable[[bytes, SockAddr], None] = _not_open
        totem = core.config
        self._lag = LagMonitor(
            loop,
            interval_ns=min(100_000_000, totem.token_timeout_ns // 4),
            warn_ns=totem.token_timeout_ns // 2,
            label=f"node {totem.node_id}",
        )
        self._timer: asyncio.TimerHandle | None = None
        self._armed_ns: int | None = None
        self._last_now = 0
        self._links = None if links is None else links(self.now_ns)
        """Several links (RFC 0010): datagrams go where this says; None with one link."""
        self._tokens: deque[tuple[int, Frame, bytes]] = deque()
        self._drain_scheduled = False
        self._slice = delivery_slice
        self._left = delivery_slice
        """Records the listener may still be handed in this pass of the loop (API-5-3)."""
        self._refill_scheduled = False
        self._backlog: deque[Effect] = deque()
        """Effects of earlier inputs not executed yet: the rest of a burst (API-5-3)."""
        self._in_after = False
        self._closed = False
        self._started = False
        self._taps: tuple[Tap, ...] = ()
        self.failure: BaseException | None = None
        self.configuration: Configuration | None = None
        self._counts = dict.fromkeys(
            (
                "datagrams_received",
                "datagrams_sent",
                "bytes_received",
                "bytes_sent",
                "tokens_deferred",
                "delivery_slices",
                "timer_firings",
                "before_start",
                "unknown_destination",
                "link_probes_ignored",
            ),
            0,
        )

    # ------------------------------------------------------------------ lifecycle

    def attach(self, endpoint: Endpoint, *more: Endpoint) -> None:
        """The open socket(s): one, or one per link in link order (the first is link 0's)."""
        self._endpoint = endpoint
        self._endpoints = (endpoint, *more)
        self._sendto = endpoint.transport.sendto
        self._multicast_to = endpoint.multicast
        if self._links is not None:
            self._links.attach(self._endpoints)

    def link_receiver(self, link: int) -> Callable[[bytes, SockAddr], None]:
        """The datagram callback for link ``link``'s socket."""
        return lambda data, addr: self.datagram_received(data, addr, link)

    def add_tap(self, tap: Tap) -> None:
        """Report inputs and effects to ``tap`` from now on (``gcs.runtime.tap``)."""
        self._taps = (*self._taps, tap)

    def start(self, stored_ring_seq: int | None) -> None:
        self._started = True
        self._lag.start()
        if self._links is not None:
            self._links.start()
        self._run(
            InputKind.START,
            stored_ring_seq,
            None,
            lambda now: self._core.start(now, stored_ring_seq),
        )

    def leave(self) -> None:
        """Send the core's leave (clean shutdown); the caller closes afterwards."""
        if self.failure is None and not self._closed:
            self._run(InputKind.LEAVE, None, None, self._core.leave)

    async def close(self) -> None:
        """Stop the timer and the socket; wait for a ring-seq write already in flight."""
        if self._closed:
            return
        self._flush_backlog()
        self._closed = True
        self._cancel_timer()
        self._lag.stop()
        self._writer.close()
        self._close_sockets()
        await self._writer.wait_idle()

    def _close_sockets(self) -> None:
        if self._links is not None:
            self._links.close()
        for endpoint in self._endpoints:
            endpoint.close()

    # ------------------------------------------------------------------ inputs

    def datagram_received(self, data: bytes, addr: SockAddr | None = None, link: int = 0) -> None:
        """One datagram from the socket of ``link``; ``addr`` (its source) only names duplicate
        node ids."""
        counts = self._counts
        counts["datagrams_received"] += 1
        counts["bytes_received"] += len(data)
        if self._closed or self.failure is not None:
            return
        if not self._started:
            counts["before_start"] += 1
            return
        links = self._links
        if links is not None:
            self._link_datagram(links, data, addr, link)
            return
        source = None if addr is None else addr[:2]  # (host, port), as the channel's addresses
        opened = self._channel.receive(data, self.now_ns(), source)
        if opened is None:
            return  # counted by the channel, by reason
        src, frame = opened
        if src not in self._peers and addr is not None:
            self._peers[src] = addr  # a node learned from a join (RFC 0004 MEM-3.2-5)
            self._routes.clear()
        kind = type(frame)
        if kind is OrfToken or kind is MembCommitToken:
            counts["tokens_deferred"] += 1
            self._tokens.append((src, frame, data))  # type: ignore[arg-type]
            if not self._drain_scheduled:
                self._drain_scheduled = True
                self._loop.call_soon(self._drain_tokens)
            return
        if kind is LinkProbe:
            counts["link_probes_ignored"] += 1  # from a peer configured with several links
            return
        self._receive(src, frame, data)  # type: ignore[arg-type]  # not a LinkProbe: checked

    def _link_datagram(
        self, links: LinkDriver, data: bytes, addr: SockAddr | None, link: int
    ) -> None:
        """``datagram_received`` with several links: sources mapped, heartbeats kept here."""
        source = None if addr is None else links.source(addr)
        channel = self._channel
        copies = channel.copies
        now = self.now_ns()
        opened = channel.receive(data, now, source)
        if opened is None:
            links.dropped(link, copies)
            return
        src, frame = opened
        if isinstance(frame, LinkProbe):
            links.probe(link, src, frame)  # the link machine's, never the core's
            return
        links.heard(link, src, now)
        if type(frame) is OrfToken or type(frame) is MembCommitToken:
            self._counts["tokens_deferred"] += 1
            self._tokens.append((src, frame, data))
            if not self._drain_scheduled:
                self._drain_scheduled = True
                self._loop.call_soon(self._drain_tokens)
            return
        self._receive(src, frame, data)

    def _drain_tokens(self) -> None:
        self._drain_scheduled = False
        tokens = self._tokens
        while tokens:
            self._receive(*tokens.popleft())

    def _receive(self, src: int, frame: Frame, datagram: bytes) -> None:
        """The hot path: ``_run`` specialised for a received frame (recorded as its datagram)."""
        if self._closed or self.failure is not None:
            return
        now = self.now_ns()
        recorder = self._recorder
        index = recorder.record_receive(now, src, datagram) if self._recording else -1
        try:
            effects = self._core.receive(now, src, frame)
        except Exception as exc:
            self._fail(exc)
            return
        if index >= 0:
            recorder.done(index, len(effects))
        if self._core.config.nodes is not self._nodes:
            self._nodes = self._core.config.nodes
            self._channel.add_peers(self._nodes)
        self._execute(effects)

    def _on_timer(self) -> None:
        deadline = self._armed_ns
        self._timer = None
        self._armed_ns = None
        if deadline is not None and deadline > self._last_now:
            # uvloop timers are millisecond-granular and may run just before the deadline;
            # passing the deadline itself guarantees the timer it was armed for is due.
            self._last_now = deadline
        self._counts["timer_firings"] += 1
        now = self.now_ns()
        core_deadline = self._core.next_deadline_ns
        if core_deadline is not None and core_deadline <= now:
            self._run(InputKind.TIMEOUT, None, None, self._core.on_timeout)
        listener_deadline = self._listener.next_deadline_ns
        if listener_deadline is not None and listener_deadline <= now:
            self._listener_timeout(now)
        self._rearm()

    def _listener_timeout(self, now: int) -> None:
        """The group layer's deadline passed: its timeout may submit, like ``after_effects``."""
        if self._closed or self.failure is not None:
            return
        try:
            self._listener.on_timeout(now)
        except Exception as exc:
            self._fail(exc)

    def _persisted(self, seq: int) -> None:
        self._run(InputKind.PERSISTED, seq, None, lambda now: self._core.on_persisted(now, seq))

    def submit(self, record: Record, safe: bool) -> None:
        """Queue a record in the core. Raises SendQueueFull / MessageTooLarge / NodeClosed."""
        if self._closed:
            raise NodeClosed("node is closed")
        if self.failure is not None:
            raise NodeClosed("node stopped after a failure") from self.failure
        if self._backlog:
            raise SendQueueFull("deliveries of an earlier input are still being handed over")
        now = self.now_ns()
        recorder = self._recorder
        index = recorder.record_submit(now, record, safe) if self._recording else -1
        try:
            effects = self._core.submit(now, record, safe=safe)
        except (SendQueueFull, MessageTooLarge, NodeClosed):
            raise
        except Exception as exc:
            self._fail(exc)
            raise
        if index >= 0:
            recorder.done(index, len(effects))
        if self._taps:
            self._tap_input(InputKind.SUBMIT, record, safe)
        self._execute(effects)

    def _run(
        self, kind: InputKind, arg1: object, arg2: object, call: Callable[[int], list[Effect]]
    ) -> None:
        if self._closed or self.failure is not None:
            return
        now = self.now_ns()
        recorder = self._recorder
        index = recorder.record(kind, now, arg1, arg2) if self._recording else -1
        try:
            effects = call(now)
        except Exception as exc:
            self._fail(exc)
            return
        if index >= 0:
            recorder.done(index, len(effects))
        if self._taps and kind is not InputKind.TIMEOUT:
            self._tap_input(kind, arg1, arg2)
        self._execute(effects)

    def _tap_input(self, kind: InputKind, arg1: object, arg2: object) -> None:
        for tap in self._taps:
            tap.on_input(kind, arg1, arg2)

    def now_ns(self) -> int:
        """Monotonic nanoseconds, never smaller than a value already given to the core."""
        now = time.monotonic_ns()
        if now < self._last_now:
            return self._last_now
        self._last_now = now
        return now

    # ------------------------------------------------------------------ effects

    def _execute(self, effects: list[Effect]) -> None:
        if not effects:
            # The common case of a submit under load (and of many received mcasts). No tap has
            # anything to see, and after_effects would find nothing to do: room in the core's
            # queue, the window and announcements only change through effects (a token visit,
            # SendWindow, a delivery or configuration), and control records drain themselves.
            self._rearm()
            return
        try:
            for tap in self._taps:
                tap.on_effects(effects)  # in the core's order, with its inputs, even if deferred
        except Exception as exc:
            self._fail(exc)
            return
        if self._backlog or self._left <= 0:
            self._defer(effects)  # behind the burst still being handed over, or the next pass
            self._rearm()
            return
        if self._apply(effects):
            self._rearm()
            self._after_effects()
        else:
            self._rearm()

    def _apply(self, effects: list[Effect]) -> bool:
        """Execute ``effects`` in order; False if some wait in the backlog or one failed."""
        count = len(effects)
        try:
            for i in range(count):
                if self._apply_one(effects[i]) and self._spent() and i + 1 < count:
                    self._defer(effects[i + 1 :])
                    return False
        except Exception as exc:
            self._fail(exc)
            return False
        return True

    def _spent(self) -> bool:
        """Records were handed over (``_left`` counts them): True if this pass's slice is spent.

        The slice is per pass of the loop, not per input: a receiving node may read many mcasts
        in one pass. The first handover of a pass schedules the refill for the next one.
        """
        if not self._refill_scheduled:
            self._refill_scheduled = True
            self._loop.call_soon(self._refill)
        return self._left <= 0

    def _refill(self) -> None:
        self._refill_scheduled = False
        self._left = self._slice

    def _defer(self, rest: list[Effect]) -> None:
        """The slice is spent: ``rest`` waits in the backlog for the next pass (API-5-3)."""
        backlog = self._backlog
        if not backlog:
            self._counts["delivery_slices"] += 1
            self._loop.call_soon(self._resume)
        backlog.extend(rest)

    def _resume(self) -> None:
        """Hand over the next slice of the backlog; after the last, let the listener submit."""
        backlog = self._backlog
        if self._closed or self.failure is not None:
            backlog.clear()
            return
        try:  # the refill for this pass ran first: it was scheduled before this callback
            while backlog:
                if self._apply_one(backlog.popleft()) and self._spent() and backlog:
                    self._counts["delivery_slices"] += 1
                    self._loop.call_soon(self._resume)
                    return
        except Exception as exc:
            self._fail(exc)
            return
        self._rearm()
        self._after_effects()

    def _flush_backlog(self) -> None:
        """Closing: execute what waits at once (a leave's multicast may be behind a burst)."""
        backlog = self._backlog
        try:
            while backlog and self.failure is None:
                self._apply_one(backlog.popleft())
        except Exception as exc:
            self._fail(exc)
        backlog.clear()

    def _apply_one(self, effect: Effect) -> bool:
        """Execute one effect; True if it handed records to the listener (counted in ``_left``)."""
        match effect:
            case Multicast(frame=frame, dests=dests):
                self._multicast(frame, dests)
            case Send(dest=dest, frame=frame):
                self._send(frame, dest)
            case Deliver():
                self._listener.on_deliver(self._last_now, effect)
                self._left -= len(effect.records)
                return True
            case Configuration():
                self.configuration = effect
                self._log_configuration(effect)
                self._listener.on_configuration(self._last_now, effect)
            case PersistRingSeq(seq=seq):
                self._writer.persist(seq)
            case SendWindow(open=is_open):
                self._listener.on_send_window(is_open)
            case Trace():
                if _TRACE_LOG.isEnabledFor(logging.DEBUG):
                    _TRACE_LOG.debug("node %d %s %s", self._core.me, effect.event, effect.data)
            case _:
                assert_never(effect)
        return False

    def _after_effects(self) -> None:
        """Let the listener submit what waits for room (never nested inside itself)."""
        if not self._in_after:
            self._in_after = True
            try:
                self._listener.after_effects(self._last_now)
            except Exception as exc:
                self._fail(exc)
            finally:
                self._in_after = False

    def peer_address(self, node: int) -> SockAddr | None:
        """Where frames to ``node`` go now (None if it is not a peer)."""
        return self._peers.get(node)

    def set_peers(self, peers: dict[int, SockAddr]) -> None:
        """Where the other listed nodes are, after the node list changed (RFC 0008 §3.7)."""
        self._peers = peers
        self._routes.clear()

    def _send(self, frame: Frame, dest: int) -> None:
        addr = self._peers.get(dest)
        if addr is None:
            self._counts["unknown_destination"] += 1
            return
        datagram = self._channel.seal(frame)
        sent = 1
        if self._links is None:
            self._sendto(datagram, addr)
        else:
            sent = self._links.send(datagram, dest)
        self._counts["datagrams_sent"] += sent
        self._counts["bytes_sent"] += sent * len(datagram)

    def _multicast(self, frame: Frame, dests: tuple[int, ...]) -> None:
        if not dests:
            return
        datagram = self._channel.seal(frame)  # once, whatever the number of destinations
        counts = self._counts
        if self._links is not None:
            known = tuple(d for d in dests if d in self._peers)
            counts["unknown_destination"] += len(dests) - len(known)
            sent = self._links.multicast(datagram, known)
            counts["datagrams_sent"] += sent
            counts["bytes_sent"] += sent * len(datagram)
            return
        if self._multicast_to is not None:
            self._sendto(datagram, self._multicast_to)
            counts["datagrams_sent"] += 1
            counts["bytes_sent"] += len(datagram)
            return
        route = self._routes.get(dests)
        if route is None:
            route = self._routes[dests] = self._route(dests)
        addrs, unknown = route
        sendto = self._sendto
        for addr in addrs:  # nothing per destination but the sendto
            sendto(datagram, addr)
        counts["datagrams_sent"] += len(addrs)
        counts["bytes_sent"] += len(datagram) * len(addrs)
        if unknown:
            counts["unknown_destination"] += unknown

    def _route(self, dests: tuple[int, ...]) -> tuple[tuple[SockAddr, ...], int]:
        """The addresses of ``dests``, and how many of them have none. The core multicasts to the
        same few member tuples over and over; the cache is emptied whenever the peers change (a
        node learned from its datagrams, ``set_peers``)."""
        peers = self._peers
        addrs = tuple(peers[d] for d in dests if d in peers)
        return addrs, len(dests) - len(addrs)

    def _rearm(self) -> None:
        """Keep exactly one ``call_at`` armed, at the earliest of the core's and the listener's
        next deadlines."""
        deadline = self._core.next_deadline_ns
        upper = self._listener.next_deadline_ns
        if upper is not None and (deadline is None or upper < deadline):
            deadline = upper
        if deadline == self._armed_ns or self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_ns = deadline
        if deadline is None:
            return
        delay_s = (deadline - time.monotonic_ns()) / 1e9
        self._timer = self._loop.call_at(self._loop.time() + delay_s, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._armed_ns = None

    def _log_configuration(self, conf: Configuration) -> None:
        _LOG.info(
            "node %d: %s configuration %s members %s joined %s left %s (%s)",
            self._core.me,
            conf.kind.value,
            conf.ring_id,
            list(conf.members),
            list(conf.joined),
            list(conf.left),
            conf.reason,
        )

    # ------------------------------------------------------------------ failure

    def _fail(self, exc: BaseException) -> None:
        """Fail-stop: stop feeding the core, send its leave if it can make one, tell the API."""
        if self.failure is not None:
            return
        self.failure = exc
        _LOG.error("node %d: fail-stop after %r", self._core.me, exc, exc_info=exc)
        self._backlog.clear()  # a failed node delivers nothing more
        self._cancel_timer()
        self._lag.stop()
        self._writer.close()
        try:
            now = self._last_now
            recorder = self._recorder
            index = recorder.record(InputKind.LEAVE, now) if self._recording else -1
            effects = self._core.leave(now)
            if index >= 0:
                recorder.done(index, len(effects))
            for effect in effects:
                match effect:
                    case Send(dest=dest, frame=frame):
                        self._send(frame, dest)
                    case Multicast(frame=frame, dests=dests):
                        self._multicast(frame, dests)
                    case Deliver() | Configuration() | PersistRingSeq() | SendWindow() | Trace():
                        pass  # a failed node delivers, installs and stores nothing more
                    case _:
                        assert_never(effect)
        except Exception:  # the core is already broken; the others will time it out
            _LOG.debug("node %d: could not send a leave after the failure", self._core.me)
        self._close_sockets()  # queued datagrams (the leave) are flushed first
        for tap in self._taps:
            try:
                tap.on_failure(exc)
            except Exception:  # the node is already failing; the tap's own error is secondary
                _LOG.exception("node %d: a tap failed while reporting a failure", self._core.me)
        self._on_failure(exc)

    # ------------------------------------------------------------------ introspection

    @property
    def timer_deadline_ns(self) -> int | None:
        """The deadline the one armed timer is set for (None: no timer armed)."""
        return self._armed_ns if self._timer is not None else None

    def statistics(self) -> RuntimeStatistics:
        endpoint = self._endpoint
        return RuntimeStatistics(
            **self._counts,
            send_errors=sum(e.errors for e in self._endpoints),
            ring_seq_writes=self._writer.writes,
            recorder_inputs=self._recorder.recorded,
            recorder_snapshots=self._recorder.snapshots,
            rcvbuf_bytes=0 if endpoint is None else endpoint.rcvbuf_bytes,
            sndbuf_bytes=0 if endpoint is None else endpoint.sndbuf_bytes,
            loop_lag=self._lag.statistics(),
            links=None if self._links is None else self._links.report(),
        )


def _not_open(data: bytes, addr: SockAddr) -> None:
    raise NodeClosed("the socket is not open yet")
