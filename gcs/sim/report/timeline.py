"""What happened when: membership timelines, fault periods, reformation times, time series.

Everything here is computed from a run's ``History`` alone (never from core internals), so a
history loaded back from ``history.jsonl`` gives the same figures as the live run. These are
the quantities researchers ask about (issue 7): which ring each node was in and in which
membership state, when faults were active, how long the membership took to settle after each
fault, and how throughput and latency moved over time.

Definitions (RFC 0007 §7):

* A *fault window* starts at a nemesis event (``Fault`` in the history; events at the same
  instant form one window) and ends at the next one (or the end of the run).
* A *view change* is a distinct regular configuration (ring id) that was not formed at start-up;
  it is attributed to the fault window in which its first member installed it, and its reason
  is the root cause among its members' reasons (``view_changes``).
* The *time to reform* after a fault is the time from the fault to the last installation of a
  regular configuration, by any node, inside its window: when membership stopped changing.
  A window with no installation has no reformation (the fault caused no view change).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from gcs.history import events as h
from gcs.sim.report.metrics import QUANTILES, quantile

__all__ = [
    "FaultPeriod",
    "Interval",
    "Reform",
    "fault_periods",
    "latency_series",
    "membership",
    "nodes_of",
    "reformations",
    "throughput_series",
    "view_changes",
]

S = 1_000_000_000
MS = 1_000_000

# Faults drawn as a span (shaded) rather than an instant, and what ends each of them.
_SPAN_UNTIL = {
    "partition": ("heal", "quiet", "partition"),
    "loss": ("loss",),
}


@dataclass(frozen=True, slots=True)
class Interval:
    """One node in one membership state (and regular ring) from ``start_ns`` to ``end_ns``."""

    node: int
    start_ns: int
    end_ns: int
    state: str  # operational, gather, commit, recovery, starting, down, ...
    ring: str  # the last regular configuration installed, "" before the first one


@dataclass(frozen=True, slots=True)
class FaultPeriod:
    """A nemesis action and how long it was in force (``end_ns == start_ns``: an instant)."""

    kind: str
    node: int
    start_ns: int
    end_ns: int
    label: str


@dataclass(frozen=True, slots=True)
class Reform:
    """How the membership answered one fault window."""

    time_ns: int
    faults: tuple[str, ...]  # labels of the faults that opened the window
    view_changes: int  # distinct regular configurations first installed in the window
    reform_ns: int | None  # fault -> last regular installation in the window; None: no change


def _end_ns(history: h.History) -> int:
    return max((e.time_ns for e in history.events), default=0)


def membership(history: h.History, end_ns: int | None = None) -> list[Interval]:
    """Per-node intervals of (state, ring), from Start/State/Conf/Crash/Leave events."""
    end = _end_ns(history) if end_ns is None else end_ns
    open_: dict[int, tuple[int, str, str]] = {}  # node -> (since, state, ring)
    out: list[Interval] = []

    def move(node: int, t: int, state: str | None, ring: str | None) -> None:
        current = open_.get(node)
        if current is None:
            open_[node] = (t, state or "down", ring or "")
            return
        since, old_state, old_ring = current
        new = (old_state if state is None else state, old_ring if ring is None else ring)
        if new == (old_state, old_ring):
            return
        if t > since:
            out.append(Interval(node, since, t, old_state, old_ring))
            since = t
        open_[node] = (since, *new)

    for event in history.events:
        if isinstance(event, h.Start):
            move(event.node, event.time_ns, "starting", "")
        elif isinstance(event, h.State):
            move(event.node, event.time_ns, event.new, None)
        elif isinstance(event, h.Conf) and event.kind == "regular":
            move(event.node, event.time_ns, None, str(event.ring_id))
        elif isinstance(event, h.Crash | h.Leave | h.Invariant):
            move(event.node, event.time_ns, "down", "")
    for node, (since, state, ring) in sorted(open_.items()):
        if end > since:
            out.append(Interval(node, since, end, state, ring))
    out.sort(key=lambda i: (i.node, i.start_ns))
    return out


def _label(fault: h.Fault) -> str:
    detail = fault.detail
    if fault.kind == "partition":
        groups = detail.get("groups") or []
        shape = "|".join(",".join(str(n) for n in g) for g in groups)
        return f"partition {detail.get('spec') or ''} {shape}".strip()
    if fault.kind in ("block", "unblock"):
        return f"{fault.kind} {detail.get('src')}->{detail.get('dst')}"
    if fault.kind in ("loss", "token_loss", "commit_token_loss"):
        return f"{fault.kind} {detail.get('value')}"
    if fault.kind in ("recovery_loss", "recovery_delay"):
        return f"{fault.kind} {detail.get('spec')} {detail.get('value')}"
    if fault.kind == "clock":
        return f"clock n{fault.node} x{detail.get('rate')}"
    return f"{fault.kind} n{fault.node}" if fault.node else fault.kind


_TIMED = ("pause", "token_loss", "commit_token_loss", "recovery_loss", "recovery_delay")


def _faults(history: h.History) -> list[h.Fault]:
    return [e for e in history.events if isinstance(e, h.Fault)]


def fault_periods(history: h.History, end_ns: int | None = None) -> list[FaultPeriod]:
    """Each nemesis action with the span it was in force, for shading plots."""
    end = _end_ns(history) if end_ns is None else end_ns
    faults = _faults(history)
    out: list[FaultPeriod] = []
    for i, fault in enumerate(faults):
        stop = fault.time_ns
        duration = fault.detail.get("duration_s")
        later = faults[i + 1 :]
        if fault.kind in _TIMED and duration:
            stop = fault.time_ns + int(float(duration) * S)
        elif fault.kind in _SPAN_UNTIL:
            ends = _SPAN_UNTIL[fault.kind]
            stop = next((f.time_ns for f in later if f.kind in ends), end)
        elif fault.kind in ("crash", "leave"):
            stop = next(
                (f.time_ns for f in later if f.kind == "restart" and f.node == fault.node), end
            )
        elif fault.kind == "block":
            stop = next((f.time_ns for f in later if f.kind in ("unblock", "quiet", "heal")), end)
        out.append(FaultPeriod(fault.kind, fault.node, fault.time_ns, stop, _label(fault)))
    return out


def view_changes(history: h.History) -> list[tuple[int, str, str]]:
    """Every regular configuration formed after start-up, once: (first install, ring, reason).

    Each member reports why *it* left its previous ring, and most report ``join <x>``: they
    followed node x into GATHER. The ring's reason is the root cause, the first reason in
    installation order other than ``startup`` and ``join`` (``token_loss`` after a crash,
    ``merge`` after a heal, ``leave``, ...), else ``join`` (a node joined). A ring whose
    members all report ``startup`` is the cluster's first formation and is not counted.
    """
    first: dict[str, int] = {}
    reasons: dict[str, list[str]] = {}
    for event in history.events:
        if isinstance(event, h.Conf) and event.kind == "regular":
            ring = str(event.ring_id)
            first.setdefault(ring, event.time_ns)
            reasons.setdefault(ring, []).append(event.reason.split(" ")[0] or "unknown")
    changes = []
    for ring, time_ns in first.items():
        given = reasons[ring]
        root = [r for r in given if r not in ("startup", "join")]
        if root or "join" in given:
            changes.append((time_ns, ring, root[0] if root else "join"))
    changes.sort()
    return changes


def reformations(history: h.History) -> list[Reform]:
    """One entry per fault window: view changes in it and the time to reform (module doc)."""
    faults = _faults(history)
    starts = sorted({f.time_ns for f in faults})
    if not starts:
        return []
    labels: dict[int, list[str]] = {t: [] for t in starts}
    for fault in faults:
        labels[fault.time_ns].append(_label(fault))
    last_install: dict[int, int] = {}
    for event in history.events:
        if isinstance(event, h.Conf) and event.kind == "regular" and event.time_ns >= starts[0]:
            window = starts[bisect_right(starts, event.time_ns) - 1]
            last_install[window] = event.time_ns
    changes: Counter[int] = Counter()
    for time_ns, _, _ in view_changes(history):
        if time_ns >= starts[0]:
            changes[starts[bisect_right(starts, time_ns) - 1]] += 1
    return [
        Reform(
            time_ns=t,
            faults=tuple(labels[t]),
            view_changes=changes[t],
            reform_ns=last_install[t] - t if t in last_install else None,
        )
        for t in starts
    ]


def throughput_series(
    history: h.History, bin_ns: int, end_ns: int | None = None
) -> list[tuple[float, float]]:
    """(bin start in s, distinct messages first delivered per second in that bin)."""
    end = _end_ns(history) if end_ns is None else end_ns
    bins = [0] * (end // bin_ns + 1)
    seen: set[h.MsgId] = set()
    for event in history.events:
        if isinstance(event, h.Deliver):
            for msg_id in event.msg_ids:
                if msg_id not in seen:
                    seen.add(msg_id)
                    bins[event.time_ns // bin_ns] += 1
    scale = S / bin_ns
    return [(i * bin_ns / S, count * scale) for i, count in enumerate(bins)]


def latency_series(
    history: h.History, bin_ns: int, *, safe: bool, end_ns: int | None = None
) -> list[tuple[float, dict[str, float]]]:
    """Per bin of delivery time: latency quantiles (ms) of agreed or safe deliveries in it."""
    end = _end_ns(history) if end_ns is None else end_ns
    bins: list[list[int]] = [[] for _ in range(end // bin_ns + 1)]
    submitted: dict[h.MsgId, int] = {}
    for event in history.events:
        if isinstance(event, h.Submit):
            submitted[event.msg_id] = event.time_ns
        elif isinstance(event, h.Deliver) and event.safe == safe:
            for msg_id in event.msg_ids:
                sent = submitted.get(msg_id)
                if sent is not None:
                    bins[event.time_ns // bin_ns].append(event.time_ns - sent)
    out: list[tuple[float, dict[str, float]]] = []
    for i, values in enumerate(bins):
        if values:
            values.sort()
            out.append(
                (i * bin_ns / S, {f"{int(q * 100)}": quantile(values, q) / MS for q in QUANTILES})
            )
    return out


def nodes_of(intervals: Iterable[Interval]) -> list[int]:
    return sorted({i.node for i in intervals})
