"""Delivery stall per single-link cut, on real processes in network namespaces (RFC 0010 §7).

    sudo -E .venv/bin/python docs/bench/link_cuts.py [--cuts 6] [--rate 40] [--token-ms 1000]

For ``passive`` and then ``active`` mode: three keyed node processes (the test harness's
``ProcCluster``), one per namespace of a ``NetLab(3, links=2)`` (two bridges), each submitting
``--rate`` messages per second. Node 2 loses one link (iptables on that interface, both ways)
for ``--cut-s`` seconds, then has it back for as long, ``--cuts`` times, alternating link 0 and
link 1. For every cut it prints the delivery latency (submission to delivery, at every node) of
the messages submitted during the cut: p50, p99 and max, and whether any node installed a new
configuration (there must be none, LNK-7-1). All processes share one monotonic clock, so
latencies across processes are exact. The figures are for ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gcs.bench.netns import NetLab  # noqa: E402
from gcs.history import events as h  # noqa: E402
from tests.procs.cluster import ProcCluster  # noqa: E402
from tests.runtime.cluster import make_key  # noqa: E402

MS = 1_000_000


def _quantile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / MS


def _latencies(history: h.History, start: int, end: int) -> list[int]:
    submitted = {
        e.msg_id: e.time_ns
        for e in history.events
        if isinstance(e, h.Submit) and start <= e.time_ns <= end
    }
    return [
        e.time_ns - submitted[m]
        for e in history.events
        if isinstance(e, h.Deliver)
        for m in e.msg_ids
        if m in submitted
    ]


def run_mode(mode: str, args: argparse.Namespace, run_dir: Path) -> None:
    with NetLab(3, links=2) as lab:
        addresses = {i: [f"{lab.address(i, k)}:5405" for k in (0, 1)] for i in lab.ids}
        cluster = ProcCluster(
            run_dir,
            addresses,
            key_file=make_key(run_dir),
            token_timeout_ms=args.token_ms,
            launcher=lambda node, argv, kw: lab.popen(node, argv, **kw),
            extra_config={"link_mode": mode},
        )
        try:
            cluster.start_all(rate=args.rate)
            cluster.wait_ring([1, 2, 3])
            time.sleep(2)
            confs = {n: cluster.count(n, "Conf") for n in (1, 2, 3)}
            cuts: list[tuple[int, int, int]] = []
            for k in range(args.cuts):
                link = k % 2
                lab.cut_link(2, link)
                start = cluster.fault("cut_link", 2, link=link)
                time.sleep(args.cut_s)
                lab.restore_link(2, link)
                end = cluster.fault("restore_link", 2, link=link)
                cuts.append((link, start, end))
                time.sleep(args.cut_s)
            cluster.quiet()
            time.sleep(2)
            history = cluster.snapshot()
            changed = {n: cluster.count(n, "Conf") - confs[n] for n in (1, 2, 3)}
        finally:
            cluster.close()
    every: list[int] = []
    print(f"\n{mode}: {args.cuts} cuts of {args.cut_s} s, token {args.token_ms} ms")
    print("cut  link  messages  p50 ms  p99 ms  max ms")
    for k, (link, start, end) in enumerate(cuts, 1):
        lat = _latencies(history, start, end)
        every += lat
        print(
            f"{k:>3}  {link:>4}  {len(lat):>8}  {_quantile(lat, 0.5):>6.1f}  "
            f"{_quantile(lat, 0.99):>6.1f}  {max(lat) / MS:>6.1f}"
        )
    print(
        f"all  ----  {len(every):>8}  {_quantile(every, 0.5):>6.1f}  "
        f"{_quantile(every, 0.99):>6.1f}  {max(every) / MS:>6.1f}"
    )
    print(f"new configurations during the cuts, per node: {changed}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cuts", type=int, default=6)
    parser.add_argument("--cut-s", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--token-ms", type=int, default=1000)
    parser.add_argument("--modes", default="passive,active")
    args = parser.parse_args()
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory(prefix=f"gcs-link-cuts-{mode}-") as tmp:
            run_mode(mode, args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
