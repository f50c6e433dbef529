"""``gcs bench path``: CPU per received mcast at one node, stage by stage (issue 15, lever 3).

What a node does for each mcast another node originated, without the sockets: the channel
opens the datagram (authenticate, replay check, decode), the core orders it (and delivers it,
agreed), and the group layer turns its record into a ``Message`` on a member's stream. The core
is a real one, in a ring of three formed in the simulator; the mcasts are the next ones of that
ring from node 2, one record each. Each stage is timed on its own over a batch (CPU time of this
process, ``time.process_time_ns``), then the whole path in one loop, as the runtime runs it; the
repetitions are interleaved and the median is reported, so a busy machine slows every figure
alike. Run it with ``GCS_PURE=1`` for the pure-Python build (the report names the build).
"""

from __future__ import annotations

import logging
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from gcs.api.stream import EventStream
from gcs.build import build_info
from gcs.groups.driver import GroupDriver
from gcs.groups.records import ANNOUNCE_GROUP, encode_announcement
from gcs.groups.state import GroupState
from gcs.sim.network import LatencyKind, LinkParams
from gcs.sim.world import World
from gcs.totem.config import TotemConfig
from gcs.totem.effects import (
    ChangeReason,
    ConfigId,
    Configuration,
    ConfigurationKind,
    Deliver,
    Effect,
    ReasonKind,
)
from gcs.totem.node import Node
from gcs.wire.channel import Channel
from gcs.wire.frames import Mcast, Record, RecordFlags, RingId
from gcs.wire.seal import Suite

__all__ = ["format_report", "run"]

_KEY = bytes(range(64))  # a benchmark key, public on purpose
_NODES = (1, 2, 3)
_ME, _SENDER, _HANDLE, _GROUP = 1, 2, 5, "bench"
_MS = 1_000_000
_SUITES = (("aes-256-gcm", Suite.AES_256_GCM), ("unkeyed", Suite.NONE))
_STAGES = ("open", "order", "group", "whole path")


class _Sink:
    """The node's side of the group layer, reduced to what it does per event: a stream put."""

    def __init__(self) -> None:
        self.stream: EventStream[object] = EventStream(1 << 30)

    def on_ring(self, configuration: object) -> None: ...

    def on_event(self, group: str, handles: tuple[int, ...], event: object) -> None:
        self.stream.put(event)

    def on_member_closed(self, group: str, handle: int) -> None: ...

    def on_persist_quorum(self, expected_votes: int) -> None: ...

    def on_persist_nodes(self, nodes: object) -> None: ...

    def on_node_list(self, event: object) -> None: ...


def _submit(record: Record, safe: bool) -> None: ...


def _operational_core() -> Node:
    """Node 1's core after nodes 1-3 formed a ring in the simulator (constant 1 ms links)."""
    world = World(
        seed=0,
        nodes=_NODES,
        totem_config=lambda n: TotemConfig(node_id=n, nodes=_NODES, join_jitter_ns=0),
        link=LinkParams(latency=LatencyKind.CONSTANT, latency_ns=_MS),
    )
    for node in _NODES:
        world.at(0, world.start, node)
    world.run_until(100 * _MS)
    core = world.hosts[_ME].core
    if core is None or core.state.value != "operational":
        raise RuntimeError("gcs bench path: the simulated ring did not form")
    return core


def _group_driver(ring: RingId) -> tuple[GroupDriver[Any], _Sink]:
    """A settled group layer of node 1 with one local member of the group the mcasts are for."""
    state = GroupState(_ME)
    reason = ChangeReason(ReasonKind.STARTUP)
    state.on_configuration(
        Configuration(ConfigurationKind.REGULAR, ring, _NODES, (), _NODES, reason)
    )
    config = ConfigId(ConfigurationKind.REGULAR, ring)
    announce = encode_announcement(ring, {})
    for seq, node in enumerate(_NODES, start=1):
        record = Record(ANNOUNCE_GROUP, 0, int(RecordFlags.JOIN), announce)
        state.on_deliver(Deliver(config, ring, seq, node, False, (record,)))
    state.add_local(_GROUP, 7)
    join = Record(_GROUP, 7, int(RecordFlags.JOIN), b"")
    state.on_deliver(Deliver(config, ring, len(_NODES) + 1, _ME, False, (join,)))
    sink = _Sink()
    return GroupDriver(state, _submit, sink), sink


class _Case:
    """One suite: fresh core, channels and group layer per measurement (the ring's queue of a
    core that sees no token only grows)."""

    def __init__(self, name: str, suite: Suite, size: int) -> None:
        self.name = name
        self.suite = suite
        self.size = size
        self.ns: dict[str, list[float]] = {stage: [] for stage in _STAGES}

    def _setup(self, count: int) -> tuple[Node, Channel, list[bytes], GroupDriver[Any]]:
        core = _operational_core()
        key = None if self.suite is Suite.NONE else _KEY
        sender = Channel(_SENDER, 1, "bench", key, suite=self.suite, peers=_NODES)
        receiver = Channel(_ME, 1, "bench", key, suite=self.suite, peers=_NODES)
        ring = core.ring.ring_id
        first = max(core.ring.last_seq, core.ring.queue.high_seq) + 1
        payload = bytes(self.size)
        datagrams = [
            sender.seal(Mcast(_SENDER, ring, seq, False, (Record(_GROUP, _HANDLE, 0, payload),)))
            for seq in range(first, first + count)
        ]
        driver, _ = _group_driver(ring)
        return core, receiver, datagrams, driver

    def measure(self, count: int, keep: bool = True) -> None:
        now = 200 * _MS
        core, channel, datagrams, driver = self._setup(count)
        start = time.process_time_ns()
        opened = [channel.receive(d, now) for d in datagrams]
        t1 = time.process_time_ns()
        effects = [core.receive(now, o[0], o[1]) for o in opened if o is not None]  # type: ignore[arg-type]  # mcasts only, no link probe
        t2 = time.process_time_ns()
        delivers = [e for batch in effects for e in batch if type(e) is Deliver]
        t3 = time.process_time_ns()
        for deliver in delivers:
            driver.on_deliver(now, deliver)
        t4 = time.process_time_ns()
        if len(delivers) != count:
            raise RuntimeError(f"gcs bench path: {len(delivers)} of {count} mcasts delivered")
        whole = self._whole(count, now)
        if keep:
            for stage, ns in zip(_STAGES, (t1 - start, t2 - t1, t4 - t3, whole), strict=True):
                self.ns[stage].append(ns / count)

    def _whole(self, count: int, now: int) -> int:
        """The three stages in one loop per datagram, as the runtime runs them."""
        core, channel, datagrams, driver = self._setup(count)
        receive, on_deliver = core.receive, driver.on_deliver
        start = time.process_time_ns()
        for datagram in datagrams:
            opened = channel.receive(datagram, now)
            if opened is not None:
                _hand_up(receive(now, opened[0], opened[1]), now, on_deliver)  # type: ignore[arg-type]  # mcasts only
        return time.process_time_ns() - start


def _hand_up(effects: list[Effect], now: int, on_deliver: Callable[[int, Deliver], None]) -> None:
    for effect in effects:
        if type(effect) is Deliver:
            on_deliver(now, effect)


def run(repeat: int = 7, count: int = 2000, size: int = 1024) -> dict[str, Any]:
    """Measure every suite ``repeat`` times, interleaved; medians in µs per mcast."""
    log = logging.getLogger("gcs.wire")
    level = log.level
    log.setLevel(logging.ERROR)  # the unkeyed channels' warning is expected here
    try:
        cases = [_Case(name, suite, size) for name, suite in _SUITES]
        for case in cases:
            case.measure(max(1, count // 10), keep=False)  # warm caches and allocators
        for _ in range(repeat):
            for case in cases:
                case.measure(count)
    finally:
        log.setLevel(level)
    results = []
    for case in cases:
        row: dict[str, Any] = {"suite": case.name}
        for stage in _STAGES:
            row[stage] = round(statistics.median(case.ns[stage]) / 1000, 2)
        results.append(row)
    return {
        "benchmark": "path",
        "unit": "us CPU per mcast at the receiving node",
        "record_bytes": size,
        "repeat": repeat,
        "count": count,
        "python": platform.python_version(),
        "build": build_info().describe(),
        "results": results,
    }


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"gcs bench path: CPU per received mcast of one {report['record_bytes']}-byte record at "
        f"one node, µs (median of {report['repeat']} interleaved runs of {report['count']})",
        f"build: {report['build']}; Python {report['python']}",
        "",
        f"{'suite':<20}" + "".join(f"{stage:>12}" for stage in _STAGES),
    ]
    for row in report["results"]:
        lines.append(f"{row['suite']:<20}" + "".join(f"{row[s]:>12.2f}" for s in _STAGES))
    lines.append("")
    lines.append("open: authenticate + replay check + decode; order: the core's receive (agreed")
    lines.append("delivery); group: the group layer to a member's stream; whole path: all three")
    lines.append("in one loop per datagram, as the runtime runs them (no socket, no event loop).")
    return "\n".join(lines)


def probe(suite: str, count: int, process: int, size: int = 1024) -> None:
    """Set up ``count`` mcasts and run the whole path on the first ``process`` of them only.

    For instruction counts (``docs/bench/path_instructions.sh``): two runs under callgrind that
    differ only in ``process`` differ only by the work of the path, whatever the set-up costs.
    """
    case = _Case(suite, dict(_SUITES)[suite], size)
    core, channel, datagrams, driver = case._setup(count)
    receive, on_deliver, now = core.receive, driver.on_deliver, 200 * _MS
    for datagram in datagrams[:process]:
        opened = channel.receive(datagram, now)
        if opened is not None:
            _hand_up(receive(now, opened[0], opened[1]), now, on_deliver)  # type: ignore[arg-type]  # mcasts only


if __name__ == "__main__":  # pragma: no cover
    import sys

    if len(sys.argv) == 4:  # python -m gcs.bench.path SUITE COUNT PROCESS
        logging.getLogger("gcs.wire").setLevel(logging.ERROR)
        probe(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
    else:
        print(format_report(run()))
