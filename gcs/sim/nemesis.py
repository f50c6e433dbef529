"""The nemesis: turns a scenario's fault schedule into actions on the world (RFC 0007 §4).

Every action is recorded as a ``Fault`` event, so reports can shade fault periods and the
liveness checker knows when the last one ended. Actions with a ``duration_s`` undo themselves
(a partition heals, a pause ends, a loss rate returns to the scenario's baseline). Actions with
``when`` wait, from ``at_s`` on, for the first node (of ``nodes``, or any) to enter that
membership state — how "a partition heals during RECOVERY" or "the representative crashes in
COMMIT" are expressed. Randomness (which node to isolate, which side is the majority) comes from
the nemesis stream of the seed tree.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import Any

from gcs.quorum.nodelist import ChangeOp
from gcs.sim.scenario import FaultStep, Scenario
from gcs.sim.world import Clock, DropRule, World
from gcs.wire.frames import Mcast, MembCommitToken, OrfToken

__all__ = ["apply_step", "heal_all", "install_nemesis", "partition_groups", "restore_all_links"]

S = 1_000_000_000
MS = 1_000_000


def install_nemesis(world: World, scenario: Scenario) -> None:
    rng = world.seeds.rng("nemesis")
    for step in scenario.faults:
        at = int(step.at_s * S)
        if step.when:
            world.at(at, _arm_trigger, world, scenario, step, rng)
        else:
            world.at(at, apply_step, world, scenario, step, rng)


def _arm_trigger(world: World, scenario: Scenario, step: FaultStep, rng: random.Random) -> None:
    fired = False

    def listener(node: int, state: str) -> None:
        nonlocal fired
        if world.faults_over and not fired:  # the fault phase ended first: never fire
            fired = True
            world.state_listeners.remove(listener)
            return
        if fired or state != step.when or (step.nodes and node not in step.nodes):
            return
        fired = True
        world.state_listeners.remove(listener)
        # Act in a fresh event at the same instant: never re-enter a host mid-effect.
        world.at(world.now, apply_step, world, scenario, step, rng, node)

    world.state_listeners.append(listener)


def apply_step(
    world: World, scenario: Scenario, step: FaultStep, rng: random.Random, trigger: int = 0
) -> None:
    """Carry out one fault step now."""
    nodes = step.nodes or ((trigger,) if trigger else ())
    action = _ACTIONS[step.action]
    action(world, scenario, step, rng, nodes)


def _partition(
    world: World, scenario: Scenario, step: FaultStep, rng: random.Random, nodes: tuple[int, ...]
) -> None:
    if step.spec == "majorities-ring":
        groups: list[list[int]] = []
        _majorities_ring(world, rng)
    else:
        groups = (
            [list(g) for g in step.groups]
            if step.groups
            else partition_groups(step.spec or "halves", world.nodes, rng, nodes)
        )
        world.network.partition(groups)
        if step.spec == "bridge":
            _bridge_fixup(world, groups)
    world.fault("partition", spec=step.spec, groups=groups)
    _undo_later(world, step, lambda: heal_all(world, "heal"))


def partition_groups(
    spec: str, nodes: tuple[int, ...], rng: random.Random, chosen: tuple[int, ...] = ()
) -> list[list[int]]:
    """Named partition shapes (Jepsen's vocabulary): one, halves, majority, bridge."""
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    match spec:
        case "one":
            lone = chosen[0] if chosen else shuffled[0]
            return [[lone], [n for n in nodes if n != lone]]
        case "halves" | "majority":
            cut = len(nodes) // 2 if spec == "halves" else (len(nodes) - 1) // 2
            cut = max(1, cut)
            return [sorted(shuffled[:cut]), sorted(shuffled[cut:])]
        case "bridge":
            # Two halves that cannot talk, and one node that talks to both (handled by caller).
            cut = len(nodes) // 2
            return [sorted(shuffled[:cut]), sorted(shuffled[cut:])]
        case _:
            raise ValueError(f"unknown partition spec {spec!r}")


def _majorities_ring(world: World, rng: random.Random) -> None:
    """Every node sees a majority, but no two see the same one (non-transitive links)."""
    ring = list(world.nodes)
    rng.shuffle(ring)
    n = len(ring)
    reach = n // 2
    for i, a in enumerate(ring):
        for j, b in enumerate(ring):
            distance = min((i - j) % n, (j - i) % n)
            if a != b and distance > reach // 2 + (reach % 2):
                world.network.block(a, b)


def _bridge_fixup(world: World, groups: list[list[int]]) -> None:
    bridge = groups[1][0]
    for other in groups[0]:
        world.network.unblock(bridge, other)
        world.network.unblock(other, bridge)


def _heal(
    world: World, scenario: Scenario, step: FaultStep, rng: random.Random, nodes: tuple[int, ...]
) -> None:
    heal_all(world, "heal")


def heal_all(world: World, kind: str = "heal") -> None:
    world.network.heal()
    world.fault(kind)


def _block(
    world: World, scenario: Scenario, step: FaultStep, rng: random.Random, nodes: tuple[int, ...]
) -> None:
    """One-way link failure: traffic from nodes[0] to nodes[1] is dropped, not the reverse."""
    src, dst = nodes[0], nodes[1]
    world.network.block(src, dst)
    world.fault("block", src=src, dst=dst)

    def undo() -> None:
        world.network.unblock(src, dst)
        world.fault("unblock", src=src, dst=dst)

    _undo_later(world, step, undo)


def _unblock(
    world: World, scenario: Scenario, step: FaultStep, rng: random.Random, nodes: tuple[int, ...]
) -> None:
    world.network.unblock(nodes[0], nodes[1])
    world.fault("unblock", src=nodes[0], dst=nodes[1])


def _targets(world: World, rng: random.Random, nodes: tuple[int, ...]) -> tuple[int, ...]:
    if nodes:
        return nodes
    alive = [n for n in world.nodes if world.hosts[n].alive]
    return (rng.choice(alive),) if alive else ()


def _crash(
    world: World, scenario: Scenario, step: FaultStep, rng: random.Random, nodes: tuple[int, ...]
) -> None:
    for node in _targets(world, rng, nodes):
        world.fault("crash", node)
        world.crash(node)
        if step.duration_s > 0:
            _undo_later(world, step, functools.partial(_restart_node, world, node, step.wipe))


def _restart_node(world: World, node: int, wipe: bool) -> None:
    if not world.hosts[node].alive:
        world.fault("restart", node, wipe=wipe)
        world.restart(node, wipe=wipe)


def _restart(
    world: World, scenario: Scenario, step: FaultStep, rng: random.Random, nodes: tuple[int, ...]
) -> None:
    for node in nodes or world.nodes:
        world.fault("restart", node, wipe=step.wipe)
        world.restart(node, wipe=step.wipe)


def _leave(
    world: World, scenario: Scenario, step: FaultStep, rng: random.Random, nodes: tuple[int, ...]
) -> None:
    for node in _targets(world, rng, nodes):
        world.fault("leave", node)
        world.leave(node)
        if step.duration_s > 0:
            _undo_later(world, step, functools.partial(_restart_node, world, node, False))


def _pause(
    world: World, scenario: Scenario, step: FaultStep, rng: random.Random, nodes: tuple[int, ...]
) -> None:
    for node in _targets(world, rng, nodes):
        world.fault("pause", node, duration_s=step.duration_s)
        world.pause(node, int(step.duration_s * S))


def _loss(
    world: World, scenario: Scenario, step: FaultStep, rng: random.Random, nodes: tuple[int, ...]
) -> None:
    world.network.set_all(loss=step.value)
    world.fault("loss", value=step.value)

    def undo() -> None:
        world.network.set_all(loss=scenario.link.loss)
        world.fault("loss", value=scenario.link.loss)

    _undo_later(world, step, undo)


def _frame_loss(frame_type: type, kind: str) -> Callable[..., None]:
    def action(
        world: World,
        scenario: Scenario,
        step: FaultStep,
        rng: random.Random,
        nodes: tuple[int, ...],
    ) -> None:
        duration = int(step.duration_s * S) if step.duration_s > 0 else 1 << 62
        stream = world.seeds.rng(f"{kind}/{world.now}")
        world.drop_rules.append(DropRule(frame_type, step.value, world.now + duration, stream))
        world.fault(kind, value=step.value, duration_s=step.duration_s)

    return action


def _recovery_rule(kind: str) -> Callable[..., None]:
    """The recovery nemesis: lose or delay what a node transmits while its core is in RECOVERY.

    ``spec`` picks the frames: ``resend`` (mcasts carrying re-sent old-ring messages, and their
    retransmissions), ``token`` (the commit token's second rotation and the new ring's token
    before installation), or ``all``. Each copy, per destination, is hit with probability
    ``value``; a hit copy is dropped (``recovery_loss``) or sent ``delay_ms`` later
    (``recovery_delay``), until ``at + duration_s`` or the end of the fault phase.
    """

    def action(
        world: World,
        scenario: Scenario,
        step: FaultStep,
        rng: random.Random,
        nodes: tuple[int, ...],
    ) -> None:
        duration = int(step.duration_s * S) if step.duration_s > 0 else 1 << 62
        until = world.now + duration
        stream = world.seeds.rng(f"{kind}/{world.now}")
        delay = int(step.delay_ms * MS) if kind == "recovery_delay" else 0
        frames = step.spec or "all"
        rule = functools.partial(
            DropRule, probability=step.value, until_ns=until, rng=stream, state="recovery"
        )
        if frames in ("all", "resend"):
            world.drop_rules.append(rule(Mcast, carriers_only=True, delay_ns=delay))
        if frames in ("all", "token"):
            world.drop_rules.append(rule(MembCommitToken, delay_ns=delay))
            world.drop_rules.append(rule(OrfToken, delay_ns=delay))
        detail: dict[str, Any] = {"value": step.value, "spec": frames}
        if delay:
            detail["delay_ms"] = step.delay_ms
        world.fault(kind, duration_s=step.duration_s, **detail)

    return action


def _clock(
    world: World, scenario: Scenario, step: FaultStep, rng: random.Random, nodes: tuple[int, ...]
) -> None:
    """Timer skew: a node's clock runs at ``value`` times real speed (1.1 = 10 % fast)."""
    for node in _targets(world, rng, nodes):
        host = world.hosts[node]
        now_local = host.clock.local(world.now)
        num = max(1, round(step.value * 1000))
        host.clock = Clock(offset=now_local - world.now * num // 1000, num=num, den=1000)
        world.fault("clock", node, rate=step.value)


def _replay_joins(
    world: World, scenario: Scenario, step: FaultStep, rng: random.Random, nodes: tuple[int, ...]
) -> None:
    """Re-inject joins captured earlier, as if long delayed in the network."""
    captured = list(world.captured_joins)
    world.fault("replay_joins", count=len(captured))
    for sender, frame in captured:
        host = world.hosts[sender]
        if host.transport is None:
            continue
        payload = host.transport.seal(frame)
        world.transmit(sender, tuple(n for n in world.nodes if n != sender), payload, 200)


def _cut_link(
    world: World, scenario: Scenario, step: FaultStep, rng: random.Random, nodes: tuple[int, ...]
) -> None:
    """A node loses one of its links, both ways (a NIC, cable or switch port, RFC 0010)."""
    for node in _targets(world, rng, nodes):
        world.network.cut_link(node, step.link)
        world.fault("cut_link", node, link=step.link)
        _undo_later(world, step, functools.partial(_restore_node_link, world, node, step.link))


def _restore_node_link(world: World, node: int, link: int) -> None:
    if (node, link) in world.network.cut:
        world.network.restore_link(node, link)
        world.fault("restore_link", node, link=link)


def restore_all_links(world: World) -> None:
    """Restore every cut link (the end of the fault phase), each with its ``restore_link``."""
    for node, link in sorted(world.network.cut):
        _restore_node_link(world, node, link)


def _restore_link(
    world: World, scenario: Scenario, step: FaultStep, rng: random.Random, nodes: tuple[int, ...]
) -> None:
    for node in nodes or world.nodes:
        _restore_node_link(world, node, step.link)


def _undo_later(world: World, step: FaultStep, undo: Callable[[], None]) -> None:
    if step.duration_s > 0:
        due = world.now + int(step.duration_s * S)
        world.fault_horizon_ns = max(world.fault_horizon_ns, due)
        world.at(due, undo)


def _change_nodes(op: str) -> Callable[..., None]:
    """add_node / remove_node (RFC 0008 §3.7): ``nodes`` (default: every live node) propose it.

    Every proposer tries, so during a partition each side tries and at most the quorate one
    succeeds. A remove_node step without ``target`` has each proposer remove the highest listed
    node outside its current configuration (a node it cannot see: dead, or on the other side),
    so the two sides of a split would remove different nodes if both could.
    """

    def act(
        world: World,
        scenario: Scenario,
        step: FaultStep,
        rng: random.Random,
        nodes: tuple[int, ...],
    ) -> None:
        outcomes: dict[str, str] = {}
        for node in nodes or world.nodes:
            host = world.hosts[node]
            layer = host.upper
            change = getattr(layer, "change_nodes", None)
            listed = getattr(getattr(layer, "state", None), "nodes", None)
            if change is None or listed is None or host.core is None:
                continue
            target = step.target or _outside(listed.ids, host.members)
            if target == 0:
                outcomes[str(node)] = "nothing outside"
                continue
            kind = ChangeOp.ADD if op == "add_node" else ChangeOp.REMOVE
            refused = change(kind, target)
            outcomes[str(node)] = f"{target}: {refused or 'proposed'}"
        world.fault(op, target=step.target, outcomes=outcomes)

    return act


def _outside(listed: tuple[int, ...], members: tuple[int, ...]) -> int:
    outside = [n for n in listed if n not in members]
    return max(outside) if outside else 0


_ACTIONS: dict[str, Callable[..., None]] = {
    "partition": _partition,
    "heal": _heal,
    "block": _block,
    "unblock": _unblock,
    "crash": _crash,
    "restart": _restart,
    "leave": _leave,
    "pause": _pause,
    "loss": _loss,
    "token_loss": _frame_loss(OrfToken, "token_loss"),
    "commit_token_loss": _frame_loss(MembCommitToken, "commit_token_loss"),
    "recovery_loss": _recovery_rule("recovery_loss"),
    "recovery_delay": _recovery_rule("recovery_delay"),
    "clock": _clock,
    "replay_joins": _replay_joins,
    "cut_link": _cut_link,
    "restore_link": _restore_link,
    "add_node": _change_nodes("add_node"),
    "remove_node": _change_nodes("remove_node"),
}
