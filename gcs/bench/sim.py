"""``gcs bench sim``: how fast the simulator runs on this machine.

Two figures decide how many seeds a researcher can afford: simulated datagrams per wall second
(every one encoded, sealed, carried, opened and handled by a real core) and virtual seconds per
wall second. Both are measured for a 5-node cluster at full load (the workload sends as fast as
flow control allows) and at a moderate load, with sealing on and off, one process.
"""

from __future__ import annotations

import platform
import time
from typing import Any

from gcs.build import build_info
from gcs.sim.network import LinkParams
from gcs.sim.run import run
from gcs.sim.scenario import Scenario, Workload

__all__ = ["format_report", "run_bench"]

MS = 1_000_000

CASES: tuple[tuple[str, Workload], ...] = (
    ("full load, 64 B", Workload(rate=0.0, sizes=(64,), safe=0.0, start_s=0.5, burst=20)),
    ("50 msg/s/node, mixed", Workload(rate=10.0, batch=5, sizes=(64, 300, 1200), safe=0.25)),
)


def _scenario(workload: Workload, wire: str, seconds: float) -> Scenario:
    return Scenario(
        name="bench",
        nodes=5,
        duration_s=seconds,
        quiet_s=1.0,
        link=LinkParams(latency_ns=1 * MS, latency_max_ns=3 * MS),
        workload=workload,
        wire=wire,
    )


def run_bench(seconds: float = 10.0) -> dict[str, Any]:
    rows = []
    for label, workload in CASES:
        # At full load every virtual second carries tens of thousands of messages: keep it short.
        length = min(seconds, 3.0) if workload.rate == 0 else seconds
        for wire in ("sealed", "objects"):
            scenario = _scenario(workload, wire, length)
            started = time.perf_counter()
            cpu = time.process_time()
            result = run(scenario, 1)
            wall = time.perf_counter() - started
            frames = result.metrics.frames_sent
            rows.append(
                {
                    "case": label,
                    "wire": wire,
                    "virtual_s": round(result.virtual_s, 2),
                    "wall_s": round(wall, 2),
                    "cpu_s": round(time.process_time() - cpu, 2),
                    "virtual_per_wall": round(result.virtual_s / wall, 2),
                    "frames": frames,
                    "frames_per_wall_s": round(frames / wall),
                    "events_per_wall_s": round(result.events / wall),
                    "delivered": result.metrics.delivered_messages,
                    "valid": result.valid,
                }
            )
    machine, python = platform.platform(), platform.python_version()
    return {"machine": machine, "python": python, "build": build_info().describe(), "rows": rows}


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"{'case':<22} {'wire':<8} {'virt s':>7} {'wall s':>7} {'virt/wall':>9} "
        f"{'frames/s':>9} {'events/s':>9} {'delivered':>9}  checkers"
    ]
    for r in report["rows"]:
        lines.append(
            f"{r['case']:<22} {r['wire']:<8} {r['virtual_s']:>7.1f} {r['wall_s']:>7.1f} "
            f"{r['virtual_per_wall']:>9.2f} {r['frames_per_wall_s']:>9,} "
            f"{r['events_per_wall_s']:>9,} {r['delivered']:>9,}  "
            f"{'pass' if r['valid'] else 'FAIL'}"
        )
    lines.append(
        f"({report['machine']}, Python {report['python']}, {report.get('build', '?')} build; "
        "wall time includes the checkers)"
    )
    return "\n".join(lines)
