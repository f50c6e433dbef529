"""Extended virtual synchrony proper: brief §10 items 12-15 (EVS Specs 3, 4, 5 and 7).

* ``check_virtual_synchrony`` (§10.12, EVS Spec 4, [P §4.2]): two incarnations that both go
  from configuration C directly to the same next configuration delivered the same set in C.
  Both steps are checked: regular → transitional (failure atomicity of the old ring) and
  transitional → regular (the recovered messages).
* ``check_self_delivery`` (§10.13, EVS Spec 3): an incarnation that originated m in regular C
  delivers m in C or in its trans(C), unless it crashed or left before installing its next
  regular configuration. Still in C at the end of the run, it must have delivered its own
  messages if it is one of ``CheckParams.expected_live`` (which had time to settle); other
  undecided cases are counted as pending, not judged.
* ``check_causal`` (§10.14, EVS Spec 5): FIFO per sender within a ring (by message counter:
  anyone delivering m2 delivered every lower-counter message of the same sender and ring
  first), and send-after-deliver: if the sender delivered m1 before originating m2, anyone
  delivering m2 delivered m1 first. Causality is local to a configuration and both messages
  then share the origin ring, so the second rule reduces to: a gap skipped by the receiver
  must not hold a message the sender had delivered before originating.
* ``check_safe`` (§10.15, EVS Specs 7.1-7.2): if anyone delivers m as safe in c, every member of
  c delivers m in c or in its own trans(c), unless it crashed or left before installing its
  next regular configuration; safe delivery in a regular c implies every member installed c.
  An mcast originated safe must also be delivered with the safe guarantee.
"""

from __future__ import annotations

from collections.abc import Iterable

from gcs.sim.checkers.configs import fmt_nodes
from gcs.sim.checkers.index import (
    REGULAR,
    ConfigKey,
    ConfigView,
    HistoryIndex,
    Mcast,
    Source,
    all_deliveries,
    as_index,
    walk_deliveries,
)
from gcs.sim.checkers.params import DEFAULT_PARAMS, CheckParams
from gcs.sim.checkers.verdict import Problems, Proc, Verdict, fmt_ids, fmt_mcast, fmt_proc, fmt_t
from gcs.sim.history import Deliver, MsgId
from gcs.wire.frames import RingId

__all__ = ["check_causal", "check_safe", "check_self_delivery", "check_virtual_synchrony"]


def _mcasts_text(idx: HistoryIndex, mcasts: list[Mcast], limit: int = 5) -> str:
    parts = []
    for mcast in sorted(mcasts)[:limit]:
        record = idx.origin(mcast)
        ids = fmt_ids(record.event.msg_ids) if record is not None else ""
        parts.append(f"{fmt_mcast(*mcast)} {ids}".rstrip())
    more = f" and {len(mcasts) - limit} more" if len(mcasts) > limit else ""
    return "[" + "; ".join(parts) + more + "]"


def check_virtual_synchrony(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Same C → same next configuration ⇒ same set delivered in C (§10.12)."""
    idx = as_index(history)
    problems = Problems("virtual_synchrony")
    moves: dict[tuple[ConfigKey, ConfigKey], list[ConfigView]] = {}
    for view in idx.procs.values():
        for config in view.configs:
            if config.next is not None:
                moves.setdefault((config.key, config.next.key), []).append(config)
    compared = 0
    for (key, next_key), configs in moves.items():
        ref = configs[0]
        ref_set = {(d.origin_ring, d.seq) for _, d in ref.deliveries}
        for config in configs[1:]:
            compared += 1
            mine = {(d.origin_ring, d.seq) for _, d in config.deliveries}
            if mine == ref_set:
                continue
            problems.add(
                f"nodes {fmt_proc(ref.proc)} and {fmt_proc(config.proc)} both went from {key} "
                f"to {next_key} (at {fmt_t(_next_time(ref))} and {fmt_t(_next_time(config))}) "
                f"but delivered different sets in {key}: only {fmt_proc(ref.proc)} delivered "
                f"{_mcasts_text(idx, list(ref_set - mine))}; only {fmt_proc(config.proc)} "
                f"delivered {_mcasts_text(idx, list(mine - ref_set))}"
            )
    return problems.verdict({"pairs_compared": compared})


def _next_time(config: ConfigView) -> int:
    return config.next.time_ns if config.next is not None else config.time_ns


def check_self_delivery(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """A sender that survives to its next regular configuration delivered its mcasts (§10.13)."""
    idx = as_index(history)
    problems = Problems("self_delivery")
    excused = pending = 0
    live = params.expected_live or frozenset()
    for view in idx.procs.values():
        for _, originate, config in view.originates:
            if config is None or config.key != ConfigKey(REGULAR, originate.ring_id):
                continue  # not sent in a regular configuration: check_no_creation says so
            mcast = (originate.ring_id, originate.seq)
            if mcast in view.delivered:
                continue  # where it was delivered is check_delivery_location's business
            head = (
                f"node {fmt_proc(view.proc)} originated {fmt_mcast(*mcast)} "
                f"{fmt_ids(originate.msg_ids)} in {config.key} at {fmt_t(originate.time_ns)}"
            )
            following = config.next_regular()
            if following is not None:
                problems.add(
                    f"{head} and installed {following.key} at {fmt_t(following.time_ns)} "
                    f"without delivering it in {config.key} or its transitional configuration"
                )
            elif view.ended:
                excused += 1
            elif view.proc in live:
                problems.add(f"{head} and had still not delivered it when the run ended")
            else:
                pending += 1
    return problems.verdict({"excused_by_failure": excused, "pending_at_end": pending})


def check_causal(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """FIFO per sender and ring, and send-after-deliver within a configuration (§10.14)."""
    idx = as_index(history)
    problems = Problems("causal")
    order, place = _sender_order(idx, problems)
    for view in idx.procs.values():
        _check_fifo(view.proc, all_deliveries(view), order, place, problems)
        _check_send_after_deliver(idx, view.proc, problems)
    return problems.verdict({"sender_streams": len(order)})


_Stream = tuple[Proc, RingId]


def _sender_order(
    idx: HistoryIndex, problems: Problems
) -> tuple[dict[_Stream, list[MsgId]], dict[MsgId, tuple[RingId, int]]]:
    """Each sender's messages per ring sorted by counter, and each message's place in that."""
    order: dict[_Stream, list[MsgId]] = {}
    for view in idx.procs.values():
        for _, originate, _ in view.originates:
            stream = order.setdefault((view.proc, originate.ring_id), [])
            for msg_id in originate.msg_ids:
                if (msg_id.node, msg_id.incarnation) != view.proc:
                    continue
                if stream and msg_id.counter <= stream[-1].counter:
                    problems.add(
                        f"node {fmt_proc(view.proc)} originated message {msg_id} in "
                        f"{fmt_mcast(originate.ring_id, originate.seq)} at "
                        f"{fmt_t(originate.time_ns)} after its message {stream[-1]}: a sender "
                        f"must originate its messages in counter (FIFO) order"
                    )
                stream.append(msg_id)
    place: dict[MsgId, tuple[RingId, int]] = {}
    for (_, ring), stream in order.items():
        stream.sort()
        for i, msg_id in enumerate(stream):
            place[msg_id] = (ring, i)
    return order, place


def _check_fifo(
    proc: Proc,
    deliveries: Iterable[tuple[int, Deliver, ConfigView | None]],
    order: dict[_Stream, list[MsgId]],
    place: dict[MsgId, tuple[RingId, int]],
    problems: Problems,
) -> None:
    progress: dict[_Stream, int] = {}
    for _, deliver, _ in deliveries:
        for msg_id in deliver.msg_ids:
            where = place.get(msg_id)
            if where is None or where[0] != deliver.origin_ring:
                continue  # not originated there: check_no_creation
            stream = ((msg_id.node, msg_id.incarnation), deliver.origin_ring)
            expected = progress.get(stream, 0)
            if where[1] > expected:
                missing = order[stream][expected]
                problems.add(
                    f"node {fmt_proc(proc)} delivered message {msg_id} "
                    f"({fmt_mcast(deliver.origin_ring, deliver.seq)}) at "
                    f"{fmt_t(deliver.time_ns)} without first delivering {missing}, an earlier "
                    f"message of the same sender on the same ring (FIFO)"
                )
            progress[stream] = max(expected, where[1] + 1)


def _check_send_after_deliver(idx: HistoryIndex, proc: Proc, problems: Problems) -> None:
    """A receiver's skipped seq must not be one the sender had delivered before sending.

    ``memo`` keeps, per (ring, sender), how many of the receiver's gaps were already scanned
    and the earliest stream position at which the sender delivered one of them, so each gap
    is looked up once per sender: O(gaps * senders) per receiver.
    """
    memo: dict[_Stream, tuple[int, int, int]] = {}
    for config, _, deliver, _, walk in walk_deliveries(idx, idx.procs[proc]):
        if not walk.gaps:
            continue
        ring = deliver.origin_ring
        record = idx.origin((ring, deliver.seq))
        if record is None:
            continue
        sender = idx.procs[record.proc]
        scanned, first_pos, witness = memo.get((record.proc, ring), (0, -1, -1))
        for seq in walk.gaps[scanned:]:
            got = sender.delivered.get((ring, seq))
            if got is not None and (first_pos < 0 or got[0] < first_pos):
                first_pos, witness = got[0], seq
        memo[(record.proc, ring)] = (len(walk.gaps), first_pos, witness)
        if 0 <= first_pos < record.pos:
            seen = idx.history.events[first_pos]
            problems.add(
                f"node {fmt_proc(proc)} delivered {fmt_mcast(ring, deliver.seq)} "
                f"{fmt_ids(deliver.msg_ids)} in {config.key} at {fmt_t(deliver.time_ns)} "
                f"without {_mcasts_text(idx, [(ring, witness)])}, which its sender "
                f"{fmt_proc(record.proc)} delivered at {fmt_t(seen.time_ns)} before originating "
                f"it at {fmt_t(record.event.time_ns)} (send-after-deliver causality)"
            )


def check_safe(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Safe in c ⇒ every member of c delivers it in c or trans(c), or fails (§10.15)."""
    idx = as_index(history)
    problems = Problems("safe")
    counts = {"safe_obligations": 0, "excused_by_failure": 0, "pending_at_end": 0}
    seen: set[tuple[ConfigKey, Mcast]] = set()
    for view in idx.procs.values():
        for config in view.configs:
            for _, deliver in config.deliveries:
                mcast = (deliver.origin_ring, deliver.seq)
                record = idx.origin(mcast)
                if record is not None and record.event.safe and not deliver.safe:
                    problems.add(
                        f"node {fmt_proc(view.proc)} delivered {fmt_mcast(*mcast)} "
                        f"{fmt_ids(deliver.msg_ids)} in {config.key} at "
                        f"{fmt_t(deliver.time_ns)} without the safe guarantee, but it was "
                        f"originated safe"
                    )
                if deliver.safe and (config.key, mcast) not in seen:
                    seen.add((config.key, mcast))
                    counts["safe_obligations"] += 1
                    _check_safe_members(idx, config, deliver, params, problems, counts)
    return problems.verdict(dict(counts))


def _check_safe_members(
    idx: HistoryIndex,
    config: ConfigView,
    deliver: Deliver,
    params: CheckParams,
    problems: Problems,
    counts: dict[str, int],
) -> None:
    mcast = (deliver.origin_ring, deliver.seq)
    head = (
        f"node {fmt_proc(config.proc)} delivered {fmt_mcast(*mcast)} {fmt_ids(deliver.msg_ids)} "
        f"as safe in {config.key} at {fmt_t(deliver.time_ns)}"
    )
    regular = config.key.kind == REGULAR
    for node in sorted(config.members):
        other = idx.installer(config.key, node)
        if other is None:
            if regular:
                problems.add(
                    f"{head}, but member {node} of {fmt_nodes(config.members)} never "
                    f"installed {config.key} (EVS Spec 7.2)"
                )
            continue  # a transitional member that never installed it crashed first
        allowed = {id(other)}
        if regular and other.next is not None and other.next.key.kind != REGULAR:
            allowed.add(id(other.next))
        owner = idx.procs[other.proc]
        got = owner.delivered.get(mcast)
        if got is not None and id(got[1]) in allowed:
            continue
        if got is not None:
            continue  # delivered, but elsewhere: check_delivery_location reports it
        if owner.ended_before_next_regular(other):
            counts["excused_by_failure"] += 1
        elif other.next_regular() is None and other.proc not in (params.expected_live or ()):
            counts["pending_at_end"] += 1
        else:
            after = other.next_regular()
            moved = f"installed {after.key} at {fmt_t(after.time_ns)}" if after else "run ended"
            problems.add(
                f"{head}, but member {fmt_proc(other.proc)} never delivered it in "
                f"{config.key} or its transitional configuration ({moved}; EVS Spec 7.1)"
            )
