"""Plots of runs and sweeps (the ``plot`` extra: matplotlib, imported only here).

Run plots follow Jepsen's perf checker (RFC 0007 §7): throughput and latency quantiles
over virtual time with every fault period shaded, and a per-node membership timeline (which
ring each node is in and its membership state) in the spirit of Jepsen's timeline.html. Sweep
plots show a metric against a study parameter, one line per series, with 95% confidence
intervals over seeds.

PNG output is made deterministic where matplotlib allows: the Agg backend, no ``Software``
metadata (it carries the version string), a fixed DPI and a fixed hash salt, so the same data
gives the same bytes with the same matplotlib and fonts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

from gcs.sim.report.timeline import (
    FaultPeriod,
    fault_periods,
    latency_series,
    membership,
    nodes_of,
    throughput_series,
)
from gcs.sim.run import Result

__all__ = ["SeriesPoint", "plot_run", "plot_sweep", "save"]

S = 1_000_000_000
STATE_COLOURS = {
    "operational": "#4caf50",
    "gather": "#ffb300",
    "commit": "#1e88e5",
    "recovery": "#8e24aa",
    "starting": "#90a4ae",
    "down": "#e0e0e0",
    "left": "#bdbdbd",
    "failed": "#e53935",
}
FAULT_COLOURS = {"partition": "#ef9a9a", "crash": "#b0bec5", "leave": "#b0bec5"}

matplotlib.rcParams.update({"svg.hashsalt": "gcs", "figure.dpi": 100, "savefig.dpi": 100})

# (series label, x, mean, ci half-width)
SeriesPoint = tuple[str, float, float, float]


def save(fig: Any, path: Path) -> None:
    """Write a PNG without metadata that would differ between machines or versions."""
    fig.savefig(path, format="png", metadata={"Software": None})
    plt.close(fig)


def _bin_ns(end_ns: int) -> int:
    return max(S // 10, (end_ns // 200) // (S // 10) * (S // 10))


def _shade(ax: Any, periods: Sequence[FaultPeriod]) -> None:
    labelled: set[str] = set()
    for p in periods:
        start, end = p.start_ns / S, p.end_ns / S
        if p.kind == "quiet":
            ax.axvline(start, color="black", linestyle=":", linewidth=1)
            continue
        if end > start:
            label = None if p.kind in labelled else p.kind
            labelled.add(p.kind)
            colour = FAULT_COLOURS.get(p.kind, "#ffe082")
            ax.axvspan(start, end, color=colour, alpha=0.35, linewidth=0, label=label)
        else:
            ax.axvline(start, color="#757575", linestyle="--", linewidth=0.8)


def plot_run(result: Result, directory: Path) -> list[Path]:
    """throughput.png, latency.png and membership.png for one run."""
    history = result.history
    end = int(result.virtual_s * S)
    periods = fault_periods(history, end)
    bin_ns = _bin_ns(end)
    title = f"{result.scenario.name}, seed {result.seed}"
    paths = []

    fig, ax = plt.subplots(figsize=(10, 3.5))
    series = throughput_series(history, bin_ns, end)
    ax.step([t for t, _ in series], [v for _, v in series], where="post", color="#1565c0")
    _shade(ax, periods)
    ax.set(xlabel="virtual time (s)", ylabel="messages delivered / s", title=title)
    ax.set_xlim(0, end / S)
    if any(p.end_ns > p.start_ns for p in periods):
        ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    paths.append(directory / "throughput.png")
    save(fig, paths[-1])

    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for ax, safe in zip(axes, (False, True), strict=True):
        points = latency_series(history, bin_ns, safe=safe, end_ns=end)
        for q, style in (("50", "-"), ("95", "--"), ("99", ":"), ("100", "-.")):
            ax.plot([t for t, _ in points], [d[q] for _, d in points], style, label=f"p{q}")
        _shade(ax, periods)
        ax.set(ylabel=f"{'safe' if safe else 'agreed'} latency (ms)")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper right", fontsize="small")
    axes[0].set_title(title)
    axes[1].set(xlabel="virtual time (s)")
    axes[1].set_xlim(0, end / S)
    fig.tight_layout()
    paths.append(directory / "latency.png")
    save(fig, paths[-1])

    paths.append(directory / "membership.png")
    _plot_membership(result, periods, end, title, paths[-1])
    return paths


def _plot_membership(
    result: Result, periods: Sequence[FaultPeriod], end: int, title: str, path: Path
) -> None:
    intervals = membership(result.history, end)
    nodes = nodes_of(intervals)
    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.45 * max(len(nodes), 1)))
    first_seen = sorted((i.start_ns, i.ring) for i in intervals if i.ring)
    ring_index: dict[str, int] = {}
    for _, ring in first_seen:
        ring_index.setdefault(ring, len(ring_index))
    for i in intervals:
        y = nodes.index(i.node)
        colour = STATE_COLOURS.get(i.state, "#000000")
        ax.barh(y, (i.end_ns - i.start_ns) / S, left=i.start_ns / S, height=0.6, color=colour)
        if i.ring and i.state == "operational" and (i.end_ns - i.start_ns) > end // 40:
            ax.text(
                (i.start_ns + i.end_ns) / 2 / S,
                y,
                f"r{ring_index[i.ring]}",
                ha="center",
                va="center",
                fontsize=6,
            )
    for p in periods:
        if p.node in nodes and p.end_ns > p.start_ns:
            y = nodes.index(p.node)
            ax.plot([p.start_ns / S, p.end_ns / S], [y + 0.4, y + 0.4], color="#d32f2f")
        elif p.end_ns == p.start_ns or p.kind == "partition":
            ax.axvline(p.start_ns / S, color="#757575", linestyle="--", linewidth=0.6)
    handles = [
        Rectangle((0, 0), 1, 1, color=c)
        for s, c in STATE_COLOURS.items()
        if any(i.state == s for i in intervals)
    ]
    names = [s for s in STATE_COLOURS if any(i.state == s for i in intervals)]
    ax.legend(
        handles,
        names,
        loc="upper center",
        ncol=len(names),
        fontsize="x-small",
        bbox_to_anchor=(0.5, -0.25 if len(nodes) > 3 else -0.5),
    )
    ax.set_yticks(range(len(nodes)), [f"node {n}" for n in nodes])
    ax.set_xlim(0, end / S)
    ax.set(xlabel="virtual time (s); rN = ring (regular configuration) number N", title=title)
    fig.tight_layout()
    save(fig, path)


def plot_sweep(
    points: Sequence[SeriesPoint],
    path: Path,
    *,
    x_label: str,
    y_label: str,
    title: str,
    logx: bool = False,
    logy: bool = False,
) -> None:
    """One line per series label: mean with a 95% confidence band over seeds."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    labels = list(dict.fromkeys(p[0] for p in points))
    for label in labels:
        mine = sorted((p for p in points if p[0] == label), key=lambda p: p[1])
        xs = [p[1] for p in mine]
        means = [p[2] for p in mine]
        errs = [p[3] for p in mine]
        ax.errorbar(xs, means, yerr=errs, marker="o", capsize=3, label=label or None)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=x_label, ylabel=y_label, title=title)
    ax.grid(True, alpha=0.3)
    if any(labels):
        ax.legend(fontsize="small")
    fig.tight_layout()
    save(fig, path)
