"""Shared pytest configuration.

Hypothesis profiles: ``dev`` (the default) keeps the property tests quick while editing; ``ci``
runs many more examples. Pick one with ``HYPOTHESIS_PROFILE=ci``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "ci",
    max_examples=1000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        default=False,
        help="also run tests marked slow (long soaks and sweeps)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(
        reason="slow soak/sweep: run with --run-slow (CI runs a bounded sample)"
    )
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
