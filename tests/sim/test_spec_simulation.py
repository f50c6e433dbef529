"""RFC 0007 requirements checked directly on the simulator's pieces: unknown scenario keys, the
seed tree, the order of a link's draws, and the history's JSON lines and digest."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from gcs.errors import ConfigError
from gcs.sim.network import MS, LatencyKind, LinkParams, Network
from gcs.sim.run import run
from gcs.sim.scenario import parse_scenario
from gcs.sim.seeds import SeedTree

LINK = LinkParams(
    latency=LatencyKind.UNIFORM,
    latency_ns=1 * MS,
    latency_max_ns=3 * MS,
    loss=0.2,
    duplicate=0.3,
    reorder=0.3,
    reorder_delay_ns=5 * MS,
)


@pytest.mark.req("SIM-2.1-2")
@pytest.mark.parametrize(
    "data",
    [
        {"nodes": 3, "duraton_s": 4},
        {"nodes": 3, "totem": {"token_timeout_ms": 100}},
    ],
)
def test_unknown_scenario_keys_are_rejected(data: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        parse_scenario(data)


@pytest.mark.req("SIM-2.2-1")
def test_a_stream_depends_only_on_the_seed_and_its_path() -> None:
    alone = SeedTree(7).child("network").rng("link/1/2")
    expected = [alone.random() for _ in range(5)]
    tree = SeedTree(7)
    for name in ("nemesis", "workload", "node/3"):  # other components created first
        tree.child(name).rng("x").random()
    again = tree.child("network").rng("link/1/2")
    assert [again.random() for _ in range(5)] == expected
    assert SeedTree(8).child("network").rng("link/1/2").random() != expected[0]


@pytest.mark.req("SIM-2.2-1")
def test_adding_a_node_does_not_change_the_draws_of_an_existing_link() -> None:
    small = Network((1, 2), SeedTree(5).child("network"), LINK)
    large = Network((1, 2, 3), SeedTree(5).child("network"), LINK)
    for k in range(50):
        large.fate(k * MS, 3, 1, 100)  # the new node's links draw from their own streams
        assert small.fate(k * MS, 1, 2, 100) == large.fate(k * MS, 1, 2, 100)


def _expected_fate(rng: random.Random, params: LinkParams) -> tuple[int, ...]:
    """RFC 0007 §3.2's order of draws, written out: loss, latency, reorder, duplicate."""
    lost = rng.random() < params.loss
    span = params.latency_max_ns - params.latency_ns
    delay = params.latency_ns + int(rng.random() * span)
    if rng.random() < params.reorder:
        delay += params.reorder_delay_ns
    delays: tuple[int, ...] = (delay,)
    if rng.random() < params.duplicate:
        delays = (delay, params.latency_ns + int(rng.random() * span))
    return () if lost else delays


@pytest.mark.req("SIM-3.2-1")
def test_a_link_draws_in_the_specified_order_blocked_or_not() -> None:
    seeds = SeedTree(11).child("network")
    network = Network((1, 2), seeds, LINK)
    reference = seeds.rng("link/1/2")
    fates = set()
    for k in range(200):
        blocked = 50 <= k < 100
        if k in (50, 100):
            (network.block if blocked else network.unblock)(1, 2)
        expected = _expected_fate(reference, LINK)
        fate = network.fate(k * MS, 1, 2, 100)
        assert fate == (() if blocked else expected), f"datagram {k}"
        fates.add(len(fate))
    assert fates == {0, 1, 2}  # losses, single and duplicated arrivals all occurred


@pytest.mark.req("SIM-6-1")
def test_history_lines_are_sorted_json_with_a_type_and_the_digest_hashes_them() -> None:
    scenario = parse_scenario({"nodes": 3, "duration_s": 2, "quiet_s": 1, "wire": "objects"})
    result = run(scenario, 3)
    lines = list(result.history.to_jsonl())
    assert len(lines) == len(result.history.events) > 10
    for line in lines:
        obj = json.loads(line)
        assert isinstance(obj, dict) and isinstance(obj["type"], str), line
        assert list(obj) == sorted(obj), line
        assert "\n" not in line
    expected = hashlib.sha256("".join(line + "\n" for line in lines).encode()).hexdigest()
    assert result.digest() == expected
