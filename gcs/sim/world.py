"""The discrete-event world: virtual time, an event heap, simulated hosts running real cores.

Events live in a heap ordered by ``(time_ns, seq)``; ``seq`` is a global counter, so events at the
same instant run in the order they were scheduled and a run is a pure function of its seed.
Virtual time jumps straight to the next event; nothing here reads a clock.

Each ``Host`` is the simulator's driver for one node, the counterpart of the asyncio runtime: it
composes a ``gcs.wire.Channel`` (real encoding and sealing, so real bytes cross the simulated
network) with a ``gcs.totem.Node``, executes the core's effects in order, keeps exactly one timer
event armed at the core's next deadline, persists ring seqs in a store that survives crashes, and
records everything the checkers need in the ``History``. When the workload runs the group layer,
each incarnation also gets a ``Layer`` above its core (``gcs.sim.layer``: the group layer's one
driver), which the host feeds as the runtime feeds its listener; the layer's deadlines share the
host's one timer.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, assert_never

from gcs.errors import InvariantViolation, MessageTooLarge, SendQueueFull
from gcs.history import events as h
from gcs.links.health import LinkMode, Links, LinkTimings, Output
from gcs.quorum.nodelist import NodeList
from gcs.sim.network import LinkParams, Network
from gcs.sim.seeds import SeedTree
from gcs.totem.config import TotemConfig
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
from gcs.wire.frames import Frame, LinkProbe, Mcast, MembJoin, Record, WireFrame

__all__ = ["DropRule", "Host", "Layer", "Store", "Transport", "World"]


class Transport:
    """Turns frames into what crosses the simulated network and back (one per host incarnation).

    The default moves frame objects (fast, for unit tests of the core); ``ChannelTransport`` in
    ``gcs.sim.wire`` moves real sealed datagrams.
    """

    def seal(self, frame: WireFrame) -> Any:
        return frame

    def open(self, src: int, payload: Any, now_ns: int) -> tuple[int, WireFrame] | None:
        return src, payload

    def size(self, payload: Any) -> int:
        return 100


TransportFactory = Callable[[int, int], Transport]  # (node id, boot id) -> transport


class Layer(Protocol):
    """What runs above a host's core (``gcs.sim.layer``): the calls the runtime's listener gets
    (``gcs.runtime.driver.Listener``), and ``down`` when the incarnation ends."""

    def on_deliver(self, now_ns: int, deliver: Deliver) -> None: ...
    def on_configuration(self, now_ns: int, configuration: Configuration) -> None: ...
    def on_send_window(self, is_open: bool) -> None: ...
    def after_effects(self, now_ns: int) -> None: ...
    @property
    def next_deadline_ns(self) -> int | None: ...
    def on_timeout(self, now_ns: int) -> None: ...
    def down(self) -> None: ...


LayerFactory = Callable[["Host"], Layer]


@dataclass(slots=True)
class DropRule:
    """Drop (or delay) frames of one type with a probability until a time (nemesis).

    ``state``: only frames a host transmits while its core reports that membership state
    ("" = any), which is how the recovery nemesis aims at RECOVERY without decoding the wire;
    ``carriers_only``: only mcasts that carry an old-ring message (the re-sends of recovery);
    ``delay_ns``: 0 drops a hit copy, otherwise it is transmitted that much later.
    """

    frame_type: type
    probability: float
    until_ns: int
    rng: random.Random
    state: str = ""
    carriers_only: bool = False
    delay_ns: int = 0

    def matches(self, state: str, frame: Frame, now_ns: int) -> bool:
        return (
            type(frame) is self.frame_type
            and now_ns < self.until_ns
            and (not self.state or state == self.state)
            and (not self.carriers_only or getattr(frame, "encapsulated", None) is not None)
        )


@dataclass(slots=True)
class Store:
    """What a node keeps on disk: survives crashes, lost only when a scenario wipes it."""

    ring_seq: int | None = None
    boots: int = 0
    nodes: NodeList | None = None
    """The node list, once it changed (RFC 0008 §3.7): the core starts with its nodes."""


@dataclass(slots=True)
class Clock:
    """A node's view of time: ``local = offset + t * num // den`` (skew when num != den)."""

    offset: int = 0
    num: int = 1
    den: int = 1

    def local(self, t: int) -> int:
        return self.offset + t * self.num // self.den

    def to_global(self, local: int) -> int:
        return -((-(local - self.offset) * self.den) // self.num)


@dataclass(slots=True)
class Host:
    """The simulator's driver for one node."""

    world: World
    node_id: int
    store: Store = field(default_factory=Store)
    incarnation: int = 0
    core: Core | None = None
    transport: Transport | None = None
    paused_until: int = 0
    deferred: list[tuple[str, Any]] = field(default_factory=list)
    timer_gen: int = 0
    timer_at: int | None = None
    clock: Clock = field(default_factory=Clock)
    window_open: bool = True
    counter: int = 0
    originations: h.Originations = field(default_factory=h.Originations)
    upper: Layer | None = None
    state: str = "down"
    config: str = ""
    links: Links | None = None
    """This incarnation's link machine (several links, RFC 0010), the runtime's own."""
    link_gen: int = 0
    last_send: dict[int, tuple[int, Any]] = field(default_factory=dict)
    """Per peer: (local time, payload) of the last ``Send`` (re-sent on a reroute, LNK-5-5)."""
    members: tuple[int, ...] = ()

    @property
    def alive(self) -> bool:
        return self.core is not None

    # -------------------------------------------------------------- lifecycle

    def boot(self) -> None:
        w = self.world
        self.incarnation += 1
        # As the runtime does: boot ids and, without a stored ring seq, the start-up ring seq
        # take the (virtual) wall clock in ms as a floor, so both keep increasing across a
        # restart that lost its disk (RFC 0004 §2.1, RFC 0005 §7).
        clock_ms = w.now // 1_000_000
        self.store.boots = max(self.store.boots + 1, clock_ms)
        stored = self.store.ring_seq
        floor = stored if stored is not None else (clock_ms or None)
        cfg = w.totem_config(self.node_id)
        if self.store.nodes is not None:
            cfg = replace(cfg, nodes=self.store.nodes.ids)
        rng = w.seeds.child(f"node/{self.node_id}").rng(f"core/{self.incarnation}")
        self.core = Core(cfg, rng)
        self.transport = w.transport_factory(self.node_id, self.store.boots)
        self.window_open = True
        self.counter = 0
        self.originations = h.Originations(w.workload_filter)
        self.timer_at = None
        self.paused_until = 0
        self.deferred = []
        w.record(h.Start(w.now, self.node_id, self.incarnation, stored))
        if w.layer_factory is not None:
            self.upper = w.layer_factory(self)  # it submits once the core has started
        if w.links > 1:
            timings = w.link_timings or LinkTimings.for_token(cfg.token_timeout_ns)
            now = self.clock.local(w.now)
            self.links = Links(self.node_id, cfg.nodes, w.links, w.link_mode, timings, now)
            self.last_send = {}
        self._run(lambda core, t: core.start(t, floor))
        self._arm_links()

    def crash(self) -> None:
        if self.core is None:
            return
        w = self.world
        w.record(h.Crash(w.now, self.node_id, self.incarnation))
        self._down()

    def leave(self) -> None:
        if self.core is None:
            return
        self._run(lambda core, t: core.leave(t))
        w = self.world
        w.record(h.Leave(w.now, self.node_id, self.incarnation))
        self._down()

    def _down(self) -> None:
        upper, self.upper = self.upper, None
        if upper is not None:
            upper.down()
        self.core = None
        self.transport = None
        self.links = None
        self.link_gen += 1
        self.timer_gen += 1
        self.timer_at = None
        self.deferred = []
        self.state = "down"

    def pause(self, duration_ns: int) -> None:
        w = self.world
        until = w.now + duration_ns
        if until > self.paused_until:
            self.paused_until = until
            w.at(until, self._resume, self.incarnation)

    def _resume(self, incarnation: int) -> None:
        if incarnation != self.incarnation or self.world.now < self.paused_until:
            return
        deferred, self.deferred = self.deferred, []
        for kind, payload in deferred:
            if self.core is None:
                return
            if kind == "dgram":
                self._receive(*payload)
        if self.core is not None:
            self._run(lambda core, t: core.on_timeout(t))
            self._layer_timeout(None)

    # -------------------------------------------------------------- inputs

    def arrive(self, src: int, payload: Any, link: int = 0) -> None:
        if self.core is None:
            return
        if self.world.now < self.paused_until:
            self.deferred.append(("dgram", (src, payload, link)))
            return
        self._receive(src, payload, link)

    def _receive(self, src: int, payload: Any, link: int = 0) -> None:
        assert self.transport is not None and self.core is not None
        now = self.clock.local(self.world.now)
        opened = self.transport.open(src, payload, now)
        if opened is None:
            return
        sender, frame = opened
        if isinstance(frame, LinkProbe):
            if self.links is not None:
                self._apply_links(self.links.on_probe(now, sender, link, frame))
            return  # never the core's (a node with one link ignores it)
        if self.links is not None:
            self._apply_links(self.links.heard(now, sender, link))
        try:
            effects = self.core.receive(now, sender, frame)
        except InvariantViolation as exc:
            self._invariant(exc)
            return
        self._execute(effects)

    def on_timer(self, gen: int) -> None:
        core = self.core
        if gen != self.timer_gen or core is None:
            return
        armed, self.timer_at = self.timer_at, None
        if self.world.now < self.paused_until:
            return  # _resume fires overdue timers
        if self.upper is None:
            self._run(lambda core, t: core.on_timeout(t))
            return
        deadline = core.next_deadline_ns
        if deadline is not None and deadline <= max(armed or 0, self.clock.local(self.world.now)):
            self._run(lambda core, t: core.on_timeout(t))
        self._layer_timeout(armed)

    def _layer_timeout(self, armed: int | None) -> None:
        """The layer's deadline passed (the timer was armed for it, or a pause ended)."""
        upper = self.upper
        if upper is None or self.core is None:
            return
        deadline = upper.next_deadline_ns
        now = max(armed or 0, self.clock.local(self.world.now))
        if deadline is not None and deadline <= now:
            upper.on_timeout(now)
            self._rearm()

    def persisted(self, incarnation: int, seq: int) -> None:
        if incarnation != self.incarnation or self.core is None:
            return
        w = self.world
        self.store.ring_seq = max(self.store.ring_seq or 0, seq)
        w.record(h.Persist(w.now, self.node_id, self.incarnation, seq))
        self._run(lambda core, t: core.on_persisted(t, seq))

    def submit(self, size: int, safe: bool, group: str = "sim") -> h.MsgId | None:
        """Hand the core one workload message; None if the core refused it (flow control)."""
        if self.core is None or self.world.now < self.paused_until:
            return None
        w = self.world
        msg_id = h.MsgId(self.node_id, self.incarnation, self.counter + 1)
        data = h.encode_payload(msg_id, size)
        w.payload_ids[data] = msg_id
        record = Record(group, 1, 0, data)
        try:
            effects = self.core.submit(self.clock.local(w.now), record, safe=safe)
        except (SendQueueFull, MessageTooLarge):
            return None
        self.counter += 1
        w.record(h.Submit(w.now, self.node_id, self.incarnation, msg_id, safe, size))
        self._execute(effects)
        return msg_id

    def submit_record(self, record: Record, safe: bool) -> None:
        """Hand the core a record from the layer above it (``gcs.groups.driver.Submit``).

        Raises ``SendQueueFull`` while the core cannot take it (its queue is full, or the host
        is down or paused). A workload record is recorded as submitted before its effects run.
        """
        core = self.core
        w = self.world
        if core is None or w.now < self.paused_until:
            raise SendQueueFull(f"node {self.node_id} is down or paused")
        effects = core.submit(self.clock.local(w.now), record, safe=safe)
        accept = w.workload_filter
        if accept is None or accept(record):
            msg_id = w.payload_ids.get(record.data) or h.decode_payload(record.data)
            if msg_id is not None:
                self.counter = msg_id.counter
                size = len(record.data)
                w.record(h.Submit(w.now, self.node_id, self.incarnation, msg_id, safe, size))
        self._execute(effects)

    # -------------------------------------------------------------- effects

    def _run(self, call: Callable[[Core, int], list[Effect]]) -> None:
        core = self.core
        if core is None:
            return
        try:
            effects = call(core, self.clock.local(self.world.now))
        except InvariantViolation as exc:
            self._invariant(exc)
            return
        self._execute(effects)

    def _invariant(self, exc: InvariantViolation) -> None:
        w = self.world
        w.record(h.Invariant(w.now, self.node_id, self.incarnation, str(exc)))
        self._down()

    def _execute(self, effects: list[Effect]) -> None:
        # An if-chain on the exact type, most frequent first: this loop runs for every input of
        # every simulated node, and class patterns in ``match`` cost several times more.
        for effect in effects:
            kind = type(effect)
            if kind is Deliver:
                self._note_delivery(effect)  # type: ignore[arg-type]
            elif kind is Multicast or kind is Send:
                self._execute_frame(effect)  # type: ignore[arg-type]
            else:
                self._execute_rare(effect)
        self._rearm()
        upper = self.upper
        if upper is not None and self.core is not None:
            upper.after_effects(self.clock.local(self.world.now))

    def _execute_rare(self, effect: Effect) -> None:
        """The effects that are not on the hot path (and, for completeness, those that are)."""
        w = self.world
        match effect:
            case Configuration():
                self.config = f"{effect.kind.value}:{effect.ring_id}"
                self.members = effect.members
                w.record(
                    h.Conf(
                        w.now,
                        self.node_id,
                        self.incarnation,
                        effect.kind.value,
                        effect.ring_id,
                        effect.members,
                        effect.left,
                        effect.joined,
                        str(effect.reason),
                    )
                )
                if self.upper is not None:
                    self.upper.on_configuration(self.clock.local(w.now), effect)
            case PersistRingSeq(seq=seq):
                w.at(w.now + w.persist_delay_ns, self.persisted, self.incarnation, seq)
            case SendWindow(open=is_open):
                self.window_open = is_open
                if self.upper is not None:
                    self.upper.on_send_window(is_open)
            case Trace(event=event, data=data):
                self._note_trace(event, data)
            case Deliver():
                self._note_delivery(effect)
            case Multicast() | Send():
                self._execute_frame(effect)
            case _:
                assert_never(effect)

    def _execute_frame(self, effect: Multicast | Send) -> None:
        if isinstance(effect, Multicast):
            frame = effect.frame
            if type(frame) is Mcast and frame.sender == self.node_id:
                self._note_origin(frame)
            self._transmit(frame, effect.dests)
        else:
            self._transmit(effect.frame, (effect.dest,), unicast=True)

    def _transmit(self, frame: Frame, dests: tuple[int, ...], unicast: bool = False) -> None:
        w = self.world
        later: list[tuple[int, int]] = []
        if w.drop_rules and dests:
            dests, later = w.frame_fates(self.state, frame, dests)
        if not dests and not later:
            return
        if type(frame) is MembJoin:
            w.captured_joins.append((self.node_id, frame))
        transport = self.transport
        assert transport is not None
        payload = transport.seal(frame)
        size = transport.size(payload)
        links = self.links
        if links is None:
            if dests:
                w.transmit(self.node_id, dests, payload, size)
            for dest, delay in later:
                w.at(w.now + delay, w.transmit, self.node_id, (dest,), payload, size)
            return
        now = self.clock.local(w.now)
        if unicast and dests:
            self.last_send[dests[0]] = (now, payload)
        for dest, delay in later:  # a recovery_delay hit: link 0, as with one link
            w.at(w.now + delay, w.transmit_on, self.node_id, dest, payload, size, 0)
        for dest in dests:
            route = links.routes.get(dest, (0,))
            for link in route:
                w.transmit_on(self.node_id, dest, payload, size, link)
            if len(route) == 1:
                links.note_sent(now, dest, route[0])

    # -------------------------------------------------------------- links (RFC 0010)

    def _arm_links(self) -> None:
        """Keep one event armed for the link machine (its own, beside the core's timer)."""
        links = self.links
        if links is None:
            return
        self.link_gen += 1
        w = self.world
        due = max(w.now, self.clock.to_global(links.next_deadline_ns))
        w.at(due, self._on_link_timer, self.link_gen)

    def _on_link_timer(self, gen: int) -> None:
        links = self.links
        if gen != self.link_gen or links is None:
            return
        w = self.world
        if w.now < self.paused_until:
            w.at(self.paused_until, self._on_link_timer, gen)  # a paused process does nothing
            return
        self._apply_links(links.on_timeout(self.clock.local(w.now)))
        self._arm_links()

    def _apply_links(self, out: Output | None) -> None:
        """Carry out the link machine's output: probes, change counts, re-sends (LNK-5-5)."""
        if out is None:
            return
        w = self.world
        transport = self.transport
        links = self.links
        assert transport is not None and links is not None
        for probe in out.probes:
            payload = transport.seal(probe.frame)
            w.transmit_on(self.node_id, probe.peer, payload, transport.size(payload), probe.link)
        w.link_changes += len(out.changes)
        now = self.clock.local(w.now)
        for reroute in out.reroutes:
            last = self.last_send.get(reroute.peer)
            if last is None or now - last[0] >= links.timings.down_ns:
                continue
            for link in reroute.new:
                if link not in reroute.old:
                    w.transmit_on(
                        self.node_id, reroute.peer, last[1], transport.size(last[1]), link
                    )
                    w.link_resends += 1

    def _rearm(self) -> None:
        """Keep one timer event armed, at the earlier of the core's and the layer's deadlines."""
        core = self.core
        if core is None:
            return
        deadline = core.next_deadline_ns
        upper = self.upper
        if upper is not None:
            later = upper.next_deadline_ns
            if later is not None and (deadline is None or later < deadline):
                deadline = later
        if deadline == self.timer_at:
            return
        self.timer_gen += 1
        self.timer_at = deadline
        if deadline is not None:
            w = self.world
            w.at(max(w.now, self.clock.to_global(deadline)), self.on_timer, self.timer_gen)

    def _note_origin(self, mcast: Mcast) -> None:
        ids = self.originations.of(mcast)
        if ids is None:
            return  # a retransmission of our own mcast, or one re-sent in recovery
        w = self.world
        w.record(
            h.Originate(
                w.now, self.node_id, self.incarnation, mcast.ring_id, mcast.seq, mcast.safe, ids
            )
        )

    def _note_delivery(self, effect: Deliver) -> None:
        w = self.world
        ids, corrupt = h.workload_ids(effect.records, w.workload_filter, w.payload_ids)
        w.record(
            h.Deliver(
                w.now,
                self.node_id,
                self.incarnation,
                effect.config.kind.value,
                effect.config.ring_id,
                effect.origin,
                effect.seq,
                effect.sender,
                effect.safe,
                ids,
                corrupt,
            )
        )
        w.delivered += len(ids)
        if self.upper is not None:
            self.upper.on_deliver(self.clock.local(w.now), effect)

    def _note_trace(self, event: str, data: Any) -> None:
        w = self.world
        if w.trace_sink is not None:
            w.trace_sink(w.now, self.node_id, event, data)
        if event == "state":
            self.state = str(data["new"])
            for listener in list(w.state_listeners):
                listener(self.node_id, self.state)
            w.record(
                h.State(
                    w.now,
                    self.node_id,
                    self.incarnation,
                    str(data["old"]),
                    str(data["new"]),
                    str(data.get("reason", "")),
                )
            )


class World:
    """A cluster of simulated hosts on a simulated network, in virtual time."""

    def __init__(
        self,
        *,
        seed: int,
        nodes: tuple[int, ...],
        totem_config: Callable[[int], TotemConfig],
        link: LinkParams | None = None,
        transport_factory: TransportFactory | None = None,
        persist_delay_ns: int = 0,
        links: int = 1,
        link_mode: LinkMode = LinkMode.PASSIVE,
        link_timings: LinkTimings | None = None,
    ) -> None:
        self.seed = seed
        self.seeds = SeedTree(seed)
        self.nodes = nodes
        self.now = 0
        self._heap: list[tuple[int, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self.history = h.History()
        self.totem_config = totem_config
        self.links = links
        """Links per node (RFC 0010); 1 is the one-link model, unchanged."""
        self.link_mode = link_mode
        self.link_timings = link_timings
        """None: the defaults for each node's token timeout."""
        self.link_changes = 0
        self.link_resends = 0
        self.network = Network(nodes, self.seeds.child("network"), link or LinkParams(), links)
        self.transport_factory: TransportFactory = transport_factory or (
            lambda node, boot: Transport()
        )
        self.persist_delay_ns = persist_delay_ns
        self.hosts = {node: Host(self, node) for node in nodes}
        self.delivered = 0
        self.events_run = 0
        self.trace_sink: Callable[[int, int, str, Any], None] | None = None
        self.state_listeners: list[Callable[[int, str], None]] = []
        self.faults_over = False
        """Set at the end of the fault phase: triggered fault steps not yet fired never fire."""
        self.fault_horizon_ns = 0
        """When the last undo (restart, heal, end of a pause) of a fault that acted is due."""
        self.drop_rules: list[DropRule] = []
        self.captured_joins: deque[tuple[int, MembJoin]] = deque(maxlen=64)
        self.frames_dropped = 0
        self.frames_delayed = 0
        # Payload bytes -> message id, filled at submission: delivery then needs a dict lookup,
        # and a payload whose bytes changed on the way misses and is decoded (and caught) in full.
        self.payload_ids: dict[bytes, h.MsgId] = {}
        self.workload_filter: h.RecordFilter | None = None
        """Which records are workload messages (None: every record, the ring-level workload)."""
        self.layer_factory: LayerFactory | None = None
        """What each host incarnation runs above its core (None: nothing, the ring level)."""

    def frame_fates(
        self, state: str, frame: Frame, dests: tuple[int, ...]
    ) -> tuple[tuple[int, ...], list[tuple[int, int]]]:
        """Apply the nemesis's frame rules to one transmission (RFC 0007 SIM-4.2-1).

        Per destination, in order, each matching rule draws once from its stream until one
        hits; the hit copy is dropped, or delayed by that rule's ``delay_ns``. Returns the
        destinations to send to now and the (destination, delay) of the delayed copies.
        """
        rules = [rule for rule in self.drop_rules if rule.matches(state, frame, self.now)]
        if not rules:
            return dests, []
        now: list[int] = []
        later: list[tuple[int, int]] = []
        for dest in dests:
            hit = next((rule for rule in rules if rule.rng.random() < rule.probability), None)
            if hit is None:
                now.append(dest)
            elif hit.delay_ns:
                self.frames_delayed += 1
                later.append((dest, hit.delay_ns))
            else:
                self.frames_dropped += 1
        return tuple(now), later

    def record(self, event: h.Event) -> None:
        self.history.append(event)

    def expected_live(self) -> list[Host]:
        """The live hosts the run should end with in one ring: every live host, except one that
        the newest node list held by a live host does not list (RFC 0008 §3.7). A node removed
        and started again, or one whose re-adding was refused, is live but unlisted: the others
        drop its datagrams by design, so it ends alone."""
        live = [host for host in self.hosts.values() if host.alive]
        lists = [host.store.nodes for host in live if host.store.nodes is not None]
        if not lists:
            return live
        newest = max(lists, key=lambda nodes: nodes.version)
        return [host for host in live if host.node_id in newest.ids]

    def converged(self) -> bool:
        """Every expected-live core is OPERATIONAL in one regular configuration of exactly the
        expected-live nodes (RFC 0007 SIM-5.4-3: a run does not end in the middle of a
        reformation)."""
        live = self.expected_live()
        if not live:
            return True
        nodes = tuple(host.node_id for host in live)
        first = live[0]
        return first.config.startswith("regular:") and all(
            host.state == "operational" and host.config == first.config and host.members == nodes
            for host in live
        )

    def at(self, time_ns: int, action: Callable[..., None], *args: Any) -> None:
        """Schedule ``action(*args)`` at virtual time ``time_ns`` (never in the past)."""
        self._seq += 1
        heapq.heappush(self._heap, (max(time_ns, self.now), self._seq, action, args))

    def run_until(self, time_ns: int) -> None:
        heap = self._heap
        while heap and heap[0][0] <= time_ns:
            at, _, action, args = heapq.heappop(heap)
            self.now = at
            self.events_run += 1
            action(*args)
        self.now = max(self.now, time_ns)

    def transmit(self, src: int, dests: tuple[int, ...], payload: Any, size: int) -> None:
        fate = self.network.fate
        now = self.now
        hosts = self.hosts
        for dst in dests:
            delays = fate(now, src, dst, size)
            host = hosts.get(dst)
            if host is None:
                continue
            for delay in delays:
                self._seq += 1
                heapq.heappush(self._heap, (now + delay, self._seq, host.arrive, (src, payload)))

    def transmit_on(self, src: int, dst: int, payload: Any, size: int, link: int) -> None:
        """One datagram from ``src`` to ``dst`` on network ``link`` (several links)."""
        host = self.hosts.get(dst)
        now = self.now
        for delay in self.network.fate(now, src, dst, size, link):
            if host is not None:
                self._seq += 1
                heapq.heappush(
                    self._heap, (now + delay, self._seq, host.arrive, (src, payload, link))
                )

    # -------------------------------------------------------------- nemesis primitives

    def start(self, node: int) -> None:
        self.hosts[node].boot()

    def crash(self, node: int) -> None:
        self.hosts[node].crash()

    def restart(self, node: int, *, wipe: bool = False) -> None:
        host = self.hosts[node]
        host.crash()
        if wipe:
            host.store = Store()
        host.boot()

    def leave(self, node: int) -> None:
        self.hosts[node].leave()

    def pause(self, node: int, duration_ns: int) -> None:
        self.hosts[node].pause(duration_ns)

    def fault(self, kind: str, node: int = 0, **detail: Any) -> None:
        host = self.hosts.get(node)
        inc = host.incarnation if host is not None else 0
        self.record(h.Fault(self.now, kind, dict(detail), node, inc))
