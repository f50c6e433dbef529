"""protocol/traces/*.json replayed against a fresh core, and what each trace demonstrates.

The replay test compares every effect of every step exactly (order included, ``Trace`` effects
left out), plus the membership state and the next deadline. The other tests pick out the steps
that show a requirement of RFC 0003 / RFC 0004 and assert it on the committed data, so a
regenerated trace that stopped showing it fails even if it replays.
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest

from gcs.totem.node import Node

from .tracing import (
    TRACES_DIR,
    apply_input,
    config_from_json,
    effects_to_json,
    frame_from_json,
    frame_to_json,
    load_traces,
    replay,
)

TRACES = load_traces()
VECTORS = Path(__file__).resolve().parents[2] / "protocol" / "vectors" / "frames.json"
MS = 1_000_000


def steps(name: str) -> list[dict[str, Any]]:
    return TRACES[name]["steps"]  # type: ignore[no-any-return]


def effects(name: str, kind: str) -> list[tuple[int, dict[str, Any]]]:
    """(step index, effect) of every effect of ``kind`` in trace ``name``."""
    return [(i, e) for i, s in enumerate(steps(name)) for e in s["expect"] if e["type"] == kind]


def ring(obj: dict[str, int]) -> str:
    return f"{obj['rep']}.{obj['seq']}"


def first(s: list[dict[str, Any]], state: str, after: int = 0) -> int:
    """Index of the first step at or after ``after`` that leaves the node in ``state``."""
    return next(i for i in range(after, len(s)) if s[i]["state"] == state)


def formed(s: list[dict[str, Any]]) -> int:
    """Index of the step that installed the first multi-node ring (after start-up)."""
    return first(s, "operational", first(s, "commit"))


def test_the_required_traces_exist() -> None:
    assert set(TRACES) >= {
        "ring-formation",
        "agreed-first-rotation",
        "safe-two-visits",
        "safe-after-hold",
        "retransmit-by-non-originator",
        "token-loss-gather",
        "crash-survivor",
        "partition-merge",
        "failed-recovery",
        "clean-leave",
        "lone-start",
    }
    for path in TRACES_DIR.glob("*.json"):
        trace = json.loads(path.read_text())
        assert trace["format"] == "gcs-trace/1"
        assert path.name == f"{trace['name']}.json"


@pytest.mark.req("MEM-2.4-1", "ORD-9-1")
@pytest.mark.parametrize("name", sorted(TRACES))
def test_trace_replays_exactly(name: str) -> None:
    """Every trace step: same effects in the same order, same state, same next deadline.

    MEM-2.4-1: the traces walk every state of the transition tables (STARTING, OPERATIONAL,
    GATHER, COMMIT, RECOVERY) through the events named there. ORD-9-1: all are recorded with
    accelerated = false, the behaviour this revision specifies.
    """
    assert TRACES[name]["config"]["accelerated"] is False
    for step in replay(TRACES[name]):
        where = f"{name} step {step.index} ({step.input['type']} at {step.input['now_ns']})"
        assert step.actual == step.expected, where
        assert step.actual_state == step.expected_state, where
        assert step.actual_deadline == step.expected_deadline, where


@pytest.mark.req("MEM-4.3-3")
@pytest.mark.parametrize("name", ["ring-formation", "crash-survivor", "partition-merge"])
def test_traces_draw_no_randomness(name: str) -> None:
    """MEM-4.3-3: with join_jitter_ns = 0 the core never draws from its generator, so the
    traces replay identically whatever the seed (other implementations have other rngs)."""
    trace = TRACES[name]
    assert trace["config"]["join_jitter_ns"] == 0
    outputs = []
    for seed in (0, 12345):
        node = Node(config_from_json(trace["config"]), random.Random(seed))
        outputs.append([effects_to_json(apply_input(node, s["input"])) for s in trace["steps"]])
    assert outputs[0] == outputs[1]


def test_frame_json_layout_is_the_vectors_layout() -> None:
    """Traces spell frames exactly as protocol/vectors/frames.json does (RFC 0003 App. A)."""
    vectors = json.loads(VECTORS.read_text())["vectors"]
    assert vectors
    for vector in vectors:
        assert frame_to_json(frame_from_json(vector["frame"])) == vector["frame"], vector["name"]


# ---------------------------------------------------------------------- start-up and formation


@pytest.mark.req("MEM-2.3-1", "MEM-2.3-2", "MEM-3.1-1")
def test_startup_persists_then_installs_a_singleton_then_gathers() -> None:
    """MEM-2.3-1, MEM-2.3-2, MEM-3.1-1: persist stored+4 first; on confirmation, a regular
    singleton configuration, then GATHER with a join to every configured peer."""
    first, second = steps("ring-formation")[:2]
    assert first["expect"] == [{"type": "persist_ring_seq", "seq": 4}]
    assert first["state"] == "starting" and first["deadline_ns"] is None
    conf, join = second["expect"]
    assert conf["type"] == "configuration" and conf["kind"] == "regular"
    assert (ring(conf["ring_id"]), conf["members"], conf["joined"]) == ("1.4", [1], [1])
    assert conf["reason"]["kind"] == "startup"
    assert join["type"] == "multicast" and join["dests"] == [2, 3]
    assert join["frame"] == {
        "type": "memb_join",
        "sender": 1,
        "proc_set": [1],
        "fail_set": [],
        "ring_seq": 4,
    }
    assert second["state"] == "gather"
    lone = steps("lone-start")
    assert lone[0]["input"]["stored_ring_seq"] == 40
    assert lone[0]["expect"] == [{"type": "persist_ring_seq", "seq": 44}]


@pytest.mark.req("REC-5.1-1", "REC-5.2-2", "REC-5.3-3", "ORD-4.3-1")
def test_formation_commit_token_and_first_token() -> None:
    """REC-5.1-1, REC-5.2-2, REC-5.3-3, ORD-4.3-1: ring seq 4 above the known maximum, blank
    lines for the others, my line filled, persistence requested before the token is sent; the
    representative's first regular token is all zero and goes out with token_seq 1."""
    s = steps("ring-formation")
    commit = next(i for i, st in enumerate(s) if st["state"] == "commit")
    persist, send = s[commit]["expect"]
    assert persist == {"type": "persist_ring_seq", "seq": 8}
    token = send["frame"]
    assert send["dest"] == 2 and token["type"] == "memb_commit_token"
    assert ring(token["ring_id"]) == "1.8" and token["memb_index"] == 1
    lines = token["members"]
    assert [m["node_id"] for m in lines] == [1, 2, 3]
    assert lines[0] == {
        "node_id": 1,
        "old_ring_id": {"rep": 1, "seq": 4},
        "aru": 0,
        "high_delivered": 0,
        "received_flg": True,
    }
    assert lines[1]["old_ring_id"] == {"rep": 2, "seq": 0} and not lines[1]["received_flg"]
    first = [e for _, e in effects("ring-formation", "send") if e["frame"]["type"] == "orf_token"]
    assert first[0]["frame"] | {"ring_id": None} == {
        "type": "orf_token",
        "ring_id": None,
        "token_seq": 1,
        "seq": 0,
        "aru": 0,
        "aru_id": 0,
        "fcc": 0,
        "backlog": 0,
        "retrans_flg": False,
        "rtr": [],
    }


@pytest.mark.req("REC-7.1-1", "REC-7.1-2")
def test_formation_installs_transitional_then_regular() -> None:
    """REC-7.1-1, REC-7.1-2: transitional {1} (node 1's old ring was its singleton), then
    regular {1,2,3}, both with the new ring's id and the change's reason, before the token is
    forwarded on the new ring."""
    s = steps("ring-formation")
    i = next(i for i, st in enumerate(s) if st["state"] == "operational" and i > 2)
    trans, regular, send = s[i]["expect"]
    assert (trans["kind"], ring(trans["ring_id"]), trans["members"]) == ("transitional", "1.8", [1])
    assert (regular["kind"], regular["members"], regular["joined"]) == (
        "regular",
        [1, 2, 3],
        [2, 3],
    )
    assert trans["reason"] == regular["reason"] == {"kind": "startup", "nodes": []}
    assert send["type"] == "send" and send["frame"]["type"] == "orf_token"


# ---------------------------------------------------------------------- ordering


@pytest.mark.req(
    "ORD-4.6-1", "ORD-4.6-2", "ORD-4.6-3", "ORD-3.1-2", "ORD-7.1-1", "ORD-7.1-2", "REC-6.2-3"
)
def test_records_queued_during_formation_go_out_in_the_first_rotation() -> None:
    """ORD-4.6-1, ORD-4.6-2, ORD-4.6-3, ORD-3.1-2, ORD-7.1-1, ORD-7.1-2, REC-6.2-3: submitted
    in COMMIT, originated only once OPERATIONAL as seq 1, delivered by the originator right
    after it forwards the token; the other node's seq 2 is delivered on arrival."""
    s = steps("agreed-first-rotation")
    submit = next(i for i, st in enumerate(s) if st["input"]["type"] == "submit")
    assert s[submit]["state"] == "commit" and s[submit]["expect"] == []
    originated = effects("agreed-first-rotation", "multicast")
    mcasts = [(i, e) for i, e in originated if e["frame"]["type"] == "mcast"]
    (i, m), *_ = mcasts
    assert s[i - 1]["state"] == "operational"
    assert m["frame"]["seq"] == 1 and m["frame"]["sender"] == 1 and m["dests"] == [2, 3]
    kinds = [e["type"] for e in s[i]["expect"]]
    assert kinds == ["multicast", "send", "deliver"]
    delivered = [e for _, e in effects("agreed-first-rotation", "deliver")]
    assert [(d["seq"], d["sender"], d["safe"]) for d in delivered] == [(1, 1, False), (2, 2, False)]
    assert all(
        d["config"] == {"kind": "regular", "ring_id": {"rep": 1, "seq": 8}} for d in delivered
    )
    assert [r["data"] for d in delivered for r in d["records"]] == [b"m1".hex(), b"m2".hex()]


@pytest.mark.req("ORD-4.9-2", "ORD-4.9-3")
def test_a_visit_that_originated_is_not_held() -> None:
    """ORD-4.9-2, ORD-4.9-3: the hold timer releases the held token; a safe record submitted
    then waits for the token's return, is originated, and that visit forwards the token instead
    of holding it; the record is delivered safe three rotations (9 ms) after its origination."""
    s = steps("safe-after-hold")
    submit = next(i for i, st in enumerate(s) if st["input"]["type"] == "submit")
    assert s[submit - 1]["input"]["type"] == "timeout"  # the hold timer's release
    assert [e["type"] for e in s[submit - 1]["expect"]] == ["send"]
    visit = submit + 1
    assert [e["type"] for e in s[visit]["expect"]] == ["multicast", "send"]
    delivered = next(
        i for i in range(visit, len(s)) if any(e["type"] == "deliver" for e in s[i]["expect"])
    )
    took_ns = s[delivered]["input"]["now_ns"] - s[visit]["input"]["now_ns"]
    assert took_ns <= 3 * 3 * MS, f"safe delivery took {took_ns / MS} ms after origination"


@pytest.mark.req("ORD-7.2-1", "ORD-7.2-2", "ORD-7.3-1")
def test_safe_mcast_waits_for_two_visits_and_holds_back_the_agreed_one() -> None:
    """ORD-7.2-1, ORD-7.2-2, ORD-7.3-1: node 1 originates safe seq 1, sees aru 2 on the next
    visit (but 0 on the one before), so delivers nothing; node 2's agreed seq 2 waits behind
    it; on the following visit both are delivered, the safe one first."""
    s = steps("safe-two-visits")
    tokens = [
        i
        for i, st in enumerate(s)
        if st["input"]["type"] == "receive" and st["input"]["frame"]["type"] == "orf_token"
    ]
    origin = next(i for i in tokens if any(e["type"] == "multicast" for e in s[i]["expect"]))
    nxt, after = [i for i in tokens if i > origin][:2]
    assert s[nxt]["input"]["frame"]["aru"] >= 1
    mcast2 = next(
        i
        for i in range(origin, nxt)
        if s[i]["input"]["type"] == "receive" and s[i]["input"]["frame"]["type"] == "mcast"
    )
    assert s[mcast2]["input"]["frame"]["seq"] == 2 and s[mcast2]["expect"] == []
    assert all(e["type"] != "deliver" for i in range(origin, after) for e in s[i]["expect"])
    delivered = [e for e in s[after]["expect"] if e["type"] == "deliver"]
    assert [(d["seq"], d["safe"]) for d in delivered] == [(1, True), (2, False)]


@pytest.mark.req("ORD-4.4-1", "ORD-4.4-2", "ORD-3.3-5")
def test_hole_requested_by_one_node_is_served_by_another() -> None:
    """ORD-4.4-1, ORD-4.4-2, ORD-3.3-5: node 3 lists seq 1 (originated by node 2) on the token;
    node 1 multicasts node 2's stored mcast unchanged and takes the entry off the list."""
    s = steps("retransmit-by-non-originator")
    i = next(
        i
        for i, st in enumerate(s)
        if st["input"]["type"] == "receive"
        and st["input"]["frame"]["type"] == "orf_token"
        and st["input"]["frame"]["rtr"]
    )
    token = s[i]["input"]["frame"]
    assert s[i]["input"]["src"] == 3
    assert [(ring(e["ring_id"]), e["seq"]) for e in token["rtr"]] == [("1.8", 1)]
    retransmit, forward = s[i]["expect"][:2]
    original = next(
        st["input"]["frame"]
        for st in s
        if st["input"]["type"] == "receive" and st["input"]["frame"]["type"] == "mcast"
    )
    assert retransmit == {"type": "multicast", "dests": [2, 3], "frame": original}
    assert original["sender"] == 2
    assert forward["type"] == "send" and forward["frame"]["rtr"] == []


@pytest.mark.req("ORD-5-1", "ORD-4.5-1")
def test_a_hole_is_requested_only_after_miss_count_visits() -> None:
    """ORD-5-1: the node missing seq 1 lowers the aru (and becomes aru_id); node 1, which has
    it, leaves a lower aru alone. ORD-4.5-1: the request appears on node 3's fifth visit."""
    s = steps("retransmit-by-non-originator")
    tokens = [
        st["input"]["frame"]
        for st in s
        if st["input"]["type"] == "receive" and st["input"]["frame"]["type"] == "orf_token"
    ]
    lowered = [t for t in tokens if t["seq"] == 1 and t["aru"] == 0]
    assert lowered and all(t["aru_id"] == 3 for t in lowered)
    first_request = next(k for k, t in enumerate(tokens) if t["rtr"])
    assert len([t for t in tokens[:first_request] if t["seq"] == 1 and t["aru"] == 0]) == 4


# ---------------------------------------------------------------------- token loss


@pytest.mark.req("ORD-4.7-2", "ORD-4.8-1", "ORD-4.8-2", "MEM-3.1-1")
def test_token_retransmission_then_token_loss() -> None:
    """ORD-4.7-2, ORD-4.8-1, ORD-4.8-2, MEM-3.1-1: the last token is re-sent unchanged every
    token_retransmit_ns; token_timeout_ns after the last accepted token the node gathers."""
    s = steps("token-loss-gather")
    cfg = TRACES["token-loss-gather"]["config"]
    last_accept = max(
        i
        for i, st in enumerate(s)
        if st["input"]["type"] == "receive"
        and st["input"]["frame"]["type"] == "orf_token"
        and st["state"] == "operational"
        and st["input"]["now_ns"] < 100 * MS
    )
    t0 = s[last_accept]["input"]["now_ns"]
    sent = s[last_accept]["expect"][-1]
    resends = [
        st
        for st in s[last_accept + 1 :]
        if st["input"]["type"] == "timeout" and st["state"] == "operational"
    ]
    assert [st["input"]["now_ns"] - t0 for st in resends] == [
        k * cfg["token_retransmit_ns"] for k in range(1, len(resends) + 1)
    ]
    assert all(st["expect"] == [sent] for st in resends)
    loss = next(i for i, st in enumerate(s) if st["state"] == "gather" and i > last_accept)
    assert s[loss]["input"] == {"type": "timeout", "now_ns": t0 + cfg["token_timeout_ns"]}
    (join,) = s[loss]["expect"]
    assert join["frame"]["type"] == "memb_join" and join["frame"]["ring_seq"] == 8


# ---------------------------------------------------------------------- membership changes


@pytest.mark.req(
    "MEM-4.2-1",
    "MEM-9.1-1",
    "MEM-4.3-1",
    "REC-5.2-2",
    "REC-6.1-1",
    "REC-6.2-1",
    "REC-6.2-2",
    "REC-7.1-1",
)
def test_crash_survivor_consensus_timeout_and_recovery() -> None:
    """MEM-4.2-1, MEM-9.1-1, MEM-4.3-1: the consensus timeout fails node 3 (never heard); the
    joins back off after join_backoff_after rounds; the change keeps its first reason.
    REC-5.2-2 (received_flg cleared for the member with less), REC-6.1-1, REC-6.2-1,
    REC-6.2-2: node 2 re-sends seq 1 encapsulated. REC-7.1-1: node 1 delivers it in the old
    regular configuration, then transitional {1,2} (left 3), then regular {1,2}."""
    s = steps("crash-survivor")
    cfg = TRACES["crash-survivor"]["config"]
    gather = first(s, "gather", formed(s))
    t_gather = s[gather]["input"]["now_ns"]
    joins = [
        (st["input"]["now_ns"], e["frame"])
        for st in s[gather:]
        for e in st["expect"]
        if e["type"] == "multicast" and e["frame"]["type"] == "memb_join"
    ]
    failing = next(t for t, j in joins if j["fail_set"] == [3])
    assert failing == t_gather + cfg["consensus_timeout_ns"]
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(joins) if b < failing]
    assert gaps[: cfg["join_backoff_after"]] == [cfg["join_timeout_ns"]] * cfg["join_backoff_after"]
    assert 2 * cfg["join_timeout_ns"] in gaps
    commit = [
        e for _, e in effects("crash-survivor", "send") if e["frame"]["type"] == "memb_commit_token"
    ]
    second = [e["frame"] for e in commit if e["frame"]["memb_index"] == 2]
    assert second and [m["received_flg"] for m in second[0]["members"]] == [False, True]
    carriers = [
        st["input"]["frame"]
        for st in s
        if st["input"]["type"] == "receive"
        and st["input"]["frame"]["type"] == "mcast"
        and st["input"]["frame"]["encapsulated"] is not None
    ]
    assert len(carriers) == 1
    carrier = carriers[0]
    assert carrier["sender"] == 2 and ring(carrier["ring_id"]) == "1.12"
    assert carrier["records"] == [] and not carrier["safe"]
    inner = carrier["encapsulated"]
    assert (inner["sender"], ring(inner["ring_id"]), inner["seq"]) == (3, "1.8", 1)
    install = first(s, "operational", gather)
    kinds = [(e["type"], e.get("kind")) for e in s[install]["expect"]]
    assert kinds[:3] == [
        ("deliver", None),
        ("configuration", "transitional"),
        ("configuration", "regular"),
    ]
    deliver, trans, regular = s[install]["expect"][:3]
    assert deliver["config"] == {"kind": "regular", "ring_id": {"rep": 1, "seq": 8}}
    assert (deliver["seq"], deliver["sender"]) == (1, 3)
    assert (trans["members"], trans["left"]) == ([1, 2], [3])
    assert (regular["members"], regular["joined"]) == ([1, 2], [])
    assert trans["reason"]["kind"] == regular["reason"]["kind"] == "token_loss"


@pytest.mark.req("REC-7.3-1", "REC-7.3-2", "REC-5.2-1")
def test_failed_recovery_keeps_the_recovered_message() -> None:
    """REC-7.3-1, REC-7.3-2, REC-5.2-1: token loss in RECOVERY sends node 1 back to GATHER with
    its old ring; the next attempt proposes a higher ring seq (16, above the failed 12); the
    carrier received during the failed attempt was kept, so nothing is re-sent and seq 1 is
    delivered in the old regular configuration 1.8 at the installation of 1.16."""
    s = steps("failed-recovery")
    recovery = first(s, "recovery", first(s, "gather", formed(s)))
    back = first(s, "gather", recovery)
    assert s[back]["input"]["type"] == "timeout"
    assert any(
        st["input"]["type"] == "receive" and (st["input"]["frame"].get("encapsulated") or {})
        for st in s[recovery:back]
    )
    persists = [e["seq"] for _, e in effects("failed-recovery", "persist_ring_seq")]
    assert persists == [4, 8, 12, 16]
    later = [st for st in s[back:] for e in st["expect"] if e["type"] == "multicast"]
    assert not any(
        e["frame"].get("encapsulated") for st in later for e in st["expect"] if "frame" in e
    )
    delivered = [e for _, e in effects("failed-recovery", "deliver")]
    assert [
        (d["config"]["kind"], ring(d["config"]["ring_id"]), d["seq"], d["sender"])
        for d in delivered
    ] == [("regular", "1.8", 1, 3)]
    confs = [
        (e["kind"], ring(e["ring_id"])) for _, e in effects("failed-recovery", "configuration")
    ]
    assert ("transitional", "1.12") not in confs and ("regular", "1.16") in confs


@pytest.mark.req("ORD-4.10-1", "MEM-3.5-1", "MEM-3.5-2")
def test_partition_merge_by_merge_detect() -> None:
    """ORD-4.10-1, MEM-3.5-1, MEM-3.5-2: while partitioned, the representative of {1,2}
    multicasts merge-detect to node 3 every merge_timeout_ns; after the heal the rings merge
    into {1,2,3} with transitional {1,2} at node 1 and reason merge."""
    s = steps("partition-merge")
    cfg = TRACES["partition-merge"]["config"]
    detects = [
        (s[i]["input"]["now_ns"], e)
        for i, e in effects("partition-merge", "multicast")
        if e["frame"]["type"] == "memb_merge_detect"
    ]
    assert len(detects) >= 3 and all(e["dests"] == [3] for _, e in detects)
    times = [t for t, _ in detects]
    assert {b - a for a, b in itertools.pairwise(times)} == {cfg["merge_timeout_ns"]}
    confs = [e for _, e in effects("partition-merge", "configuration")]
    last_trans, last_regular = confs[-2:]
    assert (last_trans["members"], last_regular["members"]) == ([1, 2], [1, 2, 3])
    assert last_regular["joined"] == [3] and last_regular["reason"]["kind"] == "merge"


@pytest.mark.req("MEM-3.4-2")
def test_clean_leave_reforms_at_once() -> None:
    """MEM-3.4-2: a leave from a member starts a change at once (no token timeout), with the
    leaver failed and the reason leave."""
    s = steps("clean-leave")
    i = next(
        i
        for i, st in enumerate(s)
        if st["input"]["type"] == "receive" and st["input"]["frame"]["type"] == "memb_leave"
    )
    leave = s[i]["input"]["frame"]
    assert leave == {
        "type": "memb_leave",
        "sender": 3,
        "proc_set": [1, 2],
        "fail_set": [3],
        "ring_seq": 8,
    }
    (join,) = s[i]["expect"]
    assert join["frame"]["proc_set"] == [1, 2, 3] and join["frame"]["fail_set"] == [3]
    regular = [e for _, e in effects("clean-leave", "configuration")][-1]
    assert regular["members"] == [1, 2] and regular["reason"] == {"kind": "leave", "nodes": [3]}
    assert (
        s[-1]["input"]["now_ns"] - leave_time(s, i)
        < TRACES["clean-leave"]["config"]["token_timeout_ns"]
    )


def leave_time(s: list[dict[str, Any]], i: int) -> int:
    return s[i]["input"]["now_ns"]  # type: ignore[no-any-return]


@pytest.mark.req("ORD-4.7-3", "MEM-4.1-1", "MEM-4.1-2")
def test_one_member_ring_uses_no_network_for_its_tokens() -> None:
    """ORD-4.7-3, MEM-4.1-1, MEM-4.1-2: alone, the node reaches consensus at its first join
    timeout (not on entering GATHER), and its commit token and tokens never go on the wire."""
    s = steps("lone-start")
    cfg = TRACES["lone-start"]["config"]
    assert s[1]["state"] == "gather" and s[1]["deadline_ns"] == cfg["join_timeout_ns"]
    commit = next(i for i, st in enumerate(s) if st["state"] == "commit")
    assert s[commit]["input"] == {"type": "timeout", "now_ns": cfg["join_timeout_ns"]}
    assert not effects("lone-start", "send")
    confs = [
        (e["kind"], ring(e["ring_id"]), e["members"])
        for _, e in effects("lone-start", "configuration")
    ]
    assert confs == [
        ("regular", "1.44", [1]),
        ("transitional", "1.48", [1]),
        ("regular", "1.48", [1]),
    ]
