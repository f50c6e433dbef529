"""The public asyncio API: ``Node``, ``Group``, and the values they hand out (RFC 0006).

A ``Node`` is this process as a member of the ring (embedded mode)::

    async with gcs.Node(gcs.Config.load("cluster.toml")) as node:
        group = await node.join("locks")
        ticket = await group.send(b"acquire x")     # waits only on flow control
        await ticket.delivered()                    # optional: its own delivery
        async for event in group:                   # messages and views, one ordered stream
            ...

Layering. ``Node`` composes the runtime driver (``gcs.runtime.driver``: socket, core, one timer),
the group layer's driver (``gcs.groups.driver``: group state, the queue of records in front of
the core, the group timers), the outbox (``gcs.api.outbox``: sends waiting for flow control, and
their tickets) and one bounded ``EventStream`` per joined member. A message goes down once —
``Group.send`` → outbox → group driver → runtime driver → core — and a delivery comes up once:
runtime driver → group driver → this node's ``Application`` methods below, which only update
state and append to streams, so no application code runs inside a protocol step and the token
never waits for a reader.

Errors (all in ``gcs.errors``): ``ConfigError`` at start, ``InvalidArgument`` / ``TypeError``
for bad arguments, ``MessageTooLarge``, ``NotMember`` (the member is leaving), ``GroupClosed``
(left, cut off as a slow consumer, or the node closed), ``SlowConsumer`` from an iterator,
``NodeClosed`` from a closed node, and — after a fail-stop — the node's ``InvariantViolation``
(or ``NodeFailed``) from every pending and later call.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import os
import random
import socket
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from gcs.api.group import (
    Group,
    GroupPort,
    Membership,
    MemberState,
    check_join,
    check_join_modes,
)
from gcs.api.outbox import Outbox, PendingSend, Ticket
from gcs.config import Config, parse_address
from gcs.errors import (
    ConfigError,
    GcsError,
    GroupClosed,
    InvalidArgument,
    InvariantViolation,
    NodeClosed,
    NodeFailed,
    NodeListRefused,
)
from gcs.groups.driver import GroupDriver
from gcs.groups.records import directed_record
from gcs.groups.state import GroupState, NodeListEvent
from gcs.groups.views import Member, Message, View
from gcs.history.recorder import FlightRecorder, write_dump
from gcs.history.writer import HistoryWriter, next_incarnation
from gcs.links.health import Links
from gcs.quorum.nodelist import (
    ChangeOp,
    NodeChange,
    NodeEntry,
    NodeList,
    list_from_wire,
    list_to_wire,
)
from gcs.quorum.rules import Quorum
from gcs.runtime.driver import Driver, RuntimeStatistics
from gcs.runtime.endpoint import Endpoint, SockAddr, family_of, open_endpoint, resolve
from gcs.runtime.links import LinkDriver
from gcs.runtime.loop import check_loop
from gcs.runtime.persist import StateStore
from gcs.runtime.tap import Tap
from gcs.totem.effects import Configuration, ConfigurationKind
from gcs.totem.node import Node as Core
from gcs.totem.stats import Statistics
from gcs.wire.channel import Channel, ChannelStatistics
from gcs.wire.frames import Record, RingId
from gcs.wire.seal import load_key

__all__ = ["Node", "NodeStatistics", "RingView"]

_LOG = logging.getLogger("gcs")
_HANDLE_COUNTER_BITS = 20
_BOOT_BITS = 44


@dataclass(frozen=True, slots=True)
class RingView:
    """The ring configuration this node is in: the node-level view under all groups."""

    ring_id: RingId
    members: tuple[int, ...]
    transitional: bool
    joined: tuple[int, ...]
    left: tuple[int, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class NodeStatistics:
    """A snapshot of everything a node counts: core, channel, runtime and group layer."""

    node_id: int
    state: str
    core: Statistics
    channel: ChannelStatistics
    runtime: RuntimeStatistics
    members: int
    sends_waiting: int
    records_in_flight: int
    slow_consumers: int
    group_records_ignored: int
    messages_not_quorate: int = 0
    """Messages primary-component members did not receive (delivered while not quorate)."""
    directed_undeliverable: int = 0
    """Point-to-point messages whose local destination member was gone."""
    messages_outside_view: int = 0
    """Messages no local member received because no view of theirs listed the sender: held
    records a ring change flushed, and transitional deliveries while unsettled (RFC 0006
    API-3.7-2)."""

    @property
    def drops(self) -> Mapping[str, int]:
        """Every dropped input by reason: wire reasons (RFC 0005 §9) and the core's own."""
        merged = dict(self.channel.dropped)
        for reason, count in self.core.drops.items():
            merged[reason] = merged.get(reason, 0) + count
        if self.group_records_ignored:
            merged["group_record_ignored"] = self.group_records_ignored
        return merged


async def _resolve_addresses(
    loop: asyncio.AbstractEventLoop, cfg: Config
) -> tuple[list[SockAddr], list[int], dict[int, SockAddr], dict[int, tuple[SockAddr, ...]]]:
    """Resolve every address once, at start (RFC 0009 TRN-3.1-1): the bind address of each link,
    each link's family, every peer's first-link address and its address on every link."""
    links = cfg.links
    binds: list[SockAddr] = []
    families: list[int] = []
    for k, (host, port) in enumerate(cfg.bind_addresses):
        families.append(family_of(host))
        where = "bind" if links == 1 else f"bind[{k}]"
        binds.append(await resolve(loop, where, host, port, families[k]))
    link_peers: dict[int, tuple[SockAddr, ...]] = {}
    for entry in cfg.addresses:
        if entry.node_id == cfg.node_id:
            continue
        resolved = []
        for k, link in enumerate(entry.links):
            where = f"nodes[{entry.node_id}]" if links == 1 else f"nodes[{entry.node_id}][{k}]"
            resolved.append(await resolve(loop, where, link.host, link.port, families[k]))
        link_peers[entry.node_id] = tuple(resolved)
    peers = {node: addrs[0] for node, addrs in link_peers.items()}
    return binds, families, peers, link_peers


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


class Node:
    """One member of the ring, in this process (embedded mode). See the module docstring.

    ``history``: append this node's history, in the simulator's schema, to that JSONL file
    (``gcs.history.writer``), so a run of real processes can be judged by the simulator's
    checkers. For test workloads; it costs a write per protocol step. ``taps``: observers of
    what the runtime feeds the core and what it returns (``gcs.runtime.tap``; the daemon's
    status view is one).
    """

    supports_send_to = True
    """``Group.send_to`` works on groups of this node (and of a daemon client, RFC 0006
    API-10.2-4)."""

    def __init__(
        self,
        config: Config,
        *,
        history: str | os.PathLike[str] | None = None,
        taps: Sequence[Tap] = (),
    ) -> None:
        if not isinstance(config, Config):
            raise TypeError(f"gcs.Node needs a gcs.Config, got {type(config).__name__}")
        self.config = config
        self._history_path = history
        self._history: HistoryWriter | None = None
        self._taps = tuple(taps)
        self.node_id = config.node_id
        self.boot_id = 0
        self._state = _State.NEW
        self._failure: BaseException | None = None
        self._ring: RingView | None = None
        self._lingering: frozenset[int] = frozenset()
        """Members of the installed ring that the node list no longer names (MEM-3.2-6)."""
        self._members: dict[int, Membership] = {}
        """handle -> member: handles are unique on a node, and an int key costs no object per
        delivered event (a (group, handle) key would)."""
        self._handles = 0
        self._slow = 0
        self._changed: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._driver: Driver | None = None
        rules = config.quorum_rules()
        where = {a.node_id: (str(a),) for a in config.addresses}
        state = GroupState(config.node_id, rules, nodes=NodeList.bootstrap(rules.votes, where))
        self._groups: GroupDriver[PendingSend] = GroupDriver(state, self._submit, self)
        self._outbox = Outbox(self._groups)
        self._node_outcomes: dict[NodeChange, str | None] = {}
        """Outcomes of this node's own node-list changes, until their caller takes them."""
        self._quorum_wanted: int | None = None
        self._quorum_writing = False
        self._core: Core | None = None
        self._channel: Channel | None = None
        self._recorder: FlightRecorder | None = None
        self._store: StateStore | None = None
        self._port = GroupPort(
            config.node_id,
            config.max_message_bytes,
            self._check_running,
            self._send,
            self._send_to,
            self._leave_member,
            self._send_nowait,
        )

    def __repr__(self) -> str:
        ring = None if self._ring is None else self._ring.ring_id
        return f"<gcs.Node {self.node_id} {self._state.value} ring {ring}>"

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the socket, start the core, and return once it installed its first ring."""
        if self._state is not _State.NEW:
            raise NodeClosed(f"node {self.node_id} was already started")
        loop = asyncio.get_running_loop()
        check_loop(loop)
        self._changed = asyncio.Event()
        self._state = _State.RUNNING
        try:
            stored_ring_seq = await self._open(loop)
        except BaseException:
            self._state = _State.CLOSED
            if self._store is not None:
                self._store.close()
            if self._history is not None:
                self._history.close()
            raise
        assert self._driver is not None
        self._driver.start(stored_ring_seq)
        await self._wait(lambda: self._ring is not None)

    async def _open(self, loop: asyncio.AbstractEventLoop) -> int | None:
        """Everything start() does that can fail: state dir, key, addresses, socket."""
        cfg = self.config
        totem = cfg.totem()
        self._store = store = StateStore(cfg.state_dir, cfg.node_id)
        stored = await loop.run_in_executor(None, store.open)
        self.boot_id = stored.boot_id
        tracker = self._groups.state.quorum_tracker
        if tracker is not None:
            stored_nodes = await loop.run_in_executor(None, store.read_node_list)
            if stored_nodes is not None:
                tracker.restore_nodes(self._stored_list(stored_nodes))
                totem = replace(totem, nodes=tracker.nodes.ids)
            tracker.restore(await loop.run_in_executor(None, store.read_quorum_votes))
        key = None
        if cfg.key_file is not None:
            key = await loop.run_in_executor(None, load_key, cfg.key_file)
        if cfg.links == 1:
            bind_host, bind_port = cfg.bind_address
            family = family_of(bind_host)
            binds = [await resolve(loop, "bind", bind_host, bind_port, family)]
            families = [family]
            peers = {
                node: await resolve(loop, f"nodes[{node}]", host, port, family)
                for node, (host, port) in self._listed_addresses().items()
            }
            link_peers: dict[int, tuple[SockAddr, ...]] = {}
        else:  # several links: the file's static list (node_changes is refused with links)
            binds, families, peers, link_peers = await _resolve_addresses(loop, cfg)
            family = families[0]
        mcast = cfg.multicast_address
        multicast = None if mcast is None else await resolve(loop, "multicast", *mcast, family)
        self._channel = channel = Channel(
            cfg.node_id,
            stored.boot_id,
            cfg.cluster_name,
            key,
            peers=totem.nodes,
            limits=totem.wire_limits(),
            silence_ns=totem.token_timeout_ns,
            addresses={node: addr[:2] for node, addr in peers.items()},
            copies_expected=cfg.links > 1,
        )
        seed = int.from_bytes(os.urandom(8), "big")  # the core's only randomness; recorded
        self._core = core = Core(totem, random.Random(seed))
        if tracker is not None and tracker.base_rules.node_changes and tracker.nodes.version == 0:
            core.set_learning(True)  # a node just added may list only itself and one member
        self._recorder = recorder = FlightRecorder(
            totem,
            seed=seed,
            boot_id=stored.boot_id,
            cluster_name=cfg.cluster_name,
            key=key,
            capacity=cfg.recorder_inputs,
        )
        links = None
        if cfg.links > 1:

            def links(now_ns: Callable[[], int]) -> LinkDriver:
                machine = Links(
                    cfg.node_id, totem.nodes, cfg.links, cfg.mode, cfg.link_timings(), now_ns()
                )
                return LinkDriver(loop, machine, channel, link_peers, now_ns)

        self._driver = driver = Driver(
            loop,
            core,
            channel,
            recorder,
            store,
            self._groups,
            peers,
            on_failure=self._on_failure,
            links=links,
        )
        if self._history_path is not None:
            path = self._history_path
            try:
                incarnation = await loop.run_in_executor(None, next_incarnation, path, cfg.node_id)
                self._history = HistoryWriter(path, cfg.node_id, incarnation)
            except OSError as exc:
                raise ConfigError("history", f"cannot write {path}: {exc.strerror or exc}") from exc
            driver.add_tap(self._history)
        for tap in self._taps:
            driver.add_tap(tap)
        endpoints: list[Endpoint] = []
        try:
            for k, bind in enumerate(binds):
                endpoints.append(
                    await open_endpoint(
                        loop,
                        bind,
                        families[k],
                        driver.datagram_received if k == 0 else driver.link_receiver(k),
                        buffer_bytes=cfg.socket_buffer_bytes,
                        multicast=multicast,
                        where="bind" if len(binds) == 1 else f"bind[{k}]",
                    )
                )
        except BaseException:
            for endpoint in endpoints:
                endpoint.close()
            raise
        driver.attach(*endpoints)
        return stored.ring_seq

    async def close(self) -> None:
        """Leave every group and the ring cleanly, then close the socket. Idempotent."""
        if self._state in (_State.NEW, _State.CLOSED):
            self._state = _State.CLOSED
            return
        if self._state is _State.CLOSING:
            await self._wait(lambda: self._state is _State.CLOSED)
            return
        failed = self._state is _State.FAILED
        self._state = _State.CLOSING
        self._groups.cancel_timers()  # a leaving node makes no more quorum decisions
        if not failed:
            await self._leave_all_groups()
            if self._driver is not None:
                self._driver.leave()
        error = self._failure_error if failed else self._closed_error
        for membership in list(self._members.values()):
            membership.end("node closed", error if failed else None)  # iterators stop cleanly
        self._members.clear()
        self._outbox.fail_all(error)
        if self._driver is not None:
            await self._driver.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        if self._store is not None:
            self._store.close()
        if self._history is not None:
            self._history.close()
        self._state = _State.CLOSED
        self._notify()

    async def _leave_all_groups(self) -> None:
        """Leave groups before the ring so the others see ``leave`` views, not a node failure.

        A join still waiting for its first view fails now with ``NodeClosed``; its member
        leaves like the others (its join record may already be on the ring).
        """
        members = list(self._members.values())
        try:
            for membership in members:
                if membership.state is MemberState.JOINING:
                    self._leave_member(membership)
                    membership.end("node closed", self._closed_error)
                elif membership.state is MemberState.MEMBER:
                    membership.begin_leave()
        except NodeClosed:
            return  # the driver is gone (its socket failed): nothing can be sent any more
        pending = [m.left for m in members if m.state is MemberState.LEAVING]
        if pending:
            timeout = 2 * self.config.token_timeout_ms / 1000
            await asyncio.wait(pending, timeout=timeout)

    # ------------------------------------------------------------------ the API

    @property
    def view(self) -> RingView | None:
        """The ring configuration this node is in (None before start)."""
        return self._ring

    @property
    def closed(self) -> bool:
        return self._state in (_State.CLOSED, _State.FAILED)

    @property
    def quorum(self) -> Quorum | None:
        """The quorum verdict of the current configuration (RFC 0008 §3); None before start.

        While a configuration that added nodes waits for their announcements, this is a
        provisional value with ``pending=True`` (and ``quorate=False``).
        """
        return self._groups.state.quorum

    @property
    def max_message_bytes(self) -> int:
        return self.config.max_message_bytes

    @property
    def history_incarnation(self) -> int | None:
        """The incarnation number this node records its history under (None: not recording).

        Workload payloads must carry it (``gcs.history.events.encode_payload``).
        """
        return None if self._history is None else self._history.incarnation

    async def join(
        self,
        name: str,
        *,
        queue_size: int | None = None,
        primary: bool = False,
        quorum_events: bool = False,
        uncommitted: bool = False,
    ) -> Group:
        """Join group ``name``; return once this member is in a view (its first event).

        ``queue_size`` overrides ``Config.subscriber_queue`` for this member.
        ``quorum_events``: the stream carries a ``gcs.Quorum`` verdict at each configuration
        change (iterate ``group.events()`` to see them; RFC 0008 §3.3). ``primary``:
        primary-component mode, messages only in quorate configurations (RFC 0008 §4; implies
        ``quorum_events``). ``uncommitted`` (with ``primary``): also the last quorate
        configuration's unconfirmed tail, as messages with ``uncommitted=True`` (RFC 0008 §4.2;
        for ``gcs.join_with_state``, which resolves them). Raises ``TypeError`` /
        ``InvalidArgument`` for a bad name or combination, ``NodeClosed`` when closed.
        """
        bound = check_join(name, queue_size, self.config.subscriber_queue)
        check_join_modes(primary, quorum_events, uncommitted)
        self._check_running()
        membership = Membership(self, self._port, name, self._new_handle(), bound)
        handle = membership.member.handle
        self._members[handle] = membership
        self._groups.join(
            name, handle, primary=primary, quorum_events=quorum_events, tails=uncommitted
        )
        try:
            await asyncio.shield(membership.active)
        except asyncio.CancelledError:
            if membership.state is MemberState.JOINING:
                membership.begin_leave()  # undo: the join is already on its way
            raise
        return membership.group

    def statistics(self) -> NodeStatistics:
        """Core, channel and runtime counters: drops by reason, loop lag, queues, ..."""
        if self._core is None or self._channel is None or self._driver is None:
            raise NodeClosed(f"node {self.node_id} was never started")
        groups = self._groups
        tracker = groups.state.quorum_tracker
        return NodeStatistics(
            node_id=self.node_id,
            state=self._state.value,
            core=self._core.statistics(),
            channel=self._channel.statistics(),
            runtime=self._driver.statistics(),
            members=len(self._members),
            sends_waiting=groups.waiting,
            records_in_flight=groups.in_flight,
            slow_consumers=self._slow,
            group_records_ignored=groups.state.ignored_records,
            messages_not_quorate=0 if tracker is None else tracker.filtered,
            directed_undeliverable=groups.state.undeliverable,
            messages_outside_view=groups.state.outside_view,
        )

    async def dump_flight_recorder(
        self, path: str | os.PathLike[str] | None = None, *, reason: str = "on demand"
    ) -> Path:
        """Write the flight recorder to ``path`` (default: state dir or the temp dir).

        Replay it with ``gcs.history.recorder.replay(path)`` or ``gcs simulate replay-node``.
        """
        recorder = self._recorder
        if recorder is None or not recorder.enabled:
            raise GcsError("the flight recorder is disabled (recorder_inputs = 0) or not started")
        loop = asyncio.get_running_loop()
        exported = recorder.export(reason)
        data = await loop.run_in_executor(None, recorder.encode, exported)
        if path is None:
            directory = Path(self.config.state_dir or tempfile.gettempdir())
            stamp = time.strftime("%Y%m%dT%H%M%S")
            path = directory / f"gcs-flight-{self.node_id}-{self.boot_id}-{stamp}.cbor"
        return await loop.run_in_executor(None, write_dump, Path(path), data)

    # ------------------------------------------------------------------ internals for Group

    def _check_running(self, for_group: bool = False) -> None:
        if self._state is _State.FAILED:
            raise self._failure_error()
        if self._state is not _State.RUNNING:
            if for_group:
                raise GroupClosed(f"node {self.node_id} is {self._state.value}")
            raise NodeClosed(f"node {self.node_id} is {self._state.value}")

    async def _send(self, record: Record, safe: bool) -> Ticket:
        return await self._outbox.send(record, safe)

    def _send_nowait(self, record: Record, safe: bool) -> Ticket:
        return self._outbox.send_nowait(record, safe)

    async def _send_to(
        self, group: str, handle: int, to: Member, payload: bytes, safe: bool
    ) -> Ticket:
        return await self._outbox.send(directed_record(group, handle, to, payload), safe)

    def _submit(self, record: Record, safe: bool) -> None:
        """Where the group driver's records go: into the core, through the runtime driver."""
        if self._driver is None:
            raise NodeClosed(f"node {self.node_id} was never started")
        self._driver.submit(record, safe)

    def _leave_member(self, membership: Membership) -> None:
        name, handle = membership.name, membership.member.handle
        why = f"member {membership.member} of {name!r} left"
        if self._state is _State.RUNNING or self._state is _State.CLOSING:
            self._outbox.leave(name, handle, lambda: GroupClosed(why))
        else:
            self._outbox.cancel_member(name, handle, lambda: GroupClosed(why))

    def _new_handle(self) -> int:
        self._handles += 1
        if self._handles >= 1 << _HANDLE_COUNTER_BITS:
            raise GcsError("this node ran out of member handles; restart it")
        boot = self.boot_id & ((1 << _BOOT_BITS) - 1)
        return (boot << _HANDLE_COUNTER_BITS) | self._handles

    def _closed_error(self) -> BaseException:
        return NodeClosed(f"node {self.node_id} closed")

    def _failure_error(self) -> BaseException:
        """A fresh exception for one caller, chained to the original failure."""
        failure = self._failure
        if isinstance(failure, InvariantViolation):
            fresh: BaseException = InvariantViolation(*failure.args)
        else:
            fresh = NodeFailed(f"node {self.node_id} stopped after an error: {failure!r}")
        fresh.__cause__ = failure
        return fresh

    async def _wait(self, predicate: Callable[[], bool]) -> None:
        changed = self._changed
        assert changed is not None
        while not predicate():
            if self._state is _State.FAILED:
                raise self._failure_error()
            changed.clear()
            await changed.wait()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    # ------------------------------------------------------------------ Application (upcalls)

    def on_ring(self, configuration: Configuration) -> None:
        """The group driver's upcall: the ring configuration this node is in changed."""
        self._ring = RingView(
            ring_id=configuration.ring_id,
            members=configuration.members,
            transitional=configuration.kind is ConfigurationKind.TRANSITIONAL,
            joined=configuration.joined,
            left=configuration.left,
            reason=str(configuration.reason),
        )
        nodes = self._groups.state.nodes
        if self._lingering and nodes is not None and not self._ring.transitional:
            self._apply_nodes(nodes)  # a removed member left the ring: stop hearing it
        self._notify()

    def on_event(
        self, group: str, handles: tuple[int, ...], event: View | Message | Quorum
    ) -> None:
        """The group driver's upcall: append ``event`` to these local members' streams."""
        members = self._members
        for handle in handles:
            membership = members.get(handle)
            if membership is not None and membership.name == group and not membership.push(event):
                self._slow_consumer(membership)

    def on_member_closed(self, group: str, handle: int) -> None:
        """The group driver's upcall: a local member's leave was delivered."""
        membership = self._members.get(handle)
        if membership is not None and membership.name == group:
            del self._members[handle]
            membership.end("left")

    def on_persist_quorum(self, expected_votes: int) -> None:
        """The group driver's upcall: store last_man_standing's expected votes, off the loop;
        the latest value wins."""
        self._quorum_wanted = expected_votes
        if not self._quorum_writing and self._store is not None:
            self._quorum_writing = True
            task = asyncio.get_running_loop().create_task(self._write_quorum(self._store))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _write_quorum(self, store: StateStore) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._quorum_wanted is not None:
                value, self._quorum_wanted = self._quorum_wanted, None
                await loop.run_in_executor(None, store.write_quorum_votes, value)
        except OSError as exc:
            # Not fail-stop: a restart that finds the older (higher) value is only more cautious.
            _LOG.error("node %d: cannot store quorum expected votes: %s", self.node_id, exc)
        finally:
            self._quorum_writing = False

    def on_persist_nodes(self, nodes: NodeList) -> None:
        """The group driver's upcall: store the node list before it takes effect (QRM-3.7-4).

        Written on the loop, on purpose: the change must be durable before the outputs that
        follow it run, and a change is rare and one small file. A failed write is fail-stop:
        going on would act on a list a restart would not find.
        """
        if self._store is None:
            return
        try:
            self._store.write_node_list(json.dumps(list_to_wire(nodes)) + "\n")
        except OSError as exc:
            _LOG.error("node %d: cannot store the node list: %s", self.node_id, exc)
            self._on_failure(exc)

    def on_node_list(self, event: NodeListEvent) -> None:
        """The group driver's upcall: a node-list change was delivered or a merge brought one."""
        if event.sender == self.node_id and event.change is not None:
            self._node_outcomes[event.change] = event.refused
            self._notify()
        if event.refused is not None:
            _LOG.info("node %d: node-list change not applied: %s", self.node_id, event.refused)
            return
        nodes = event.nodes
        _LOG.info("node %d: node list version %d: %s", self.node_id, nodes.version, nodes.ids)
        if self.node_id not in nodes.ids:
            if self._driver is not None:
                # Its ring-mates still hear it (MEM-3.2-6): its leave makes them reform at
                # once. Outside the batch of effects that delivered the change.
                asyncio.get_running_loop().call_soon(self._driver.leave)
            self._on_failure(
                NodeFailed(
                    f"node {self.node_id} was removed from the cluster's node list (version "
                    f"{nodes.version}); it stops. Add it again with 'gcs nodes add' to rejoin."
                )
            )
            return
        self._apply_nodes(nodes)

    def _stored_list(self, text: str) -> NodeList:
        """The node list a previous incarnation stored; ConfigError if unusable (QRM-3.7-4)."""
        where = f"{self.config.state_dir}/node_list"
        try:
            nodes = list_from_wire(json.loads(text))
        except ValueError:
            nodes = None
        if nodes is None or nodes.version == 0:
            raise ConfigError("state_dir", f"{where} does not hold a node list")
        if self.node_id not in nodes.ids:
            raise ConfigError(
                "node_id",
                f"node {self.node_id} was removed from the cluster's node list (stored version "
                f"{nodes.version}; the configuration file is version 0): it must be added again "
                "(gcs nodes add) and started with an empty state_dir",
            )
        for entry in nodes.entries:
            if entry.node_id != self.node_id and not entry.addresses:
                raise ConfigError("state_dir", f"{where}: node {entry.node_id} has no address")
        return nodes

    def _listed_addresses(self) -> dict[int, tuple[str, int]]:
        """(host, port) of every other node of the list held now (the file's at version 0)."""
        state = self._groups.state
        nodes = state.nodes
        if nodes is None or nodes.version == 0:
            return {
                a.node_id: (a.host, a.port)
                for a in self.config.addresses
                if a.node_id != self.node_id
            }
        out: dict[int, tuple[str, int]] = {}
        for entry in nodes.entries:
            if entry.node_id != self.node_id and entry.addresses:
                out[entry.node_id] = parse_address(f"nodes[{entry.node_id}]", entry.addresses[0])
        return out

    def nodes(self) -> NodeList:
        """The node list this node holds (RFC 0006 API-3.8-1): version 0 is the file's."""
        nodes = self._groups.state.nodes
        if nodes is None:
            rules = self.config.quorum_rules()
            nodes = NodeList.bootstrap(
                rules.votes, {a.node_id: (str(a),) for a in self.config.addresses}
            )
        return nodes

    async def add_node(self, node_id: int, address: str, votes: int = 1) -> NodeList:
        """Add a node to the cluster's node list; return the list once the change applied.

        Raises ``InvalidArgument`` for a bad id, address or vote count, ``NodeListRefused``
        when the change may not be made or did not apply (RFC 0006 API-3.8-2), ``NodeClosed``.
        """
        if type(node_id) is not int or not 1 <= node_id <= 2**32 - 1:
            raise InvalidArgument(f"node id {node_id!r} is not an integer in 1..2^32-1")
        if type(votes) is not int or not 0 <= votes <= 1000:
            raise InvalidArgument(f"votes {votes!r} is not an integer in 0..1000")
        try:
            host, port = parse_address("address", address)
        except ConfigError as exc:
            raise InvalidArgument(str(exc)) from None
        text = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return await self._change_nodes(ChangeOp.ADD, NodeEntry(node_id, votes, (text,)))

    async def remove_node(self, node_id: int) -> NodeList:
        """Remove a node (typically a dead one) from the node list; as ``add_node``."""
        if type(node_id) is not int or not 1 <= node_id <= 2**32 - 1:
            raise InvalidArgument(f"node id {node_id!r} is not an integer in 1..2^32-1")
        return await self._change_nodes(ChangeOp.REMOVE, NodeEntry(node_id, 0))

    async def _change_nodes(self, op: ChangeOp, entry: NodeEntry) -> NodeList:
        self._check_running()
        change = self._groups.change_nodes(op, entry)
        outcomes = self._node_outcomes
        await self._wait(lambda: change in outcomes or self._state is not _State.RUNNING)
        if change not in outcomes:
            raise NodeClosed(f"node {self.node_id} closed before the change was delivered")
        refused = outcomes.pop(change)
        if refused is not None:
            raise NodeListRefused(refused, f"the change of node {entry.node_id} did not apply")
        return self.nodes()

    def _apply_nodes(self, nodes: NodeList) -> None:
        """The list changed: the core, the channel and the sockets follow it (MEM-3.2-4)."""
        if self._core is None or self._channel is None or self._driver is None:
            return
        family = family_of(self.config.bind_address[0])
        peers: dict[int, SockAddr] = {}
        for node, (host, port) in self._listed_addresses().items():
            try:
                info = socket.getaddrinfo(
                    host, port, family, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST
                )
            except OSError:
                _LOG.warning(
                    "node %d: node %d's address %s is not a numeric %s address; it is resolved "
                    "at the next start",
                    self.node_id,
                    node,
                    host,
                    "IPv6" if family == socket.AF_INET6 else "IPv4",
                )
                continue
            peers[node] = tuple(info[0][4])
        # Members of the installed ring the list dropped are heard, and reached, until a
        # consensus fails them out (MEM-3.2-6): on_ring applies the list again then.
        lingering = [m for m in self._core.members if m != self.node_id and m not in nodes.ids]
        for node in lingering:
            addr = self._driver.peer_address(node)
            if addr is not None:
                peers.setdefault(node, addr)
        self._lingering = frozenset(lingering)
        self._core.set_nodes(nodes.ids)
        self._core.set_learning(False)
        accepted = (*nodes.ids, *lingering)
        self._channel.set_peers(accepted, {n: a[:2] for n, a in peers.items()})
        self._driver.set_peers(peers)

    def _slow_consumer(self, membership: Membership) -> None:
        """Cut off a reader that fell behind its bound: it leaves the group (RFC 0006 API-5-2)."""
        self._slow += 1
        _LOG.warning(
            "node %d: member %s of %r fell more than its queue bound behind and was closed",
            self.node_id,
            membership.member,
            membership.name,
        )
        if membership.cut_off("slow consumer"):
            self._leave_member(membership)

    # ------------------------------------------------------------------ failure

    def _on_failure(self, exc: BaseException) -> None:
        """Fail-stop (RFC 0006 §7): every pending and later call raises; dump the recorder."""
        if self._state is _State.FAILED:
            return
        self._failure = exc
        self._state = _State.FAILED
        for membership in list(self._members.values()):
            membership.end("node failed", self._failure_error, abort=True)
        self._outbox.fail_all(self._failure_error)
        self._notify()
        if self._recorder is not None and self._recorder.enabled:
            task = asyncio.get_running_loop().create_task(self._dump_after_failure(exc))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _dump_after_failure(self, exc: BaseException) -> None:
        try:
            path = await self.dump_flight_recorder(reason=f"fail-stop: {exc!r}")
        except Exception as dump_error:
            _LOG.error("node %d: could not dump the flight recorder: %s", self.node_id, dump_error)
            return
        _LOG.error("node %d stopped (%r); flight recorder dumped to %s", self.node_id, exc, path)
