"""The simulator runs the group layer through its one driver (``gcs.sim.layer``).

The ``groups`` workload sends the ring-level workload through group members: every checker still
judges the ring, the group layer's own records are not counted as workload, and members receive
views and the messages the ring delivered. The last_man_standing window of the ``kv`` workload
is a deadline of the layer that shares the host's one timer (RFC 0008 §3.5).
"""

from __future__ import annotations

from gcs.groups.views import Message, View
from gcs.history import events as h
from gcs.sim.layer import GroupLayer
from gcs.sim.run import run
from gcs.sim.scenario import parse_scenario
from gcs.sim.swarm import draw_scenario
from gcs.sim.workloads.groups import GroupWorkload, MemberNode
from gcs.sim.workloads.kv import KvNode
from gcs.sim.workloads.kvlog import Verdict
from gcs.sim.world import World

SCENARIO = {
    "name": "groups",
    "nodes": 5,
    "duration_s": 12.0,
    "quiet_s": 8.0,
    "workload": {"kind": "groups", "rate": 20.0, "sizes": [64, 3000], "safe": 0.3},
    "faults": [
        {"at_s": 3.0, "action": "partition", "spec": "majority", "duration_s": 3.0},
        {"at_s": 7.0, "action": "crash", "nodes": [2], "duration_s": 2.0},
    ],
}


def group_workload(world: World) -> GroupWorkload:
    member = next(h.upper for h in world.hosts.values() if isinstance(h.upper, MemberNode))
    assert isinstance(member, MemberNode)
    return member.workload


def test_group_members_send_through_the_group_layer() -> None:
    worlds: list[World] = []
    result = run(parse_scenario(SCENARIO), 5, probes=[worlds.append])
    failed = [v.summary() for v in result.verdicts if v.valid is not True]
    assert not failed, "\n".join(failed)
    deliveries = [e for e in result.history if isinstance(e, h.Deliver)]
    assert deliveries and all(e.corrupt == 0 for e in deliveries), "joins are not workload"
    ring_delivered = {m for e in deliveries for m in e.msg_ids}
    events = group_workload(worlds[0]).events
    views = [e for e in events if isinstance(e.event, View)]
    messages = [e.event for e in events if isinstance(e.event, Message)]
    assert {e.node for e in views} == {1, 2, 3, 4, 5}
    assert {e.incarnation for e in views if e.node == 2} == {1, 2}, "the restarted member too"
    assert any(e.event.transitional for e in views), "the partition changed the group's view"
    member_delivered = {h.decode_payload(m.data) for m in messages if m.to is None}
    assert len(member_delivered) > 100 and member_delivered <= ring_delivered


def test_a_groups_run_is_a_function_of_its_seed() -> None:
    scenario = parse_scenario(SCENARIO)
    first, second = run(scenario, 9), run(scenario, 9)
    assert first.digest() == second.digest()
    assert draw_scenario(4, kind="groups").workload.kind == "groups"


def test_the_last_man_standing_window_fires_from_the_hosts_one_timer() -> None:
    """The majority side of a partition lowers expected votes once its window ended."""
    worlds: list[World] = []
    kv = {
        "name": "kv-lms",
        "nodes": 5,
        "duration_s": 12.0,
        "quiet_s": 8.0,
        "workload": {"kind": "kv", "rate": 10.0},
        "quorum": {"wait_for_all": True, "last_man_standing": True},
        "faults": [{"at_s": 4.0, "action": "partition", "spec": "majority", "duration_s": 4.0}],
    }
    kv["quorum"]["last_man_standing_window_ms"] = 500  # type: ignore[index]
    result = run(parse_scenario(kv), 3, probes=[worlds.append])
    assert all(v.valid for v in result.verdicts), [v.summary() for v in result.verdicts]
    layers = [host.upper for host in worlds[0].hosts.values()]
    assert all(isinstance(layer, KvNode | GroupLayer) for layer in layers)
    node = next(layer for layer in layers if isinstance(layer, KvNode))
    verdicts = [e for e in node.workload.log.events if isinstance(e, Verdict)]
    lowered = [v for v in verdicts if v.expected_votes < 5]
    assert lowered and all(v.quorate for v in lowered)
    first = lowered[0]
    opened = [
        v
        for v in verdicts
        if v.node == first.node
        and v.time_ns <= first.time_ns
        and v.quorate
        and v.total_votes < v.expected_votes == 5
    ]
    waited_ms = (first.time_ns - opened[-1].time_ns) / 1e6
    assert 500 <= waited_ms < 550, f"lowered {waited_ms:.1f} ms after the window opened"
