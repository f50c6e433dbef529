"""Global delivery-order acyclicity: RFC 0004 EVS-11-14 ([P §4.2] footnote 4, EVS Specs 6.1-6.2).

EVS requires one logical clock that orders every delivery and every configuration change
consistently at all processes: the same mcast and the same configuration change get the same
logical time everywhere. Pairwise order checks cannot establish that: three processes can
each see a consistent pair while the three pairs together form a cycle. So build the graph
EVS-11-14 prescribes: a vertex per mcast (``(origin ring, seq)``) and per configuration change
(``ConfigKey``), an edge between consecutive events of each incarnation's stream, and require
that it has no cycle of any length.

The test is Kahn's algorithm (iterative, O(V + E), no recursion limit). If vertices remain,
every remaining vertex has a remaining predecessor, so walking predecessors from any of them
must repeat a vertex: that closes a cycle. A breadth-first search from the cycle's vertices
then finds a shortest cycle through them, which is the witness reported (Elle-style: a small
anomaly, not a log dump).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from gcs.sim.checkers.index import HistoryIndex, ProcView, Source, as_index
from gcs.sim.checkers.judges import judges
from gcs.sim.checkers.params import DEFAULT_PARAMS, CheckParams
from gcs.sim.checkers.verdict import Problems, Verdict, fmt_proc, fmt_t

__all__ = ["check_acyclic"]

_WITNESS_SEARCHES = 8

# Vertices are keyed by an mcast tuple ``(ring number, seq)`` or by a configuration's int
# ``key_no``; the two kinds of key never compare equal.
_Vertex = tuple[int, int] | int


class _Graph:
    """Adjacency lists over vertex numbers, with each edge once."""

    def __init__(self) -> None:
        self.ids: dict[_Vertex, int] = {}
        self.keys: list[_Vertex] = []
        self.succ: list[list[int]] = []
        self.pred: list[list[int]] = []
        self.edges = 0

    def vertex(self, key: _Vertex) -> int:
        vid = self.ids.get(key)
        if vid is None:
            vid = self.ids[key] = len(self.keys)
            self.keys.append(key)
            self.succ.append([])
            self.pred.append([])
        return vid


@judges("GUAR-5-10", "EVS-11-14")
def check_acyclic(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """The graph of mcasts and configuration changes, linked per stream, is acyclic (EVS-11-14)."""
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
    stats = {"vertices": len(graph.keys), "edges": graph.edges}
    if removed < len(graph.keys):
        stuck = len(graph.keys) - removed
        cycle = _shortest_cycle(graph, _some_cycle(graph, indeg), indeg)
        problems.add(
            f"the global delivery order has a cycle of length {len(cycle)} "
            f"({stuck} events lie on or after a cycle): {_describe(idx, graph, cycle)}"
        )
        stats["events_on_or_after_cycles"] = stuck
    return problems.verdict(stats)


def _stream(view: ProcView) -> Iterator[tuple[_Vertex, int]]:
    """One incarnation's deliveries and configuration changes as (vertex key, time)."""
    for _, deliver, mcast in view.loose:
        yield mcast, deliver.time_ns
    for config in view.configs:
        yield config.key_no, config.time_ns
        for _, deliver, mcast in config.deliveries:
            yield mcast, deliver.time_ns


def _build(idx: HistoryIndex) -> _Graph:
    """Every incarnation adds its consecutive pairs; a pair already seen adds nothing (in a
    healthy run every member repeats the same chain, so this keeps the graph small)."""
    graph = _Graph()
    ids, succ, pred = graph.ids, graph.succ, graph.pred
    seen: set[int] = set()
    for view in idx.procs.values():
        prev = -1
        for key, _ in _stream(view):
            cur = ids.get(key)
            if cur is None:
                cur = graph.vertex(key)
            if prev != cur and prev >= 0:
                pair = prev << 32 | cur
                if pair not in seen:
                    seen.add(pair)
                    succ[prev].append(cur)
                    pred[cur].append(prev)
            prev = cur
    graph.edges = len(seen)
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


def _label(idx: HistoryIndex, key: _Vertex) -> str:
    if isinstance(key, int):
        return f"configuration {list(idx.configs)[key]}"
    return idx.mcast_long(key)


def _witnesses(idx: HistoryIndex, pairs: set[tuple[_Vertex, _Vertex]]) -> dict[object, str]:
    """For each edge of the cycle, an incarnation whose stream has it, and when."""
    found: dict[object, str] = {}
    for view in idx.procs.values():
        prev: _Vertex | None = None
        for key, time_ns in _stream(view):
            if (prev, key) in pairs and (prev, key) not in found:
                found[(prev, key)] = f"node {fmt_proc(view.proc)} at {fmt_t(time_ns)}"
            prev = key
    return found


def _describe(idx: HistoryIndex, graph: _Graph, cycle: list[int]) -> str:
    keys = [graph.keys[v] for v in cycle]
    pairs = {(keys[i], keys[(i + 1) % len(keys)]) for i in range(len(keys))}
    seen = _witnesses(idx, pairs)
    parts = [_label(idx, keys[0])]
    for i, key in enumerate(keys):
        nxt = keys[(i + 1) % len(keys)]
        parts.append(f" -> ({seen.get((key, nxt), '?')}) {_label(idx, nxt)}")
    return "".join(parts)
