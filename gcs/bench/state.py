"""``python -m gcs.bench.state``: how long a state transfer takes, and what it does to latency.

Three node processes on loopback form a ring. Node 1 founds group ``state`` holding a state of
``--sizes`` bytes; node 3 multicasts a small message in another group every ``--probe-ms`` and
records each one's own-delivery latency (send to its own delivery: the ring's ordering latency);
node 2 then joins group ``state`` with ``gcs.join_with_state`` and reports how long it took to
hold the state. For each size the script prints the transfer time and throughput, and the probe
latency (p50/p99/max) before, during and after the transfer. Every figure is measured, none is
asserted: run it on the machine you care about.

Why processes. One process per node keeps the provider's chunk stream, the joiner's reassembly
and the probe on separate event loops (and cores, where there are several), as in a real
deployment; the processes agree on time because ``time.monotonic_ns`` is one clock per host.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

MIB = 1024 * 1024


# ---------------------------------------------------------------------- workers


class _Blob:
    """The provider's state: an opaque blob (its bytes do not matter, only its size)."""

    def __init__(self, size: int) -> None:
        self.state = os.urandom(min(size, 1 << 16)) * (size // (1 << 16) + 1)
        self.state = self.state[:size]

    def snapshot(self) -> bytes:
        return self.state

    def install(self, state: bytes) -> None:
        self.state = state

    def merge(self, sides: Sequence[Any]) -> bytes:
        return bytes(sides[0][1])


def _say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def _provider(config: Any, size: int, window: int, chunk: int) -> None:
    import gcs

    async with gcs.Node(config) as node:
        blob = _Blob(size)
        group = await gcs.join_with_state(
            node, "state", blob, window_bytes=window, chunk_bytes=chunk
        )
        _say(event="ready")
        reader = asyncio.ensure_future(_drain(group))
        await asyncio.to_thread(sys.stdin.read)
        reader.cancel()


async def _drain(group: Any) -> None:
    async for _ in group:
        pass


async def _joiner(config: Any, window: int, chunk: int) -> None:
    import gcs

    async with gcs.Node(config) as node:
        _say(event="ready")
        await asyncio.to_thread(sys.stdin.readline)
        blob = _Blob(0)
        start = time.monotonic_ns()
        group = await gcs.join_with_state(
            node, "state", blob, timeout=600, window_bytes=window, chunk_bytes=chunk
        )
        end = time.monotonic_ns()
        _say(
            event="installed", start_ns=start, end_ns=end, size=len(blob.state), how=group.installed
        )
        await group.leave()


async def _prober(config: Any, every_ms: float) -> None:
    import gcs

    async with gcs.Node(config) as node:
        group = await node.join("probe")
        _say(event="ready")
        samples: list[tuple[int, int]] = []
        stop = asyncio.ensure_future(asyncio.to_thread(sys.stdin.read))
        while not stop.done():
            sent = time.monotonic_ns()
            ticket = await group.send(b"probe")
            await ticket.delivered()
            samples.append((sent, time.monotonic_ns() - sent))
            await asyncio.sleep(every_ms / 1000)
        _say(event="samples", samples=samples)


def _worker(argv: list[str]) -> None:
    import gcs

    role, config_path, value, window, chunk = argv[0], argv[1], argv[2], argv[3], argv[4]
    config = gcs.Config.load(config_path)
    if role == "provider":
        gcs.run(_provider(config, int(value), int(window), int(chunk)))
    elif role == "joiner":
        gcs.run(_joiner(config, int(window), int(chunk)))
    else:
        gcs.run(_prober(config, float(value)))


# ---------------------------------------------------------------------- coordinator


def _configs(directory: Path, token_timeout_ms: int) -> list[Path]:
    from gcs.runtime.endpoint import free_udp_ports

    ports = free_udp_ports(3)
    nodes = "".join(
        f'[[nodes]]\nid = {i + 1}\naddress = "127.0.0.1:{port}"\n\n' for i, port in enumerate(ports)
    )
    paths = []
    for node in (1, 2, 3):
        path = directory / f"node{node}.toml"
        path.write_text(
            f'cluster_name = "bench-state"\nnode_id = {node}\n'
            f"token_timeout_ms = {token_timeout_ms}\n\n{nodes}"
        )
        paths.append(path)
    return paths


def _spawn(role: str, log: Path, *args: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "gcs.bench.state", "--worker", role, *args]
    with log.open("a") as err:  # the workers' warnings (an unkeyed loopback ring) go here
        return subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True
        )


def _expect(proc: subprocess.Popen[str], event: str) -> dict[str, Any]:
    assert proc.stdout is not None
    while line := proc.stdout.readline():
        item: dict[str, Any] = json.loads(line)
        if item.get("event") == event:
            return item
    raise RuntimeError(f"worker exited before {event!r} (exit {proc.wait()})")


def _percentiles(values: list[int]) -> str:
    if not values:
        return "no samples"
    ms = sorted(v / 1e6 for v in values)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (
        f"p50 {statistics.median(ms):6.2f} ms  p99 {p99:6.2f} ms  max {ms[-1]:7.2f} ms  "
        f"({len(ms)} probes)"
    )


def run_one(
    size: int,
    *,
    settle_s: float,
    probe_ms: float,
    token_timeout_ms: int,
    window: int = 1 << 20,
    chunk: int = 256 * 1024,
) -> dict[str, Any]:
    """One transfer of ``size`` bytes; returns the figures (also what ``main`` prints)."""
    with tempfile.TemporaryDirectory(prefix="gcs-bench-state-") as tmp:
        paths = _configs(Path(tmp), token_timeout_ms)
        log = Path(tmp) / "stderr.txt"
        flow = (str(window), str(chunk))
        provider = _spawn("provider", log, str(paths[0]), str(size), *flow)
        joiner = _spawn("joiner", log, str(paths[1]), "0", *flow)
        prober = _spawn("prober", log, str(paths[2]), str(probe_ms), *flow)
        procs = (provider, joiner, prober)
        try:
            for proc in procs:
                _expect(proc, "ready")
            time.sleep(settle_s)  # the ring settles; the probe collects a baseline
            assert joiner.stdin is not None
            joiner.stdin.write("go\n")
            joiner.stdin.flush()
            done = _expect(joiner, "installed")
            time.sleep(settle_s)
            assert prober.stdin is not None
            prober.stdin.close()
            samples = _expect(prober, "samples")["samples"]
        finally:
            for proc in procs:
                if proc.stdin is not None and not proc.stdin.closed:
                    proc.stdin.close()
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    start, end = done["start_ns"], done["end_ns"]
    phases: dict[str, list[int]] = {"before": [], "during": [], "after": []}
    for sent, latency in samples:
        phase = "before" if sent < start else "during" if sent <= end else "after"
        phases[phase].append(latency)
    seconds = (end - start) / 1e9
    return {
        "size": size,
        "received": done["size"],
        "transfer_s": seconds,
        "mib_per_s": size / MIB / seconds if seconds else 0.0,
        "latency": {k: _percentiles(v) for k, v in phases.items()},
    }


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else argv
    if args_in[:1] == ["--worker"]:
        _worker(args_in[1:])
        return 0
    parser = argparse.ArgumentParser(
        prog="python -m gcs.bench.state", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sizes", default="1,50", help="state sizes in MiB (default 1,50)")
    parser.add_argument("--probe-ms", type=float, default=5.0, help="probe interval (ms)")
    parser.add_argument("--settle-s", type=float, default=3.0, help="baseline/tail per phase")
    parser.add_argument("--token-timeout-ms", type=int, default=1000)
    parser.add_argument("--window-kib", type=int, default=1024, help="snapshot bytes in flight")
    parser.add_argument("--chunk-kib", type=int, default=256, help="snapshot chunk size")
    args = parser.parse_args(args_in)
    print(
        f"3-node loopback ring, one process per node, cpus={os.cpu_count()}, "
        f"chunks {args.chunk_kib} KiB, window {args.window_kib} KiB"
    )
    for size_mib in (float(s) for s in args.sizes.split(",")):
        size = int(size_mib * MIB)
        result = run_one(
            size,
            settle_s=args.settle_s,
            probe_ms=args.probe_ms,
            token_timeout_ms=args.token_timeout_ms,
            window=args.window_kib * 1024,
            chunk=args.chunk_kib * 1024,
        )
        ok = "ok" if result["received"] == size else f"GOT {result['received']} BYTES"
        print(
            f"state {size_mib:g} MiB: transferred in {result['transfer_s']:.2f} s "
            f"({result['mib_per_s']:.1f} MiB/s, {ok})"
        )
        for phase in ("before", "during", "after"):
            print(f"  probe latency {phase:<6}  {result['latency'][phase]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
