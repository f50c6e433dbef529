"""The checkers are tested too: deliberately broken cores must be caught.

Each mutation below breaks one rule of the protocol in a way a careless implementation might
(skipping the transitional configuration, trusting the token's aru after one visit for safe
delivery, not re-sending old-ring messages in recovery, forgetting the persisted ring seq). The
simulator must report a violation of the guarantee that rule protects, by name, on at least one
of a couple of seeds of an ordinary scenario. If a mutation goes unnoticed, the checkers (or the
scenarios) are too weak, and this test fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

import gcs.totem.node as node_module
from gcs.sim.run import run
from gcs.sim.scenario import load_scenario
from gcs.totem import ordering, recovery
from gcs.totem.effects import ConfigurationKind

SCENARIOS = Path(__file__).parents[2] / "simulations" / "scenarios"


def skip_transitional() -> AbstractContextManager[Any]:
    """Install the new ring without telling the application about the transitional config."""
    original = node_module.Node.configuration

    def configuration(self: node_module.Node, kind: ConfigurationKind, *args: Any) -> None:
        if kind is not ConfigurationKind.TRANSITIONAL:
            original(self, kind, *args)

    return mock.patch.object(node_module.Node, "configuration", configuration)


def early_safe() -> AbstractContextManager[Any]:
    """Deliver safe messages once the token's aru covered them on ONE visit, not two."""
    original = ordering._process_token

    def process(n: Any, now_ns: int, ring: Any, token: Any) -> None:
        ring.last_aru = token.aru
        original(n, now_ns, ring, token)

    return mock.patch.object(ordering, "_process_token", process)


def no_recovery_retransmit() -> AbstractContextManager[Any]:
    """Enter recovery but never re-send old-ring messages to ring-mates that lack them."""
    original = recovery._recovery_enter

    def enter(n: Any, now_ns: int, token: Any) -> None:
        original(n, now_ns, token)
        if n.recovery is not None:
            n.recovery.retrans.clear()

    return mock.patch.object(recovery, "_recovery_enter", enter)


def forget_ring_seq() -> AbstractContextManager[Any]:
    """Ignore the persisted ring seq at start-up (corosync's bug before it stored it)."""
    original = node_module.Node.start

    def start(self: node_module.Node, now_ns: int, stored: int | None) -> Any:
        return original(self, now_ns, None)

    return mock.patch.object(node_module.Node, "start", start)


CASES: list[tuple[Callable[[], AbstractContextManager[Any]], str, str]] = [
    (skip_transitional, "crash-restart", "change_shape"),
    (early_safe, "partition-merge", "safe"),
    (no_recovery_retransmit, "crash-restart", "virtual_synchrony"),
    (forget_ring_seq, "crash-restart", "ring_ids"),
]


def _failing_checkers(scenario_name: str, seeds: Iterator[int]) -> set[str]:
    scenario = load_scenario(SCENARIOS / f"{scenario_name}.toml")
    failing: set[str] = set()
    for seed in seeds:
        result = run(scenario, seed)
        failing |= {v.name for v in result.verdicts if v.valid is False}
    return failing


@pytest.mark.pure_python
@pytest.mark.parametrize(
    ("mutation", "scenario", "checker"), CASES, ids=lambda c: getattr(c, "__name__", c)
)
def test_mutation_is_caught(
    mutation: Callable[[], AbstractContextManager[Any]], scenario: str, checker: str
) -> None:
    with mutation():
        failing = _failing_checkers(scenario, iter((1, 2)))
    assert checker in failing, f"{mutation.__name__} went unnoticed by {checker}: {failing}"


def test_unmutated_core_passes_the_same_runs() -> None:
    """The control: the same scenarios and seeds pass without a mutation."""
    for scenario in sorted({case[1] for case in CASES}):
        assert _failing_checkers(scenario, iter((1, 2))) == set()
