"""Global delivery-order acyclicity: brief §10 item 10 ([P §4.2] footnote 4, EVS Specs 6.1-6.2).

EVS requires one logical clock that orders every delivery and every configuration change
consistently at all processes: the same mcast and the same configuration change get the same
logical time everywhere. Pairwise order checks cannot establish that: three processes can
each see a consistent pair while the three pairs together form a cycle. So build the graph
the brief prescribes: a vertex per mcast (``(origin ring, seq)``) and per configuration change
(``ConfigKey``), an edge between consecutive events of each incarnation's stream, and require
that it has no cycle of any length.

The test is Kahn's algorithm (iterative, O(V + E), no recursion limit). If vertices remain,
every remaining vertex has a remaining predecessor, so walking predecessors from any of them
must repeat a vertex: that closes a cycle. A breadth-first search from the cycle's vertices
then finds a shortest cycle through them, which is the witness reported (Elle-style: a small
anomaly, not a log dump, style-anchors B4).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

from gcs.sim.checkers.index import ConfigKey, HistoryIndex, Source, as_index
from gcs.sim.checkers.params import DEFAULT_PARAMS, CheckParams
from gcs.sim.checkers.verdict import Problems, Proc, Verdict, fmt_ids, fmt_mcast, fmt_proc, fmt_t

__all__ = ["check_acyclic"]

_WITNESS_SEARCHES = 8


class _Graph:
    def __init__(self) -> None:
        self.ids: dict[Hashable, int] = {}
        self.keys: list[Hashable] = []
        self.succ: list[list[int]] = []
        self.pred: list[list[int]] = []
        self.edges: dict[tuple[int, int], tuple[Proc, int]] = {}

    def vertex(self, key: Hashable) -> int:
        vid = self.ids.get(key)
        if vid is None:
            vid = self.ids[key] = len(self.keys)
            self.keys.append(key)
            self.succ.append([])
            self.pred.append([])
        return vid

    def edge(self, a: int, b: int, proc: Proc, time_ns: int) -> None:
        if a == b or (a, b) in self.edges:
            return
        self.edges[(a, b)] = (proc, time_ns)
        self.succ[a].append(b)
        self.pred[b].append(a)


def check_acyclic(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """The graph of mcasts and configuration changes, linked per stream, is acyclic (§10.10)."""
    idx = as_index(history)
    problems = Problems("acyclic")
    graph = _build(idx)
    indeg = [len(p) for p in graph.pred]
    stack = [v for v, d in enumerate(indeg) if d == 0]
    removed = 0
    while stack:
        v = stack.pop()
        removed += 1
        for w in graph.succ[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                stack.append(w)
    stats = {"vertices": len(graph.keys), "edges": len(graph.edges)}
    if removed < len(graph.keys):
        stuck = len(graph.keys) - removed
        cycle = _shortest_cycle(graph, _some_cycle(graph, indeg), indeg)
        problems.add(
            f"the global delivery order has a cycle of length {len(cycle)} "
            f"({stuck} events lie on or after a cycle): {_describe(idx, graph, cycle)}"
        )
        stats["events_on_or_after_cycles"] = stuck
    return problems.verdict(stats)


def _build(idx: HistoryIndex) -> _Graph:
    graph = _Graph()
    for view in idx.procs.values():
        prev = -1
        for _, deliver in view.loose:
            cur = graph.vertex((deliver.origin_ring, deliver.seq))
            if prev >= 0:
                graph.edge(prev, cur, view.proc, deliver.time_ns)
            prev = cur
        for config in view.configs:
            cur = graph.vertex(config.key)
            if prev >= 0:
                graph.edge(prev, cur, view.proc, config.time_ns)
            prev = cur
            for _, deliver in config.deliveries:
                cur = graph.vertex((deliver.origin_ring, deliver.seq))
                graph.edge(prev, cur, view.proc, deliver.time_ns)
                prev = cur
    return graph


def _some_cycle(graph: _Graph, indeg: list[int]) -> list[int]:
    """Walk remaining predecessors from a remaining vertex until one repeats."""
    start = next(v for v, d in enumerate(indeg) if d > 0)
    order: dict[int, int] = {}
    path: list[int] = []
    v = start
    while v not in order:
        order[v] = len(path)
        path.append(v)
        v = next(u for u in graph.pred[v] if indeg[u] > 0)
    backward = path[order[v] :]
    backward.reverse()
    return backward


def _shortest_cycle(graph: _Graph, cycle: list[int], indeg: list[int]) -> list[int]:
    best = cycle
    for source in cycle[:_WITNESS_SEARCHES]:
        found = _bfs_cycle(graph, source, indeg, len(best))
        if found is not None and len(found) < len(best):
            best = found
    return best


def _bfs_cycle(graph: _Graph, source: int, indeg: list[int], limit: int) -> list[int] | None:
    parent: dict[int, int] = {source: -1}
    depth = {source: 0}
    queue = deque([source])
    while queue:
        v = queue.popleft()
        if depth[v] >= limit:
            return None
        for w in graph.succ[v]:
            if w == source:
                path = [v]
                while parent[path[-1]] != -1:
                    path.append(parent[path[-1]])
                path.reverse()
                return path
            if indeg[w] > 0 and w not in parent:
                parent[w] = v
                depth[w] = depth[v] + 1
                queue.append(w)
    return None


def _label(idx: HistoryIndex, key: Hashable) -> str:
    if isinstance(key, ConfigKey):
        return f"configuration {key}"
    assert isinstance(key, tuple)
    ring, seq = key
    record = idx.origin((ring, seq))
    ids = fmt_ids(record.event.msg_ids) if record is not None else "[never originated]"
    return f"{fmt_mcast(ring, seq)} {ids}"


def _describe(idx: HistoryIndex, graph: _Graph, cycle: list[int]) -> str:
    parts = [_label(idx, graph.keys[cycle[0]])]
    for i, v in enumerate(cycle):
        w = cycle[(i + 1) % len(cycle)]
        proc, time_ns = graph.edges[(v, w)]
        parts.append(f" -> (node {fmt_proc(proc)}, {fmt_t(time_ns)}) {_label(idx, graph.keys[w])}")
    return "".join(parts)
