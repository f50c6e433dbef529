"""``gcs bench ...``: micro and macro benchmarks, one sub-command each.

Each benchmark registers itself through a function in ``_BENCHMARKS`` that adds one parser to
the ``bench`` sub-command and sets ``func``; the measuring code lives in ``gcs.bench.<name>`` so
it can be imported (and tested) without the CLI.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import TypeAlias

    _Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["register"]


def register(subparsers: _Subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure performance on this machine",
        description="Measure performance on this machine. Each benchmark prints a table "
        "(or JSON with --json).",
    )
    benches = parser.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)
    for add in _BENCHMARKS:
        add(benches)


def _register_wire(benches: _Subparsers) -> None:
    parser = benches.add_parser(
        "wire",
        help="encode+seal and open+decode rates of typical frames",
        description="Frames per second through Channel.seal and Channel.open for a token, "
        "small, large and packed mcasts, under each suite (median of interleaved runs).",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeat", type=int, default=7, help="interleaved repetitions (default 7)")
    parser.add_argument(
        "--frames", type=int, default=2000, help="frames per measurement (default 2000)"
    )
    parser.set_defaults(func=_run_wire)


def _run_wire(args: argparse.Namespace) -> int:
    from gcs.bench import wire

    if args.repeat < 1 or args.frames < 1:
        print("gcs bench wire: --repeat and --frames must be positive")
        return 2
    report = wire.run(repeat=args.repeat, frames=args.frames)
    print(json.dumps(report, indent=2) if args.json else wire.format_report(report))
    return 0


def _register_path(benches: _Subparsers) -> None:
    parser = benches.add_parser(
        "path",
        help="CPU per received mcast at one node: open, order, group layer",
        description="CPU time per mcast of one record another node originated, at a real core "
        "of a ring formed in the simulator: the channel's open (authenticate, replay check, "
        "decode), the core's ordering and agreed delivery, the group layer up to a member's "
        "stream, and the three in one loop (median of interleaved runs). GCS_PURE=1 measures "
        "the pure-Python build.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--repeat", type=int, default=7, help="interleaved repetitions (default 7)")
    parser.add_argument(
        "--count", type=int, default=2000, help="mcasts per measurement (default 2000)"
    )
    parser.add_argument("--size", type=int, default=1024, help="record bytes (default 1024)")
    parser.set_defaults(func=_run_path)


def _run_path(args: argparse.Namespace) -> int:
    from gcs.bench import path

    if args.repeat < 1 or args.count < 1 or not 0 <= args.size <= 60_000:
        print("gcs bench path: --repeat and --count must be positive, --size 0..60000")
        return 2
    report = path.run(repeat=args.repeat, count=args.count, size=args.size)
    print(json.dumps(report, indent=2) if args.json else path.format_report(report))
    return 0


def _register_sim(benches: _Subparsers) -> None:
    parser = benches.add_parser(
        "sim",
        help="simulator speed: simulated frames and virtual seconds per wall second",
        description="Run a 5-node simulated cluster at full and moderate load, sealed and "
        "unsealed, and report simulator throughput.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="virtual seconds per case (default 10)"
    )
    parser.set_defaults(func=_run_sim)


def _run_sim(args: argparse.Namespace) -> int:
    from gcs.bench import sim

    if args.seconds <= 0:
        print("gcs bench sim: --seconds must be positive")
        return 2
    report = sim.run_bench(seconds=args.seconds)
    print(json.dumps(report, indent=2) if args.json else sim.format_report(report))
    return 0


def _register_ring(benches: _Subparsers) -> None:
    from gcs.bench.ring import MEASUREMENTS

    parser = benches.add_parser(
        "ring",
        help="a real ring of node processes: throughput, latency, failover, memory",
        description="Start N node processes (loopback, or one network namespace each with "
        "--netns) and measure, like corosync's cpgbench: one sender at 64 B / 1 KiB / 16 KiB, "
        "all nodes sending, own-delivery round trips (agreed and safe), kill -9 and clean leave "
        "to view change, peak RSS. Sealed and unsealed, classic and accelerated ring. Every run "
        "verifies that all receivers delivered the same sequence and the full count.",
    )
    add = parser.add_argument
    add("--json", action="store_true", help="print JSON instead of a table")
    add("--nodes", type=int, default=3, help="ring size (default 3)")
    add("--runs", type=int, default=3, help="runs per figure; medians are reported (default 3)")
    add("--seconds", type=float, default=5.0, help="seconds per throughput run (default 5)")
    add("--count", type=int, help="cap on messages per sender per throughput run")
    add("--sizes", default="64,1024,16384", help="one-sender payload sizes (default 64,1024,16384)")
    add("--pings", type=int, default=2000, help="back-to-back round trips (default 2000)")
    add("--gap-pings", type=int, default=300, help="round trips 10 ms apart (default 300)")
    add("--failovers", type=int, default=1, help="kills per failover run (default 1)")
    add("--soak-seconds", type=float, default=300.0, help="length of the soak run (default 300)")
    add(
        "--only",
        default=None,
        help=f"comma-separated subset of {','.join(MEASUREMENTS)} (default: all but soak)",
    )
    add(
        "--big-frames",
        type=int,
        default=65000,
        metavar="BYTES",
        help="also measure throughput with frame_payload_bytes=BYTES (default 65000; 0: skip)",
    )
    add("--sealing", choices=("both", "on", "off"), default="both", help="AES-256-GCM on/off")
    add("--ring", choices=("both", "classic", "accelerated"), default="both")
    add(
        "--set",
        action="append",
        default=[],
        metavar="NAME=INT",
        help="a gcs.Config integer for every node, e.g. window_size=100 (repeatable)",
    )
    add(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=INT,...",
        help="compare settings: one variant per --grid, interleaved with the others "
        "(e.g. --grid window_size=50,max_messages=17 --grid window_size=100,max_messages=35)",
    )
    add("--netns", action="store_true", help="one network namespace per node on a bridge (root)")
    add("--links", type=int, default=1, help="links per node, 1..8 (RFC 0010; default 1)")
    add("--link-mode", choices=("passive", "active"), default="passive", help="with --links 2+")
    add("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(func=_run_ring)


def _run_ring(args: argparse.Namespace) -> int:
    import sys

    from gcs.bench import ring

    try:
        options = _ring_options(args, ring.MEASUREMENTS)
    except ValueError as exc:
        print(f"gcs bench ring: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        options.progress = lambda text: print(f"[bench] {text}", file=sys.stderr, flush=True)
    report = ring.run(options)
    print(json.dumps(report, indent=2) if args.json else ring.format_report(report))
    return 0


def _ring_options(args: argparse.Namespace, known: tuple[str, ...]) -> Any:
    from gcs.bench.ring import DEFAULT_MEASUREMENTS, Options

    only = DEFAULT_MEASUREMENTS if args.only is None else tuple(args.only.split(","))
    unknown = sorted(set(only) - set(known))
    if unknown:
        raise ValueError(f"unknown measurement(s) {unknown}; choose from {list(known)}")
    settings = _settings(args.set)
    grid = tuple(_settings(entry.split(",")) for entry in args.grid)
    if min(args.runs, args.nodes - 1, args.pings, args.gap_pings, args.failovers) < 1:
        raise ValueError("--runs, --pings, --gap-pings, --failovers must be >= 1, --nodes >= 2")
    if not 1 <= args.links <= 8:
        raise ValueError("--links must be in 1..8")
    if args.seconds <= 0 or (args.count is not None and args.count < 1):
        raise ValueError("--seconds and --count must be positive")
    return Options(
        nodes=args.nodes,
        runs=args.runs,
        seconds=args.seconds,
        count=args.count,
        sizes=tuple(int(s) for s in args.sizes.split(",")),
        pings=args.pings,
        gap_pings=args.gap_pings,
        failovers=args.failovers,
        soak_seconds=args.soak_seconds,
        measurements=only,
        sealing={"both": (False, True), "on": (True,), "off": (False,)}[args.sealing],
        accelerated={"both": (False, True), "classic": (False,), "accelerated": (True,)}[args.ring],
        settings=settings,
        big_frames=args.big_frames,
        grid=grid,
        netns=args.netns,
        links=args.links,
        link_mode=args.link_mode,
    )


def _settings(items: list[str]) -> tuple[tuple[str, int], ...]:
    """``["window_size=100", ...]`` -> ``(("window_size", 100), ...)``; ValueError if malformed."""
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not value.lstrip("-").isdigit():
            raise ValueError(f"expected NAME=INT, got {item!r}")
        out.append((name, int(value)))
    return tuple(out)


_BENCHMARKS: tuple[Callable[[_Subparsers], None], ...] = (
    _register_wire,
    _register_path,
    _register_sim,
    _register_ring,
)
