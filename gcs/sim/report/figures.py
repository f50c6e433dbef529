"""The figures of one run, as a flat row (for sweeps) and as a table (``summary.txt``).

``figures`` turns a ``Result`` into an ordered dict of plain numbers and strings: one CSV row
of a sweep, and the body of a run directory's summary. Column meanings are listed in
``COLUMNS`` (and in ``simulations/README.md``); every column is a pure function of the scenario
and the seed, so a sweep's CSV is byte-identical however and wherever it is computed.

Token rotation time cannot be read from the history (tokens are not history events), so a
``CounterProbe`` samples the cores' counters at the start and the end of the workload period:
the rotation time is the workload period divided by the mean number of tokens each live node
received in it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gcs.sim.report.oneway import one_way_faults
from gcs.sim.report.timeline import reformations, view_changes
from gcs.sim.run import Result
from gcs.sim.scenario import Scenario
from gcs.sim.world import World

__all__ = ["COLUMNS", "CounterProbe", "figures", "format_number", "probe_for", "summary_text"]

S = 1_000_000_000
MS = 1_000_000

REASONS = (
    "token_loss",
    "join",
    "leave",
    "failure_to_receive",
    "merge",
    "recovery_failed",
    "pause",
)

# Column -> meaning. Order is the CSV column order.
COLUMNS: dict[str, str] = {
    "valid": "pass / fail / unknown: the verdict of every checker together",
    "failed": "checkers that failed or could not judge, ';'-separated",
    "submitted": "messages the applications submitted (accepted by flow control)",
    "delivered": "distinct messages delivered by at least one node",
    "msgs_per_s": "delivered / workload period (duration_s - start_s), virtual seconds",
    **{
        f"{kind}_p{q}_ms": f"{kind} delivery latency quantile {q}% (submit -> each delivery)"
        for kind in ("agreed", "safe")
        for q in ("0", "50", "95", "99", "100")
    },
    "rotation_ms": "mean token rotation time during the workload period (counter probe)",
    "rotations_per_s": "1000 / rotation_ms",
    "agreed_per_rotation": "agreed_p50_ms / rotation_ms",
    "safe_per_rotation": "safe_p50_ms / rotation_ms",
    "retransmissions": "mcasts retransmitted by live cores at the end of the run",
    "retrans_per_msg": "retransmissions / delivered",
    "frames_sent": "datagrams offered to the simulated network",
    "frames_lost": "datagrams lost, blocked by a partition or dropped by a frame-type rule",
    "view_changes": "distinct regular configurations formed after start-up",
    "view_changes_per_min": "view_changes per minute of the fault phase (duration_s)",
    **{f"views_{r}": f"view changes whose reason is {r}" for r in REASONS},
    "reform_max_s": "longest time to reform over the fault windows that changed the view",
    "reform_crash_s": "mean time to reform after a crash (windows opened by a crash)",
    "reform_partition_s": "mean time to reform after a partition (split into rings)",
    "reform_heal_s": "mean time to reform after a heal (merge), including the final quiet heal",
    "views_after_pause": "view changes in windows opened by a pause (false suspicions)",
    "views_after_block": "view changes in windows opened by a one-way link failure",
    "oneway_majority_views": "one-way faults: most regular configurations installed during one "
    "block by a node that is neither end of the link (1 = the one necessary exclusion)",
    "oneway_settle_s": "one-way faults: longest time from a block to the isolated end's last "
    "membership change (the whole block if it never settled)",
    "oneway_merge_s": "one-way faults: longest time from an unblock to one ring of every live "
    "node (empty if one never formed before the next fault)",
    "events": "simulator events run (cost, not a protocol figure)",
}


@dataclass
class CounterProbe:
    """Reads every live core's token counter at the start and end of the workload period."""

    start_ns: int
    end_ns: int
    samples: list[dict[int, int]] = field(default_factory=list)

    def __call__(self, world: World) -> None:
        world.at(self.start_ns, self._sample, world)
        world.at(self.end_ns, self._sample, world)

    def _sample(self, world: World) -> None:
        self.samples.append(
            {
                node: host.core.counters.tokens_received
                for node, host in world.hosts.items()
                if host.core is not None
            }
        )

    def rotation_ms(self) -> float:
        """Mean rotation time in ms; 0 when no token moved (or the probe did not run)."""
        if len(self.samples) < 2:
            return 0.0
        first, last = self.samples[0], self.samples[1]
        common = [n for n in last if n in first]
        if not common:
            return 0.0
        tokens = sum(last[n] - first[n] for n in common) / len(common)
        if tokens <= 0:
            return 0.0
        return (self.end_ns - self.start_ns) / MS / tokens


def probe_for(scenario: Scenario) -> CounterProbe:
    """A counter probe spanning the scenario's workload period."""
    return CounterProbe(int(scenario.workload.start_s * S), int(scenario.duration_s * S))


def _mean(values: list[float]) -> float | str:
    return sum(values) / len(values) if values else ""


def _reform_columns(result: Result) -> dict[str, Any]:
    by_kind: dict[str, list[float]] = {"crash": [], "partition": [], "heal": []}
    after: Counter[str] = Counter()
    longest = 0.0
    for window in reformations(result.history):
        kinds = {label.split(" ")[0] for label in window.faults}
        for kind in ("pause", "block"):
            if kind in kinds:
                after[kind] += window.view_changes
        if window.reform_ns is None:
            continue
        seconds = window.reform_ns / S
        longest = max(longest, seconds)
        for kind, values in by_kind.items():
            if kind in kinds or (kind == "heal" and "quiet" in kinds):
                values.append(seconds)
    return {
        "reform_max_s": longest,
        **{f"reform_{k}_s": _mean(v) for k, v in by_kind.items()},
        "views_after_pause": after["pause"],
        "views_after_block": after["block"],
    }


def _one_way_columns(result: Result) -> dict[str, Any]:
    faults = one_way_faults(result.history)
    if not faults:
        return {"oneway_majority_views": "", "oneway_settle_s": "", "oneway_merge_s": ""}
    settles = [f.settle_ns / S for f in faults if f.settle_ns is not None]
    merges = [f.merge_ns for f in faults]
    return {
        "oneway_majority_views": max(f.majority_views for f in faults),
        "oneway_settle_s": max(settles) if settles else "",
        "oneway_merge_s": "" if None in merges else max(m or 0 for m in merges) / S,
    }


def figures(result: Result, probe: CounterProbe | None = None) -> dict[str, Any]:
    """One run as an ordered row of ``COLUMNS`` (numbers unformatted)."""
    m = result.metrics
    failed = [v.name for v in result.verdicts if v.valid is not True]
    rotation = probe.rotation_ms() if probe is not None else 0.0
    changes = view_changes(result.history)
    reasons = Counter(reason for _, _, reason in changes)
    row: dict[str, Any] = {
        "valid": {True: "pass", False: "fail", None: "unknown"}[result.valid],
        "failed": ";".join(failed),
        "submitted": m.submitted,
        "delivered": m.delivered_messages,
        "msgs_per_s": m.msgs_per_s,
    }
    for kind, quantiles in (("agreed", m.agreed_latency_ms), ("safe", m.safe_latency_ms)):
        for q, value in quantiles.items():
            row[f"{kind}_p{q}_ms"] = value
    row["rotation_ms"] = rotation
    row["rotations_per_s"] = 1000.0 / rotation if rotation else 0.0
    row["agreed_per_rotation"] = m.agreed_latency_ms["50"] / rotation if rotation else ""
    row["safe_per_rotation"] = m.safe_latency_ms["50"] / rotation if rotation else ""
    row["retransmissions"] = m.retransmissions
    row["retrans_per_msg"] = m.retransmissions / m.delivered_messages if m.delivered_messages else 0
    row["frames_sent"] = m.frames_sent
    row["frames_lost"] = m.frames_lost
    row["view_changes"] = len(changes)
    minutes = result.scenario.duration_s / 60
    row["view_changes_per_min"] = len(changes) / minutes if minutes else 0.0
    for reason in REASONS:
        row[f"views_{reason}"] = reasons[reason]
    row.update(_reform_columns(result))
    row.update(_one_way_columns(result))
    row["events"] = result.events
    assert list(row) == list(COLUMNS), "figures() and COLUMNS disagree"
    return row


def format_number(value: Any) -> str:
    """A CSV cell: integers as is, floats to 6 significant digits (stable across platforms)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = f"{value:.6g}"
        return "0" if text == "-0" else text
    return str(value)


def summary_text(
    result: Result, probe: CounterProbe | None = None, *, digest: str | None = None
) -> str:
    """The run's ``summary.txt``: verdict, throughput, latency quantiles, views, reformation.

    ``digest`` saves re-hashing the history when the caller has it already.
    """
    row = figures(result, probe)
    m = result.metrics
    lines = [
        f"scenario      {result.scenario.name}",
        f"seed          {result.seed}",
        f"verdict       {row['valid']}" + (f" ({row['failed']})" if row["failed"] else ""),
        f"digest        {digest or result.digest()}",
        f"virtual time  {result.virtual_s:.3f} s, {result.events} events",
        "",
        f"{'delivered':<22}{m.delivered_messages} messages ({m.deliveries} deliveries), "
        f"{m.submitted} submitted",
        f"{'throughput':<22}{m.msgs_per_s:.1f} msgs/s",
        f"{'token rotations':<22}{row['rotations_per_s']:.1f} /s "
        f"(rotation {row['rotation_ms']:.3f} ms, workload period)",
        f"{'retransmissions':<22}{m.retransmissions} (frames sent {m.frames_sent}, "
        f"lost {m.frames_lost})",
        "",
        f"{'latency ms':<12}{'p0':>10}{'p50':>10}{'p95':>10}{'p99':>10}{'p100':>10}",
    ]
    for kind, q in (("agreed", m.agreed_latency_ms), ("safe", m.safe_latency_ms)):
        lines.append(
            f"{kind:<12}" + "".join(f"{q[k]:>10.2f}" for k in ("0", "50", "95", "99", "100"))
        )
    lines += ["", "view changes by reason (distinct rings after start-up)"]
    reasons = {r: row[f"views_{r}"] for r in REASONS if row[f"views_{r}"]}
    lines += [f"  {r:<20}{n}" for r, n in reasons.items()] or ["  none"]
    lines += ["", f"{'fault at':>10}  {'views':>5}  {'reform':>9}  faults"]
    for window in reformations(result.history):
        reform = "-" if window.reform_ns is None else f"{window.reform_ns / S:.3f} s"
        lines.append(
            f"{window.time_ns / S:>9.3f}s  {window.view_changes:>5}  {reform:>9}  "
            + "; ".join(window.faults)
        )
    faults = one_way_faults(result.history)
    if faults:
        lines += [
            "",
            f"{'one-way':>10}  {'majority views':>14}  {'isolated':>8}  "
            f"{'settled after':>13}  {'merged after':>12}",
        ]
    for f in faults:
        settle = "-" if f.settle_ns is None else f"{f.settle_ns / S:.3f} s"
        if not f.settled:
            settle = f"never ({settle})"
        merge = "-" if f.merge_ns is None else f"{f.merge_ns / S:.3f} s"
        lines.append(
            f"{f'{f.src}->{f.dst}':>10}  {f.majority_views:>14}  {f.isolated or '-':>8}  "
            f"{settle:>13}  {merge:>12}"
        )
    lines += ["", "checkers"]
    lines += [
        f"  { ({True: 'pass', False: 'FAIL', None: 'unknown'}[v.valid]):<8}{v.name}"
        for v in result.verdicts
    ]
    return "\n".join(lines) + "\n"
