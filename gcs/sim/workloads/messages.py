"""Simulated applications: each sender submits messages at a rate, or as fast as allowed.

Arrivals are a Poisson process per node (``rate`` arrivals per second, ``batch`` messages each),
drawn from that node's own workload stream of the seed tree; sizes and the safe/agreed choice
come from the same stream. Every payload names its message id (``history.encode_payload``), so
checkers can verify integrity from delivered bytes alone. A submission refused by flow control is
dropped from the workload (not retried): the history records only what the core accepted.
"""

from __future__ import annotations

import random

from gcs.sim.scenario import Scenario
from gcs.sim.world import World

__all__ = ["install_workload"]

MS = 1_000_000
S = 1_000_000_000


def install_workload(world: World, scenario: Scenario) -> None:
    """Schedule every node's arrival process from ``start_s`` until ``duration_s``."""
    w = scenario.workload
    senders = w.senders or scenario.node_ids
    end_ns = int(scenario.duration_s * S)
    for node in senders:
        rng = world.seeds.child("workload").rng(f"node/{node}")
        start = int(w.start_s * S)
        if w.rate > 0:
            world.at(start, _arrival, world, scenario, node, rng, end_ns)
        else:
            world.at(start, _saturate, world, scenario, node, rng, end_ns)


def _submit_one(world: World, scenario: Scenario, node: int, rng: random.Random) -> bool:
    w = scenario.workload
    size = w.sizes[0] if len(w.sizes) == 1 else rng.choice(w.sizes)
    safe = rng.random() < w.safe
    return world.hosts[node].submit(size, safe) is not None


def _arrival(world: World, scenario: Scenario, node: int, rng: random.Random, end_ns: int) -> None:
    if world.now >= end_ns:
        return
    for _ in range(scenario.workload.batch):
        _submit_one(world, scenario, node, rng)
    gap = max(1, int(rng.expovariate(scenario.workload.rate) * S))
    world.at(world.now + gap, _arrival, world, scenario, node, rng, end_ns)


def _saturate(world: World, scenario: Scenario, node: int, rng: random.Random, end_ns: int) -> None:
    if world.now >= end_ns:
        return
    host = world.hosts[node]
    for _ in range(scenario.workload.burst):
        if not host.window_open or not _submit_one(world, scenario, node, rng):
            break
    world.at(world.now + MS, _saturate, world, scenario, node, rng, end_ns)
