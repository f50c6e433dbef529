"""Identity and integrity: brief §10 items 1-3, plus the shape of the history itself.

* ``check_streams``: the history is something the other checkers can trust. Each incarnation
  starts with ``Start``, ends at most once (``Crash``/``Leave``) and records nothing after that;
  the incarnations of one node follow each other and never overlap (a restarted node is a new
  process, brief §10 preamble); virtual time never goes backwards.
* ``check_identity`` (§10.1, EVS Specs 1.3-1.4): a message id names one message. Every delivery
  of an id reports the same (origin ring, seq, sender), every delivery of an mcast reports the
  same sender and ids, and the sender is the node named in the id. Together with strictly
  increasing seqs per ring (§10.9) this is what makes per-ring total order pairwise consistent.
* ``check_no_duplicates`` (§10.2, EVS Spec 1.4): an incarnation delivers an id, and an mcast, at
  most once, hence never in two configurations.
* ``check_no_creation`` (§10.3, EVS Spec 1.2): every delivered mcast was originated (the EVS
  "send", ARCHITECTURE.md decision 6) by its sender while that sender was in the regular
  configuration of the origin ring; every id in it was submitted earlier by the incarnation the
  id names, originated exactly once, with the guarantee it was submitted with; and every
  delivered record decoded as a workload payload (``corrupt == 0``).
* ``check_core_invariants``: the core raised ``InvariantViolation``; always a failed run
  (ARCHITECTURE.md decision 8).
"""

from __future__ import annotations

from gcs.sim.checkers.index import (
    REGULAR,
    ConfigKey,
    ConfigView,
    HistoryIndex,
    Mcast,
    OriginRecord,
    ProcView,
    Source,
    all_deliveries,
    as_index,
)
from gcs.sim.checkers.params import DEFAULT_PARAMS, CheckParams
from gcs.sim.checkers.verdict import (
    Problems,
    Proc,
    Verdict,
    fmt_ids,
    fmt_mcast,
    fmt_proc,
    fmt_t,
)
from gcs.sim.history import Deliver, MsgId, Originate

__all__ = [
    "check_core_invariants",
    "check_identity",
    "check_no_creation",
    "check_no_duplicates",
    "check_streams",
]


def check_streams(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Well-formed per-incarnation streams (the premise of every other checker)."""
    idx = as_index(history)
    problems = Problems("streams")
    last_time = None
    for pos, event in enumerate(idx.history.events):
        if last_time is not None and event.time_ns < last_time:
            problems.add(
                f"event #{pos} ({type(event).__name__}) at {fmt_t(event.time_ns)} is earlier "
                f"than the event before it ({fmt_t(last_time)}): history out of time order"
            )
        last_time = event.time_ns
    for view in idx.procs.values():
        _check_one_stream(idx, view, problems)
    _check_incarnation_order(idx, problems)
    return problems.verdict({"incarnations": len(idx.procs), "events": len(idx.history)})


def _check_one_stream(idx: HistoryIndex, view: ProcView, problems: Problems) -> None:
    who = f"node {fmt_proc(view.proc)}"
    first = idx.history.events[view.first_pos]
    if view.start is None:
        problems.add(f"{who} recorded events from {fmt_t(first.time_ns)} but never started")
    elif view.start_pos != view.first_pos:
        problems.add(
            f"{who} recorded a {type(first).__name__} at {fmt_t(first.time_ns)} before its "
            f"Start at {fmt_t(view.start.time_ns)}"
        )
    if view.extra_starts:
        problems.add(f"{who} has {view.extra_starts} extra Start event(s)")
    if view.after_end and view.end is not None and view.after_end_first is not None:
        late = idx.history.events[view.after_end_first]
        problems.add(
            f"{who} recorded {view.after_end} event(s) after its {type(view.end).__name__} at "
            f"{fmt_t(view.end.time_ns)}, the first a {type(late).__name__} at "
            f"{fmt_t(late.time_ns)}"
        )


def _check_incarnation_order(idx: HistoryIndex, problems: Problems) -> None:
    previous: dict[int, ProcView] = {}
    for proc in idx.start_order:
        view = idx.procs[proc]
        before = previous.get(proc[0])
        previous[proc[0]] = view
        if before is None or view.start is None:
            continue
        if proc[1] <= before.proc[1]:
            problems.add(
                f"node {proc[0]} started incarnation {proc[1]} at {fmt_t(view.start.time_ns)} "
                f"after incarnation {before.proc[1]}: incarnations must increase"
            )
        if before.end_pos is None or view.start_pos is None or before.end_pos > view.start_pos:
            problems.add(
                f"node {fmt_proc(proc)} started at {fmt_t(view.start.time_ns)} while "
                f"{fmt_proc(before.proc)} had not crashed or left: two live incarnations"
            )


def check_identity(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """msg_id -> (origin ring, seq, sender) and mcast -> (sender, ids) are functions (§10.1)."""
    idx = as_index(history)
    problems = Problems("identity")
    mcast_first: dict[Mcast, tuple[Proc, Deliver]] = {}
    msg_first: dict[MsgId, tuple[Proc, Deliver]] = {}
    for view in idx.procs.values():
        who = fmt_proc(view.proc)
        for _, deliver, _ in all_deliveries(view):
            mcast = (deliver.origin_ring, deliver.seq)
            seen = mcast_first.setdefault(mcast, (view.proc, deliver))
            other = seen[1]
            if (other.sender, other.msg_ids) != (deliver.sender, deliver.msg_ids):
                problems.add(
                    f"{fmt_mcast(*mcast)} delivered by node {who} at {fmt_t(deliver.time_ns)} "
                    f"as sender {deliver.sender} {fmt_ids(deliver.msg_ids)}, but by node "
                    f"{fmt_proc(seen[0])} at {fmt_t(other.time_ns)} as sender {other.sender} "
                    f"{fmt_ids(other.msg_ids)}"
                )
            for msg_id in deliver.msg_ids:
                _check_message_identity(view.proc, deliver, msg_id, msg_first, problems)
    return problems.verdict({"mcasts_delivered": len(mcast_first), "messages": len(msg_first)})


def _check_message_identity(
    proc: Proc,
    deliver: Deliver,
    msg_id: MsgId,
    msg_first: dict[MsgId, tuple[Proc, Deliver]],
    problems: Problems,
) -> None:
    where = f"{fmt_mcast(deliver.origin_ring, deliver.seq)}"
    if msg_id.node != deliver.sender:
        problems.add(
            f"node {fmt_proc(proc)} delivered message {msg_id} in {where} at "
            f"{fmt_t(deliver.time_ns)} with sender {deliver.sender}, not {msg_id.node}"
        )
    first_proc, first = msg_first.setdefault(msg_id, (proc, deliver))
    if (first.origin_ring, first.seq) != (deliver.origin_ring, deliver.seq):
        problems.add(
            f"message {msg_id} delivered as {where} by node {fmt_proc(proc)} at "
            f"{fmt_t(deliver.time_ns)} but as {fmt_mcast(first.origin_ring, first.seq)} by "
            f"node {fmt_proc(first_proc)} at {fmt_t(first.time_ns)}"
        )


def check_no_duplicates(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Each incarnation delivers each message id and each mcast at most once (§10.2)."""
    idx = as_index(history)
    problems = Problems("no_duplicates")
    deliveries = 0
    for view in idx.procs.values():
        who = f"node {fmt_proc(view.proc)}"
        mcasts: dict[Mcast, tuple[Deliver, str]] = {}
        msgs: dict[MsgId, tuple[Deliver, str]] = {}
        for _, deliver, config in all_deliveries(view):
            deliveries += 1
            where = "no configuration" if config is None else str(config.key)
            mcast = (deliver.origin_ring, deliver.seq)
            earlier = mcasts.setdefault(mcast, (deliver, where))
            if earlier[0] is not deliver:
                problems.add(
                    f"{who} delivered {fmt_mcast(*mcast)} {fmt_ids(deliver.msg_ids)} twice: "
                    f"in {earlier[1]} at {fmt_t(earlier[0].time_ns)} and in {where} at "
                    f"{fmt_t(deliver.time_ns)}"
                )
                continue
            for msg_id in deliver.msg_ids:
                first = msgs.setdefault(msg_id, (deliver, where))
                if first[0] is not deliver:
                    problems.add(
                        f"{who} delivered message {msg_id} twice: as "
                        f"{fmt_mcast(first[0].origin_ring, first[0].seq)} in {first[1]} at "
                        f"{fmt_t(first[0].time_ns)} and as {fmt_mcast(*mcast)} in {where} at "
                        f"{fmt_t(deliver.time_ns)}"
                    )
    return problems.verdict({"deliveries": deliveries})


def check_no_creation(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Everything delivered was submitted, then originated once, by its sender (§10.3)."""
    idx = as_index(history)
    problems = Problems("no_creation")
    checked: set[tuple[Mcast, int, tuple[MsgId, ...]]] = set()
    for view in idx.procs.values():
        for _, deliver, _ in all_deliveries(view):
            if deliver.corrupt:
                problems.add(
                    f"node {fmt_proc(view.proc)} delivered "
                    f"{fmt_mcast(deliver.origin_ring, deliver.seq)} at {fmt_t(deliver.time_ns)} "
                    f"with {deliver.corrupt} record(s) that are not workload payloads"
                )
            signature = ((deliver.origin_ring, deliver.seq), deliver.sender, deliver.msg_ids)
            if signature not in checked:
                checked.add(signature)
                _check_delivered_origin(idx, view.proc, deliver, problems)
        for pos, originate, config in view.originates:
            _check_originate(view, pos, originate, config, problems)
        for _, submit in view.duplicate_submits:
            problems.add(
                f"node {fmt_proc(view.proc)} submitted message {submit.msg_id} again at "
                f"{fmt_t(submit.time_ns)}: ids must be unique"
            )
    _check_sent_once(idx, problems)
    return problems.verdict({"mcasts_originated": len(idx.origins)})


def _check_delivered_origin(
    idx: HistoryIndex, proc: Proc, deliver: Deliver, problems: Problems
) -> None:
    mcast = (deliver.origin_ring, deliver.seq)
    head = (
        f"node {fmt_proc(proc)} delivered {fmt_mcast(*mcast)} (sender {deliver.sender}, "
        f"{fmt_ids(deliver.msg_ids)}) at {fmt_t(deliver.time_ns)}"
    )
    record = idx.origin(mcast)
    if record is None:
        problems.add(f"{head}, but no incarnation originated that seq on that ring")
        return
    origin = f"originated by {fmt_proc(record.proc)} at {fmt_t(record.event.time_ns)}"
    if record.proc[0] != deliver.sender:
        problems.add(f"{head}, but it was {origin}")
    if record.event.msg_ids != deliver.msg_ids:
        problems.add(f"{head}, but it was {origin} carrying {fmt_ids(record.event.msg_ids)}")
    for msg_id in deliver.msg_ids:
        if (msg_id.node, msg_id.incarnation) != record.proc:
            problems.add(f"{head}: message {msg_id} was {origin}, not by its own incarnation")


def _check_originate(
    view: ProcView,
    pos: int,
    originate: Originate,
    config: ConfigView | None,
    problems: Problems,
) -> None:
    head = (
        f"node {fmt_proc(view.proc)} originated {fmt_mcast(originate.ring_id, originate.seq)} "
        f"{fmt_ids(originate.msg_ids)} at {fmt_t(originate.time_ns)}"
    )
    if config is None or config.key != ConfigKey(REGULAR, originate.ring_id):
        where = "no configuration" if config is None else str(config.key)
        problems.add(f"{head} while in {where}, not in regular configuration {originate.ring_id}")
    for msg_id in originate.msg_ids:
        if (msg_id.node, msg_id.incarnation) != view.proc:
            problems.add(f"{head}: message {msg_id} belongs to another incarnation")
            continue
        submitted = view.submits.get(msg_id)
        if submitted is None or submitted[0] > pos:
            problems.add(f"{head}: message {msg_id} was not submitted before")
        elif submitted[1].safe != originate.safe:
            problems.add(
                f"{head} with safe={originate.safe}: message {msg_id} was submitted with "
                f"safe={submitted[1].safe}"
            )


def _check_sent_once(idx: HistoryIndex, problems: Problems) -> None:
    def where(record: OriginRecord) -> str:
        event = record.event
        return (
            f"{fmt_mcast(event.ring_id, event.seq)} by {fmt_proc(record.proc)} at "
            f"{fmt_t(event.time_ns)}"
        )

    for mcast, records in idx.origins.items():
        if len(records) > 1:
            problems.add(
                f"{fmt_mcast(*mcast)} was originated {len(records)} times: "
                + "; ".join(where(r) for r in records[:4])
            )
    for msg_id, records in idx.msg_origins.items():
        if len(records) > 1:
            problems.add(
                f"message {msg_id} was originated {len(records)} times: "
                + "; ".join(where(r) for r in records[:4])
            )


def check_core_invariants(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Any InvariantViolation raised by a core fails the run (ARCHITECTURE.md decision 8)."""
    idx = as_index(history)
    problems = Problems("core_invariants")
    for event in idx.invariants:
        problems.add(
            f"node {fmt_proc((event.node, event.incarnation))} raised InvariantViolation at "
            f"{fmt_t(event.time_ns)}: {event.message}"
        )
    return problems.verdict({"invariant_events": len(idx.invariants)})
