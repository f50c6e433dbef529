"""RFC 0004 §5-§7: the commit token, stable storage, recovery, installation."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gcs.history import events as h
from gcs.totem import recovery
from gcs.totem.effects import MembState, PersistRingSeq
from gcs.wire.frames import Mcast, MemberEntry, OrfToken, RingId

from .tracing import (
    MS,
    Cluster,
    apply_input,
    load_traces,
    mcast_carrying,
    prefix,
    token_to,
    visible,
)

TRACES = load_traces()


@pytest.mark.req("REC-5.3-1", "REC-5.3-2")
def test_recovery_waits_for_stable_storage() -> None:
    """REC-5.3-1, REC-5.3-2: a node whose commit token came back but whose new ring seq is not
    yet confirmed persisted stays in COMMIT, holding the token, for as long as it takes; the
    confirmation lets it continue to RECOVERY and then install."""
    core, now = prefix("lone-start", 2)
    assert core.state is MembState.GATHER
    now = core.next_deadline_ns or 0
    effects = visible(core.on_timeout(now))
    assert PersistRingSeq(48) in effects and core.state is MembState.COMMIT
    for _ in range(3):
        visible(core.on_timeout(now))  # the commit token returns to the node itself
    assert core.state is MembState.COMMIT
    assert core.commit is not None and core.commit.pending is not None
    assert visible(core.on_timeout(now + 500 * MS)) == []
    assert core.state is MembState.COMMIT
    core.on_persisted(now + 500 * MS, 48)
    assert core.state is MembState.RECOVERY
    while core.next_deadline_ns == now + 500 * MS and core.state is not MembState.OPERATIONAL:
        core.on_timeout(now + 500 * MS)
    assert core.state is MembState.OPERATIONAL and core.ring.ring_id.seq == 48


@pytest.mark.req("REC-5.3-3", "ORD-4.3-1")
def test_duplicate_commit_token_does_not_restart_the_ring() -> None:
    """REC-5.3-3, ORD-4.3-1: the representative creates the first token once; a duplicate of
    the returning commit token in RECOVERY is discarded."""
    trace = TRACES["ring-formation"]
    steps = trace["steps"]
    first = next(
        i
        for i, s in enumerate(steps)
        if s["state"] == "recovery"
        and any(e["type"] == "send" and e["frame"]["type"] == "orf_token" for e in s["expect"])
    )
    core, _ = prefix("ring-formation", first + 1)
    replayed = steps[first]["input"]
    assert visible(apply_input(core, replayed)) == []
    assert core.statistics().drops["commit_token_unexpected"] == 1


def token_visits(
    steps: list[dict[str, Any]], ring_seq: int
) -> list[tuple[dict[str, Any], dict[str, Any], str]]:
    """(received frame, sent token, state after) of every visit of a recorded node on the ring
    with ``ring_seq``; the first is the one that turned the returning commit token into the
    first token."""
    out = []
    for s in steps:
        frame = s["input"].get("frame") or {}
        sent = [
            e["frame"]
            for e in s["expect"]
            if e["type"] == "send" and e["frame"]["type"] == "orf_token"
        ]
        if sent and sent[0]["ring_id"]["seq"] == ring_seq and frame:
            out.append((frame, sent[0], s["state"]))
    return out


def check_install_condition(visits: list[tuple[dict[str, Any], dict[str, Any], str]]) -> None:
    install = next(k for k, v in enumerate(visits) if v[2] == "operational")
    streak = 0
    for _, sent, _ in visits[: install + 1]:
        streak = streak + 1 if not sent["retrans_flg"] else 0
    assert streak == 4
    install_seq = visits[install - 2][1]["seq"]
    assert visits[install - 1][0]["aru"] >= install_seq
    assert visits[install][0]["aru"] >= install_seq


@pytest.mark.req("REC-6.3-1", "REC-6.2-1")
def test_retrans_flg_protocol_and_install_condition() -> None:
    """REC-6.3-1, REC-6.2-1: node 2 has eight old-ring mcasts to re-send and may send two per
    visit, so it sets retrans_flg until its queue is empty and clears it then; node 1 installs
    on its fourth consecutive visit whose outgoing flag is false (the second fixes install_seq,
    the last two see a received aru at least install_seq). Also on a plain formation."""
    c = Cluster(subject=1, max_messages=2, window_size=6)
    c.start()
    for k in range(8):
        c.submit(5 * MS, 3, bytes([k]) * 1000)
    c.drops.append(lambda s, d, f: s == 3 and d == 1 and type(f).__name__ == "Mcast")
    crashed: list[int] = []

    def crash_after_eighth(src: int, dst: int, frame: object) -> None:
        if src == 3 and isinstance(frame, OrfToken) and frame.seq == 8 and not crashed:
            crashed.append(c.world.now)
            c.world.at(c.world.now + 500_000, c.world.crash, 3)

    c.watchers.append(crash_after_eighth)
    c.run_until(2600 * MS)
    assert c.configurations(1)[-1] == ("regular", "1.12", (1, 2), "token_loss")
    assert c.recorder is not None
    visits = token_visits(c.recorder.steps, 12)
    flags = [received.get("retrans_flg") for received, _, _ in visits]
    assert flags[1:4] == [True, True, True] and not any(flags[4:])
    frames = [s["input"].get("frame") or {} for s in c.recorder.steps]
    carriers = [f["encapsulated"]["seq"] for f in frames if f.get("encapsulated")]
    assert sorted(carriers) == list(range(1, 9))
    check_install_condition(visits)
    check_install_condition(token_visits(TRACES["ring-formation"]["steps"], 8))


def delivery_times(c: Cluster, node: int) -> list[tuple[int, str, int, int, bool]]:
    return [
        (e.time_ns, f"{e.config_kind}:{e.config_ring}", e.seq, e.sender, e.safe)
        for e in c.world.history.events
        if isinstance(e, h.Deliver) and e.node == node
    ]


@pytest.mark.req("REC-7.1-3", "REC-7.1-1", "EVS-11-13")
def test_safe_message_known_delivered_by_a_peer_stays_in_the_regular_configuration() -> None:
    """REC-7.1-3, REC-7.1-1, EVS-11-13: nodes 2 and 3 deliver safe seq 1 in ring 1.8; node 1 is cut
    off before its own second visit, so its safe bound never reaches 1. At the installation it
    raises the bound to the highest high_delivered of its transitional peers and delivers seq 1
    as safe in the regular configuration 1.8, as they did, not in the transitional one."""
    c = Cluster()
    c.start()
    c.submit(5 * MS, 1, b"s1", safe=True)
    cut = token_to(1, ring_seq=8)
    c.drops.append(lambda s, d, f: c.world.now >= 24_500_000 and cut(s, d, f))
    c.run_until(2500 * MS)
    for node in (2, 3):
        ((t, config, seq, _, safe),) = delivery_times(c, node)
        assert (config, seq, safe) == ("regular:1.8", 1, True) and t < 30 * MS
    ((t, config, seq, sender, safe),) = delivery_times(c, 1)
    assert (config, seq, sender, safe) == ("regular:1.8", 1, 1, True)
    assert t > 1000 * MS  # at the installation of 1.12, not before
    assert ("regular", "1.12", (1, 2, 3), "token_loss") in c.configurations(1)


@pytest.mark.req("REC-7.2-1", "REC-6.1-1")
def test_transitional_delivery_skips_other_senders_after_a_gap() -> None:
    """REC-7.2-1, REC-6.1-1: seq 1 (node 3's) reached nobody, seq 2 (node 2's) and seq 3 (node
    3's) reached nodes 1 and 2, then node 3 crashed. Recovery cannot fill seq 1; after that
    gap, nodes 1 and 2 deliver node 2's seq 2 in the transitional configuration and never
    deliver node 3's seq 3."""
    c = Cluster()
    c.start()
    c.submit(5 * MS, 3, b"x1")
    c.submit(22_500_000, 2, b"y2")
    c.submit(24_500_000, 3, b"x3")
    c.drops.append(mcast_carrying(b"x1", src=3))
    c.at(25_500_000, lambda: c.world.crash(3))
    c.run_until(2600 * MS)
    for node in (1, 2):
        assert [d[1:] for d in delivery_times(c, node)] == [("transitional:1.12", 2, 2, False)]
    assert c.configurations(1)[-2] == ("transitional", "1.12", (1, 2), "token_loss")


@pytest.mark.req("REC-5.3-1", "REC-6.1-1")
def test_first_token_is_sent_after_the_second_rotation() -> None:
    """REC-5.3-1, REC-6.1-1: the commit token's second rotation moves each member to RECOVERY
    and the representative turns it into the first regular token; the second-rotation commit
    token is forwarded unchanged but for token_seq."""
    steps = TRACES["ring-formation"]["steps"]
    sends = [(s["state"], e["frame"]) for s in steps for e in s["expect"] if e["type"] == "send"]
    kinds = [(state, f["type"], f.get("memb_index")) for state, f in sends[:3]]
    assert kinds == [
        ("commit", "memb_commit_token", 1),
        ("recovery", "memb_commit_token", 3),
        ("recovery", "orf_token", None),
    ]
    received = next(
        s["input"]["frame"]
        for s in steps
        if s["state"] == "recovery"
        and s["input"].get("frame", {}).get("type") == "memb_commit_token"
    )
    forwarded = sends[1][1]
    assert forwarded | {"token_seq": 0} == received | {"token_seq": 0}
    assert forwarded["token_seq"] == received["token_seq"] + 1


@pytest.mark.req("REC-7.3-3", "REC-7.3-2", "REC-6.3-1")
def test_obligation_set_survives_a_failed_attempt() -> None:
    """REC-7.3-3, REC-7.3-2, REC-6.3-1 (step 4): node 4's seq 1 of ring 1.8 reaches nobody and
    node 4 crashes; nodes 1, 2, 3 hold node 2's seq 2. In the attempt to form 1.12, node 3
    holds every carrier (so {1,2,3} joins its obligation set) but loses the token before
    installing, while nodes 1 and 2 install 1.12 and deliver seq 2 in their transitional
    configuration. Node 3 next installs 1.16 with a transitional configuration of itself alone,
    and still delivers node 2's seq 2 after the gap, because node 2 is in its obligation set."""
    c = Cluster((1, 2, 3, 4))
    c.start()
    c.submit(5 * MS, 4, b"lost")
    c.drops.append(mcast_carrying(b"lost", src=4))
    seen = {"submitted": False, "crashed": False, "tokens_to_3": 0}

    def script(src: int, dst: int, frame: object) -> None:
        if not isinstance(frame, OrfToken) or frame.ring_id.seq != 8:
            return
        if src == 4 and frame.seq == 1 and not seen["submitted"]:
            seen["submitted"] = True
            c.submit(c.world.now, 2, b"kept")
        if src == 2 and frame.seq == 2 and not seen["crashed"]:
            seen["crashed"] = True
            c.world.at(c.world.now + 500_000, c.world.crash, 4)

    def cut_node_3_at_its_fourth_visit(src: int, dst: int, frame: object) -> bool:
        if dst == 3 and isinstance(frame, OrfToken) and frame.ring_id.seq == 12:
            seen["tokens_to_3"] += 1
            return seen["tokens_to_3"] >= 4
        return False

    c.watchers.append(script)
    c.drops.append(cut_node_3_at_its_fourth_visit)
    c.run_until(6000 * MS)
    for node in (1, 2):
        assert [d[1:] for d in delivery_times(c, node)] == [("transitional:1.12", 2, 2, False)]
    assert ("regular", "1.12", (1, 2, 3), "token_loss") in c.configurations(1)
    assert [conf[:3] for conf in c.configurations(3)[3:]] == [
        ("transitional", "1.16", (3,)),
        ("regular", "1.16", (1, 2, 3)),
    ]
    assert [d[1:] for d in delivery_times(c, 3)] == [("transitional:1.16", 2, 2, False)]


@pytest.mark.req("REC-6.1-1", "REC-7.2-1")
def test_each_old_ring_mcast_is_resent_once_spread_over_its_keepers() -> None:
    """REC-6.1-1 (step 2), REC-7.2-1: node 2's six mcasts of ring 1.8 reach nodes 1, 4 and 5
    but never node 3, then node 5 crashes. Nodes 1, 2 and 4 all hold the six (their lines show
    aru 6, node 3's shows 0), so each is re-sent once, by one of them chosen by its seq, not
    three times as the paper and corosync do (every member re-sends everything above the
    lowest aru). Node 3 still receives all six and, like the others, delivers them in the old
    regular configuration, in order and without a gap."""
    c = Cluster((1, 2, 3, 4, 5))
    c.start()
    payloads = [bytes([k]) * 1000 for k in range(6)]
    for data in payloads:
        c.submit(5 * MS, 2, data)
    c.drops.append(lambda s, d, f: d == 3 and any(mcast_carrying(p)(s, d, f) for p in payloads))
    carried: dict[int, tuple[int, int]] = {}  # carrier seq of ring 1.12 -> (sender, inner seq)
    crashed: list[int] = []

    def watch(src: int, dst: int, frame: object) -> None:
        originated = isinstance(frame, OrfToken) and frame.ring_id.seq == 8 and frame.seq == 6
        if originated and not crashed:
            crashed.append(c.world.now)
            c.world.at(c.world.now + 2 * MS, c.world.crash, 5)
        inner = getattr(frame, "encapsulated", None)
        if inner is not None:
            carried[frame.seq] = (frame.sender, inner.seq)  # type: ignore[attr-defined]

    c.watchers.append(watch)
    c.run_until(3000 * MS)
    assert c.configurations(1)[-1] == ("regular", "1.12", (1, 2, 3, 4), "token_loss")
    inner_seqs = sorted(inner for _, inner in carried.values())
    assert inner_seqs == [1, 2, 3, 4, 5, 6]  # each once
    assert len({sender for sender, _ in carried.values()}) > 1  # spread over the keepers
    assert {sender for sender, _ in carried.values()} <= {1, 2, 4}
    for node in (1, 2, 3, 4):
        old = [(conf, seq) for conf, origin, seq, _, _ in c.deliveries(node) if origin == "1.8"]
        assert old == [("regular:1.8", seq) for seq in range(1, 7)], node


@pytest.mark.req("REC-6.1-1")
@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.sets(st.integers(1, 60), max_size=12)),
        min_size=1,
        max_size=6,
    )
)
def test_keepers_cover_the_union_and_resend_each_seq_below_the_top_aru_once(
    members: list[tuple[int, set[int]]],
) -> None:
    """REC-6.1-1 (step 2): whatever the transitional lines, the members together re-send every
    old-ring mcast any of them holds above the lowest aru (so each ends with the union, as
    before), and every seq up to the highest aru exactly once. A member holds every seq up to
    its own aru (nothing above the lowest aru is released) and any seqs above it."""
    old = RingId(seq=8, rep=1)
    lines = tuple(
        MemberEntry(node, old, aru, 0, False) for node, (aru, _) in enumerate(members, start=1)
    )
    low, top = min(a for a, _ in members), max(a for a, _ in members)
    held = {
        node: sorted(set(range(low + 1, aru + 1)) | {s for s in extra if s > aru})
        for node, (aru, extra) in enumerate(members, start=1)
    }
    sent: list[int] = []
    for node, seqs in held.items():
        mine = recovery._mine_to_resend(
            node, lines, (Mcast(2, old, seq, False, ()) for seq in seqs)
        )
        sent += [mcast.seq for mcast in mine]
    union = {seq for seqs in held.values() for seq in seqs if seq > low}
    assert set(sent) == union
    assert sorted(seq for seq in sent if seq <= top) == sorted(s for s in union if s <= top)
