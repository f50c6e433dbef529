"""``gcs bench ...``: micro and macro benchmarks, one sub-command each.

Each benchmark registers itself through a function in ``_BENCHMARKS`` that adds one parser to
the ``bench`` sub-command and sets ``func``; the measuring code lives in ``gcs.bench.<name>`` so
it can be imported (and tested) without the CLI.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

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


_BENCHMARKS: tuple[Callable[[_Subparsers], None], ...] = (_register_wire, _register_sim)
