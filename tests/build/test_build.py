"""One source, two builds (gcs.build): which one runs, the switch between them, and how it is named.

The compiled build (mypyc extensions beside the ``.py`` files of ``HOT_PATH``) and the pure one
must be selectable in one install, named wherever figures are reported, and never silently
stale. Whether the two behave identically is tests/sim/test_determinism.py's question.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gcs.build import HOT_PATH, BuildInfo, build_info, hot_path_modules, stale_source

ROOT = Path(__file__).parents[2]
PROBE = """
from gcs.build import build_info
import gcs.totem.node, gcs.wire.codec
print(build_info().describe())
print(gcs.totem.node.__file__)
print(gcs.wire.codec.__file__)
"""


def _probe(pure: str) -> list[str]:
    env = dict(os.environ, GCS_PURE=pure)
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()


def _require_compiled() -> None:
    info = build_info()
    if info.compiled or info.reason.startswith("GCS_PURE"):
        return
    if os.environ.get("GCS_REQUIRE_COMPILED") == "1":
        pytest.fail(f"no compiled build installed: {info.describe()}")
    pytest.skip(f"no compiled build installed: {info.describe()}")


def test_hot_path_names_real_modules() -> None:
    """Every entry of HOT_PATH is a package or module of gcs, and the core's modules are in it."""
    names = hot_path_modules()
    for entry in HOT_PATH:
        assert any(n == entry or n.startswith(entry + ".") for n in names), entry
    assert {"gcs.totem.node", "gcs.wire.codec", "gcs.wire.frames"} <= set(names)
    for name in names:
        assert importlib.util.find_spec(name) is not None, name


def test_gcs_pure_runs_the_sources() -> None:
    """GCS_PURE=1 imports the hot path from its .py files, and the build says why it is pure."""
    described, node, codec = _probe("1")
    assert described.startswith("pure Python (")
    assert node.endswith(".py") and codec.endswith(".py")


def test_the_compiled_build_runs_its_extensions() -> None:
    _require_compiled()
    described, node, codec = _probe("0")
    assert described.startswith("compiled (mypyc ")
    assert not node.endswith(".py") and not codec.endswith(".py")


def test_a_source_edited_after_an_in_place_build_is_noticed() -> None:
    """An editable install records each compiled source's size and mtime; a mismatch means the
    extension is older than its source, and the pure source must run instead."""
    source = ROOT / "gcs" / "build.py"
    st = source.stat()
    assert stale_source({"sources": {"gcs/build.py": [st.st_size, st.st_mtime_ns]}}) is None
    assert stale_source({"sources": {"gcs/build.py": [st.st_size + 1, 0]}}) == "gcs/build.py"
    assert stale_source({"sources": {"gcs/gone.py": [1, 1]}}) == "gcs/gone.py"
    assert stale_source({}) is None, "a wheel records no sources: never stale"


def test_the_build_travels_in_a_status_map() -> None:
    """``gcs status`` reads the daemon's build from its status map; an older daemon's map has
    none, which reads as unknown rather than failing."""
    info = build_info()
    assert BuildInfo.from_json(info.as_json()) == info
    unknown = BuildInfo.from_json(None)
    assert not unknown.compiled and unknown.describe().startswith("pure Python (unknown")
