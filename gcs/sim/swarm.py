"""Swarm testing: the scenario itself is drawn from the seed (TigerBeetle VOPR's swarm mode).

Each seed picks a cluster size, a network, a workload and a fault schedule mixing every kind of
fault the nemesis knows, with random timings, so a run of many seeds explores combinations
nobody would write by hand. The drawn scenario is an ordinary ``Scenario``: it prints as TOML,
and a failing seed's scenario can be saved and replayed or shrunk like any other.
"""

from __future__ import annotations

import random
from dataclasses import replace

from gcs.sim.network import LatencyKind, LinkParams
from gcs.sim.scenario import FaultStep, Scenario, Workload
from gcs.sim.seeds import SeedTree

__all__ = ["draw_scenario"]

MS = 1_000_000

_ACTIONS = (
    ("partition", 6),
    ("crash", 4),
    ("pause", 3),
    ("block", 3),
    ("leave", 2),
    ("loss", 2),
    ("token_loss", 2),
    ("commit_token_loss", 1),
    ("recovery_loss", 4),
    ("recovery_delay", 2),
    ("clock", 1),
    ("replay_joins", 1),
)
_SPECS = ("one", "halves", "majority", "bridge", "majorities-ring")
_WHEN = ("", "", "", "gather", "commit", "recovery")


def draw_scenario(
    seed: int, *, base: Scenario | None = None, nodes: int = 0, kind: str = "groups"
) -> Scenario:
    """A scenario for ``seed``: same seed, same scenario, in any process.

    ``kind="groups"`` (the default) runs the ``messages`` workload through group members that
    join, leave and send on every node, judged also by the group-level checkers
    (``gcs.sim.workloads.groups``); ``kind="messages"`` is the same scenario without the group
    layer (its ring-level history is what the swarm drew before the group layer was the default).
    ``kind="kv"`` runs the replicated key-value store (``gcs.sim.workloads.kv``) with quorum rules
    drawn from the seed's own ``swarm-kv`` stream, so the rest of the scenario is the same one
    ``"messages"`` draws.
    """
    rng = SeedTree(seed).rng("swarm")
    count = nodes or rng.choice((3, 3, 4, 5, 5, 6, 7))
    duration = rng.choice((20.0, 30.0, 40.0))
    link = LinkParams(
        latency=rng.choice(list(LatencyKind)),
        latency_ns=rng.randint(300, 2000) * 1000,
        latency_max_ns=rng.randint(2000, 5000) * 1000,
        latency_floor_ns=rng.randint(100, 500) * 1000,
        loss=rng.choice((0.0, 0.0, 0.01, 0.02, 0.05)),
        duplicate=rng.choice((0.0, 0.01)),
        reorder=rng.choice((0.0, 0.02, 0.05)),
    )
    workload = Workload(
        rate=rng.choice((10.0, 20.0, 40.0)),
        sizes=tuple(rng.sample((16, 64, 300, 1200, 2500, 6000), 3)),
        safe=rng.choice((0.0, 0.25, 0.5)),
    )
    faults = tuple(sorted(_draw_faults(rng, count, duration), key=lambda f: f.at_s))
    totem = {"token_retransmit_ms": 40} if link.loss >= 0.02 else {}
    scenario = Scenario(
        name=f"swarm-{seed}",
        description=f"drawn from seed {seed} by gcs.sim.swarm",
        nodes=count,
        duration_s=duration,
        quiet_s=10.0,
        totem={"exclusion_penalty_max_ms": 8000, **totem},
        link=link,
        workload=workload,
        faults=faults,
        persist_delay_ms=rng.choice((0.0, 0.0, 1.0, 20.0)),
        start_spread_ms=rng.choice((0.0, 50.0, 500.0)),
    )
    if base is not None:
        scenario = replace(scenario, wire=base.wire)
    if kind == "kv":
        scenario = _kv(SeedTree(seed).rng("swarm-kv"), scenario)
    elif kind == "groups":
        scenario = replace(scenario, workload=replace(workload, kind="groups"))
    if kind in ("kv", "groups"):
        scenario = _node_changes(SeedTree(seed).rng("swarm-nodes"), scenario, kind)
    return scenario


NODE_CHANGE_SHARE = {"kv": 0.4, "groups": 0.2}
"""The share of seeds whose scenario also changes the node list (RFC 0008 §3.7)."""


def _node_changes(rng: random.Random, scenario: Scenario, kind: str) -> Scenario:
    """Some seeds remove a node while the cluster runs and add it back later.

    From a stream of its own, so the rest of every seed's scenario is what it was. The node may
    be up (it then stops, RFC 0006 API-3.8-3), down, or on the far side of a partition (the
    nodes with it merge back once it is listed again), and the change may fall in a partition
    or a crash of the proposers: only a quorate configuration makes it.
    """
    if rng.random() >= NODE_CHANGE_SHARE[kind] or scenario.quorum.get("auto_tie_breaker"):
        return scenario
    target = rng.randint(1, scenario.nodes)
    end = scenario.duration_s - 3.0
    removed = round(rng.uniform(2.0, end - 2.0), 3)
    added = round(rng.uniform(removed + 1.0, end), 3)
    steps = (
        FaultStep(removed, "remove_node", target=target),
        FaultStep(added, "add_node", target=target),
    )
    faults = tuple(sorted((*scenario.faults, *steps), key=lambda f: f.at_s))
    quorum = {**scenario.quorum, "node_changes": True}
    return replace(scenario, faults=faults, quorum=quorum)


def _kv(rng: random.Random, scenario: Scenario) -> Scenario:
    """The kv variant: a primary-component store, and votequorum options to judge it under.

    ``two_node`` is never drawn: it makes both halves of a split quorate on purpose (corosync
    relies on fencing), which the quorum checker would rightly reject.
    """
    count = scenario.nodes
    weighted = rng.random() < 0.2
    votes = tuple(2 if weighted and n == 1 else 1 for n in range(1, count + 1))
    quorum: dict[str, object] = {}
    wfa = rng.random() < 0.4
    if wfa:
        quorum["wait_for_all"] = True
    elif rng.random() < 0.3:
        quorum["expected_votes"] = sum(votes) + 1  # wait_for_all could never be satisfied
    if rng.random() < 0.4:
        quorum["auto_tie_breaker"] = True
        quorum["auto_tie_breaker_node"] = rng.choice(("lowest", "highest"))
    if wfa and not weighted and rng.random() < 0.5:
        quorum["last_man_standing"] = True
        quorum["last_man_standing_window_ms"] = rng.choice((500, 1000, 3000))
    workload = replace(scenario.workload, kind="kv", keys=rng.choice((4, 8, 16)))
    return replace(scenario, workload=workload, quorum=quorum, votes=votes if weighted else ())


def _draw_faults(rng: random.Random, nodes: int, duration: float) -> list[FaultStep]:
    steps: list[FaultStep] = []
    names = [name for name, _ in _ACTIONS]
    weights = [weight for _, weight in _ACTIONS]
    for _ in range(rng.randint(2, 8)):
        action = rng.choices(names, weights)[0]
        at = round(rng.uniform(2.0, duration - 3.0), 3)
        step = _draw_step(rng, action, at, nodes, duration)
        steps.append(step)
        if action in ("recovery_loss", "recovery_delay"):
            # Recovery re-sends only what some member lacks when the ring breaks: loss makes
            # the members' arus differ, so that there is something for the nemesis to hit.
            loss = rng.choice((0.02, 0.05))
            steps.append(FaultStep(step.at_s, "loss", value=loss, duration_s=step.duration_s))
    return steps


def _recovery_step(rng: random.Random, action: str, at: float, duration: float) -> FaultStep:
    """The recovery nemesis is only in force while some node is in RECOVERY, and few
    recoveries have anything to re-send, so it starts in the first third of the fault phase
    and lasts to its end: it meets every recovery the other faults cause from then on."""
    start = round(2.0 + (at - 2.0) / 3, 3)
    length = round(duration - start, 3)
    spec = rng.choice(("resend", "resend", "token", "all"))
    if action == "recovery_loss":
        value = rng.choice((0.3, 0.6, 0.9))
        return FaultStep(start, action, spec=spec, value=value, duration_s=length)
    delay = float(rng.choice((20, 100, 400)))
    value = rng.choice((0.3, 0.6))
    return FaultStep(start, action, spec=spec, value=value, delay_ms=delay, duration_s=length)


def _draw_step(
    rng: random.Random, action: str, at: float, nodes: int, duration: float
) -> FaultStep:
    node = rng.randint(1, nodes)
    length = round(rng.uniform(0.2, 6.0), 3)
    match action:
        case "partition":
            spec = rng.choice(_SPECS) if nodes >= 3 else "one"
            return FaultStep(at, action, spec=spec, duration_s=length, when=rng.choice(_WHEN))
        case "crash":
            return FaultStep(
                at,
                action,
                nodes=(node,),
                duration_s=length,
                wipe=rng.random() < 0.2,
                when=rng.choice(_WHEN),
            )
        case "pause":
            return FaultStep(at, action, nodes=(node,), duration_s=round(rng.uniform(0.1, 3.0), 3))
        case "block":
            other = rng.choice([n for n in range(1, nodes + 1) if n != node])
            return FaultStep(at, action, nodes=(node, other), duration_s=length)
        case "leave":
            return FaultStep(at, action, nodes=(node,), duration_s=length)
        case "loss":
            return FaultStep(at, action, value=rng.choice((0.05, 0.1, 0.2)), duration_s=length)
        case "token_loss" | "commit_token_loss":
            return FaultStep(at, action, value=rng.choice((0.2, 0.5)), duration_s=length)
        case "recovery_loss" | "recovery_delay":
            return _recovery_step(rng, action, at, duration)
        case "clock":
            return FaultStep(at, action, nodes=(node,), value=rng.choice((0.95, 1.05, 1.1)))
        case _:
            return FaultStep(at, action)
