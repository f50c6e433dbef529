"""Extended virtual synchrony proper: RFC 0004 EVS-11-9, EVS-11-11 to 13 (EVS Specs 3-5, 7).

* ``check_virtual_synchrony`` (EVS-11-9, EVS Spec 4, [P §4.2]): two incarnations that both go
  from configuration C directly to the same next configuration delivered the same set in C.
  Both steps are checked: regular → transitional (failure atomicity of the old ring) and
  transitional → regular (the recovered messages).
* ``check_self_delivery`` (EVS-11-11, EVS Spec 3): an incarnation that originated m in regular C
  delivers m in C or in its trans(C), unless it crashed or left before installing its next
  regular configuration. Still in C at the end of the run, it must have delivered its own
  messages if it is one of ``CheckParams.expected_live`` (which had time to settle); other
  undecided cases are counted as pending, not judged.
* ``check_causal`` (EVS-11-12, EVS Spec 5): FIFO per sender within a ring (by message counter:
  anyone delivering m2 delivered every lower-counter message of the same sender and ring
  first), and send-after-deliver: if the sender delivered m1 before originating m2, anyone
  delivering m2 delivered m1 first. Causality is local to a configuration and both messages
  then share the origin ring, so the second rule reduces to: a gap skipped by the receiver
  must not hold a message the sender had delivered before originating.
* ``check_safe`` (EVS-11-13, EVS Specs 7.1-7.2): if anyone delivers m as safe in c, every member of
  c delivers m in c or in its own trans(c), unless it crashed or left before installing its
  next regular configuration; safe delivery in a regular c implies every member installed c.
  An mcast originated safe must also be delivered with the safe guarantee.
"""

from __future__ import annotations

from collections.abc import Iterable

from gcs.history.events import MsgId
from gcs.sim.checkers.configs import fmt_nodes
from gcs.sim.checkers.index import (
    REGULAR,
    ConfigKey,
    ConfigView,
    GapStep,
    HistoryIndex,
    Mcast,
    Source,
    as_index,
)
from gcs.sim.checkers.judges import judges
from gcs.sim.checkers.params import DEFAULT_PARAMS, CheckParams
from gcs.sim.checkers.verdict import Problems, Proc, Verdict, fmt_ids, fmt_proc, fmt_t

__all__ = ["check_causal", "check_safe", "check_self_delivery", "check_virtual_synchrony"]


def _mcasts_text(idx: HistoryIndex, mcasts: Iterable[Mcast], limit: int = 5) -> str:
    items = sorted(mcasts)
    parts = [idx.mcast_long(mcast) for mcast in items[:limit]]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return "[" + "; ".join(parts) + more + "]"


@judges("GUAR-5-8", "EVS-11-9")
def check_virtual_synchrony(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Same C → same next configuration ⇒ same set delivered in C (EVS-11-9)."""
    idx = as_index(history)
    problems = Problems("virtual_synchrony")
    moves: dict[tuple[int, int], list[ConfigView]] = {}
    for view in idx.procs.values():
        for config in view.configs:
            if config.next is not None:
                moves.setdefault((config.key_no, config.next.key_no), []).append(config)
    compared = 0
    for configs in moves.values():
        if len(configs) < 2:
            continue
        ref = configs[0]
        ref_set = {m for _, _, m in ref.deliveries}
        for config in configs[1:]:
            compared += 1
            mine = {m for _, _, m in config.deliveries}
            if mine == ref_set:
                continue
            a, b = fmt_proc(ref.proc), fmt_proc(config.proc)
            nxt = ref.next.key if ref.next is not None else "?"
            problems.add(
                f"nodes {a} and {b} both went from {ref.key} to {nxt} (at "
                f"{fmt_t(_next_time(ref))} and {fmt_t(_next_time(config))}) but delivered "
                f"different sets in {ref.key}: only {a} delivered "
                f"{_mcasts_text(idx, ref_set - mine)}; only {b} delivered "
                f"{_mcasts_text(idx, mine - ref_set)}"
            )
    return problems.verdict({"pairs_compared": compared})


def _next_time(config: ConfigView) -> int:
    return config.next.time_ns if config.next is not None else config.time_ns


@judges("GUAR-5-3", "EVS-11-11")
def check_self_delivery(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """A sender that survives to its next regular configuration delivered its mcasts (EVS-11-11)."""
    idx = as_index(history)
    problems = Problems("self_delivery")
    excused = pending = 0
    live = params.expected_live or frozenset()
    for view in idx.procs.values():
        delivered = view.delivered
        for record, config in view.originates:
            if record.mcast in delivered:
                continue  # where it was delivered is check_delivery_location's business
            if config is None or config.key.kind != REGULAR or config.ring_no != record.mcast[0]:
                continue  # not sent in its regular configuration: check_no_creation says so
            head = (
                f"node {fmt_proc(view.proc)} originated {idx.mcast_text(record.mcast)} "
                f"{fmt_ids(record.event.msg_ids)} in {config.key} at "
                f"{fmt_t(record.event.time_ns)}"
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


@judges("GUAR-5-4", "EVS-11-12")
def check_causal(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """FIFO per sender and ring, and send-after-deliver within a configuration (EVS-11-12).

    Receiver side, both rules are about gaps: if the sender originates in counter order
    (checked first), a receiver breaks FIFO exactly when it delivers an mcast of a sender after
    skipping an earlier mcast of the same sender and ring; it breaks send-after-deliver when
    it skipped an mcast the sender had delivered before originating. So only deliveries that
    follow a gap (``HistoryIndex.gap_steps``) need looking at.
    """
    idx = as_index(history)
    problems = Problems("causal")
    _check_sender_order(idx, problems)
    for proc, steps in idx.gap_steps().items():
        _check_gap_causality(idx, proc, steps, problems)
    return problems.verdict()


def _check_sender_order(idx: HistoryIndex, problems: Problems) -> None:
    """A sender originates its own messages on one ring in counter (submission) order."""
    for view in idx.procs.values():
        last: dict[int, MsgId] = {}
        for record, _ in view.originates:
            for msg_id in record.event.msg_ids:
                before = last.get(record.mcast[0])
                if before is not None and msg_id.counter <= before.counter:
                    problems.add(
                        f"node {fmt_proc(view.proc)} originated message {msg_id} in "
                        f"{idx.mcast_text(record.mcast)} at {fmt_t(record.event.time_ns)} "
                        f"after its message {before}: a sender must originate its messages in "
                        f"counter (FIFO) order"
                    )
                last[record.mcast[0]] = msg_id


_Stream = tuple[int, Proc]  # (ring number, sender incarnation)


def _check_gap_causality(
    idx: HistoryIndex, proc: Proc, steps: list[GapStep], problems: Problems
) -> None:
    """``first_gap`` remembers each sender's first skipped mcast per ring (FIFO); ``memo`` keeps,
    per (ring, sender of the delivered mcast), how many gaps were scanned and the earliest
    position at which that sender delivered one of them (send-after-deliver). Each gap is
    looked up once per sender: O(gaps * senders) per receiver."""
    first_gap: dict[_Stream, int] = {}
    scanned: dict[int, int] = {}
    memo: dict[_Stream, tuple[int, int, int]] = {}
    for step in steps:
        ring = step.mcast[0]
        for seq in step.gaps[scanned.get(ring, 0) : step.gap_count]:
            gap_origin = idx.origin((ring, seq))
            if gap_origin is not None:
                first_gap.setdefault((ring, gap_origin.proc), seq)
        scanned[ring] = step.gap_count
        record = idx.origin(step.mcast)
        if record is None:
            continue
        stream = (ring, record.proc)
        if stream in first_gap:
            problems.add(
                f"node {fmt_proc(proc)} delivered {idx.mcast_long(step.mcast)} in "
                f"{step.config.key} at {fmt_t(step.deliver.time_ns)} without first delivering "
                f"the same sender's earlier {idx.mcast_long((ring, first_gap[stream]))} (FIFO)"
            )
        sender = idx.procs[record.proc]
        done, first_pos, witness = memo.get(stream, (0, -1, -1))
        for seq in step.gaps[done : step.gap_count]:
            got = sender.delivered.get((ring, seq))
            if got is not None and (first_pos < 0 or got[0] < first_pos):
                first_pos, witness = got[0], seq
        memo[stream] = (step.gap_count, first_pos, witness)
        if 0 <= first_pos < record.pos:
            problems.add(
                f"node {fmt_proc(proc)} delivered {idx.mcast_long(step.mcast)} in "
                f"{step.config.key} at {fmt_t(step.deliver.time_ns)} without "
                f"{idx.mcast_long((ring, witness))}, which the sender delivered at "
                f"{fmt_t(idx.history.events[first_pos].time_ns)} before originating it "
                f"(send-after-deliver causality)"
            )


@judges("GUAR-5-9", "EVS-11-13")
def check_safe(history: Source, params: CheckParams = DEFAULT_PARAMS) -> Verdict:
    """Safe in c ⇒ every member of c delivers it in c or trans(c), or fails (EVS-11-13).

    Works per configuration with set differences: the mcasts anyone delivered as safe in c,
    minus what each member delivered in c and (for a regular c) its trans(c).
    """
    idx = as_index(history)
    safety = _Safety(idx, params)
    safe_origin = {m for m, record in idx.origins.items() if record.event.safe}
    for key, views in idx.configs.items():
        wanted: set[Mcast] = set()
        for view in views:
            safe_here = {m for _, d, m in view.deliveries if d.safe}
            wanted |= safe_here
            downgraded = (safety.delivered(view) - safe_here) & safe_origin
            for mcast in sorted(downgraded):
                safety.report_downgrade(view, mcast)
        if wanted:
            safety.counts["safe_obligations"] += len(wanted)
            members = views[0].members
            for node in sorted(members):
                safety.check_member(key, views, node, members, wanted)
    return safety.problems.verdict(dict(safety.counts))


class _Safety:
    """State shared by one run of ``check_safe``: each view's delivered set, built once."""

    def __init__(self, idx: HistoryIndex, params: CheckParams) -> None:
        self.idx = idx
        self.live = params.expected_live or frozenset()
        self.problems = Problems("safe")
        self.counts = {"safe_obligations": 0, "excused_by_failure": 0, "pending_at_end": 0}
        self._sets: dict[int, set[Mcast]] = {}

    def delivered(self, view: ConfigView) -> set[Mcast]:
        got = self._sets.get(id(view))
        if got is None:
            got = self._sets[id(view)] = {m for _, _, m in view.deliveries}
        return got

    def report_downgrade(self, view: ConfigView, mcast: Mcast) -> None:
        deliver = next(d for _, d, m in view.deliveries if m == mcast)
        self.problems.add(
            f"node {fmt_proc(view.proc)} delivered {self.idx.mcast_long(mcast)} in {view.key} "
            f"at {fmt_t(deliver.time_ns)} without the safe guarantee, but it was originated safe"
        )

    def _head(self, views: list[ConfigView], mcast: Mcast) -> str:
        for view in views:
            for _, deliver, m in view.deliveries:
                if m == mcast and deliver.safe:
                    return (
                        f"node {fmt_proc(view.proc)} delivered {self.idx.mcast_long(mcast)} as "
                        f"safe in {view.key} at {fmt_t(deliver.time_ns)}"
                    )
        return f"{self.idx.mcast_long(mcast)} was delivered as safe in {views[0].key}"

    def check_member(
        self,
        key: ConfigKey,
        views: list[ConfigView],
        node: int,
        members: frozenset[int],
        wanted: set[Mcast],
    ) -> None:
        regular = key.kind == REGULAR
        other = self.idx.installer(key, node)
        if other is None:
            if regular:  # a transitional member that never installed it crashed first
                self.problems.add(
                    f"{self._head(views, min(wanted))}, but member {node} of "
                    f"{fmt_nodes(members)} never installed {key} (EVS Spec 7.2)"
                )
            return
        missing = wanted - self.delivered(other)
        if missing and regular and other.next is not None and other.next.key.kind != REGULAR:
            missing -= self.delivered(other.next)
        owner = self.idx.procs[other.proc]
        # Delivered, but elsewhere: check_delivery_location reports that.
        missing = {m for m in missing if m not in owner.delivered}
        if not missing:
            return
        after = other.next_regular()
        if owner.ended_before_next_regular(other):
            self.counts["excused_by_failure"] += len(missing)
        elif after is None and other.proc not in self.live:
            self.counts["pending_at_end"] += len(missing)
        else:
            moved = f"it installed {after.key} at {fmt_t(after.time_ns)}" if after else "run ended"
            for mcast in sorted(missing)[: self.problems.limit]:
                self.problems.add(
                    f"{self._head(views, mcast)}, but member {fmt_proc(other.proc)} never "
                    f"delivered it in {key} or its transitional configuration ({moved}; "
                    f"EVS Spec 7.1)"
                )
            self.problems.more(len(missing) - self.problems.limit)
