"""One node of ``gcs bench ring``: a ``gcs.Node`` on uvloop, driven by JSON lines on stdin.

Why a process per node: the figures must include everything a real member pays for (socket
reads, sealing, the core, the group layer, the application's own reading), and a ring whose
members share one interpreter would serialise them on one GIL. The parent (``gcs.bench.ring``)
starts one of these per node, on loopback or inside a network namespace, and never measures
anything itself: every time below is taken here, with ``time.monotonic_ns()``, which is the same
clock in every process and every network namespace of the machine, so the parent can subtract
a kill time it took from a view time a survivor took.

Protocol (one JSON object per line). The worker prints events on stdout, unprompted:

* ``{"event": "view", ...}``: every group view this member gets, with its time;
* ``{"event": "ring", ...}``: every ring configuration this node installs, with its time;
* ``{"event": "result", "id": ..., ...}``: the answer to a command;
* ``{"event": "error", "message": ...}``: anything that went wrong (the parent fails the run).

Commands (stdin): ``stream`` (send and/or receive a phase of messages; see ``_Stream``),
``ping`` (own-delivery round trips; see ``_Ping``), ``rss``, ``leave`` (close the node cleanly
and exit) and ``exit``.

Every data message starts with a 25-byte header (kind, phase, sender node, per-sender seq,
send time) inside its stated size, like the corosync anchor's ``cpgbench``. A receiver checks
that every sender's seqs arrive contiguous (FIFO, nothing lost or duplicated) and folds the
delivered sequence of (sender, seq) into a BLAKE2b digest; the parent compares
the digests and counts of all receivers, which is the "same sequence, full count" check.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import os
import resource
import struct
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gcs
from gcs.errors import SendQueueFull, SlowConsumer
from gcs.groups.views import Message, View
from gcs.history.recorder import InputKind
from gcs.totem.effects import Configuration, Effect

__all__ = [
    "HEADER",
    "KIND_DATA",
    "KIND_END",
    "KIND_PING",
    "SequenceDigest",
    "main",
    "sequence_digest",
]

HEADER = struct.Struct(">BIIQQ")
"""kind u8, phase u32, sender node u32, seq u64, send time (monotonic ns) u64."""
KIND_DATA, KIND_END, KIND_PING = 1, 2, 3
GROUP = "bench"
_CHUNK = 1 << 16
_LATENCY_SAMPLE_EVERY = 64


class SequenceDigest:
    """BLAKE2b of the delivered sequence of (sender, seq), as 64-bit keys, hashed in chunks.

    Appending a key to an array is the cheapest per-message step Python offers; the hash runs
    once per ``_CHUNK`` messages, so verifying costs a receiver well under a microsecond each.
    """

    __slots__ = ("_hash", "keys")

    def __init__(self) -> None:
        self._hash = hashlib.blake2b(digest_size=16)
        self.keys = array("Q")

    def flush(self) -> None:
        self._hash.update(self.keys.tobytes())
        del self.keys[:]

    def hexdigest(self) -> str:
        self.flush()
        return self._hash.hexdigest()


def sequence_digest(pairs: list[tuple[int, int]]) -> str:
    """The digest a receiver reports for having delivered ``pairs`` (sender, seq) in order."""
    digest = SequenceDigest()
    for sender, seq in pairs:
        digest.keys.append(sender << 48 | seq)
    return digest.hexdigest()


def rss_kb() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process in KiB."""
    current = 0
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            current = int(statm.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
    except OSError:
        pass
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class _GcClock:
    """Time spent in the cyclic garbage collector (it runs inside whatever allocates, so a
    profile smears it over the allocating functions; this measures it directly).

    ``total_ns`` is CPU time (``thread_time_ns``: a collection preempted on a busy machine does
    not count the wait); ``max_ns`` is the longest pause in wall time, what the token felt.
    """

    def __init__(self) -> None:
        self.total_ns = 0
        self.max_ns = 0
        self.collections = [0, 0, 0]
        self._start = (0, 0)
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        now = (time.thread_time_ns(), time.perf_counter_ns())
        if phase == "start":
            self._start = now
            return
        self.total_ns += now[0] - self._start[0]
        self.max_ns = max(self.max_ns, now[1] - self._start[1])
        self.collections[info["generation"]] += 1

    def snapshot(self) -> tuple[int, int, list[int]]:
        return self.total_ns, self.max_ns, list(self.collections)

    def since(self, mark: tuple[int, int, list[int]]) -> dict[str, Any]:
        total, _, counts = mark
        return {
            "gc_ms": (self.total_ns - total) / 1e6,
            "gc_max_ms": self.max_ns / 1e6,
            "gc_collections": [a - b for a, b in zip(self.collections, counts, strict=True)],
        }


GC_CLOCK: _GcClock | None = None


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class _RingReporter:
    """A tap (``gcs.runtime.tap``) that reports every ring configuration, with its time, to the
    parent."""

    def on_input(self, kind: InputKind, arg1: object, arg2: object) -> None:
        pass

    def on_effects(self, effects: list[Effect]) -> None:
        for effect in effects:
            if type(effect) is Configuration:
                _emit(
                    {
                        "event": "ring",
                        "t_ns": time.monotonic_ns(),
                        "kind": effect.kind.value,
                        "members": list(effect.members),
                        "left": list(effect.left),
                        "joined": list(effect.joined),
                    }
                )

    def on_failure(self, exc: BaseException) -> None:
        pass


@dataclass
class _Stream:
    """One throughput phase at one node: receive until every sender's END, maybe send too.

    ``count`` caps what this node sends, ``seconds`` how long it sends; the END record carries
    the number sent, so receivers know the full count without being told in advance.
    """

    phase: int
    senders: frozenset[int]
    expected_ends: int
    next_seq: dict[int, int] = field(default_factory=dict)
    ends: dict[int, int] = field(default_factory=dict)
    received: int = 0
    digest: SequenceDigest = field(default_factory=SequenceDigest)
    errors: list[str] = field(default_factory=list)
    first_ns: int = 0
    last_ns: int = 0
    latency_ns: list[int] = field(default_factory=list)
    max_gap_ns: int = 0
    done: asyncio.Future[None] | None = None

    def on_message(self, data: bytes) -> None:
        kind, phase, sender, seq, sent_ns = HEADER.unpack_from(data)
        if phase != self.phase:
            return  # a straggler of an earlier phase
        now = time.monotonic_ns()
        if kind == KIND_DATA:
            expected = self.next_seq.get(sender, 1)
            if seq != expected and len(self.errors) < 10:
                self.errors.append(f"node {sender}: seq {seq}, expected {expected}")
            self.next_seq[sender] = seq + 1
            keys = self.digest.keys
            keys.append(sender << 48 | seq)
            if len(keys) >= _CHUNK:
                self.digest.flush()
            self.received += 1
            if self.first_ns == 0:
                self.first_ns = now
            elif now - self.last_ns > self.max_gap_ns:
                self.max_gap_ns = now - self.last_ns
            self.last_ns = now
            if seq % _LATENCY_SAMPLE_EVERY == 0:
                self.latency_ns.append(now - sent_ns)
        elif kind == KIND_END:
            self.ends[sender] = seq
            done = self.done
            if len(self.ends) >= self.expected_ends and done is not None and not done.done():
                done.set_result(None)

    def report(self) -> dict[str, Any]:
        for sender, count in self.ends.items():
            if self.next_seq.get(sender, 1) - 1 != count and len(self.errors) < 10:
                self.errors.append(
                    f"node {sender} sent {count}, received up to {self.next_seq.get(sender, 1) - 1}"
                )
        lat = sorted(self.latency_ns)
        return {
            "received": self.received,
            "digest": self.digest.hexdigest(),
            "ends": {str(k): v for k, v in sorted(self.ends.items())},
            "errors": self.errors,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "max_gap_ns": self.max_gap_ns,
            "queue_latency_p50_ns": lat[len(lat) // 2] if lat else None,
        }


@dataclass
class _Ping:
    """Own-delivery round trips at the pinger; one-way latencies of the pings at the others."""

    phase: int
    me: int
    expected: int
    waiter: asyncio.Future[int] | None = None
    heard: asyncio.Future[None] | None = None
    one_way_ns: list[int] = field(default_factory=list)

    def on_message(self, data: bytes) -> None:
        kind, phase, sender, _seq, sent_ns = HEADER.unpack_from(data)
        if kind != KIND_PING or phase != self.phase:
            return
        now = time.perf_counter_ns()
        if sender == self.me:
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(now)
        else:
            self.one_way_ns.append(time.monotonic_ns() - sent_ns)
            heard = self.heard
            if len(self.one_way_ns) >= self.expected and heard is not None and not heard.done():
                heard.set_result(None)


class Worker:
    """The node, its one group member, the stdin command loop and the stream reader."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.me = int(spec["node_id"])
        self.node: gcs.Node | None = None
        self.group: gcs.Group | None = None
        self.on_message: Callable[[bytes], None] = _ignore
        self.tasks: set[asyncio.Task[None]] = set()
        self.go: dict[int, asyncio.Future[None]] = {}

    def _go(self, phase: int) -> asyncio.Future[None]:
        """The start signal of a phase: the parent sends it once every node is armed."""
        if phase not in self.go:
            self.go[phase] = asyncio.get_running_loop().create_future()
        return self.go[phase]

    def _armed(self, op: dict[str, Any]) -> asyncio.Future[None]:
        """Tell the parent this node's sink for the phase is in place; return its go signal."""
        _emit({"event": "armed", "id": op["id"]})
        return self._go(int(op["phase"]))

    def config(self) -> gcs.Config:
        spec = self.spec
        settings: dict[str, Any] = {"subscriber_queue": 100_000, **spec.get("settings", {})}
        return gcs.Config(
            cluster_name="bench",
            node_id=self.me,
            nodes={int(k): v for k, v in spec["nodes"].items()},
            key_file=spec.get("key_file"),
            insecure=bool(spec.get("insecure", False)),
            **settings,
        )

    async def run(self) -> None:
        self.node = node = gcs.Node(self.config(), taps=(_RingReporter(),))
        await node.start()
        self.group = await node.join(GROUP)
        _emit_view(self.group.view)
        reader = asyncio.get_running_loop().create_task(self._read_group())
        try:
            await self._commands()
        finally:
            reader.cancel()
            await node.close()

    async def _read_group(self) -> None:
        group = self.group
        assert group is not None
        try:
            while events := await group.receive_many():  # the batch form (API-5-4)
                for event in events:
                    if type(event) is Message:
                        self.on_message(event.data)
                    elif type(event) is View:
                        _emit_view(event)
        except SlowConsumer as exc:
            _emit({"event": "error", "message": f"node {self.me}: slow consumer: {exc}"})

    async def _commands(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            op = json.loads(line)
            name = op["op"]
            if name == "exit":
                return
            if name == "leave":
                assert self.node is not None
                start = time.monotonic_ns()
                await self.node.close()
                _emit({"event": "result", "id": op["id"], "t_start_ns": start})
                return
            if name == "go":
                self._go(int(op["phase"])).set_result(None)
                continue
            task = loop.create_task(self._run_op(op))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _run_op(self, op: dict[str, Any]) -> None:
        try:
            if op["op"] == "stream":
                result = await self._stream(op)
            elif op["op"] == "ping":
                result = await self._ping(op)
            elif op["op"] == "rss":
                result = {}
            elif op["op"] == "gc_types":
                result = {"types": _tracked_types()}
            else:
                raise ValueError(f"unknown op {op['op']!r}")
        except Exception as exc:
            _emit({"event": "error", "message": f"node {self.me}: {op['op']}: {exc!r}"})
            return
        current, peak = rss_kb()
        _emit({"event": "result", "id": op["id"], "rss_kb": current, "peak_rss_kb": peak, **result})

    async def _stream(self, op: dict[str, Any]) -> dict[str, Any]:
        """Receive a phase (and send our share if we are a sender); see ``_Stream``."""
        senders = frozenset(int(s) for s in op["senders"])
        stream = _Stream(int(op["phase"]), senders, len(senders))
        stream.done = asyncio.get_running_loop().create_future()
        self.on_message = stream.on_message
        sent: dict[str, Any] = {}
        samples: list[list[int]] = []
        sampler = asyncio.get_running_loop().create_task(
            _sample_rss(samples, float(op.get("sample_s", 0)))
        )
        go = self._armed(op)
        assert GC_CLOCK is not None
        mark = GC_CLOCK.snapshot()
        counters = self._counters()
        cpu = time.process_time()
        try:
            if self.me in senders:
                await go
                sent = await self._send_phase(op)
            await asyncio.wait_for(stream.done, timeout=float(op.get("timeout_s", 120)))
        finally:
            sampler.cancel()
            self.on_message = _ignore
        extra = {"cpu_s": time.process_time() - cpu, "rss_samples": samples}
        after = self._counters()
        protocol = {name: after[name] - counters[name] for name in after}
        return {**stream.report(), **sent, **GC_CLOCK.since(mark), **extra, "protocol": protocol}

    def _counters(self) -> dict[str, int]:
        """The counters that show the ring struggling: retransmissions, tokens, drops."""
        assert self.node is not None
        stats = self.node.statistics()
        core = stats.core
        return {
            "tokens_received": core.tokens_received,
            "tokens_retransmitted": core.tokens_retransmitted,
            "mcasts_originated": core.mcasts_originated,
            "mcasts_retransmitted": core.mcasts_retransmitted,
            "rtr_requested": core.rtr_requested,
            "datagrams_received": stats.runtime.datagrams_received,
            "datagrams_sent": stats.runtime.datagrams_sent,
            "drops": sum(stats.drops.values()),
        }

    async def _send_phase(self, op: dict[str, Any]) -> dict[str, Any]:
        group = self.group
        assert group is not None
        size, phase, safe = int(op["size"]), int(op["phase"]), bool(op.get("safe", False))
        pad = bytes(max(0, size - HEADER.size))
        count = int(op.get("count", 1 << 62))
        deadline = time.perf_counter_ns() + int(float(op.get("seconds", 5)) * 1e9)
        pack, send, clock, me = HEADER.pack, group.send, time.monotonic_ns, self.me
        nowait = group.send_nowait  # the lean form (API-6-2): no coroutine per message
        start = time.perf_counter_ns()
        n = 0
        while n < count and (n & 255 or time.perf_counter_ns() < deadline):
            n += 1
            data = pack(KIND_DATA, phase, me, n, clock()) + pad
            try:
                nowait(data, safe)
            except SendQueueFull:
                await send(data, safe)  # flow control: wait in order (this yields)
                continue
            if not n & 63:
                await asyncio.sleep(0)  # let tokens through, as send itself would
        elapsed = time.perf_counter_ns() - start
        await send(pack(KIND_END, phase, me, n, clock()) + pad, safe)
        return {"sent": n, "send_s": elapsed / 1e9}

    async def _ping(self, op: dict[str, Any]) -> dict[str, Any]:
        """Pinger: send one message, wait for its own delivery, repeat. Others: listen."""
        loop = asyncio.get_running_loop()
        ping = _Ping(int(op["phase"]), self.me, int(op.get("warmup", 10)) + int(op["count"]))
        self.on_message = ping.on_message
        go = self._armed(op)
        try:
            if int(op["pinger"]) != self.me:
                ping.heard = loop.create_future()
                await asyncio.wait_for(ping.heard, timeout=float(op.get("timeout_s", 120)))
                return {"one_way_ns": ping.one_way_ns}
            await go
            return {"rtt_ns": await self._ping_loop(op, ping, loop)}
        finally:
            self.on_message = _ignore

    async def _ping_loop(
        self, op: dict[str, Any], ping: _Ping, loop: asyncio.AbstractEventLoop
    ) -> list[int]:
        group = self.group
        assert group is not None
        size, safe = int(op["size"]), bool(op.get("safe", False))
        gap_s = float(op.get("gap_ms", 0)) / 1000
        warmup, count = int(op.get("warmup", 10)), int(op["count"])
        pad = bytes(max(0, size - HEADER.size))
        rtts: list[int] = []
        for i in range(warmup + count):
            if gap_s:
                await asyncio.sleep(gap_s)
            ping.waiter = loop.create_future()
            start = time.perf_counter_ns()
            data = HEADER.pack(KIND_PING, ping.phase, self.me, i, time.monotonic_ns()) + pad
            await group.send(data, safe)
            end = await asyncio.wait_for(ping.waiter, timeout=30)
            if i >= warmup:
                rtts.append(end - start)
        return rtts


def _tracked_types(top: int = 15) -> list[tuple[str, int]]:
    """The most common types among the objects the cyclic collector tracks (a diagnostic)."""
    counts: dict[str, int] = {}
    for obj in gc.get_objects():
        name = type(obj).__qualname__
        counts[name] = counts.get(name, 0) + 1
    return sorted(counts.items(), key=lambda item: -item[1])[:top]


def _ignore(data: bytes) -> None:
    """The message sink between phases: nothing is measured."""


async def _sample_rss(samples: list[list[int]], every_s: float) -> None:
    """Record (monotonic ns, RSS KiB, objects the GC tracks) every ``every_s`` seconds (0: never).

    The soak figure: memory must stay flat under load. The object count shows what the cyclic
    collector has to walk on every full collection."""
    if every_s <= 0:
        return
    while True:
        samples.append([time.monotonic_ns(), rss_kb()[0], len(gc.get_objects())])
        await asyncio.sleep(every_s)


def _emit_view(view: View | None) -> None:
    if view is None:
        return
    _emit(
        {
            "event": "view",
            "t_ns": time.monotonic_ns(),
            "members": sorted({m.node for m in view.members}),
            "left": sorted({m.node for m in view.left}),
            "joined": sorted({m.node for m in view.joined}),
            "transitional": view.transitional,
            "reason": view.reason.kind.value,
        }
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m gcs.bench.ring_worker SPEC_JSON``: run one node until told to stop."""
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(args[0])
    global GC_CLOCK  # noqa: PLW0603 (one per process, installed before the node starts)
    GC_CLOCK = _GcClock()
    # Measurement aids (docs/benchmarks.md): what the collector costs, and what tuning it buys.
    if os.environ.get("GCS_BENCH_GC") == "off":
        gc.disable()
    elif os.environ.get("GCS_BENCH_GC", "").count(",") == 2:
        gc.set_threshold(*(int(x) for x in os.environ["GCS_BENCH_GC"].split(",")))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("gcs.wire").setLevel(logging.ERROR)  # the unkeyed warning is expected
    try:
        gcs.run(Worker(spec).run())
    except Exception as exc:
        _emit({"event": "error", "message": f"node {spec.get('node_id')}: {exc!r}"})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
