"""A small summary of a run for reports (``summary.txt``, RFC 0007 §7).

Counts only; nothing here judges the run. View changes are tallied by the first word of
``Conf.reason``, which is the ``ReasonKind`` value (``token_loss``, ``join``, ``merge``, ...,
RFC 0004 §9.1 and ``gcs.totem.effects.ChangeReason``); transitional installations are not counted
as separate view changes, since each one precedes a regular one.
"""

from __future__ import annotations

from collections import Counter

from gcs.sim.checkers.index import REGULAR, Source, as_index

__all__ = ["summarize"]


def summarize(history: Source) -> dict[str, int | dict[str, int]]:
    """Message, configuration and fault counts for one history."""
    idx = as_index(history)
    deliveries = message_deliveries = submitted = safe_submitted = crashes = leaves = 0
    delivered: set[object] = set()
    for signatures in idx.signatures.values():
        for _, deliver in signatures:
            delivered.update(deliver.msg_ids)
    reasons: Counter[str] = Counter()
    installs: Counter[str] = Counter()
    for view in idx.procs.values():
        submitted += len(view.submits)
        safe_submitted += sum(1 for _, submit in view.submits.values() if submit.safe)
        crashes += int(view.end is not None and type(view.end).__name__ == "Crash")
        leaves += int(view.end is not None and type(view.end).__name__ == "Leave")
        for config in view.configs:
            installs[config.key.kind] += 1
            if config.key.kind == REGULAR:
                reason = config.event.reason.split(maxsplit=1)
                reasons[reason[0] if reason else "unknown"] += 1
            deliveries += len(config.deliveries)
            message_deliveries += sum(len(d.msg_ids) for _, d, _ in config.deliveries)
    return {
        "events": len(idx.history),
        "incarnations": len(idx.procs),
        "crashes": crashes,
        "leaves": leaves,
        "messages_submitted": submitted,
        "safe_messages_submitted": safe_submitted,
        "messages_originated": len(idx.msg_origins),
        "mcasts_originated": len(idx.origins),
        "fragment_mcasts": sum(1 for r in idx.origins.values() if not r.event.msg_ids),
        "mcast_deliveries": deliveries,
        "message_deliveries": message_deliveries,
        "messages_delivered": len(delivered),
        "regular_installs": installs[REGULAR],
        "transitional_installs": sum(n for kind, n in installs.items() if kind != REGULAR),
        "distinct_configurations": len(idx.configs),
        "invariant_events": len(idx.invariants),
        "end_ns": idx.end_ns,
        "view_changes_by_reason": dict(sorted(reasons.items())),
        "faults_by_kind": dict(sorted(Counter(f.kind for f in idx.faults).items())),
    }
