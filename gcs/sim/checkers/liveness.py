"""Liveness and termination after the faults stop (RFC 0007 SIM-5.4-2, SIM-6.1-1).

Safety checkers judge every history; these need to know when the nemesis went quiet and who
should be alive and connected afterwards (``CheckParams``), and say "unknown" without it (the
two-phase idea of TigerBeetle's VOPR: faults, then a healed cluster that must converge).

* ``check_liveness``: every expected-live incarnation is still running and ends in one common
  regular configuration whose members are exactly the expected nodes. That configuration
  formed by ``quiet_from_ns + liveness_bound_ns``, or it ended a chain of loss-caused
  reformations (``gcs.sim.checkers.reformation``) that started from one which did: a quiet
  period with baseline loss may lose every copy of a token after the ring converged, and the
  ring re-forming with the same members is the failure detector working. Every message they
  submitted (up to ``submit_cutoff_ns``) was originated and delivered by its own sender, and
  every mcast originated in the common configuration was delivered by all of them. Messages
  originated in earlier configurations are not required everywhere: EVS does not transfer
  state across a partition (set-full's ``:lost`` restated for EVS).
* ``check_no_spurious_change``: once settled, configurations change only because of a fault
  or through a loss-caused reformation. For the expected incarnations "settled" is when their
  common configuration formed in the quiet period (``settled_at``; a configuration that formed
  earlier may still react to a fault that just ended); for any other incarnation (say one
  isolated for good), and when no common configuration formed after the faults, it is
  ``quiet_from_ns + liveness_bound_ns``. A configuration installed later needs a ``Fault``
  event between that moment and the installation, or to end an excused reformation.
* ``check_gather_bound``: no incarnation enters GATHER more than ``CheckParams.gather_bound``
  times in a row without reaching OPERATIONAL (a membership livelock), read from ``State``
  events.
"""

from __future__ import annotations

from bisect import bisect_left

from gcs.sim.checkers.configs import fmt_nodes
from gcs.sim.checkers.index import (
    REGULAR,
    ConfigKey,
    ConfigView,
    HistoryIndex,
    ProcView,
    Source,
    as_index,
)
from gcs.sim.checkers.judges import judges
from gcs.sim.checkers.params import DEFAULT_PARAMS, CheckParams
from gcs.sim.checkers.reformation import (
    Change,
    Common,
    common_configs,
    excused_installs,
    quiet_changes,
)
from gcs.sim.checkers.verdict import (
    Problems,
    Proc,
    Stat,
    Verdict,
    fmt_ids,
    fmt_mcast,
    fmt_proc,
    fmt_t,
)
from gcs.wire.frames import RingId

__all__ = ["check_gather_bound", "check_liveness", "check_no_spurious_change", "settled_at"]

_NEEDS = "needs quiet_from_ns, liveness_bound_ns and expected_live"


@judges("GUAR-5-11", "EVS-11-15")
def check_liveness(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Expected incarnations converge on one configuration and deliver their messages."""
    idx = as_index(history)
    problems = Problems("liveness")
    quiet, bound, expected = params.quiet_from_ns, params.liveness_bound_ns, params.expected_live
    if quiet is None or bound is None or not expected:
        return problems.unknown(_NEEDS)
    finals = _final_configs(idx, expected, problems)
    changes = quiet_changes(idx, params)
    stats: dict[str, Stat] = {
        "expected_live": len(expected),
        "excused_reformations": sum(change.excused for change in changes),
    }
    rings = {config.key.ring for config in finals.values()}
    if len(rings) > 1:
        listing = "; ".join(
            f"{fmt_proc(p)} in {c.key} {fmt_nodes(c.members)}" for p, c in sorted(finals.items())
        )
        problems.add(f"the expected incarnations ended in different configurations: {listing}")
    nodes = frozenset(proc[0] for proc in expected)
    for proc, config in sorted(finals.items()):
        if config.members != nodes:
            problems.add(
                f"{config.label()} is the final configuration of {fmt_proc(proc)}, with members "
                f"{fmt_nodes(config.members)}; expected exactly the live set {fmt_nodes(nodes)}"
            )
    for proc in sorted(expected):
        _check_own_messages(idx, proc, params, problems)
    if len(rings) == 1 and len(finals) == len(expected):
        ring = next(iter(rings))
        stats["common_ring"] = str(ring)
        stats["formed_after_quiet_ns"] = max(c.time_ns for c in finals.values()) - quiet
        stats["mcasts_in_common_ring"] = _check_common_ring(idx, ring, finals, params, problems)
    _check_deadline(idx, params, finals, changes, problems)
    return problems.verdict(stats)


def _final_configs(
    idx: HistoryIndex, expected: frozenset[Proc], problems: Problems
) -> dict[Proc, ConfigView]:
    finals: dict[Proc, ConfigView] = {}
    for proc in sorted(expected):
        view = idx.procs.get(proc)
        who = f"node {fmt_proc(proc)}"
        if view is None or view.start is None:
            problems.add(f"{who} was expected live at the end but never started")
        elif view.end is not None:
            problems.add(
                f"{who} was expected live at the end but recorded "
                f"{type(view.end).__name__} at {fmt_t(view.end.time_ns)}"
            )
        elif not view.configs:
            problems.add(f"{who} was expected live at the end but installed no configuration")
        elif view.configs[-1].key.kind != REGULAR:
            problems.add(f"{view.configs[-1].label()} is where expected {who} ended the run")
        else:
            finals[proc] = view.configs[-1]
    return finals


def _check_deadline(
    idx: HistoryIndex,
    params: CheckParams,
    finals: dict[Proc, ConfigView],
    changes: list[Change],
    problems: Problems,
) -> None:
    """The final configuration formed by the deadline, or after excused reformations only."""
    assert params.quiet_from_ns is not None and params.liveness_bound_ns is not None
    deadline = params.quiet_from_ns + params.liveness_bound_ns
    keys = {config.key for config in finals.values()}
    common = next((c for c in common_configs(idx, params) if c.key in keys), None)
    if len(keys) != 1 or common is None:
        for proc, final in sorted(finals.items()):
            if final.time_ns > deadline:
                problems.add(
                    f"{final.label()} is the final configuration of node {fmt_proc(proc)}, "
                    f"installed after the liveness deadline {fmt_t(deadline)} (quiet from + bound)"
                )
        return
    why = _late(common, {change.new.key: change for change in changes}, deadline)
    if why:
        problems.add(
            f"{common.key}, the final configuration of the expected incarnations, was installed "
            f"after the liveness deadline {fmt_t(deadline)} (quiet from + bound), at "
            f"{fmt_t(common.formed_ns)}, and {why}"
        )


def _late(common: Common, reached_by: dict[ConfigKey, Change], deadline: int) -> str:
    """Why ``common`` does not count as reached in time ("" if it does): it formed by the
    deadline, or an excused reformation led to it from a configuration that counts."""
    while common.formed_ns > deadline:
        change = reached_by.get(common.key)
        if change is None:
            return "no common configuration formed by the deadline was held until then"
        if not change.excused:
            assert change.old.left_ns is not None
            return (
                f"the change from {change.old.key}, begun at {fmt_t(change.old.left_ns)}, is "
                f"not a loss-caused reformation: {change.why_not}"
            )
        common = change.old
    return ""


def _check_own_messages(
    idx: HistoryIndex, proc: Proc, params: CheckParams, problems: Problems
) -> None:
    view = idx.procs.get(proc)
    if view is None:
        return
    cutoff = params.submit_cutoff_ns
    for msg_id, (_, submit) in view.submits.items():
        if cutoff is not None and submit.time_ns > cutoff:
            continue
        record = idx.msg_origins.get(msg_id)
        if record is None:
            problems.add(
                f"node {fmt_proc(proc)} submitted message {msg_id} at {fmt_t(submit.time_ns)}, "
                f"and it was never originated"
            )
            continue
        if record.mcast not in view.delivered:
            problems.add(
                f"node {fmt_proc(proc)} submitted message {msg_id} at {fmt_t(submit.time_ns)}; "
                f"it was originated as {idx.mcast_text(record.mcast)} at "
                f"{fmt_t(record.event.time_ns)} but its sender never delivered it"
            )


def _check_common_ring(
    idx: HistoryIndex,
    ring: RingId,
    finals: dict[Proc, ConfigView],
    params: CheckParams,
    problems: Problems,
) -> int:
    cutoff = params.submit_cutoff_ns
    ring_no = idx.ring_no(ring)
    seqs = idx.orig_seqs.get(ring_no, [])
    for seq in seqs:
        record = idx.origin((ring_no, seq))
        if record is None or (cutoff is not None and record.event.time_ns > cutoff):
            continue
        for proc, config in sorted(finals.items()):
            if (ring_no, seq) not in idx.procs[proc].delivered:
                problems.add(
                    f"{fmt_mcast(ring, seq)} {fmt_ids(record.event.msg_ids)} was originated by "
                    f"{fmt_proc(record.proc)} at {fmt_t(record.event.time_ns)} in the common "
                    f"configuration {config.key}, but node {fmt_proc(proc)} never delivered it"
                )
    return len(seqs)


def settled_at(idx: HistoryIndex, params: CheckParams) -> int | None:
    """When the expected incarnations' common configuration formed in the quiet period.

    That is the earliest time at which some regular configuration whose members are exactly
    the expected nodes had been installed by all of them, with its last installation at or
    after ``quiet_from_ns``, and none of them had left it yet. A configuration that formed
    before the quiet period does not count: a fault (a pause, say) may still make it change
    after the faults stop, and that change is the fault's doing. None if no such
    configuration formed.
    """
    expected, quiet = params.expected_live, params.quiet_from_ns
    if not expected or quiet is None:
        return None
    nodes = frozenset(proc[0] for proc in expected)
    views = [idx.procs.get(proc) for proc in sorted(expected)]
    first = views[0]
    if first is None or any(view is None for view in views):
        return None
    best: int | None = None
    for config in first.configs:
        if config.key.kind != REGULAR or config.members != nodes:
            continue
        formed, left = _formation(config.key, views)
        if formed is None or formed < quiet or (left is not None and left <= formed):
            continue
        best = formed if best is None else min(best, formed)
    return best


def _formation(key: ConfigKey, views: list[ProcView | None]) -> tuple[int | None, int | None]:
    """(last installation of ``key`` among ``views``, first departure from it), or
    (None, None) if one of them never installed it."""
    formed, left = 0, None
    for view in views:
        mine = None if view is None else next((c for c in view.configs if c.key == key), None)
        if mine is None:
            return None, None
        formed = max(formed, mine.time_ns)
        if mine.next is not None:
            left = mine.next.time_ns if left is None else min(left, mine.next.time_ns)
    return formed, left


@judges("GUAR-5-11", "EVS-11-15")
def check_no_spurious_change(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """After settling, every configuration change has a fault (or loss) to explain it."""
    idx = as_index(history)
    problems = Problems("no_spurious_change")
    quiet, bound = params.quiet_from_ns, params.liveness_bound_ns
    if quiet is None or bound is None:
        return problems.unknown("needs quiet_from_ns and liveness_bound_ns")
    others_from = quiet + bound
    expected = params.expected_live or frozenset()
    settled = settled_at(idx, params)
    expected_from = others_from if settled is None else settled
    faults = sorted(fault.time_ns for fault in idx.faults)
    excused = excused_installs(quiet_changes(idx, params))
    for view in idx.procs.values():
        since = expected_from if view.proc in expected else others_from
        for config in view.configs:
            if config.time_ns <= since or (view.proc, config.key.ring) in excused:
                continue
            i = bisect_left(faults, since)
            if i == len(faults) or faults[i] > config.time_ns:
                problems.add(
                    f"{config.label()} was installed after the cluster settled at "
                    f"{fmt_t(since)} with no fault in between"
                )
    stats: dict[str, Stat] = {"settled_at_ns": -1 if settled is None else settled}
    return problems.verdict(stats)


@judges("EVS-11-15")
def check_gather_bound(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """At most ``gather_bound`` GATHER entries in a row without OPERATIONAL."""
    idx = as_index(history)
    problems = Problems("gather_bound")
    bound = params.gather_bound
    worst = 0
    for view in idx.procs.values():
        run = 0
        for _, state in view.states:
            new = state.new.lower()
            if new == "operational":
                run = 0
            elif new == "gather":
                run += 1
                worst = max(worst, run)
                if bound is not None and run == bound + 1:
                    problems.add(
                        f"node {fmt_proc(view.proc)} entered GATHER for the {run}th time in a "
                        f"row at {fmt_t(state.time_ns)} (from {state.old}: {state.reason!r}) "
                        f"without reaching OPERATIONAL; the bound is {bound}"
                    )
    stats: dict[str, Stat] = {"max_consecutive_gather": worst}
    if bound is None:
        return problems.unknown("needs gather_bound", stats)
    return problems.verdict(stats)
