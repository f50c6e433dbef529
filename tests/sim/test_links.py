"""Redundant links in the simulator (RFC 0010 §7): single-link cuts cost no configuration change.

The scenarios ``link-cut`` (passive) and ``link-cut-active`` cut one link of one node at a time
under traffic; the checker ``link_failover`` judges that no node installs another configuration
once the ring of all nodes formed, and that every message submitted during a cut is delivered
within the link-down time. The tests run a shortened copy (the first two cuts) of each scenario;
``gcs simulate run simulations/scenarios/link-cut.toml --seeds N`` runs the whole one.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from gcs.errors import ConfigError
from gcs.history.events import Conf
from gcs.sim.run import Result, run
from gcs.sim.scenario import FaultStep, Scenario, load_scenario, parse_scenario

SCENARIOS = Path(__file__).parents[2] / "simulations" / "scenarios"
DOWN_MS = 1000 / 3  # the default link-down time with the scenarios' 1 s token timeout


def shortened(name: str, **changes: object) -> Scenario:
    scenario = load_scenario(SCENARIOS / f"{name}.toml")
    return dataclasses.replace(scenario, duration_s=14, faults=scenario.faults[:2], **changes)


def failover(result: Result) -> dict[str, object]:
    [verdict] = [v for v in result.verdicts if v.name == "link_failover"]
    return {"valid": verdict.valid, **verdict.stats, "problems": verdict.problems[:3]}


@pytest.mark.req("LNK-7-1", "LNK-7-2", "LNK-5-1", "LNK-5-2")
@pytest.mark.parametrize("name", ["link-cut", "link-cut-active"])
@pytest.mark.parametrize("seed", [1])
def test_a_single_link_cut_causes_no_configuration_change(name: str, seed: int) -> None:
    result = run(shortened(name), seed)
    failing = [v.summary() for v in result.verdicts if v.valid is not True]
    assert result.valid is True, (name, seed, failing)
    stats = failover(result)
    assert stats["cuts"] == 2, (name, seed, stats)
    assert isinstance(stats["cut_messages"], int) and stats["cut_messages"] > 100, stats
    assert isinstance(stats["cut_max_ms"], float) and stats["cut_max_ms"] < DOWN_MS, stats
    print(f"{name} seed {seed}: {stats}")


@pytest.mark.req("LNK-5-3", "LNK-7-1")
@pytest.mark.parametrize("name", ["link-cut", "link-cut-active"])
def test_cutting_every_link_of_a_node_is_the_usual_view_change(name: str) -> None:
    """Both links of node 3 cut for 4 s: the others form a ring without it (token loss and
    membership, as with one link), then with it again; the EVS checkers still pass and the
    failover checker reports the configuration changes (so it can fail)."""
    both = (
        FaultStep(at_s=4, action="cut_link", nodes=(3,), link=0, duration_s=4),
        FaultStep(at_s=4, action="cut_link", nodes=(3,), link=1, duration_s=4),
    )
    scenario = dataclasses.replace(shortened(name), faults=both)
    result = run(scenario, 1)
    others = [v.summary() for v in result.verdicts if v.name != "link_failover" and not v.valid]
    assert others == [], others
    stats = failover(result)
    assert stats["valid"] is False, stats
    rings = {tuple(e.members) for e in result.history.events if isinstance(e, Conf) and e.node == 1}
    assert (1, 2, 4, 5) in rings, rings  # the ring without node 3
    assert (1, 2, 3, 4, 5) in rings  # and with it again after the restore


@pytest.mark.parametrize("name", ["link-cut", "link-cut-active"])
def test_link_scenarios_round_trip_through_toml(name: str) -> None:
    """A run directory stores the resolved scenario: links and expectations survive it."""
    scenario = load_scenario(SCENARIOS / f"{name}.toml")
    again = parse_scenario(tomllib.loads(scenario.to_toml()), default_name=name)
    assert again == scenario
    assert again.links.count == 2 and again.expect.no_view_change


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"links": {"count": 9}}, "links.count"),
        ({"links": {"count": 2, "mode": "both"}}, "mode"),
        ({"links": {"count": 2, "down_ms": 1000}}, "links.down_ms"),
        ({"faults": [{"at_s": 1, "action": "cut_link", "link": 2}], "links": {"count": 2}}, "link"),
        ({"expect": {"no_view_change": 1}}, "expect.no_view_change"),
    ],
    ids=["nine-links", "bad-mode", "down-not-below-token", "no-such-link", "expect-not-bool"],
)
def test_bad_link_settings_name_the_field(change: dict[str, object], field: str) -> None:
    data: dict[str, object] = {"nodes": 3, "duration_s": 5, **change}
    with pytest.raises(ConfigError) as info:
        parse_scenario(data)
    assert field in info.value.field, info.value
