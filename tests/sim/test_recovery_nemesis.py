"""The recovery nemesis: loss and delay of what nodes send in RECOVERY (RFC 0007 SIM-4-4)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gcs.errors import ConfigError
from gcs.history.events import Fault, State
from gcs.sim.run import run
from gcs.sim.scenario import load_scenario, parse_scenario
from gcs.sim.world import DropRule, World
from gcs.totem.config import TotemConfig
from gcs.wire.frames import Mcast, OrfToken, RingId

SCENARIOS = Path(__file__).parents[2] / "simulations" / "scenarios"
RING = RingId(seq=8, rep=1)
OLD = RingId(seq=4, rep=1)
INNER = Mcast(2, OLD, 7, False, (), None)
CARRIER = Mcast(1, RING, 3, False, (), INNER)
PLAIN = Mcast(1, RING, 4, False, (), None)
TOKEN = OrfToken(RING, 5, 0, 0, 0, 0, 0, False, ())


def _world() -> World:
    nodes = (1, 2, 3, 4)
    return World(seed=1, nodes=nodes, totem_config=lambda n: TotemConfig(node_id=n, nodes=nodes))


def _resend_rule(probability: float, *, delay_ns: int = 0, seed: int = 7) -> DropRule:
    return DropRule(
        Mcast,
        probability,
        10**12,
        random.Random(seed),
        state="recovery",
        carriers_only=True,
        delay_ns=delay_ns,
    )


def test_only_recovery_re_sends_are_hit_sim_4_4() -> None:
    world = _world()
    world.drop_rules.append(_resend_rule(1.0))
    assert world.frame_fates("recovery", CARRIER, (2, 3, 4)) == ((), [])
    assert world.frames_dropped == 3
    assert world.frame_fates("operational", CARRIER, (2, 3)) == ((2, 3), [])
    assert world.frame_fates("recovery", PLAIN, (2, 3)) == ((2, 3), [])
    assert world.frame_fates("recovery", TOKEN, (2,)) == ((2,), [])
    world.now = 10**12  # the rule has expired
    assert world.frame_fates("recovery", CARRIER, (2, 3)) == ((2, 3), [])
    assert world.frames_dropped == 3


def test_each_destination_draws_in_order_and_the_first_hit_decides_sim_4_4() -> None:
    """Two rules: per destination, the loss rule draws first; only if it misses does the delay
    rule draw. The fates are exactly what replaying the two streams by hand gives."""
    world = _world()
    world.drop_rules.append(_resend_rule(0.5, seed=1))
    world.drop_rules.append(_resend_rule(0.5, delay_ns=200, seed=2))
    loss, delay = random.Random(1), random.Random(2)
    expected_now, expected_later = [], []
    dests = (2, 3, 4) * 5
    for dest in dests:
        if loss.random() < 0.5:
            continue
        if delay.random() < 0.5:
            expected_later.append((dest, 200))
        else:
            expected_now.append(dest)
    now, later = world.frame_fates("recovery", CARRIER, dests)
    assert (list(now), later) == (expected_now, expected_later)
    assert world.frames_delayed == len(later) > 0
    assert world.frames_dropped == len(dests) - len(now) - len(later) > 0


def test_recovery_steps_are_checked_when_parsed() -> None:
    base = {"faults": [{"at_s": 1, "action": "recovery_loss", "value": 0.5, "spec": "resend"}]}
    (step,) = parse_scenario(base).faults
    assert (step.action, step.spec, step.value) == ("recovery_loss", "resend", 0.5)
    bad_spec = {"faults": [{"at_s": 1, "action": "recovery_loss", "value": 0.5, "spec": "joins"}]}
    with pytest.raises(ConfigError, match="spec"):
        parse_scenario(bad_spec)
    with pytest.raises(ConfigError, match="probability"):
        parse_scenario({"faults": [{"at_s": 1, "action": "recovery_loss", "value": 1.5}]})
    with pytest.raises(ConfigError, match="delay_ms"):
        parse_scenario({"faults": [{"at_s": 1, "action": "recovery_delay", "value": 0.5}]})
    delayed = {"faults": [{"at_s": 1, "action": "recovery_delay", "value": 0.5, "delay_ms": 90}]}
    scenario = parse_scenario(delayed)
    assert scenario.faults[0].delay_ms == 90
    assert scenario.faults[0].to_toml()["delay_ms"] == 90


def test_the_recovery_phase_scenario_reaches_every_recovery_path_sim_4_4() -> None:
    """One seed of the dedicated scenario: re-sent copies and recovery tokens are lost and
    delayed, recoveries fail and are retried, and every checker still passes."""
    scenario = load_scenario(SCENARIOS / "recovery-phase.toml")
    worlds: list[World] = []
    result = run(scenario, 1, probes=[worlds.append])
    assert result.valid is True, [v.summary() for v in result.verdicts if v.valid is not True]
    (world,) = worlds
    assert world.frames_dropped > 0 and world.frames_delayed > 0
    states = [e for e in result.history.events if isinstance(e, State)]
    assert any(e.old == "recovery" and e.new == "gather" for e in states)
    assert sum(e.old == "recovery" and e.new == "operational" for e in states) > 10
    kinds = {e.kind for e in result.history.events if isinstance(e, Fault)}
    assert {"recovery_loss", "recovery_delay"} <= kinds
