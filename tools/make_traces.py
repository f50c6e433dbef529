"""Generate protocol/traces/*.json: scripted behaviour traces of one Totem node (RFC 0003 App. A).

Each scenario runs real ``gcs.totem.Node`` cores for every node of a small cluster in the
simulator (``gcs.sim.world.World``, frame objects on the wire, 1 ms constant latency, no random
loss), applies a scripted fault (a dropped frame, a crash, a partition, a leave), and records
every input that *one* node, the subject, receives and every effect it returns. The result is
replayed against a fresh core by tests/totem/test_traces.py, and can be replayed by an
implementation in any language: the subject's inputs are all in the file.

No randomness reaches the traces: ``join_jitter_ns`` is 0, so the core never draws from its
rng, and the network has a constant latency and no random loss.

    python tools/make_traces.py           # check the committed files (exit 1 if stale)
    python tools/make_traces.py --write   # rewrite them after a deliberate change

This is data tooling, not part of the ``gcs`` package.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gcs.totem.timers import Timer  # noqa: E402
from gcs.wire.frames import Frame, OrfToken  # noqa: E402
from tests.totem.tracing import (  # noqa: E402
    MS,
    TRACE_FORMAT,
    TRACES_DIR,
    Cluster,
    config_to_json,
    mcast_carrying,
    once,
    replay,
    token_to,
)

US = 1_000
S = 1_000_000_000
SUBJECT = 1


class Scenario(Cluster):
    """A scripted cluster whose node 1 is recorded, with what the trace file says about it."""

    def __init__(self, name: str, description: str, requirements: list[str], **kw: Any) -> None:
        super().__init__(subject=SUBJECT, **kw)
        self.name = name
        self.description = description
        self.requirements = requirements

    def finish(self, until_ns: int) -> dict[str, Any]:
        self.run_until(until_ns)
        assert self.recorder is not None
        trace = {
            "format": TRACE_FORMAT,
            "name": self.name,
            "description": self.description,
            "subject": SUBJECT,
            "requirements": self.requirements,
            "network": "constant 1 ms latency between every pair of nodes; no random loss",
            "rng": "none drawn: join_jitter_ns = 0",
            "config": config_to_json(self.recorder.config),
            "steps": [_annotate(step, SUBJECT) for step in self.recorder.steps],
        }
        _check_replays(trace)
        return trace


# ---------------------------------------------------------------------- notes


def _ring(obj: dict[str, int]) -> str:
    return f"{obj['rep']}.{obj['seq']}"


def _annotate(step: dict[str, Any], me: int) -> dict[str, Any]:
    """Add a ``note`` summarising what happened (informative; never compared)."""
    notes: list[str] = []
    for effect in step["expect"]:
        kind = effect["type"]
        frame = effect.get("frame", {})
        ftype = frame.get("type")
        if kind == "multicast" and ftype == "mcast":
            inner = frame["encapsulated"]
            where = f"{_ring(frame['ring_id'])}#{frame['seq']}"
            if inner is not None:
                notes.append(
                    f"recovery: re-sends {_ring(inner['ring_id'])}#{inner['seq']} "
                    f"(from node {inner['sender']}) encapsulated as {where}"
                )
            elif frame["sender"] == me:
                notes.append(f"originates {where}")
            else:
                notes.append(f"retransmits {where} of node {frame['sender']}")
        elif kind == "multicast":
            notes.append(f"multicasts {ftype}")
        elif kind == "send" and ftype == "memb_commit_token":
            notes.append(f"sends the commit token to {effect['dest']}")
        elif kind == "send" and ftype == "orf_token" and frame["rtr"]:
            seqs = [e["seq"] for e in frame["rtr"]]
            notes.append(f"forwards the token requesting {seqs}")
        elif kind == "deliver":
            what = "safe" if effect["safe"] else "agreed"
            config = effect["config"]
            notes.append(
                f"delivers {_ring(effect['origin'])}#{effect['seq']} from node "
                f"{effect['sender']} ({what}) in {config['kind']} {_ring(config['ring_id'])}"
            )
        elif kind == "configuration":
            notes.append(
                f"{effect['kind']} configuration {_ring(effect['ring_id'])}: "
                f"members {effect['members']}, left {effect['left']}, joined {effect['joined']}, "
                f"reason {effect['reason']['kind']}"
            )
        elif kind == "persist_ring_seq":
            notes.append(f"asks to persist ring seq {effect['seq']}")
        elif kind == "send_window":
            notes.append(f"send window {'opens' if effect['open'] else 'closes'}")
    out = dict(step)
    if notes:
        out["note"] = "; ".join(notes)
    return out


def _check_replays(trace: dict[str, Any]) -> None:
    for step in replay(trace):
        assert step.actual == step.expected, f"{trace['name']} step {step.index} does not replay"
        assert step.actual_state == step.expected_state
        assert step.actual_deadline == step.expected_deadline


# ---------------------------------------------------------------------- the scenarios


def ring_formation() -> dict[str, Any]:
    s = Scenario(
        "ring-formation",
        "Three nodes start at once with no stored ring seq. Node 1 persists ring seq 4, installs "
        "its singleton ring 1.4 and gathers; joins converge on {1,2,3}; node 1, the smallest id, "
        "creates the commit token for ring 1.8, which goes round twice; recovery has nothing to "
        "re-send; after the retrans_flg rounds node 1 installs 1.8 (transitional {1}, then "
        "regular {1,2,3}) and the idle token keeps circulating.",
        [
            "MEM-2.3-1",
            "MEM-2.3-2",
            "MEM-3.1-1",
            "MEM-4.1-1",
            "MEM-4.1-2",
            "REC-5.1-1",
            "REC-5.2-2",
            "REC-5.3-1",
            "REC-5.3-3",
            "ORD-4.3-1",
            "REC-6.3-1",
            "REC-7.1-1",
        ],
    )
    s.start()
    return s.finish(25 * MS)


def agreed_first_rotation() -> dict[str, Any]:
    s = Scenario(
        "agreed-first-rotation",
        "Nodes 1 and 2 each submit one agreed record while the ring 1.8 is being formed; the "
        "records stay queued (nothing new is originated in RECOVERY) and are originated in the "
        "first rotation after installation: node 1 takes seq 1 on its visit, delivers it right "
        "after forwarding the token, and delivers node 2's seq 2 as soon as it arrives.",
        ["ORD-4.6-1", "ORD-4.6-2", "ORD-4.6-3", "ORD-4.7-1", "ORD-7.1-1", "ORD-7.1-2", "REC-6.2-3"],
    )
    s.start()
    s.submit(5 * MS, 1, b"m1")
    s.submit(5 * MS, 2, b"m2")
    return s.finish(27 * MS)


def safe_two_visits() -> dict[str, Any]:
    s = Scenario(
        "safe-two-visits",
        "Node 1 submits a safe record and node 2 an agreed one. Node 1 originates the safe mcast "
        "as seq 1 and node 2 the agreed one as seq 2 in the same rotation. Node 1 holds both: "
        "the token aru it receives on its next visit is 2, but the aru it received on the visit "
        "before was 0, so seq 1 is not yet safe and seq 2 waits behind it. On the following "
        "visit the aru has been at least 1 twice in a row: node 1 delivers seq 1 as safe, then "
        "seq 2.",
        ["ORD-7.2-1", "ORD-7.2-2", "ORD-7.3-1", "ORD-7.4-1"],
    )
    s.start()
    s.submit(5 * MS, 1, b"s1", safe=True)
    s.submit(5 * MS, 2, b"a2")
    return s.finish(33 * MS)


def safe_after_hold() -> dict[str, Any]:
    s = Scenario(
        "safe-after-hold",
        "An idle ring (seqno_unchanged_const 3, hold_timeout 20 ms, to keep the trace short): "
        "node 1, the representative, holds the token on every visit once it has seen more than "
        "3 visits with an unchanged seq, and the hold timer lets it go round once each time. "
        "1 ms after one such release node 1 submits a safe record: there is no held token to "
        "release, so the record waits for the token's return. Node 1 originates it as the next "
        "seq and, because this visit originated, forwards the token instead of holding it; the "
        "seq changed, so the idle count restarts and the ring turns freely. Two visits later "
        "the aru has covered the mcast twice and node 1 delivers it as safe, about three "
        "rotations after the submit instead of a hold period later.",
        ["ORD-4.9-1", "ORD-4.9-2", "ORD-4.9-3", "ORD-7.2-1"],
        seqno_unchanged_const=3,
        hold_timeout_ns=20 * MS,
    )
    s.start()
    s.run_until(60 * MS)
    core = s.core(SUBJECT)
    released_at = core.timers.get(Timer.HOLD)
    assert core.ring.holding is not None and released_at is not None, "node 1 holds no token"
    s.submit(released_at + MS, SUBJECT, b"safe", safe=True)
    return s.finish(released_at + 15 * MS)


def retransmit_by_other() -> dict[str, Any]:
    s = Scenario(
        "retransmit-by-non-originator",
        "Node 2 originates seq 1; the copy to node 3 is lost. Node 3 lowers the token aru and, "
        "after the hole has been missing on miss_count_const (5) of its visits, puts seq 1 on "
        "the token's rtr list. The token goes from node 3 to node 1, which holds node 2's mcast "
        "and retransmits it to the ring, removing the request. The aru then rises and the "
        "message becomes safe and is garbage-collected.",
        ["ORD-3.3-5", "ORD-4.4-1", "ORD-4.4-2", "ORD-4.5-1", "ORD-5-1"],
    )
    s.drops.append(once(mcast_carrying(b"r1", src=2, dst=3)))
    s.start()
    s.submit(5 * MS, 2, b"r1")
    return s.finish(50 * MS)


def token_loss() -> dict[str, Any]:
    s = Scenario(
        "token-loss-gather",
        "From 30 ms every token node 3 sends to node 1 on ring 1.8 is lost. Node 1 keeps "
        "re-sending its last token to node 2 every token_retransmit_ns (node 2 discards the "
        "copies by token_seq), and token_timeout_ns after the last token it accepted it "
        "declares the token lost and enters GATHER with a join. The others follow on its join, "
        "everyone agrees on {1,2,3} and ring 1.12 is installed with all three in the "
        "transitional configuration.",
        ["ORD-4.7-2", "ORD-4.8-1", "ORD-4.8-2", "MEM-3.1-1", "MEM-3.3-1"],
    )
    rule = token_to(1, ring_seq=8)
    s.drops.append(lambda src, dst, frame: s.world.now >= 30 * MS and rule(src, dst, frame))
    s.start()
    return s.finish(1060 * MS)


def crash_survivor() -> dict[str, Any]:
    s = Scenario(
        "crash-survivor",
        "Node 3 originates seq 1 on ring 1.8, the copy to node 1 is lost, and node 3 crashes "
        "half a millisecond after forwarding the token. Node 1 loses the token, gathers with "
        "{1,2,3}, and when the consensus timeout expires without a join from node 3 it adds 3 "
        "to its fail set. Nodes 1 and 2 agree; node 1 creates the commit token for ring 1.12. "
        "Node 2 had seq 1 and node 1 had not, so node 1's received_flg is cleared and node 2 "
        "re-sends seq 1 encapsulated in a new-ring mcast. At installation node 1 delivers it in "
        "the old regular configuration, then the transitional configuration {1,2} (left: 3) and "
        "the regular configuration {1,2}.",
        [
            "MEM-4.2-1",
            "MEM-4.3-1",
            "MEM-9.1-1",
            "REC-5.2-2",
            "REC-6.1-1",
            "REC-6.2-1",
            "REC-6.2-2",
            "REC-7.1-1",
            "REC-7.1-2",
        ],
    )
    s.drops.append(once(mcast_carrying(b"c1", src=3, dst=1)))

    def crash_after_origination(src: int, dst: int, frame: Frame) -> None:
        if src == 3 and isinstance(frame, OrfToken) and frame.seq == 1 and frame.aru_id == 0:
            s.world.at(s.world.now + 500 * US, s.world.crash, 3)

    s.watchers.append(crash_after_origination)
    s.start()
    s.submit(5 * MS, 3, b"c1")
    return s.finish(2300 * MS)


def failed_recovery() -> dict[str, Any]:
    s = Scenario(
        "failed-recovery",
        "As in crash-survivor, node 3 crashes holding seq 1 that only node 2 received. Nodes 1 "
        "and 2 form ring 1.12 and node 2 re-sends seq 1 encapsulated, which node 1 receives, "
        "but every token of ring 1.12 sent to node 1 after its first is lost. Node 1's token "
        "timer expires in RECOVERY: it returns to GATHER keeping its old ring 1.8, and keeping "
        "the recovered seq 1 in the old ring's queue. The next attempt forms ring 1.16, where "
        "no one needs anything re-sent; node 1 delivers seq 1 in the old regular configuration "
        "1.8 and installs 1.16.",
        ["REC-7.3-1", "REC-7.3-2", "REC-5.1-1", "REC-5.2-1"],
    )
    s.drops.append(once(mcast_carrying(b"c1", src=3, dst=1)))
    s.drops.append(token_to(1, ring_seq=12))

    def crash_after_origination(src: int, dst: int, frame: Frame) -> None:
        if src == 3 and isinstance(frame, OrfToken) and frame.seq == 1 and frame.aru_id == 0:
            s.world.at(s.world.now + 500 * US, s.world.crash, 3)

    s.watchers.append(crash_after_origination)
    s.start()
    s.submit(5 * MS, 3, b"c1")
    return s.finish(3500 * MS)


def recovery_keepers() -> dict[str, Any]:
    s = Scenario(
        "recovery-keepers",
        "Ring 1.8 of {1,2,3,4,5}: node 2 originates seqs 1-6, one per rotation, which reach "
        "every node but node 3, and node 5 crashes 2 ms after the token that carried seq 6. "
        "Nodes 1-4 gather "
        "and form ring 1.12. The commit token shows aru 6 for nodes 1, 2 and 4 and aru 0 for "
        "node 3, so each of seqs 1-6 has three keepers, ordered by (aru, node id) as [1, 2, 4], "
        "and is re-sent once, by keeper seq mod 3: node 1 re-sends seqs 3 and 6 only (node 2 "
        "re-sends 1 and 4, node 4 re-sends 2 and 5), not three times as every member re-sending "
        "everything above the lowest aru would. Node 1 had delivered seqs 1-6 as agreed before "
        "the crash; it installs 1.12 (transitional {1,2,3,4}, left 5) once node 3 holds them.",
        ["REC-6.1-1", "REC-6.2-1", "REC-7.1-1", "REC-7.2-1"],
        nodes=(1, 2, 3, 4, 5),
    )
    payloads = [b"k%d" % k for k in range(6)]
    s.drops.append(
        lambda src, dst, frame: (
            dst == 3 and any(mcast_carrying(p)(src, dst, frame) for p in payloads)
        )
    )

    crashed: list[int] = []

    def crash_after_origination(src: int, dst: int, frame: Frame) -> None:
        originated = isinstance(frame, OrfToken) and frame.ring_id.seq == 8 and frame.seq == 6
        if originated and not crashed:
            crashed.append(s.world.now)
            s.world.at(s.world.now + 2 * MS, s.world.crash, 5)

    s.watchers.append(crash_after_origination)
    s.start()
    for k, data in enumerate(payloads):  # one per rotation (5 ms), so none share an mcast
        s.submit((30 + 6 * k) * MS, 2, data)
    return s.finish(2400 * MS)


def partition_merge() -> dict[str, Any]:
    s = Scenario(
        "partition-merge",
        "Ring 1.8 of {1,2,3} is cut into {1,2} and {3} at 40 ms. Nodes 1 and 2 lose the token, "
        "fail node 3 at the consensus timeout and install ring 1.12; node 3 forms its own "
        "singleton ring. As representative of a ring smaller than the configured cluster, node "
        "1 multicasts a merge-detect to node 3 every merge_timeout_ns (lost while the partition "
        "lasts). The partition heals at 3000 ms; a merge-detect crossing it is answered with a "
        "probe join, which starts a gather on the other side, whose joins bring the first side "
        "in (reason merge), and {1,2,3} install ring 1.16, whose transitional configuration at "
        "node 1 is {1,2}.",
        ["ORD-4.10-1", "MEM-3.5-1", "MEM-3.5-2", "MEM-4.2-1", "MEM-8.4-3", "MEM-3.3-1"],
    )
    s.start()
    s.at(40 * MS, lambda: s.world.network.partition([[1, 2], [3]]))
    s.at(3000 * MS, s.world.network.heal)
    return s.finish(3300 * MS)


def one_way_isolated() -> dict[str, Any]:
    s = Scenario(
        "one-way-isolated",
        "Ring 1.8 of {1,2,3}; from 40 ms everything node 1 sends to node 2 is lost, while 2 -> 1 "
        "works. Node 2 loses the token and gathers; node 1, hearing everyone, reaches consensus "
        "on {1,2,3} and commits, but its commit token never reaches node 2. At its consensus "
        "timeout node 2 fails node 1, and its join (which node 1 hears) dooms node 1's attempt: "
        "node 1 abandons it at once and, failed by a ring-mate and nobody else, goes alone, "
        "installing ring 1.20 of {1}; nodes 2 and 3 install 2.12. Node 2's merge-detects are "
        "then answered with probe joins that node 2 never receives (node 3 keeps node 1 out), "
        "so nothing changes. At 6000 ms the link works again: node 2 hears a probe, gathers, and "
        "{1,2,3} install ring 1.24 (reason merge at node 1).",
        ["MEM-3.3-4", "MEM-8.4-1", "MEM-8.4-3", "MEM-3.3-1", "MEM-3.3-5"],
    )
    s.drops.append(lambda src, dst, f: src == 1 and dst == 2 and 40 * MS <= s.world.now < 6 * S)
    s.start()
    return s.finish(6300 * MS)


def one_way_kept_out() -> dict[str, Any]:
    s = Scenario(
        "one-way-kept-out",
        "Ring 1.8 of {1,2,3}; from 40 ms everything node 2 sends to node 3 is lost. Node 3 loses "
        "the token, and at its consensus timeout fails node 2, which it never hears; node 1, "
        "which hears node 2, takes node 3's word (a ring-mate's current join) and, at the "
        "installation of ring 1.20 of {1,3}, keeps node 2 out. As representative of a ring "
        "smaller than the cluster node 1 sends merge-detects to node 2; node 2's merge-detects "
        "and its probe joins reach node 1 and are ignored, so ring 1.20 stays. At 6000 ms the "
        "link works again: node 3 hears node 2, gathers, node 1 follows its ring-mate and {1,2,3} "
        "install ring 1.24.",
        ["MEM-8.4-2", "MEM-3.3-1", "MEM-3.5-2", "MEM-8.4-3"],
    )
    s.drops.append(lambda src, dst, f: src == 2 and dst == 3 and 40 * MS <= s.world.now < 6 * S)
    s.start()
    return s.finish(6300 * MS)


def clean_leave() -> dict[str, Any]:
    s = Scenario(
        "clean-leave",
        "Node 3 shuts down cleanly at 30 ms and multicasts a leave. Node 1 fails node 3 at once "
        "(no token timeout), gathers with node 2, and installs ring 1.12 of {1,2} with reason "
        "leave.",
        ["MEM-3.4-2"],
    )
    s.start()
    s.at(30 * MS, lambda: s.world.leave(3))
    return s.finish(60 * MS)


def lone_start() -> dict[str, Any]:
    s = Scenario(
        "lone-start",
        "Node 1 starts with stored ring seq 40 while nodes 2 and 3 are down. It persists 44, "
        "installs singleton ring 1.44, gathers, and at its first join timeout has consensus on "
        "{1} alone; it forms ring 1.48 by itself (the commit token and the first regular tokens "
        "go to itself), then, as representative of a ring smaller than the cluster, multicasts "
        "merge-detect to nodes 2 and 3 every merge_timeout_ns.",
        ["MEM-2.3-1", "MEM-2.3-2", "MEM-4.1-1", "ORD-4.7-3", "ORD-4.10-1", "REC-5.3-1"],
    )
    s.world.hosts[1].store.ring_seq = 40
    s.start(1)
    return s.finish(700 * MS)


SCENARIOS = [
    ring_formation,
    agreed_first_rotation,
    safe_two_visits,
    safe_after_hold,
    retransmit_by_other,
    token_loss,
    crash_survivor,
    failed_recovery,
    recovery_keepers,
    partition_merge,
    one_way_isolated,
    one_way_kept_out,
    clean_leave,
    lone_start,
]


def build() -> dict[str, str]:
    """File name -> JSON text of every trace."""
    out = {}
    for make in SCENARIOS:
        trace = make()
        out[f"{trace['name']}.json"] = dump(trace)
    return out


def dump(trace: dict[str, Any]) -> str:
    """Pretty JSON with one step per line, so a behaviour change shows as a small diff."""
    head = {k: v for k, v in trace.items() if k != "steps"}
    text = json.dumps(head, indent=1, ensure_ascii=False)[:-2]
    steps = ",\n  ".join(json.dumps(step, ensure_ascii=False) for step in trace["steps"])
    return f'{text},\n "steps": [\n  {steps}\n ]\n}}\n'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the committed traces")
    args = parser.parse_args()
    stale = 0
    for name, text in build().items():
        path = TRACES_DIR / name
        if args.write:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
        elif not path.exists() or path.read_text() != text:
            print(f"stale: {path.relative_to(ROOT)}")
            stale += 1
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
