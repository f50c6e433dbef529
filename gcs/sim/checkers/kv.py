"""Key-value checkers: one history, nothing acknowledged lost, replicas converge (RFC 0008 §7).

The ``kv`` workload logs every write each replica applied with its version and hash chain, every
state a replica installed, every write a replica acknowledged and, at the end, each live
replica's state (``gcs.sim.workloads.kvlog``). From these alone:

``kv_history`` — no two partitions changed state concurrently: every version was applied as the
same write with the same chain everywhere (a version applied as two different writes is a split
brain); no write was applied at two versions; every installed state is a prefix of that one
history (its chain is the history's chain at its version).

``kv_acked`` — no acknowledged write is lost: the final state's history contains every write a
replica acknowledged, at the version it was acknowledged at.

``kv_converged`` — after the faults stop, every live replica of the final quorate configuration
holds the state and the same state.
"""

from __future__ import annotations

from collections import Counter

from gcs.history.events import MsgId
from gcs.sim.checkers.judges import judges
from gcs.sim.checkers.verdict import Problems, Verdict, fmt_t
from gcs.sim.workloads.kvlog import GENESIS, Ack, Apply, Install, KvLog, chain_step

__all__ = ["check_kv_acked", "check_kv_converged", "check_kv_history"]


def _history(log: KvLog, problems: Problems | None) -> dict[int, tuple[MsgId, bytes]]:
    """version -> (write, chain), reporting conflicts to ``problems``."""
    seen: dict[int, tuple[MsgId, bytes, Apply]] = {}
    for event in log.events:
        if not isinstance(event, Apply):
            continue
        known = seen.get(event.version)
        if known is None:
            seen[event.version] = (event.msg_id, event.chain, event)
        elif (known[0], known[1]) != (event.msg_id, event.chain) and problems is not None:
            first = known[2]
            problems.add(
                f"version {event.version} applied as {first.msg_id} by "
                f"{first.node}/{first.incarnation} at {fmt_t(first.time_ns)} and as "
                f"{event.msg_id} by {event.node}/{event.incarnation} at {fmt_t(event.time_ns)}: "
                "two histories"
            )
    return {v: (m, c) for v, (m, c, _) in seen.items()}


@judges("QRM-4.1-4", "XFR-5.3-1", "XFR-5.5-1")
def check_kv_history(log: KvLog) -> Verdict:
    problems = Problems("kv_history")
    history = _history(log, problems)
    versions: dict[MsgId, set[int]] = {}
    for version, (msg_id, _) in history.items():
        versions.setdefault(msg_id, set()).add(version)
    for msg_id, where in versions.items():
        if len(where) > 1:
            problems.add(f"write {msg_id} applied at versions {sorted(where)}")
    for version, (msg_id, chain) in history.items():
        previous = GENESIS if version == 1 else history.get(version - 1, (None, None))[1]
        if previous is not None and chain_step(previous, msg_id) != chain:
            problems.add(f"version {version}: chain does not extend version {version - 1}")
    for event in log.events:
        if isinstance(event, Install) and event.version:
            known = history.get(event.version)
            if known is not None and known[1] != event.chain:
                problems.add(
                    f"{event.node}/{event.incarnation} installed at {fmt_t(event.time_ns)} a "
                    f"state at version {event.version} that is not the history's ({event.how})"
                )
    applies = sum(1 for e in log.events if isinstance(e, Apply))
    return problems.verdict({"versions": len(history), "applies": applies})


@judges("XFR-5.3-1", "XFR-5.5-1")
def check_kv_acked(log: KvLog) -> Verdict:
    problems = Problems("kv_acked")
    history = _history(log, None)
    acks = [e for e in log.events if isinstance(e, Ack)]
    if not log.finals:
        return problems.unknown("no replica was alive at the end")
    final = max(log.finals, key=lambda f: f.version)
    top = history.get(final.version)
    if final.version and (top is None or top[1] != final.chain):
        problems.add(f"the final state (version {final.version}) is not the applied history")
    for ack in acks:
        entry = history.get(ack.version)
        if ack.version > final.version or entry is None or entry[0] != ack.msg_id:
            problems.add(
                f"write {ack.msg_id} acknowledged at version {ack.version} by "
                f"{ack.node}/{ack.incarnation} at {fmt_t(ack.time_ns)} is not in the final "
                f"state (version {final.version})"
            )
    return problems.verdict({"acknowledged": len(acks), "final_version": final.version})


@judges("XFR-5.5-1")
def check_kv_converged(log: KvLog) -> Verdict:
    problems = Problems("kv_converged")
    finals = log.finals
    if not finals:
        return problems.unknown("no replica was alive at the end")
    rings = Counter(f.ring_id for f in finals)
    if len(rings) > 1 or not all(f.quorate for f in finals):
        return problems.verdict({"note_final_not_one_quorate_ring": 1})
    states = {(f.version, f.chain) for f in finals if f.installed}
    for f in finals:
        if not f.installed:
            problems.add(f"{f.node}/{f.incarnation} never got the state")
    if len(states) > 1:
        text = ", ".join(f"{f.node}/{f.incarnation}@{f.version}" for f in finals)
        problems.add(f"live replicas hold different states: {text}")
    return problems.verdict({"replicas": len(finals)})
