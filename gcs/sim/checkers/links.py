"""Redundant links: a cut link costs no configuration change, only a short stall (RFC 0010).

``check_link_failover`` judges what a link-cut scenario claims (its ``[expect]`` table, passed
in ``CheckParams.link_failover``), from the history alone:

* ``no_view_change``: once every node that started has installed one regular configuration of
  all of them (the ring formed), no node installs another configuration for the rest of the
  run. With redundant links, a cut of one link of a node is the driver's business: the ring
  must not notice it (RFC 0010 LNK-7-1).
* ``cut_latency_ns``: every workload message submitted while some link is cut (between a
  ``cut_link`` fault and its ``restore_link``) is delivered by every node that delivers it
  within this long of its submission: the delivery stall a cut causes is bounded by the link
  failover, not by the token timeout (LNK-7-2).

Its statistics give the latency of messages submitted during cuts and outside them (p50, p99,
max in ms), which is what the scenario's report compares.
"""

from __future__ import annotations

from gcs.history import events as h
from gcs.sim.checkers.index import Source, as_index
from gcs.sim.checkers.judges import judges
from gcs.sim.checkers.params import DEFAULT_PARAMS, CheckParams
from gcs.sim.checkers.verdict import Problems, Stat, Verdict, fmt_t

__all__ = ["check_link_failover", "cut_intervals"]

MS = 1_000_000


@judges("LNK-7-1", "LNK-7-2")
def check_link_failover(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """The scenario's link-failover claims (module docstring); unknown without them."""
    problems = Problems("link_failover")
    expect = params.link_failover
    if expect is None:
        return problems.unknown("needs CheckParams.link_failover (a scenario's [expect])")
    no_view_change, bound_ns = expect
    events = as_index(history).history.events
    cuts = cut_intervals(events)
    stats: dict[str, Stat] = {"cuts": len(cuts)}
    if no_view_change:
        _check_no_change(events, problems, stats)
    inside, outside = _latencies(events, cuts, bound_ns, problems)
    stats.update(_summary("cut", inside))
    stats.update(_summary("uncut", outside))
    return problems.verdict(stats)


def cut_intervals(events: list[h.Event]) -> list[tuple[int, int, int, int]]:
    """(from, to, node, link) of every link cut; ``to`` is the end of the history if never
    restored."""
    end = events[-1].time_ns if events else 0
    open_cuts: dict[tuple[int, int], int] = {}
    out: list[tuple[int, int, int, int]] = []
    for event in events:
        if not isinstance(event, h.Fault) or event.kind not in ("cut_link", "restore_link"):
            continue
        key = (event.node, int(event.detail.get("link", 0)))
        if event.kind == "cut_link":
            open_cuts.setdefault(key, event.time_ns)
        elif key in open_cuts:
            out.append((open_cuts.pop(key), event.time_ns, *key))
    out += [(start, end, *key) for key, start in open_cuts.items()]
    return sorted(out)


def _check_no_change(events: list[h.Event], problems: Problems, stats: dict[str, Stat]) -> None:
    nodes = {e.node for e in events if isinstance(e, h.Start)}
    formed: set[int] = set()
    formed_at: int | None = None
    for event in events:
        if not isinstance(event, h.Conf):
            continue
        if formed_at is None:
            if event.kind == "regular" and set(event.members) == nodes:
                formed.add(event.node)
                if formed == nodes:
                    formed_at = event.time_ns
            continue
        problems.add(
            f"node {event.node} installed {event.kind} configuration {event.ring_id} "
            f"{list(event.members)} at {fmt_t(event.time_ns)}, after the ring of all nodes "
            f"formed at {fmt_t(formed_at)} ({event.reason})"
        )
    if formed_at is None:
        problems.add(f"the nodes {sorted(nodes)} never all installed one configuration of all")
    else:
        stats["formed_ms"] = round(formed_at / MS, 3)


def _latencies(
    events: list[h.Event],
    cuts: list[tuple[int, int, int, int]],
    bound_ns: int,
    problems: Problems,
) -> tuple[list[int], list[int]]:
    """Delivery latencies of messages submitted during a cut, and of the others."""
    submitted = {e.msg_id: e.time_ns for e in events if isinstance(e, h.Submit)}
    inside: list[int] = []
    outside: list[int] = []
    for event in events:
        if not isinstance(event, h.Deliver):
            continue
        for msg_id in event.msg_ids:
            at = submitted.get(msg_id)
            if at is None:
                continue
            latency = event.time_ns - at
            if not any(start <= at <= stop for start, stop, _, _ in cuts):
                outside.append(latency)
                continue
            inside.append(latency)
            if bound_ns > 0 and latency > bound_ns:
                problems.add(
                    f"message {msg_id}, submitted at {fmt_t(at)} while a link was cut, reached "
                    f"node {event.node} after {latency / MS:.1f} ms (bound {bound_ns / MS:.0f} ms)"
                )
    return inside, outside


def _summary(prefix: str, values: list[int]) -> dict[str, Stat]:
    if not values:
        return {f"{prefix}_messages": 0}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / MS, 3)

    return {
        f"{prefix}_messages": len(values),
        f"{prefix}_p50_ms": at(0.5),
        f"{prefix}_p99_ms": at(0.99),
        f"{prefix}_max_ms": round(ordered[-1] / MS, 3),
    }
