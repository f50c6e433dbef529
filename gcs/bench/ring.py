"""``gcs bench ring``: a real ring of node processes, measured like corosync's cpgbench.

What it measures (the corosync anchor's scenarios, so the two can be put side by side):

* ``tput``: one sender (node 1), agreed, 64 B / 1 KiB / 16 KiB, as fast as flow control
  allows for ``seconds``; delivered msg/s and MB/s at the other nodes;
* ``conc``: every node sends 64 B at once; total delivered msg/s per node;
* ``ping``: node 1 sends one 64 B message and waits for its own delivery, back to back and with
  10 ms gaps, agreed and safe (p50/p90/p99 µs; one-way latency at the others);
* ``failover``: node 1 sends 1 KiB flat out; node N gets SIGKILL; kill → view change at the
  survivors, with corosync-equivalent timers (token 300 ms, consensus 360 ms) and the defaults;
* ``leave``: node N closes cleanly; leave → view change at the survivors;
* ``rss``: peak RSS per node (always collected); ``soak``: RSS sampled over a long 64 B run.

How. Each node is a ``gcs.bench.ring_worker`` process (a ``gcs.Node`` on uvloop) on loopback or
in its own network namespace on a bridge (``gcs.bench.netns.NetLab``). The parent only starts,
commands, kills and collects: the workers take every time themselves, on the monotonic clock
all processes share. Every phase is verified: each receiver reports the count and a digest of
the sequence it delivered, and the run fails unless every receiver delivered the full count of
every sender, in seq order per sender, and all digests agree.

Repetitions. One *session* is a fresh ring in one variant (sealing, accelerated ring, timers,
flow control). The runs are interleaved across variants — run 1 of every variant, then run 2 —
so a slow phase of the machine (see the python-limits anchor's noise warning) is spread over all
of them; each figure is the median over runs.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gcs.build import build_info
from gcs.errors import GcsError
from gcs.runtime.endpoint import free_udp_ports

__all__ = [
    "MEASUREMENTS",
    "BenchFailed",
    "Options",
    "Variant",
    "format_report",
    "run",
]

MEASUREMENTS = ("tput", "conc", "ping", "failover", "leave", "soak")
DEFAULT_MEASUREMENTS = ("tput", "conc", "ping", "failover", "leave")
COROSYNC_TIMERS = {"token_timeout_ms": 300, "consensus_timeout_ms": 360}
"""corosync's ``token: 300`` with ``token_coefficient: 0``: effective token 300, consensus 360."""
_KILL_AFTER_S = 2.0  # the anchor kills node 3 two seconds into the 1 KiB load


class BenchFailed(GcsError):
    """A run could not be completed or did not verify (the message says which and why)."""


@dataclass(frozen=True)
class Variant:
    """One ring configuration: everything that needs fresh processes to change."""

    sealed: bool
    accelerated: bool
    timers: str = "default"  # or "corosync"
    settings: tuple[tuple[str, int], ...] = ()

    @property
    def name(self) -> str:
        parts = ["sealed" if self.sealed else "unsealed"]
        parts.append("accelerated" if self.accelerated else "classic")
        if self.timers != "default":
            parts.append(f"{self.timers} timers")
        parts += [f"{k}={v}" for k, v in self.settings]
        return ", ".join(parts)

    def config(self) -> dict[str, Any]:
        """The ``gcs.Config`` fields this variant sets."""
        out: dict[str, Any] = dict(self.settings)
        out["accelerated"] = self.accelerated
        if self.timers == "corosync":
            out.update(COROSYNC_TIMERS)
        return out


@dataclass
class Options:
    """What to measure and how much of it (the CLI's flags)."""

    nodes: int = 3
    runs: int = 3
    seconds: float = 5.0
    count: int | None = None
    sizes: tuple[int, ...] = (64, 1024, 16384)
    pings: int = 2000
    gap_pings: int = 300
    failovers: int = 1
    soak_seconds: float = 300.0
    measurements: tuple[str, ...] = DEFAULT_MEASUREMENTS
    sealing: tuple[bool, ...] = (False, True)
    accelerated: tuple[bool, ...] = (False, True)
    settings: tuple[tuple[str, int], ...] = ()
    big_frames: int = 0
    """Also measure throughput with this ``frame_payload_bytes`` (0: only the default)."""
    grid: tuple[tuple[tuple[str, int], ...], ...] = ()
    """Extra settings to compare: one variant per entry (each added to ``settings``)."""
    netns: bool = False
    links: int = 1
    """Links per node (RFC 0010): with ``netns`` one bridge per link, on loopback 127.0.0.k+1."""
    link_mode: str = "passive"
    progress: Callable[[str], None] | None = None

    def say(self, text: str) -> None:
        if self.progress is not None:
            self.progress(text)


# ---------------------------------------------------------------------- worker processes


class _Worker:
    """One node process: its pipes, a reader thread feeding the cluster's event queue."""

    def __init__(self, index: int, proc: subprocess.Popen[bytes], events: queue.Queue[Any]):
        self.index = index
        self.proc = proc
        self.views: list[dict[str, Any]] = []
        self.rings: list[dict[str, Any]] = []
        self.peak_rss_kb = 0
        assert proc.stdout is not None
        self._thread = threading.Thread(
            target=_pump, args=(index, proc.stdout, events), daemon=True
        )
        self._thread.start()

    def send(self, op: dict[str, Any]) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            stdin.write((json.dumps(op) + "\n").encode())
            stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise BenchFailed(f"node {self.index}: cannot send a command: {exc}") from exc

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def release(self) -> None:
        """The process has exited: close our ends of its pipes once the reader has drained."""
        self._thread.join(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


def _pump(index: int, stream: IO[bytes], events: queue.Queue[Any]) -> None:
    """Reader thread: every JSON line of a worker becomes ``(index, event)`` on the queue."""
    for line in stream:
        try:
            events.put((index, json.loads(line)))
        except json.JSONDecodeError:
            events.put((index, {"event": "error", "message": f"bad output: {line[:200]!r}"}))
    events.put((index, {"event": "exited"}))


class Cluster:
    """N worker processes forming one ring in one variant; commands and their results.

    ``lab`` is a ``gcs.bench.netns.NetLab`` (one namespace per node) or None for loopback.
    """

    def __init__(
        self,
        variant: Variant,
        nodes: int,
        workdir: Path,
        lab: Any = None,
        *,
        links: int = 1,
        link_mode: str = "passive",
    ) -> None:
        self.variant = variant
        self.links = links
        self.link_mode = link_mode
        self.n = nodes
        self.workdir = workdir
        self.lab = lab
        self.events: queue.Queue[Any] = queue.Queue()
        self.workers: dict[int, _Worker] = {}
        self.retired: list[_Worker] = []
        self.results: dict[tuple[int, int], dict[str, Any]] = {}
        self.armed: set[tuple[int, int]] = set()
        self._ids = itertools.count(1)
        self.spec_base = self._spec_base()

    def _addresses(self, link: int) -> list[str]:
        """Every node's address on ``link``: the lab's, or 127.0.0.<link+1> on loopback."""
        if self.lab is not None:
            return [f"{self.lab.address(i, link)}:5405" for i in range(1, self.n + 1)]
        host = f"127.0.0.{link + 1}"
        return [f"{host}:{port}" for port in free_udp_ports(self.n, host)]

    def _spec_base(self) -> dict[str, Any]:
        per_link = [self._addresses(k) for k in range(self.links)]
        nodes: dict[str, Any] = {
            str(i + 1): per_link[0][i] if self.links == 1 else [a[i] for a in per_link]
            for i in range(self.n)
        }
        settings = self.variant.config()
        if self.links > 1:
            settings["link_mode"] = self.link_mode
        spec: dict[str, Any] = {
            "nodes": nodes,
            "settings": settings,
            "insecure": self.lab is not None and not self.variant.sealed,
        }
        if self.variant.sealed:
            key = self.workdir / "cluster.key"
            if not key.exists():
                from gcs.wire.seal import generate_key

                generate_key(key, os.urandom(32))
            spec["key_file"] = str(key)
        return spec

    # ---------------------------------------------------------------- lifecycle

    def start(self, node: int) -> None:
        """Start (or restart) node ``node`` (1-based)."""
        spec = {**self.spec_base, "node_id": node}
        argv = [sys.executable, "-m", "gcs.bench.ring_worker", json.dumps(spec)]
        stderr = open(self.workdir / f"node{node}.stderr", "ab")  # noqa: SIM115 (kept by Popen)
        kwargs: dict[str, Any] = {
            "stdin": subprocess.PIPE,
            "stdout": subprocess.PIPE,
            "stderr": stderr,
            "env": {**os.environ, "PYTHONUNBUFFERED": "1"},
        }
        if self.lab is not None:
            proc = self.lab.popen(node, argv, **kwargs)
        else:
            proc = subprocess.Popen(argv, **kwargs)
        stderr.close()
        if node in self.workers:
            self.retired.append(self.workers[node])
        self.workers[node] = _Worker(node, proc, self.events)

    def start_all(self, timeout_s: float = 60.0) -> None:
        for node in range(1, self.n + 1):
            self.start(node)
        self.wait_ring(set(range(1, self.n + 1)), timeout_s)

    def wait_ring(self, members: set[int], timeout_s: float = 60.0) -> None:
        """Wait until every live node's latest regular group view has exactly ``members``."""

        def formed() -> bool:
            for node in members:
                views = [v for v in self.workers[node].views if not v["transitional"]]
                if not views or set(views[-1]["members"]) != members:
                    return False
            return True

        self.pump_until(formed, timeout_s, f"a ring of {sorted(members)}")

    def close(self) -> None:
        for worker in self.workers.values():
            if worker.alive:
                with contextlib.suppress(BenchFailed):
                    worker.send({"op": "exit"})
        deadline = time.monotonic() + 10
        for worker in [*self.retired, *self.workers.values()]:
            try:
                worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
            worker.release()

    def kill(self, node: int) -> int:
        """SIGKILL node ``node``; return the monotonic time just before the signal."""
        worker = self.workers[node]
        t_ns = time.monotonic_ns()
        os.kill(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait()
        return t_ns

    # ---------------------------------------------------------------- commands

    def command(self, nodes: list[int], op: dict[str, Any]) -> int:
        """Send ``op`` to ``nodes``; for a phase, wait until all are armed, then say go."""
        op_id = next(self._ids)
        for node in nodes:
            self.workers[node].send({**op, "id": op_id})
        if "phase" in op:
            self.pump_until(
                lambda: all((n, op_id) in self.armed for n in nodes), 60, f"nodes armed {op_id}"
            )
            for node in nodes:
                self.workers[node].send({"op": "go", "phase": op["phase"]})
        return op_id

    def collect(self, nodes: list[int], op_id: int, timeout_s: float) -> dict[int, dict[str, Any]]:
        self.pump_until(
            lambda: all((n, op_id) in self.results for n in nodes), timeout_s, f"results {op_id}"
        )
        return {n: self.results.pop((n, op_id)) for n in nodes}

    def pump_until(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchFailed(f"{self.variant.name}: timed out waiting for {what}")
            try:
                index, event = self.events.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            self._dispatch(index, event)

    def _dispatch(self, index: int, event: dict[str, Any]) -> None:
        worker = self.workers[index]
        kind = event.get("event")
        if kind == "view":
            worker.views.append(event)
        elif kind == "ring":
            worker.rings.append(event)
        elif kind == "armed":
            self.armed.add((index, int(event["id"])))
        elif kind == "result":
            worker.peak_rss_kb = max(worker.peak_rss_kb, int(event.get("peak_rss_kb", 0)))
            self.results[(index, int(event["id"]))] = event
        elif kind == "error":
            raise BenchFailed(f"{self.variant.name}: {event['message']} {self._stderr(index)}")
        elif kind == "exited" and worker.proc.poll() not in (None, -signal.SIGKILL, 0):
            raise BenchFailed(f"{self.variant.name}: node {index} exited {self._stderr(index)}")

    def _stderr(self, node: int) -> str:
        path = self.workdir / f"node{node}.stderr"
        text = path.read_text(errors="replace")[-1500:] if path.exists() else ""
        return f"(stderr of node {node}: {text.strip()!r})" if text.strip() else ""


# ---------------------------------------------------------------------- verification


def verify_stream(
    name: str, results: dict[int, dict[str, Any]], senders: list[int]
) -> dict[str, Any]:
    """Every receiver delivered every sender's full count, in order, in the same sequence."""
    total = 0
    for sender in senders:
        sent = results[sender].get("sent") if sender in results else None
        ends = {node: r["ends"].get(str(sender)) for node, r in results.items()}
        if len(set(ends.values())) != 1 or (sent is not None and ends[sender] != sent):
            raise BenchFailed(f"{name}: receivers disagree on node {sender}'s count: {ends}")
        total += int(next(iter(ends.values())))
    for node, r in results.items():
        if r["errors"]:
            raise BenchFailed(f"{name}: node {node} delivered out of sequence: {r['errors']}")
        if r["received"] != total:
            raise BenchFailed(f"{name}: node {node} delivered {r['received']} of {total}")
    digests = {r["digest"] for r in results.values()}
    if len(digests) != 1:
        shown = {n: r["digest"] for n, r in results.items()}
        raise BenchFailed(f"{name}: receivers delivered different sequences: {shown}")
    return {"messages": total, "receivers": len(results), "digest": digests.pop()}


# ---------------------------------------------------------------------- the measurements


class _Session:
    """One run of one variant: a fresh cluster and the measurements on it, in order."""

    def __init__(self, cluster: Cluster, options: Options, run_index: int, phase: int) -> None:
        self.c = cluster
        self.o = options
        self.run = run_index
        self.phase = phase
        self.figures: dict[str, Any] = {}
        self.checks: list[dict[str, Any]] = []

    def next_phase(self) -> int:
        self.phase += 1
        return self.phase

    def stream(
        self, name: str, senders: list[int], size: int, seconds: float, count: int | None = None
    ) -> dict[int, dict[str, Any]]:
        nodes = sorted(n for n, w in self.c.workers.items() if w.alive)
        op: dict[str, Any] = {
            "op": "stream",
            "phase": self.next_phase(),
            "senders": senders,
            "size": size,
            "seconds": seconds,
            "timeout_s": seconds + 120,
        }
        if count is not None:
            op["count"] = count
        results = self.c.collect(nodes, self.c.command(nodes, op), seconds + 150)
        self.checks.append({"phase": name, **verify_stream(name, results, senders)})
        return results

    def tput(self) -> None:
        for size in self.o.sizes:
            results = self.stream(f"tput {size} B", [1], size, self.o.seconds, self.o.count)
            rates = [_rate(r) for node, r in results.items() if node != 1]
            rate = statistics.mean(rates)
            self.figures[f"tput_{size}_msgs"] = rate
            self.figures[f"tput_{size}_MBps"] = rate * size / 1e6
            lat = [r["queue_latency_p50_ns"] for n, r in results.items() if n != 1]
            if all(x is not None for x in lat):
                self.figures[f"tput_{size}_queue_ms"] = statistics.mean(lat) / 1e6
            self._cpu(f"tput_{size}", results)

    def _cpu(self, prefix: str, results: dict[int, dict[str, Any]]) -> None:
        """CPU µs per delivered message at the sender and at a receiver, and the GC's share."""
        messages = max(1, results[1]["received"])
        receiver = results[max(results)]
        self.figures[f"{prefix}_sender_cpu_us"] = results[1]["cpu_s"] * 1e6 / messages
        self.figures[f"{prefix}_receiver_cpu_us"] = receiver["cpu_s"] * 1e6 / messages
        self.figures[f"{prefix}_sender_gc_pct"] = (
            100 * results[1]["gc_ms"] / 1000 / max(results[1]["cpu_s"], 1e-9)
        )
        self.figures[f"{prefix}_gc_max_ms"] = max(r["gc_max_ms"] for r in results.values())
        protocol = [r["protocol"] for r in results.values()]
        self.figures[f"{prefix}_retransmits"] = sum(p["mcasts_retransmitted"] for p in protocol)
        tokens = max(1, results[1]["protocol"]["tokens_received"])
        self.figures[f"{prefix}_msgs_per_rotation"] = messages / tokens

    def conc(self) -> None:
        senders = list(range(1, self.c.n + 1))
        results = self.stream("conc 64 B", senders, 64, self.o.seconds, self.o.count)
        self.figures["conc_64_msgs"] = statistics.mean(_rate(r) for r in results.values())
        self._cpu("conc_64", results)

    def ping(self) -> None:
        for safe, gap, count in itertools.product(
            (False, True), (0, 10), (self.o.pings, self.o.gap_pings)
        ):
            if (gap == 0) != (count == self.o.pings):
                continue
            label = f"rtt_{'safe' if safe else 'agreed'}_{'b2b' if gap == 0 else '10ms'}"
            nodes = sorted(n for n, w in self.c.workers.items() if w.alive)
            op = {"op": "ping", "phase": self.next_phase(), "pinger": 1, "size": 64}
            op |= {"safe": safe, "gap_ms": gap, "count": count, "warmup": 10}
            results = self.c.collect(nodes, self.c.command(nodes, op), 60 + count * 0.05)
            rtts = sorted(results[1]["rtt_ns"])
            for p in (50, 90, 99):
                self.figures[f"{label}_p{p}_us"] = _percentile(rtts, p) / 1000
            one_way = sorted(x for n, r in results.items() if n != 1 for x in r["one_way_ns"])
            if one_way:
                self.figures[f"{label}_oneway_p50_us"] = _percentile(one_way, 50) / 1000

    def failover(self, label: str) -> None:
        """SIGKILL node N 2 s into a 1 KiB load from node 1; kill → views at the survivors."""
        victim, survivors = self.c.n, list(range(1, self.c.n))
        times: list[float] = []
        for _ in range(self.o.failovers):
            token = self.c.variant.config().get("token_timeout_ms", 1000)
            seconds = _KILL_AFTER_S + 2 * token * 2.2 / 1000 + 1.0  # consensus = 1.2 x token
            nodes = sorted(self.c.workers)
            op = {"op": "stream", "phase": self.next_phase(), "senders": [1], "size": 1024}
            op |= {"seconds": seconds, "timeout_s": seconds + 60}
            op_id = self.c.command(nodes, op)
            time.sleep(_KILL_AFTER_S)
            views_before = {n: len(self.c.workers[n].views) for n in survivors}
            t_kill = self.c.kill(victim)
            results = self.c.collect(survivors, op_id, seconds + 90)
            self.checks.append({"phase": label, **verify_stream(label, results, [1])})
            after = []
            for n in survivors:
                new = self.c.workers[n].views[views_before[n] :]
                hit = [v["t_ns"] for v in new if victim in v["left"] and v["t_ns"] > t_kill]
                if not hit:
                    raise BenchFailed(f"{label}: node {n} saw no view without node {victim}")
                after.append((hit[0] - t_kill) / 1e6)
            times.append(max(after))
            self.figures[f"{label}_gap_ms"] = results[survivors[-1]]["max_gap_ns"] / 1e6
            self.c.start(victim)
            self.c.wait_ring(set(range(1, self.c.n + 1)))
        self.figures[f"{label}_ms"] = statistics.median(times)

    def leave(self) -> None:
        """Node N closes cleanly on an idle ring; leave → group view and ring view at the others."""
        leaver, survivors = self.c.n, list(range(1, self.c.n))
        marks = {n: (len(self.c.workers[n].views), len(self.c.workers[n].rings)) for n in survivors}
        result = self.c.collect([leaver], self.c.command([leaver], {"op": "leave"}), 60)[leaver]
        t0 = int(result["t_start_ns"])

        def seen() -> bool:
            return all(
                any(leaver in r["left"] for r in self.c.workers[n].rings[marks[n][1] :])
                for n in survivors
            )

        self.c.pump_until(seen, 30, f"survivors' ring view without node {leaver}")
        group_ms, ring_ms = [], []
        for n in survivors:
            views = self.c.workers[n].views[marks[n][0] :]
            rings = self.c.workers[n].rings[marks[n][1] :]
            group_ms += [(v["t_ns"] - t0) / 1e6 for v in views if leaver in v["left"]][:1]
            ring_ms += [(r["t_ns"] - t0) / 1e6 for r in rings if leaver in r["left"]][:1]
        if group_ms:
            self.figures["leave_group_view_ms"] = max(group_ms)
        self.figures["leave_ring_view_ms"] = max(ring_ms)

    def soak(self) -> None:
        seconds = self.o.soak_seconds
        nodes = sorted(self.c.workers)
        op = {"op": "stream", "phase": self.next_phase(), "senders": [1], "size": 64}
        op |= {"seconds": seconds, "timeout_s": seconds + 120, "sample_s": max(1, seconds / 30)}
        results = self.c.collect(nodes, self.c.command(nodes, op), seconds + 180)
        self.checks.append({"phase": "soak", **verify_stream("soak", results, [1])})
        self.figures["soak_rss_mb"] = {
            str(n): [round(kb / 1024, 1) for _, kb, _ in r["rss_samples"]]
            for n, r in results.items()
        }
        self.figures["soak_gc_objects"] = {
            str(n): [objects for _, _, objects in r["rss_samples"]] for n, r in results.items()
        }
        self.figures["soak_msgs"] = statistics.mean(_rate(r) for n, r in results.items() if n != 1)


def _rate(result: dict[str, Any]) -> float:
    span = result["last_ns"] - result["first_ns"]
    return (result["received"] - 1) / (span / 1e9) if span > 0 else 0.0


def _percentile(values: list[int], pct: int) -> float:
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, round(pct / 100 * len(values) + 0.5) - 1))
    return float(values[index])


# ---------------------------------------------------------------------- orchestration


def _variants(options: Options) -> list[tuple[Variant, tuple[str, ...]]]:
    """The sessions one run needs: each variant with the measurements made on it."""
    want = set(options.measurements)
    main: tuple[str, ...] = tuple(m for m in ("tput", "conc", "ping", "soak") if m in want)
    if "failover" in want:
        main += ("failover_default",)
    if "leave" in want:
        main += ("leave",)
    big: tuple[str, ...] = tuple(m for m in ("tput", "conc") if m in want)
    big_frames = (("frame_payload_bytes", options.big_frames),) if options.big_frames else ()
    out: list[tuple[Variant, tuple[str, ...]]] = []
    for extra in options.grid or ((),):
        settings = options.settings + extra
        for sealed in options.sealing:
            for accelerated in options.accelerated:
                if main:
                    out.append((Variant(sealed, accelerated, "default", settings), main))
                if big and big_frames:
                    out.append(
                        (Variant(sealed, accelerated, "default", settings + big_frames), big)
                    )
            if "failover" in want:
                variant = Variant(sealed, options.accelerated[0], "corosync", settings)
                out.append((variant, ("failover_corosync",)))
    return out


@contextlib.contextmanager
def _lab(options: Options) -> Iterator[Any]:
    if not options.netns:
        yield None
        return
    from gcs.bench import netns

    why = netns.netns_available()
    if why is not None:
        raise BenchFailed(f"--netns is not available here: {why}")
    with netns.NetLab(options.nodes, links=options.links) as lab:
        yield lab


def _session(
    variant: Variant, measures: tuple[str, ...], options: Options, run_index: int, lab: Any
) -> dict[str, Any]:
    """One run of ``measures`` on fresh processes in ``variant``.

    A measurement that fails (a node cut off as a slow consumer, a timeout, a sequence that
    does not verify) is recorded with its reason, the ring is started afresh, and the next
    measurement goes on: one bad phase must not cost the rest of a long comparison.
    """
    figures: dict[str, Any] = {}
    checks: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    peaks: dict[int, float] = {}
    pending = list(measures)
    phase = run_index * 1000
    with tempfile.TemporaryDirectory(prefix="gcs-bench-ring-") as tmp:
        for attempt in itertools.count():
            if not pending:
                break
            workdir = Path(tmp) / f"ring{attempt}"
            workdir.mkdir()
            cluster = Cluster(
                variant,
                options.nodes,
                workdir,
                lab,
                links=options.links,
                link_mode=options.link_mode,
            )
            session = _Session(cluster, options, run_index, phase)
            try:
                cluster.start_all()
                _measure(session, pending, options, errors)
            except BenchFailed as exc:  # the ring did not even form: give up on this run
                errors.append({"measure": "start", "error": str(exc)})
                pending.clear()
            finally:
                cluster.close()
                for node, worker in cluster.workers.items():
                    peaks[node] = max(peaks.get(node, 0.0), worker.peak_rss_kb / 1024)
                figures.update(session.figures)
                checks += session.checks
                phase = session.phase
    if any(peaks.values()):
        figures["peak_rss_mb"] = max(peaks.values())
        figures.update({f"peak_rss_mb_node{n}": peak for n, peak in peaks.items()})
    return {"figures": figures, "checks": checks, "errors": errors}


def _measure(
    session: _Session, pending: list[str], options: Options, errors: list[dict[str, str]]
) -> None:
    """Run the pending measurements in order; return early after one fails (it is removed)."""
    variant = session.c.variant
    while pending:
        measure = pending.pop(0)
        options.say(f"run {session.run + 1}/{options.runs} {variant.name}: {measure}")
        try:
            if measure.startswith("failover"):
                session.failover(measure)
            else:
                getattr(session, measure)()
        except BenchFailed as exc:
            options.say(f"  FAILED: {exc}")
            errors.append({"measure": measure, "error": str(exc)})
            return


def run(options: Options) -> dict[str, Any]:
    """Run every selected measurement ``options.runs`` times; medians per variant and figure."""
    plan = _variants(options)
    per_variant: dict[Variant, list[dict[str, Any]]] = {v: [] for v, _ in plan}
    with _lab(options) as lab:
        for run_index in range(options.runs):
            for variant, measures in plan:
                per_variant[variant].append(_session(variant, measures, options, run_index, lab))
    variants = []
    errors = []
    for variant, runs in per_variant.items():
        for index, one in enumerate(runs):
            errors += [{"variant": variant.name, "run": index + 1, **e} for e in one["errors"]]
        variants.append(
            {
                "name": variant.name,
                "sealed": variant.sealed,
                "accelerated": variant.accelerated,
                "timers": variant.timers,
                "config": variant.config(),
                "settings": dict(variant.settings),
                "figures": _medians([r["figures"] for r in runs]),
                "runs": runs,
            }
        )
    return {
        "benchmark": "ring",
        "mode": "netns" if options.netns else "loopback",
        "nodes": options.nodes,
        "runs": options.runs,
        "seconds": options.seconds,
        "verified": True,  # every phase that completed was verified (a failed one is in errors)
        "errors": errors,
        "machine": _machine(),
        "variants": variants,
    }


def _medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = sorted({k for r in runs for k in r})
    out: dict[str, Any] = {}
    for key in keys:
        values = [r[key] for r in runs if key in r]
        if all(isinstance(v, int | float) for v in values):
            out[key] = statistics.median(values)
        else:
            out[key] = values  # series (the soak RSS samples): kept per run
    return out


def _machine() -> dict[str, Any]:
    from importlib import metadata

    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("uvloop", "cbor2", "cryptography"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "build": build_info().describe(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        **versions,
    }


# ---------------------------------------------------------------------- the table


_ROWS: tuple[tuple[str, str, str], ...] = (
    ("tput_64_msgs", "1 sender 64 B", "msg/s"),
    ("tput_64_MBps", "1 sender 64 B", "MB/s"),
    ("tput_1024_msgs", "1 sender 1 KiB", "msg/s"),
    ("tput_1024_MBps", "1 sender 1 KiB", "MB/s"),
    ("tput_16384_msgs", "1 sender 16 KiB", "msg/s"),
    ("tput_16384_MBps", "1 sender 16 KiB", "MB/s"),
    ("conc_64_msgs", "all send 64 B (total)", "msg/s"),
    ("rtt_agreed_b2b_p50_us", "agreed RTT b2b p50", "µs"),
    ("rtt_agreed_b2b_p90_us", "agreed RTT b2b p90", "µs"),
    ("rtt_agreed_b2b_p99_us", "agreed RTT b2b p99", "µs"),
    ("rtt_agreed_10ms_p50_us", "agreed RTT 10 ms p50", "µs"),
    ("rtt_agreed_10ms_p99_us", "agreed RTT 10 ms p99", "µs"),
    ("rtt_safe_b2b_p50_us", "safe RTT b2b p50", "µs"),
    ("rtt_safe_b2b_p99_us", "safe RTT b2b p99", "µs"),
    ("rtt_safe_10ms_p50_us", "safe RTT 10 ms p50", "µs"),
    ("rtt_safe_10ms_p99_us", "safe RTT 10 ms p99", "µs"),
    ("failover_corosync_ms", "kill -9 → view (300/360)", "ms"),
    ("failover_default_ms", "kill -9 → view (defaults)", "ms"),
    ("leave_group_view_ms", "leave → group view", "ms"),
    ("leave_ring_view_ms", "leave → ring view", "ms"),
    ("peak_rss_mb", "peak RSS per node", "MB"),
)


def format_report(report: dict[str, Any]) -> str:
    """The medians as tables (unsealed, then sealed): a row per figure, a column per variant."""
    lines = [
        f"gcs bench ring: {report['nodes']} nodes on {report['mode']}, median of "
        f"{report['runs']} run(s), {report['seconds']} s per throughput run; every completed "
        f"phase verified (same sequence and full count at every receiver)",
        f"machine: {report['machine']['cpus']} CPUs {report['machine']['cpu']}, Python "
        f"{report['machine']['python']}, load average at the end {report['machine']['load_avg']}",
        f"build: {report['machine'].get('build', 'unknown')} (every node process runs this build)",
    ]
    for sealed in (False, True):
        variants = [v for v in report["variants"] if v["sealed"] is sealed]
        if variants:
            lines += ["", *_table(variants)]
    for v in report["variants"]:
        soak = v["figures"].get("soak_rss_mb")
        if soak:
            lines.append(f"soak RSS samples (MB) {v['name']}: {soak}")
    if report.get("errors"):
        lines += ["", f"{len(report['errors'])} measurement(s) failed (no figure from them):"]
        lines += [
            f"  run {e['run']} {e['variant']}: {e['measure']}: {e['error'][:300]}"
            for e in report["errors"]
        ]
    return "\n".join(lines)


def _table(variants: list[dict[str, Any]]) -> list[str]:
    names = [_short(v) for v in variants]
    width = max([12, *map(len, names)])
    lines = [f"{'figure':<28} {'unit':<6}" + "".join(f" {n:>{width}}" for n in names)]
    for key, label, unit in _ROWS:
        cells = [v["figures"].get(key) for v in variants]
        if all(c is None for c in cells):
            continue
        lines.append(
            f"{label:<28} {unit:<6}" + "".join(f" {_cell(c, unit):>{width}}" for c in cells)
        )
    return lines


def _short(variant: dict[str, Any]) -> str:
    name = ("aes" if variant["sealed"] else "plain") + (
        " accel" if variant["accelerated"] else " classic"
    )
    name += " 300ms" if variant["timers"] == "corosync" else ""
    extra = [f"{_ABBREV.get(k, k)}{v}" for k, v in variant["config"].items() if k in _ABBREV]
    return " ".join([name, *extra])


_ABBREV = {"window_size": "w", "max_messages": "m", "frame_payload_bytes": "f"}


def _cell(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("msg/s",):
        return f"{value:,.0f}"
    if unit in ("MB/s", "MB"):
        return f"{value:.1f}"
    return f"{value:,.0f}"
