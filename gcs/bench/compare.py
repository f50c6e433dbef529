"""gcs next to corosync: both sets of figures and the ratio gcs/corosync, per figure.

``docs/bench/compare.sh`` runs the corosync anchor scripts (``run-all.sh`` from the shared
anchors directory, never a copy) and ``gcs bench ring --netns --json`` on the same machine, one
after the other, then calls this module with both outputs::

    python -m gcs.bench.compare --corosync-summary SUMMARY.txt --gcs-json RING.json [--json OUT]

The pairing follows the anchor's own advice: unsealed gcs against corosync ``udpu`` (no
crypto), sealed gcs (AES-256-GCM) against ``knet`` with ``aes256`` + ``sha256``; the failover
with corosync-equivalent timers (token 300 ms, consensus 360 ms) against corosync's ``token:
300`` + ``token_coefficient: 0``. Each ratio is gcs / corosync: above 1 is better for rates,
below 1 is better for times. The targets of issue 6 are printed next to the ratios, with
whether this run met them; a run on a busy machine says little about a quiet one, so the
machine's load is printed too.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gcs.bench.ring import format_report

__all__ = ["FIGURES", "compare", "format_comparison", "main", "parse_corosync_summary"]

_NUMBER = r"([\d,]+(?:\.\d+)?)"


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def parse_corosync_summary(text: str) -> dict[str, dict[str, float]]:
    """The anchor's ``summarize.py`` output -> {config name: {figure key: value}}.

    Keys use gcs's names (``tput_64_msgs``, ``rtt_agreed_b2b_p50_us``, ...), so a corosync
    figure and the gcs figure it is compared with share a key.
    """
    configs: dict[str, dict[str, float]] = {}
    current: dict[str, float] | None = None
    for line in text.splitlines():
        head = re.match(r"== (\S+)", line)
        if head:
            current = configs.setdefault(head.group(1), {})
            continue
        if current is not None:
            current.update(_parse_line(line))
    return configs


def _parse_line(line: str) -> dict[str, float]:
    out: dict[str, float] = {}
    tput = re.search(rf"tput\s+(\d+) B: {_NUMBER} msg/s\s+{_NUMBER} MB/s", line)
    if tput:
        size = tput.group(1)
        out[f"tput_{size}_msgs"] = _num(tput.group(2))
        out[f"tput_{size}_MBps"] = _num(tput.group(3))
    conc = re.search(rf"conc 3x64 B: {_NUMBER} msg/s", line)
    if conc:
        out["conc_64_msgs"] = _num(conc.group(1))
    ping = re.search(
        rf"(ping-64-b2b|ping-64-10ms): .*med {_NUMBER} p90 {_NUMBER} p99 {_NUMBER}", line
    )
    if ping:
        label = "rtt_agreed_b2b" if ping.group(1).endswith("b2b") else "rtt_agreed_10ms"
        out[f"{label}_p50_us"] = _num(ping.group(2))
        out[f"{label}_p90_us"] = _num(ping.group(3))
        out[f"{label}_p99_us"] = _num(ping.group(4))
    failover = re.search(rf"failover .*last survivor med {_NUMBER} ms", line)
    if failover:
        out["failover_ms"] = _num(failover.group(1))
    return out


@dataclass(frozen=True)
class Figure:
    """One compared figure: where each side finds it, and the target on the ratio."""

    label: str
    key: str  # the gcs figure (and, unless corosync_key says otherwise, the corosync one)
    unit: str
    higher_is_better: bool
    target: float | None  # on the ratio gcs/corosync; None: reported, no target
    sealed_target: float | None = None  # the target against knet+aes256, when it differs
    corosync_key: str | None = None
    short_timers: bool = False  # compare with corosync's token 300 / coefficient 0 run


FIGURES: tuple[Figure, ...] = (
    Figure("1 sender 64 B", "tput_64_msgs", "msg/s", True, 2.0, 1.5),
    Figure("1 sender 64 B", "tput_64_MBps", "MB/s", True, None),
    Figure("1 sender 1 KiB", "tput_1024_msgs", "msg/s", True, 1.0),
    Figure("1 sender 1 KiB", "tput_1024_MBps", "MB/s", True, None),
    Figure("1 sender 16 KiB", "tput_16384_msgs", "msg/s", True, 1.0),
    Figure("1 sender 16 KiB", "tput_16384_MBps", "MB/s", True, None),
    Figure("3 senders 64 B (total)", "conc_64_msgs", "msg/s", True, 2.0, 1.5),
    Figure("own-delivery RTT b2b p50", "rtt_agreed_b2b_p50_us", "µs", False, 1.0),
    Figure("own-delivery RTT b2b p90", "rtt_agreed_b2b_p90_us", "µs", False, None),
    Figure("own-delivery RTT b2b p99", "rtt_agreed_b2b_p99_us", "µs", False, None),
    Figure("own-delivery RTT 10 ms p50", "rtt_agreed_10ms_p50_us", "µs", False, 1.0),
    Figure("own-delivery RTT 10 ms p99", "rtt_agreed_10ms_p99_us", "µs", False, None),
    Figure(
        "kill -9 → view, 300/360 ms",
        "failover_corosync_ms",
        "ms",
        False,
        1.05,
        corosync_key="failover_ms",
        short_timers=True,
    ),
    # Each side's default timers (gcs: token 1000 ms; corosync: 3650 ms effective for 3 nodes).
    Figure(
        "kill -9 → view, defaults", "failover_default_ms", "ms", False, None, None, "failover_ms"
    ),
)

_PAIRS = (
    # gcs variants (sealed, timers) -> corosync config
    ("unsealed", False, "default", "udpu"),
    ("sealed", True, "default", "knet-crypto"),
)
_FAILOVER_CONFIG = "udpu-token300-coef0"
"""corosync's kill -> confchg time is token + consensus whatever the transport and crypto (the
anchor measured it with udpu only for token 300 / coefficient 0), so both sides use it."""
_ABSOLUTE = (
    # figure, target, comparison: gcs only (corosync has no such figure in the anchor)
    ("leave_ring_view_ms", "clean leave → ring view", "ms", 50.0),
    ("leave_group_view_ms", "clean leave → group view", "ms", 50.0),
    ("peak_rss_mb", "peak RSS per node", "MB", 100.0),
)


def compare(corosync: dict[str, dict[str, float]], ring: dict[str, Any]) -> dict[str, Any]:
    """Pair every gcs variant with its corosync configuration; ratios per figure."""
    rows: list[dict[str, Any]] = []
    for side, sealed, timers, config in _PAIRS:
        base = corosync.get(config, {})
        failover_base = corosync.get(_FAILOVER_CONFIG, {})
        for variant in ring["variants"]:
            if variant["sealed"] != sealed or variant["timers"] != timers:
                continue
            figures = dict(variant["figures"])
            ring_name = "accelerated" if variant["accelerated"] else "classic"
            frame = variant.get("settings", {}).get("frame_payload_bytes")
            if frame:
                ring_name += f" f{frame}"
            else:  # the failover sessions run with the default frames
                for fo in ring["variants"]:
                    if fo["sealed"] == sealed and fo["timers"] == "corosync":
                        figures.update(fo["figures"])
            rows += _rows(side, ring_name, config, figures, base, failover_base, sealed)
    return {"benchmark": "compare", "rows": rows, "absolute": _absolute(ring)}


def _rows(
    side: str,
    ring_name: str,
    config: str,
    figures: dict[str, Any],
    base: dict[str, float],
    failover_base: dict[str, float],
    sealed: bool,
) -> list[dict[str, Any]]:
    rows = []
    for fig in FIGURES:
        source = failover_base if fig.short_timers else base
        theirs = source.get(fig.corosync_key or fig.key)
        ours = figures.get(fig.key)
        if ours is None:
            continue  # not measured in this variant (the large-frame runs measure throughput)
        ratio = ours / theirs if theirs else None
        target = fig.sealed_target if sealed and fig.sealed_target is not None else fig.target
        met = None
        if ratio is not None and target is not None:
            met = ratio >= target if fig.higher_is_better else ratio <= target
        rows.append(
            {
                "gcs": f"{side} {ring_name}",
                "corosync": "token300-coef0" if fig.short_timers else config,
                "figure": fig.label,
                "key": fig.key,
                "unit": fig.unit,
                "gcs_value": ours,
                "corosync_value": theirs,
                "ratio": ratio,
                "target": target,
                "higher_is_better": fig.higher_is_better,
                "met": met,
            }
        )
    return rows


def _absolute(ring: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for variant in ring["variants"]:
        for key, label, unit, limit in _ABSOLUTE:
            value = variant["figures"].get(key)
            if value is not None:
                out.append(
                    {
                        "gcs": variant["name"],
                        "figure": label,
                        "unit": unit,
                        "value": value,
                        "target": f"< {limit:g}",
                        "met": value < limit,
                    }
                )
    return out


def format_comparison(result: dict[str, Any]) -> str:
    """One table: figure, gcs, corosync, ratio, target, met."""
    lines = [
        f"{'gcs':<28} {'vs corosync':<15} {'figure':<28} {'unit':<6} {'gcs':>10} "
        f"{'corosync':>10} {'ratio':>7} {'target':>8}  met",
    ]
    for row in result["rows"]:
        target = "" if row["target"] is None else ("≥" if row["higher_is_better"] else "≤")
        target += "" if row["target"] is None else f"{row['target']:g}"
        met = {True: "yes", False: "NO", None: ""}[row["met"]]
        lines.append(
            f"{row['gcs']:<28} {row['corosync']:<15} {row['figure']:<28} {row['unit']:<6} "
            f"{_fmt(row['gcs_value']):>10} {_fmt(row['corosync_value']):>10} "
            f"{_fmt(row['ratio'], 2):>7} {target:>8}  {met}"
        )
    lines += ["", "gcs figures without a corosync counterpart in the anchor:"]
    for row in result["absolute"]:
        met = "yes" if row["met"] else "NO"
        lines.append(
            f"  {row['gcs']:<48} {row['figure']:<26} {_fmt(row['value'], 1):>8} {row['unit']:<3}"
            f" target {row['target']}  met {met}"
        )
    return "\n".join(lines)


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gcs.bench.compare", description=__doc__)
    parser.add_argument("--corosync-summary", required=True, type=Path)
    parser.add_argument("--gcs-json", required=True, type=Path)
    parser.add_argument("--json", type=Path, help="also write the comparison here")
    args = parser.parse_args(argv)
    corosync = parse_corosync_summary(args.corosync_summary.read_text())
    ring = json.loads(args.gcs_json.read_text())
    result = compare(corosync, ring)
    result["corosync"] = corosync
    result["machine"] = ring.get("machine")
    print("corosync (anchor scripts, summarize.py):")
    print(args.corosync_summary.read_text().rstrip())
    print()
    print(format_report(ring))
    print()
    print("ratios gcs / corosync (rates: higher is better; times: lower is better):")
    print(format_comparison(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
