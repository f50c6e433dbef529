"""Configurations: RFC 0004 EVS-11-1 to EVS-11-3 (what a view change tells the application, §7).

* ``check_config_agreement`` (EVS-11-1; [P §4.1] uniqueness and consistency): every
  incarnation that installs a configuration reports the same member set, so ids are never
  reused with different contents; and the corosync-style lists follow from the members:
  transitional ``left`` = previous regular members - transitional members, ``joined`` = ();
  regular ``joined`` = new members - transitional members (all members after the startup
  singleton), ``left`` = ().
* ``check_ring_ids`` (EVS-11-2): ring seqs strictly increase over the regular configurations an
  incarnation installs and across the incarnations of a node, unless the restart wiped its
  storage on purpose (``CheckParams.wiped``). When the history records ``Persist`` events, also
  the storage contract behind it (RFC 0004 MEM-2.3-1, REC-5.3-2): a
  ring is installed only after a seq at least as high was persisted, and a restart reads back
  the last persisted seq.
* ``check_change_shape`` (EVS-11-3, [P §3], EVS §2): the startup singleton first; after it, a
  transitional configuration between two regular ones, carrying the new ring's id; the
  transitional members are a subset of the previous and next regular members and are exactly
  the members of the new ring that came from the same previous ring, as far as their own
  histories show it (RFC 0004 REC-6.1-1, ``my_trans_memb``).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

from gcs.sim.checkers.index import (
    REGULAR,
    TRANSITIONAL,
    ConfigKey,
    ConfigView,
    HistoryIndex,
    ProcView,
    Source,
    as_index,
)
from gcs.sim.checkers.judges import judges
from gcs.sim.checkers.params import DEFAULT_PARAMS, CheckParams
from gcs.sim.checkers.verdict import Problems, Verdict, fmt_proc, fmt_t
from gcs.wire.frames import RingId

__all__ = ["check_change_shape", "check_config_agreement", "check_ring_ids", "fmt_nodes"]


def fmt_nodes(nodes: Iterable[int]) -> str:
    return "{" + ",".join(str(n) for n in sorted(nodes)) + "}"


@judges("GUAR-5-5", "EVS-11-1")
def check_config_agreement(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Same configuration key ⇒ same members; left/joined derived from members (EVS-11-1)."""
    idx = as_index(history)
    problems = Problems("config_agreement")
    for key, views in idx.configs.items():
        first = views[0]
        for view in views:
            if len(view.event.members) != len(view.members):
                problems.add(f"{view.label()} lists a member twice: {view.event.members}")
            if view.members != first.members:
                problems.add(
                    f"{key}: node {fmt_proc(view.proc)} installed it at "
                    f"{fmt_t(view.time_ns)} with members {fmt_nodes(view.members)}, but node "
                    f"{fmt_proc(first.proc)} at {fmt_t(first.time_ns)} with "
                    f"{fmt_nodes(first.members)}"
                )
            _check_lists(idx, view, problems)
    stats = {
        "regular_configs": sum(1 for k in idx.configs if k.kind == REGULAR),
        "transitional_configs": sum(1 for k in idx.configs if k.kind == TRANSITIONAL),
    }
    return problems.verdict(stats)


def _check_lists(idx: HistoryIndex, view: ConfigView, problems: Problems) -> None:
    event = view.event
    if view.key.kind == TRANSITIONAL:
        if view.prev_regular is not None:
            expected = view.prev_regular.members - view.members
            _compare_list(view, "left", event.left, expected, problems)
        _compare_list(view, "joined", event.joined, frozenset(), problems)
        return
    owner = idx.procs[view.proc]
    before = owner.configs[view.index - 1] if view.index > 0 else None
    if before is None:
        _compare_list(view, "joined", event.joined, view.members, problems)
    elif before.key.kind == TRANSITIONAL:
        _compare_list(view, "joined", event.joined, view.members - before.members, problems)
    _compare_list(view, "left", event.left, frozenset(), problems)


def _compare_list(
    view: ConfigView,
    name: str,
    listed: tuple[int, ...],
    expected: frozenset[int],
    problems: Problems,
) -> None:
    if len(set(listed)) != len(listed) or frozenset(listed) != expected:
        problems.add(
            f"{view.label()} reports {name}={fmt_nodes(listed)} (as listed: {listed}), "
            f"expected {fmt_nodes(expected)} from the members {fmt_nodes(view.members)}"
        )


@judges("GUAR-5-6", "EVS-11-2")
def check_ring_ids(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Ring seqs strictly increase per incarnation and across restarts (EVS-11-2)."""
    idx = as_index(history)
    problems = Problems("ring_ids")
    for view in idx.procs.values():
        _check_within_incarnation(view, problems)
    _check_across_incarnations(idx, params, problems)
    if idx.persist_seen:
        for view in idx.procs.values():
            _check_persist_before_install(view, problems)
    return problems.verdict({"persist_checked": int(idx.persist_seen)})


def _check_within_incarnation(view: ProcView, problems: Problems) -> None:
    regulars = [c for c in view.configs if c.key.kind == REGULAR]
    for a, b in pairwise(regulars):
        if b.key.ring.seq <= a.key.ring.seq:
            problems.add(
                f"{b.label()} does not move forward from regular {a.key.ring} installed at "
                f"{fmt_t(a.time_ns)} (ring seq {b.key.ring.seq} <= {a.key.ring.seq})"
            )
    for config in view.configs:
        prev = config.prev_regular
        if (
            config.key.kind == TRANSITIONAL
            and prev is not None
            and config.key.ring.seq <= prev.key.ring.seq
        ):
            problems.add(
                f"{config.label()} carries a ring id not newer than the previous regular "
                f"{prev.key.ring}"
            )
    stored = None if view.start is None else view.start.stored_ring_seq
    if stored is not None:
        for config in regulars:
            if config.key.ring.seq <= stored:
                problems.add(
                    f"{config.label()} has ring seq {config.key.ring.seq}, not above the seq "
                    f"{stored} this incarnation read from its store at start"
                )


def _check_across_incarnations(idx: HistoryIndex, params: CheckParams, problems: Problems) -> None:
    """``highest``: the newest ring each node installed since its storage was last wiped;
    ``since_wipe``: the node's incarnations that wrote to its current store."""
    highest: dict[int, tuple[RingId, ProcView]] = {}
    since_wipe: dict[int, list[ProcView]] = {}
    started: set[int] = set()
    for proc in idx.start_order:
        view = idx.procs[proc]
        node = proc[0]
        restart = node in started
        started.add(node)
        if restart and params.is_wiped(proc):
            highest.pop(node, None)
            since_wipe[node] = []
        previous = since_wipe.setdefault(node, [])
        if restart and idx.persist_seen:
            _check_stored_seq(view, previous, params, problems)
        previous.append(view)
        top = highest.get(node)
        regulars = [c for c in view.configs if c.key.kind == REGULAR]
        if top is not None and regulars:
            low = min(regulars, key=lambda c: c.key.ring.seq)
            if low.key.ring.seq <= top[0].seq:
                problems.add(
                    f"{low.label()} has ring seq {low.key.ring.seq}, not above ring {top[0]} "
                    f"installed by the earlier incarnation {fmt_proc(top[1].proc)} "
                    f"(storage not declared wiped)"
                )
        for config in regulars:
            if top is None or config.key.ring.seq > top[0].seq:
                top = (config.key.ring, view)
        if top is not None:
            highest[node] = top


def _check_stored_seq(
    view: ProcView, previous: list[ProcView], params: CheckParams, problems: Problems
) -> None:
    if view.start is None:
        return
    persisted = [p.ring_seq for earlier in previous for _, p in earlier.persists]
    expected = max(persisted) if persisted else None  # a store keeps the highest seq
    if view.start.stored_ring_seq != expected:
        problems.add(
            f"node {fmt_proc(view.proc)} started at {fmt_t(view.start.time_ns)} reading ring "
            f"seq {view.start.stored_ring_seq} from its store, but the highest seq persisted "
            f"into that store was {expected}"
            + (" (storage wiped)" if params.is_wiped(view.proc) else "")
        )


def _check_persist_before_install(view: ProcView, problems: Problems) -> None:
    persists = view.persists
    i = 0
    best = -1
    for config in view.configs:
        while i < len(persists) and persists[i][0] < config.pos:
            best = max(best, persists[i][1].ring_seq)
            i += 1
        if config.key.kind == REGULAR and best < config.key.ring.seq:
            problems.add(
                f"{config.label()} was installed before ring seq {config.key.ring.seq} was "
                f"persisted (highest persisted by then: {best if best >= 0 else 'none'})"
            )


@judges("GUAR-5-7", "EVS-11-3")
def check_change_shape(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Singleton first; regular, (transitional, regular)*; trans = members from my old ring."""
    idx = as_index(history)
    problems = Problems("change_shape")
    for view in idx.procs.values():
        _check_sequence(view, problems)
    _check_moving_together(idx, problems)
    return problems.verdict({"configurations_installed": sum(len(v) for v in idx.configs.values())})


def _check_sequence(view: ProcView, problems: Problems) -> None:
    configs = view.configs
    if not configs:
        return
    first = configs[0]
    if first.key.kind != REGULAR or first.members != {view.node}:
        problems.add(
            f"{first.label()} is the first configuration, but it is not the regular singleton "
            f"{{{view.node}}} (members {fmt_nodes(first.members)})"
        )
    for config in configs:
        if view.node not in config.members:
            problems.add(f"{config.label()} does not list the installing node among its members")
    for a, b in pairwise(configs):
        if a.key.kind == REGULAR and b.key.kind != TRANSITIONAL:
            problems.add(f"{b.label()} follows regular {a.key.ring} without a transitional one")
        elif a.key.kind == TRANSITIONAL and (b.key.kind != REGULAR or b.key.ring != a.key.ring):
            problems.add(f"{b.label()} follows {a.key}, not the regular {a.key.ring}")
        if a.key.kind == TRANSITIONAL:
            _check_trans_subsets(
                a, b if b.key == ConfigKey(REGULAR, a.key.ring) else None, problems
            )
    last = configs[-1]
    if last.key.kind == TRANSITIONAL:
        _check_trans_subsets(last, None, problems)
        if not view.ended:
            problems.add(
                f"{last.label()} is the last configuration, but the incarnation neither "
                f"installed regular {last.key.ring} nor crashed or left"
            )


def _check_trans_subsets(trans: ConfigView, regular: ConfigView | None, problems: Problems) -> None:
    prev = trans.prev_regular
    if prev is not None and not trans.members <= prev.members:
        problems.add(
            f"{trans.label()} has members {fmt_nodes(trans.members)}, not a subset of the "
            f"previous regular {prev.key.ring} {fmt_nodes(prev.members)}"
        )
    if regular is not None and not trans.members <= regular.members:
        problems.add(
            f"{trans.label()} has members {fmt_nodes(trans.members)}, not a subset of the new "
            f"regular {regular.key.ring} {fmt_nodes(regular.members)}"
        )


def _check_moving_together(idx: HistoryIndex, problems: Problems) -> None:
    """trans(R from P) = {q in R : q's previous regular ring is P}, as histories show it."""
    came_from: dict[RingId, dict[int, tuple[RingId | None, ConfigView]]] = {}
    for key, views in idx.configs.items():
        if key.kind == TRANSITIONAL:
            by_node = came_from.setdefault(key.ring, {})
            for view in views:
                by_node.setdefault(view.proc[0], (key.prev, view))
    for key, views in idx.configs.items():
        if key.kind != TRANSITIONAL:
            continue
        checked: set[frozenset[int]] = set()
        for view in views:
            if view.members not in checked:  # agreement reports the disagreement itself
                checked.add(view.members)
                _check_trans_origins(view, came_from[key.ring], problems)


def _check_trans_origins(
    view: ConfigView,
    came_from: dict[int, tuple[RingId | None, ConfigView]],
    problems: Problems,
) -> None:
    key = view.key
    for node, (prev, other) in sorted(came_from.items()):
        if node in view.members and prev != key.prev:
            problems.add(
                f"{view.label()} lists node {node}, but {other.label()} shows node {node} "
                f"came to ring {key.ring} from {prev}, not from {key.prev}"
            )
        elif node not in view.members and prev == key.prev:
            problems.add(
                f"{view.label()} omits node {node}, which came to ring {key.ring} from "
                f"{key.prev} too ({other.label()})"
            )
