"""The recovery nemesis: loss and delay of what nodes send in RECOVERY (RFC 0007 SIM-4.2-1)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from gcs.errors import ConfigError
from gcs.history.events import Fault, State
from gcs.sim.nemesis import apply_step
from gcs.sim.run import Result, run
from gcs.sim.scenario import FaultStep, load_scenario, parse_scenario
from gcs.sim.swarm import draw_scenario
from gcs.sim.world import DropRule, World
from gcs.totem.config import TotemConfig
from gcs.wire.frames import Frame, Mcast, MembCommitToken, OrfToken, RingId

SCENARIOS = Path(__file__).parents[2] / "simulations" / "scenarios"
RING = RingId(seq=8, rep=1)
OLD = RingId(seq=4, rep=1)
INNER = Mcast(2, OLD, 7, False, (), None)
CARRIER = Mcast(1, RING, 3, False, (), INNER)
PLAIN = Mcast(1, RING, 4, False, (), None)
TOKEN = OrfToken(RING, 5, 0, 0, 0, 0, 0, False, ())
COMMIT = MembCommitToken(RING, 2, 4, ())
MS = 1_000_000


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


@pytest.mark.req("SIM-4.2-1")
def test_only_recovery_re_sends_are_hit() -> None:
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


@pytest.mark.req("SIM-4.2-1")
def test_each_destination_draws_in_order_and_the_first_hit_decides() -> None:
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


@pytest.mark.req("SIM-4.2-1")
def test_the_token_spec_hits_only_the_recovery_token() -> None:
    """``spec = "token"``: the commit token and the new ring's token a node sends in RECOVERY
    are hit, re-sent copies and every frame of another state are not."""
    world = _world()
    step = FaultStep(0.0, "recovery_loss", spec="token", value=1.0, duration_s=5.0)
    apply_step(world, parse_scenario({}), step, random.Random(0))
    assert {rule.frame_type for rule in world.drop_rules} == {MembCommitToken, OrfToken}
    assert world.frame_fates("recovery", TOKEN, (2,)) == ((), [])
    assert world.frame_fates("recovery", COMMIT, (3,)) == ((), [])
    assert world.frame_fates("recovery", CARRIER, (2, 3)) == ((2, 3), [])
    for state in ("operational", "gather", "commit"):
        assert world.frame_fates(state, TOKEN, (2,)) == ((2,), [])
        assert world.frame_fates(state, COMMIT, (2,)) == ((2,), [])
    assert world.frames_dropped == 2
    world.now = 5 * 10**9  # the step's duration is over
    assert world.frame_fates("recovery", TOKEN, (2,)) == ((2,), [])
    (fault,) = [e for e in world.history.events if isinstance(e, Fault)]
    assert (fault.kind, fault.detail) == (
        "recovery_loss",
        {"duration_s": 5.0, "value": 1.0, "spec": "token"},
    )


@pytest.mark.req("SIM-4.2-1")
def test_recovery_delay_sends_hit_copies_later() -> None:
    """``recovery_delay`` with ``spec = "all"``: every hit copy, re-send or token, is handed on
    ``delay_ms`` later instead of dropped; plain mcasts are never touched."""
    world = _world()
    step = FaultStep(0.0, "recovery_delay", value=1.0, delay_ms=90.0)
    apply_step(world, parse_scenario({}), step, random.Random(0))
    for frame in (CARRIER, TOKEN, COMMIT):
        assert world.frame_fates("recovery", frame, (2, 4)) == ((), [(2, 90 * MS), (4, 90 * MS)])
    assert world.frame_fates("recovery", PLAIN, (2, 4)) == ((2, 4), [])
    assert (world.frames_delayed, world.frames_dropped) == (6, 0)


def _fates(seed: int, spec: str) -> list[tuple[tuple[int, ...], list[tuple[int, int]]]]:
    world = World(
        seed=seed, nodes=(1, 2, 3), totem_config=lambda n: TotemConfig(node_id=n, nodes=(1, 2, 3))
    )
    for action, delay in (("recovery_loss", 0.0), ("recovery_delay", 50.0)):
        step = FaultStep(0.0, action, spec=spec, value=0.4, delay_ms=delay)
        apply_step(world, parse_scenario({}), step, random.Random(0))
    frames: tuple[Frame, ...] = (CARRIER, TOKEN, COMMIT)
    return [world.frame_fates("recovery", frames[i % 3], (2, 3)) for i in range(60)]


@pytest.mark.req("SIM-2.2-1", "SIM-4.2-1")
def test_the_rules_draw_from_the_seed_tree_only() -> None:
    """SIM-2.2-1: a frame rule's stream depends on the run's seed and the step, not on the
    ``random.Random`` the nemesis passes to actions: same seed, same fates."""
    assert _fates(11, "all") == _fates(11, "all")
    assert _fates(11, "all") != _fates(12, "all")


class FateCounter:
    """A probe that counts what the frame rules did to recovery frames of a run, by kind."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.world: World | None = None

    def __call__(self, world: World) -> None:
        self.world = world
        inner = world.frame_fates

        def fates(state: str, frame: Frame, dests: tuple[int, ...]) -> Any:
            now, later = inner(state, frame, dests)
            if isinstance(frame, (OrfToken, MembCommitToken)):
                kind = "token"
            elif isinstance(frame, Mcast) and frame.encapsulated is not None:
                kind = "resend"
            else:
                kind = "other"
            if state == "recovery":
                self._add(kind, "lost", len(dests) - len(now) - len(later))
                self._add(kind, "delayed", len(later))
            return now, later

        world.frame_fates = fates  # type: ignore[method-assign]

    def _add(self, kind: str, fate: str, count: int) -> None:
        if count:
            self.counts[kind, fate] = self.counts.get((kind, fate), 0) + count


@pytest.fixture(scope="module")
def recovery_phase_seed_1() -> tuple[Result, FateCounter]:
    scenario = load_scenario(SCENARIOS / "recovery-phase.toml")
    counter = FateCounter()
    return run(scenario, 1, probes=[counter]), counter


@pytest.mark.req("SIM-4.2-1")
def test_the_recovery_phase_scenario_reaches_every_recovery_path(
    recovery_phase_seed_1: tuple[Result, FateCounter],
) -> None:
    """One seed of the dedicated scenario: re-sent copies and recovery tokens are each lost and
    delayed, recoveries fail and are retried, and every checker still passes."""
    result, counter = recovery_phase_seed_1
    assert result.valid is True, [v.summary() for v in result.verdicts if v.valid is not True]
    print("recovery-phase seed 1 fates:", counter.counts)
    for kind in ("resend", "token"):
        for fate in ("lost", "delayed"):
            assert counter.counts.get((kind, fate), 0) > 0, (kind, fate, counter.counts)
    assert {kind for kind, _ in counter.counts} == {"resend", "token"}  # nothing else is hit
    states = [e for e in result.history.events if isinstance(e, State)]
    assert any(e.old == "recovery" and e.new == "gather" for e in states)
    assert sum(e.old == "recovery" and e.new == "operational" for e in states) > 10
    kinds = {e.kind for e in result.history.events if isinstance(e, Fault)}
    assert {"recovery_loss", "recovery_delay"} <= kinds


@pytest.mark.req("SIM-2.2-1", "SIM-4.2-1")
def test_a_run_with_the_recovery_nemesis_is_the_same_run_for_the_same_seed(
    recovery_phase_seed_1: tuple[Result, FateCounter],
) -> None:
    """SIM-2.2-1 with the recovery nemesis on: running seed 1 again gives the same history
    (digest) and the same hits; the swarm draws the same recovery steps for a seed."""
    first, first_counter = recovery_phase_seed_1
    counter = FateCounter()
    again = run(load_scenario(SCENARIOS / "recovery-phase.toml"), 1, probes=[counter])
    assert again.digest() == first.digest()
    assert counter.counts == first_counter.counts
    drawn = [draw_scenario(seed).faults for seed in range(1, 31)]
    assert drawn == [draw_scenario(seed).faults for seed in range(1, 31)]
    assert any(step.action.startswith("recovery_") for faults in drawn for step in faults)
