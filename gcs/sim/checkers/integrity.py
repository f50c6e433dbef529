"""Identity and integrity: RFC 0004 EVS-11-5 and EVS-11-6, plus the shape of the history itself.

* ``check_streams``: the history is something the other checkers can trust. Each incarnation
  starts with ``Start``, ends at most once (``Crash``/``Leave``) and records nothing after that;
  the incarnations of one node follow each other and never overlap (a restarted node is a new
  process, RFC 0004 §11); virtual time never goes backwards.
* ``check_identity`` (RFC 0004 EVS-11-5, EVS Specs 1.3-1.4): a message id names one message.
  Every delivery of an id reports the same (origin ring, seq, sender), every delivery of an
  mcast reports the same sender and ids, and the sender is the node named in the id. Together
  with strictly increasing seqs per ring (EVS-11-7) this is what makes per-ring total order
  pairwise consistent.
* ``check_no_duplicates`` (EVS-11-6, EVS Spec 1.4): an incarnation delivers an id, and an mcast, at
  most once, hence never in two configurations.
* ``check_no_creation`` (EVS-11-5, EVS Spec 1.2): every delivered mcast was originated (the EVS
  "send", RFC 0006 API-4.3-1) by its sender while that sender was in the regular
  configuration of the origin ring; every id in it was submitted earlier by the incarnation the
  id names, originated exactly once, with the guarantee it was submitted with; and every
  delivered record decoded as a workload payload (``corrupt == 0``).
* ``check_origination_state`` (RFC 0003 ORD-4.6-2, RFC 0004 REC-6.2-3): nothing is originated
  outside OPERATIONAL, as far as the incarnation's ``State`` events show.
* ``check_core_invariants``: the core raised ``InvariantViolation``; always a failed run
  (RFC 0003 §11, RFC 0006 API-7-1).
"""

from __future__ import annotations

from gcs.history.events import Deliver, MsgId
from gcs.sim.checkers.index import (
    REGULAR,
    ConfigView,
    HistoryIndex,
    Mcast,
    OriginRecord,
    ProcView,
    Source,
    as_index,
)
from gcs.sim.checkers.judges import judges
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

__all__ = [
    "check_core_invariants",
    "check_identity",
    "check_no_creation",
    "check_no_duplicates",
    "check_origination_state",
    "check_streams",
]


@judges()
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


@judges("GUAR-5-2", "EVS-11-5")
def check_identity(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """msg_id -> (origin ring, seq, sender) and mcast -> (sender, ids) are functions (EVS-11-5).

    Works on the distinct (mcast, sender, ids) signatures the index collected, so its cost is
    per message, not per delivery.
    """
    idx = as_index(history)
    problems = Problems("identity")
    for mcast, signatures in idx.signatures.items():
        first_proc, first = signatures[0]
        for proc, deliver in signatures[1:]:
            problems.add(
                f"{idx.mcast_text(mcast)} delivered by node {fmt_proc(proc)} at "
                f"{fmt_t(deliver.time_ns)} as sender {deliver.sender} "
                f"{fmt_ids(deliver.msg_ids)}, but by node {fmt_proc(first_proc)} at "
                f"{fmt_t(first.time_ns)} as sender {first.sender} {fmt_ids(first.msg_ids)}"
            )
        for proc, deliver in signatures:
            for msg_id in deliver.msg_ids:
                if msg_id.node != deliver.sender:
                    problems.add(
                        f"node {fmt_proc(proc)} delivered message {msg_id} in "
                        f"{idx.mcast_text(mcast)} at {fmt_t(deliver.time_ns)} with sender "
                        f"{deliver.sender}, not {msg_id.node}"
                    )
    carriers = idx.carriers()
    for msg_id, mcast, proc, deliver in carriers.conflicts:
        other_mcast, other_proc, other = carriers.first[msg_id]
        problems.add(
            f"message {msg_id} delivered as {idx.mcast_text(mcast)} by node {fmt_proc(proc)} "
            f"at {fmt_t(deliver.time_ns)} but as {idx.mcast_text(other_mcast)} by node "
            f"{fmt_proc(other_proc)} at {fmt_t(other.time_ns)}"
        )
    stats = {"mcasts_delivered": len(idx.signatures), "messages": len(carriers.first)}
    return problems.verdict(stats)


@judges("GUAR-5-2", "EVS-11-6")
def check_no_duplicates(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Each incarnation delivers each message id and each mcast at most once (EVS-11-6).

    Per mcast the index already knows. A message can be delivered twice without an mcast
    being repeated only if one mcast lists it twice or it appears in two different mcasts
    (which identity also reports); only those messages are looked at per incarnation.
    """
    idx = as_index(history)
    problems = Problems("no_duplicates")
    for view in idx.procs.values():
        for _, deliver, config in view.duplicates:
            mcast = idx.mcast_of(deliver.origin_ring, deliver.seq)
            first_pos, first_config = view.delivered[mcast]
            problems.add(
                f"node {fmt_proc(view.proc)} delivered {idx.mcast_text(mcast)} "
                f"{fmt_ids(deliver.msg_ids)} twice: in {_where(first_config)} at "
                f"{fmt_t(idx.history.events[first_pos].time_ns)} and in {_where(config)} at "
                f"{fmt_t(deliver.time_ns)}"
            )
    for mcast, signatures in idx.signatures.items():
        for proc, deliver in signatures:
            ids = deliver.msg_ids
            if len(ids) > 1 and len(set(ids)) != len(ids):
                problems.add(
                    f"node {fmt_proc(proc)} delivered {idx.mcast_text(mcast)} at "
                    f"{fmt_t(deliver.time_ns)} listing a message twice: {fmt_ids(ids)}"
                )
    carriers = idx.carriers()
    several: dict[MsgId, set[Mcast]] = {}
    for msg_id, mcast, _, _ in carriers.conflicts:
        several.setdefault(msg_id, {carriers.first[msg_id][0]}).add(mcast)
    for msg_id, mcasts in several.items():
        _check_delivered_once(idx, msg_id, sorted(mcasts), problems)
    return problems.verdict({"deliveries": sum(len(v.delivered) for v in idx.procs.values())})


def _where(config: ConfigView | None) -> str:
    return "no configuration" if config is None else str(config.key)


def _check_delivered_once(
    idx: HistoryIndex, msg_id: MsgId, mcasts: list[Mcast], problems: Problems
) -> None:
    for view in idx.procs.values():
        found: list[tuple[Deliver, ConfigView | None]] = []
        for mcast in mcasts:
            got = view.delivered.get(mcast)
            if got is None:
                continue
            event = idx.history.events[got[0]]
            if isinstance(event, Deliver) and msg_id in event.msg_ids:
                found.append((event, got[1]))
        if len(found) > 1:
            (a, ca), (b, cb) = found[0], found[1]
            problems.add(
                f"node {fmt_proc(view.proc)} delivered message {msg_id} twice: as "
                f"{fmt_mcast(a.origin_ring, a.seq)} in {_where(ca)} at {fmt_t(a.time_ns)} and "
                f"as {fmt_mcast(b.origin_ring, b.seq)} in {_where(cb)} at {fmt_t(b.time_ns)}"
            )


@judges("GUAR-5-2", "EVS-11-5")
def check_no_creation(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Everything delivered was submitted, then originated once, by its sender (EVS-11-5)."""
    idx = as_index(history)
    problems = Problems("no_creation")
    for proc, deliver in idx.corrupt:
        problems.add(
            f"node {fmt_proc(proc)} delivered {fmt_mcast(deliver.origin_ring, deliver.seq)} at "
            f"{fmt_t(deliver.time_ns)} with {deliver.corrupt} record(s) that are not workload "
            f"payloads"
        )
    origins = idx.origins
    for mcast, signatures in idx.signatures.items():
        record = origins.get(mcast)
        for proc, deliver in signatures:
            # The ids' own incarnation is checked on the Originate, so equal ids suffice.
            if (
                record is None
                or record.proc[0] != deliver.sender
                or record.event.msg_ids != deliver.msg_ids
            ):
                _report_delivered_origin(record, proc, deliver, problems)
    for view in idx.procs.values():
        node, inc = view.proc
        submits = view.submits
        for record, config in view.originates:
            if config is None or config.key.kind != REGULAR or config.ring_no != record.mcast[0]:
                _report_originate_place(view, record, config, problems)
            originate = record.event
            for msg_id in originate.msg_ids:
                submitted = submits.get(msg_id)
                if (
                    msg_id.node != node
                    or msg_id.incarnation != inc
                    or submitted is None
                    or submitted[0] > record.pos
                    or submitted[1].safe != originate.safe
                ):
                    _report_originated_message(view, record, msg_id, problems)
        for _, submit in view.duplicate_submits:
            problems.add(
                f"node {fmt_proc(view.proc)} submitted message {submit.msg_id} again at "
                f"{fmt_t(submit.time_ns)}: ids must be unique"
            )
    _check_sent_once(idx, problems)
    return problems.verdict({"mcasts_originated": len(idx.origins)})


def _report_delivered_origin(
    record: OriginRecord | None, proc: Proc, deliver: Deliver, problems: Problems
) -> None:
    head = (
        f"node {fmt_proc(proc)} delivered {fmt_mcast(deliver.origin_ring, deliver.seq)} "
        f"(sender {deliver.sender}, {fmt_ids(deliver.msg_ids)}) at {fmt_t(deliver.time_ns)}"
    )
    if record is None:
        problems.add(f"{head}, but no incarnation originated that seq on that ring")
        return
    event = record.event
    origin = f"originated by {fmt_proc(record.proc)} at {fmt_t(event.time_ns)}"
    if record.proc[0] != deliver.sender:
        problems.add(f"{head}, but it was {origin}")
    if event.msg_ids != deliver.msg_ids:
        problems.add(f"{head}, but it was {origin} carrying {fmt_ids(event.msg_ids)}")


def _originate_text(view: ProcView, record: OriginRecord) -> str:
    originate = record.event
    return (
        f"node {fmt_proc(view.proc)} originated {fmt_mcast(originate.ring_id, originate.seq)} "
        f"{fmt_ids(originate.msg_ids)} at {fmt_t(originate.time_ns)}"
    )


def _report_originate_place(
    view: ProcView, record: OriginRecord, config: ConfigView | None, problems: Problems
) -> None:
    problems.add(
        f"{_originate_text(view, record)} while in {_where(config)}, not in regular "
        f"configuration {record.event.ring_id}"
    )


def _report_originated_message(
    view: ProcView, record: OriginRecord, msg_id: MsgId, problems: Problems
) -> None:
    head = _originate_text(view, record)
    submitted = view.submits.get(msg_id)
    if (msg_id.node, msg_id.incarnation) != view.proc:
        problems.add(f"{head}: message {msg_id} belongs to another incarnation")
    elif submitted is None or submitted[0] > record.pos:
        problems.add(f"{head}: message {msg_id} was not submitted before")
    else:
        problems.add(
            f"{head} with safe={record.event.safe}: message {msg_id} was submitted with "
            f"safe={submitted[1].safe}"
        )


def _check_sent_once(idx: HistoryIndex, problems: Problems) -> None:
    """A message is sent once, by one process (EVS Spec 1.4): one Originate per mcast and
    per message id."""

    def where(record: OriginRecord) -> str:
        event = record.event
        return (
            f"{fmt_mcast(event.ring_id, event.seq)} by {fmt_proc(record.proc)} at "
            f"{fmt_t(event.time_ns)}"
        )

    for record in idx.repeated_origins:
        first = idx.origins[record.mcast]
        problems.add(
            f"{idx.mcast_text(record.mcast)} was originated again: first {where(first)}, "
            f"then {where(record)}"
        )
    for msg_id, record in idx.repeated_msg_origins:
        first = idx.msg_origins[msg_id]
        problems.add(
            f"message {msg_id} was originated again: first as {where(first)}, then as "
            f"{where(record)}"
        )


@judges("REC-6.2-3")
def check_origination_state(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Mcasts are originated only in OPERATIONAL (ORD-4.6-2, REC-6.2-3, [P §7.2]: "no new
    application messages are originated in RECOVERY"; in GATHER and COMMIT there is no ring token).

    Judged from ``State`` events: an Originate recorded while the incarnation's latest state
    change left it in another state. Incarnations without State events are not judged.
    """
    idx = as_index(history)
    problems = Problems("origination_state")
    judged = 0
    for view in idx.procs.values():
        if not view.states:
            continue
        judged += 1
        states = view.states
        i, current = 0, None
        for record, _ in view.originates:
            while i < len(states) and states[i][0] < record.pos:
                current = states[i][1]
                i += 1
            if current is not None and current.new.lower() != "operational":
                problems.add(
                    f"{_originate_text(view, record)} while in state {current.new} (since "
                    f"{fmt_t(current.time_ns)}, {current.reason!r}): only OPERATIONAL originates"
                )
    return problems.verdict({"incarnations_judged": judged})


@judges("ORD-11-1", "ORD-11-2", "ORD-11-3")
def check_core_invariants(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Any InvariantViolation raised by a core fails the run (RFC 0003 §11)."""
    idx = as_index(history)
    problems = Problems("core_invariants")
    for event in idx.invariants:
        problems.add(
            f"node {fmt_proc((event.node, event.incarnation))} raised InvariantViolation at "
            f"{fmt_t(event.time_ns)}: {event.message}"
        )
    return problems.verdict({"invariant_events": len(idx.invariants)})
