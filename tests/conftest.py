"""Shared pytest configuration.

Hypothesis profiles: ``dev`` (the default) keeps the property tests quick while editing; ``ci``
runs many more examples. Pick one with ``HYPOTHESIS_PROFILE=ci``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, settings

from gcs.build import PURE_ENV, build_info

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


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run a ``pure_python`` test in a fresh interpreter on the pure modules, when compiled.

    Such a test patches functions or classes of the core (a deliberately broken core, an
    injected fault). A compiled module calls its neighbours directly and its classes cannot be
    patched, so in a compiled run the test runs again, whole, with GCS_PURE=1, and passes or
    fails with that run. In a pure run it runs here as usual.
    """
    if pyfuncitem.get_closest_marker("pure_python") is None or not build_info().compiled:
        return None
    env = dict(os.environ, **{PURE_ENV: "1"})
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", pyfuncitem.nodeid]
    if pyfuncitem.config.getoption("--run-slow"):
        command.append("--run-slow")
    done = subprocess.run(
        command,
        check=False,
        cwd=pyfuncitem.config.rootpath,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.fail(f"failed on the pure modules (GCS_PURE=1):\n{done.stdout[-6000:]}")
    return True
