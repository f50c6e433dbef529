"""Node-list checkers: one list per version, one list per configuration, lists kept across
crashes (RFC 0008 §3.7, judged on the ``kv`` workload's log, ``gcs.sim.workloads.kvlog``).

They read what the nodes recorded (``NodesHeld`` at start, at each applied change and at each
merge that brought a newer list; each verdict's list version), not the rules.

``node_list_chain`` (QRM-3.7-2). A version names one list in the whole run: two nodes that ever
held version ``v`` held the same entries. Two partitions that both changed the list on one
version would break it (the safety argument's chain, RFC 0008 §3.7.1).

``node_list_agreement`` (QRM-3.7-6). The members of one configuration decide under one list:
per ring, the list versions at each member's verdicts are a prefix of the longest sequence.

``node_list_durable`` (QRM-3.7-4). A node that restarts with its state directory kept starts
with at least the version its previous incarnation last held: the list was stored before it took
effect. A node whose last list did not list it (it applied its own removal and stopped) is
started again on a fresh list, as its operator must: that restart is not judged.

Without ``node_changes`` every node holds version 0 throughout, and all three pass.
"""

from __future__ import annotations

from gcs.sim.checkers.judges import judges
from gcs.sim.checkers.quorum import verdict_prefixes
from gcs.sim.checkers.verdict import Problems, Verdict, fmt_t
from gcs.sim.workloads.kvlog import KvLog, NodesHeld

__all__ = ["check_node_list_agreement", "check_node_list_chain", "check_node_list_durable"]


@judges("QRM-3.7-2")
def check_node_list_chain(log: KvLog) -> Verdict:
    problems = Problems("node_list_chain")
    first: dict[int, NodesHeld] = {}
    for event in log.events:
        if not isinstance(event, NodesHeld):
            continue
        seen = first.setdefault(event.version, event)
        if seen.entries != event.entries:
            problems.add(
                f"version {event.version}: node {seen.node}/{seen.incarnation} held "
                f"{list(seen.entries)} ({seen.how} at {fmt_t(seen.time_ns)}), node "
                f"{event.node}/{event.incarnation} held {list(event.entries)} ({event.how} at "
                f"{fmt_t(event.time_ns)})"
            )
    return problems.verdict({"versions": len(first)})


@judges("QRM-3.7-6")
def check_node_list_agreement(log: KvLog) -> Verdict:
    problems = Problems("node_list_agreement")
    rings = verdict_prefixes(log, problems, lambda v: v.nodes_version, "list versions")
    return problems.verdict({"rings": rings})


@judges("QRM-3.7-4")
def check_node_list_durable(log: KvLog) -> Verdict:
    problems = Problems("node_list_durable")
    last: dict[int, NodesHeld] = {}
    restarts = 0
    for event in log.events:
        if not isinstance(event, NodesHeld):
            continue
        before = last.get(event.node)
        # A node that applied its own removal stopped, and its operator starts it again only
        # with a fresh list (RFC 0006 API-3.8-3, API-3.8-4): that restart is not judged.
        removed = before is not None and event.node not in (n for n, _ in before.entries)
        if event.how == "start" and before is not None and event.disk_kept and not removed:
            restarts += 1
            if event.version < before.version:
                problems.add(
                    f"node {event.node} restarted at {fmt_t(event.time_ns)} (incarnation "
                    f"{event.incarnation}) with list version {event.version}, but incarnation "
                    f"{before.incarnation} had held version {before.version} since "
                    f"{fmt_t(before.time_ns)}: it acted on a list it had not stored"
                )
        last[event.node] = event
    return problems.verdict({"restarts_judged": restarts})
