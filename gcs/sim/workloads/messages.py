"""Simulated applications: each sender submits messages at a rate, or as fast as allowed.

Arrivals are a Poisson process per node (``rate`` arrivals per second, ``batch`` messages each),
drawn from that node's own workload stream of the seed tree; sizes and the safe/agreed choice
come from the same stream. Every payload names its message id (``history.encode_payload``), so
checkers can verify integrity from delivered bytes alone. By default a message goes straight to
the node's core and a submission refused by flow control is dropped from the workload (not
retried): the history records only what the core accepted. The ``groups`` workload
(``gcs.sim.workloads.groups``) runs the same arrivals through group members instead (``send``).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from gcs.sim.scenario import Scenario
from gcs.sim.world import World

__all__ = ["Sender", "install_workload", "to_core"]

Sender = Callable[[World, int, int, bool], bool]
"""(world, node, size, safe) -> whether the message reached the core now."""

MS = 1_000_000
S = 1_000_000_000


def to_core(world: World, node: int, size: int, safe: bool) -> bool:
    """The ring-level sender: one workload message straight into the node's core."""
    return world.hosts[node].submit(size, safe) is not None


def install_workload(world: World, scenario: Scenario, send: Sender = to_core) -> None:
    """Schedule every node's arrival process from ``start_s`` until ``duration_s``."""
    w = scenario.workload
    senders = w.senders or scenario.node_ids
    end_ns = int(scenario.duration_s * S)
    for node in senders:
        rng = world.seeds.child("workload").rng(f"node/{node}")
        start = int(w.start_s * S)
        process = _arrival if w.rate > 0 else _saturate
        world.at(start, process, world, scenario, send, node, rng, end_ns)


def _submit_one(
    world: World, scenario: Scenario, send: Sender, node: int, rng: random.Random
) -> bool:
    w = scenario.workload
    size = w.sizes[0] if len(w.sizes) == 1 else rng.choice(w.sizes)
    safe = rng.random() < w.safe
    return send(world, node, size, safe)


def _arrival(
    world: World, scenario: Scenario, send: Sender, node: int, rng: random.Random, end_ns: int
) -> None:
    if world.now >= end_ns:
        return
    for _ in range(scenario.workload.batch):
        _submit_one(world, scenario, send, node, rng)
    gap = max(1, int(rng.expovariate(scenario.workload.rate) * S))
    world.at(world.now + gap, _arrival, world, scenario, send, node, rng, end_ns)


def _saturate(
    world: World, scenario: Scenario, send: Sender, node: int, rng: random.Random, end_ns: int
) -> None:
    if world.now >= end_ns:
        return
    host = world.hosts[node]
    for _ in range(scenario.workload.burst):
        if not host.window_open or not _submit_one(world, scenario, send, node, rng):
            break
    world.at(world.now + MS, _saturate, world, scenario, send, node, rng, end_ns)
