"""What a one-way link fault costs the membership, read from a history (RFC 0007 SIM-7.2-3).

A one-way fault ``a -> b`` (everything a sends to b is dropped, b -> a works) leaves a ring that
cannot hold both a and b: one of them must go, once, and come back once the link heals. Three
figures say how well the membership does that, for each ``block`` in the history, from the
block to the matching ``unblock`` (or a ``heal``, or the ``quiet`` that ends the fault phase):

* ``majority_views``: the regular configurations installed during the block by the nodes that
  are neither a nor b, the most any of them installed. One is the necessary exclusion; every
  further one stalls the healthy majority for a consensus timeout or more.
* ``settle_ns``: from the block to the last membership-state change of the *isolated* node (the
  endpoint outside the ring the others are in when the block ends), if it is then operational;
  the whole block if it is not (it never settled).
* ``merge_ns``: from the end of the block to the moment every live node has installed one
  regular configuration containing all of them; ``None`` if that did not happen before the
  next fault.

Everything is computed from the history alone, so the simulator and the network-namespace
tests (whose nodes record the same events, with monotonic timestamps) measure the same way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from gcs.history import events as h
from gcs.wire.frames import RingId

__all__ = ["OneWayFault", "one_way_faults"]

_ENDS = ("heal", "quiet")


@dataclass(frozen=True, slots=True)
class OneWayFault:
    """The membership's answer to one one-way link fault (module docstring)."""

    src: int
    dst: int
    start_ns: int
    end_ns: int
    isolated: int | None  # None: both endpoints were still in one ring (the block went unseen)
    majority_views: int
    settle_ns: int | None  # None when no node was isolated
    settled: bool  # the isolated node was operational when the block ended
    merge_ns: int | None


def _pair(fault: h.Fault) -> tuple[int, int]:
    return int(fault.detail.get("src", 0)), int(fault.detail.get("dst", 0))


def _blocks(history: h.History) -> list[tuple[h.Fault, int, int]]:
    """(block, end of it, start of the next fault after the end) for every block."""
    faults = [e for e in history.events if isinstance(e, h.Fault)]
    last = max((e.time_ns for e in history.events), default=0)
    out = []
    for i, fault in enumerate(faults):
        if fault.kind != "block":
            continue
        later = faults[i + 1 :]
        end = next(
            (
                f
                for f in later
                if f.kind in _ENDS or (f.kind == "unblock" and _pair(f) == _pair(fault))
            ),
            None,
        )
        end_ns = last if end is None else end.time_ns
        after = next((f.time_ns for f in later if f.time_ns > end_ns), last)
        out.append((fault, end_ns, after))
    return out


@dataclass
class _Node:
    """One incarnation's membership as the history is replayed."""

    ring: RingId | None = None
    members: tuple[int, ...] = ()
    state: str = "starting"
    alive: bool = True


def _replay(history: h.History, until_ns: int) -> dict[tuple[int, int], _Node]:
    nodes: dict[tuple[int, int], _Node] = {}
    for event in history.events:
        if event.time_ns >= until_ns:
            break
        _apply(nodes, event)
    return nodes


def _apply(nodes: dict[tuple[int, int], _Node], event: h.Event) -> None:
    if isinstance(event, h.Fault):
        return
    node = nodes.setdefault((event.node, event.incarnation), _Node())
    if isinstance(event, h.Conf) and event.kind == "regular":
        node.ring, node.members = event.ring_id, event.members
    elif isinstance(event, h.State):
        node.state = event.new
    elif isinstance(event, h.Crash | h.Leave | h.Invariant):
        node.alive = False


def _measure(history: h.History, block: h.Fault, end_ns: int, after_ns: int) -> OneWayFault:
    src, dst = _pair(block)
    start = block.time_ns
    installs: Counter[int] = Counter()
    last_change: dict[int, int] = {}
    for event in history.events:
        if event.time_ns < start or isinstance(event, h.Fault):
            continue
        if event.time_ns >= end_ns:
            break
        if isinstance(event, h.Conf) and event.kind == "regular":
            installs[event.node] += 1
        elif isinstance(event, h.State):
            last_change[event.node] = event.time_ns
    at_end = _replay(history, end_ns)
    live = {key: n for key, n in at_end.items() if n.alive}
    others = [n for (node, _), n in live.items() if node not in (src, dst)]
    rings = Counter(n.members for n in others if n.ring is not None)
    majority = set(rings.most_common(1)[0][0]) if rings else set()
    isolated = next((x for x in (src, dst) if majority and x not in majority), None)
    settle: int | None = None
    settled = True
    if isolated is not None:
        state = next((n.state for (node, _), n in live.items() if node == isolated), "down")
        settled = state == "operational"
        settle = (last_change.get(isolated, start) if settled else end_ns) - start
    views = max((installs[node] for (node, _) in live if node not in (src, dst)), default=0)
    merge = _merge_ns(history, at_end, end_ns, after_ns)  # replays on from at_end: last
    return OneWayFault(src, dst, start, end_ns, isolated, views, settle, settled, merge)


def _merge_ns(
    history: h.History, nodes: dict[tuple[int, int], _Node], end_ns: int, until_ns: int
) -> int | None:
    """From ``end_ns``: until every live node is in one regular configuration of all of them."""

    def merged() -> bool:
        live = {key: n for key, n in nodes.items() if n.alive}
        ids = {node for node, _ in live}
        rings = {n.ring for n in live.values()}
        return len(rings) == 1 and all(set(n.members) == ids for n in live.values())

    if merged():
        return 0
    for event in history.events:
        if event.time_ns < end_ns:
            continue
        if event.time_ns > until_ns:
            break
        _apply(nodes, event)
        if isinstance(event, h.Conf | h.Crash | h.Leave) and merged():
            return event.time_ns - end_ns
    return None


def one_way_faults(history: h.History) -> list[OneWayFault]:
    """Every one-way link fault (``block``) of the history, measured (module docstring)."""
    return [_measure(history, block, end, after) for block, end, after in _blocks(history)]
