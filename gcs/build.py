"""Which build of gcs runs: the compiled hot path (mypyc) or pure Python, and the switch between.

One source, two builds. The modules listed in ``HOT_PATH`` are compiled by ``setup.py`` to C
extensions with mypyc, from these very ``.py`` files, when a C compiler and the Python headers
exist at install time; otherwise the package installs as pure Python (``setup.py`` says so in one
line, and ``gcs demo``, ``gcs status`` and ``gcs bench`` name the build). Both builds behave
identically: the simulator's history digests are the same for the same seeds.

An extension module shadows the ``.py`` beside it (Python's import system tries extensions
first), so this module can also make a compiled install run its pure sources:

* ``GCS_PURE=1`` in the environment: the hot-path modules are imported from their ``.py`` files
  (a meta-path finder, installed by ``gcs/__init__.py`` before any of them loads). Tests that
  patch core functions need this, since a compiled module calls its neighbours directly.
* A stale in-place build (a developer edited a hot-path ``.py`` after ``pip install -e .``): the
  same, with one line on stderr saying so, because running the old compiled code would be wrong.

This file is read by ``setup.py`` with ``runpy`` before the package exists, so it imports nothing
from ``gcs``. Adding a module to the compiled build is one line in ``HOT_PATH``.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

__all__ = [
    "HOT_PATH",
    "PURE_ENV",
    "STAMP_FILE",
    "BuildInfo",
    "build_info",
    "hot_path_modules",
    "select",
    "stale_source",
]

HOT_PATH: tuple[str, ...] = (
    "gcs.wire",  # a package: every module in it
    "gcs.totem",
    "gcs.groups.driver",  # the group layer: every delivered message passes through both
    "gcs.groups.state",
)
"""What the compiled build compiles: packages (all their modules) or single modules, by name."""

PURE_ENV = "GCS_PURE"
"""Set to ``1`` to run the pure-Python sources of a compiled install."""

STAMP_FILE = "_compiled.json"
"""Written by ``setup.py`` beside this module when it compiles: mypyc version and, for an
in-place (editable) build, each compiled source's size and mtime, to detect a stale build."""

_PACKAGE_DIR = Path(__file__).resolve().parent


def hot_path_modules(root: Path = _PACKAGE_DIR.parent) -> list[str]:
    """Every module name ``HOT_PATH`` stands for, found under ``root`` (sorted)."""
    names: set[str] = set()
    for entry in HOT_PATH:
        path = root.joinpath(*entry.split("."))
        if path.is_dir():
            names.update(f"{entry}.{p.stem}".removesuffix(".__init__") for p in path.glob("*.py"))
        elif path.with_suffix(".py").is_file():
            names.add(entry)
    return sorted(names)


def _source(root: Path, name: str) -> Path:
    path = root.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _extension(source: Path) -> Path | None:
    """The compiled module that shadows ``source``, if one is installed beside it."""
    stem = "__init__" if source.name == "__init__.py" else source.stem
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = source.with_name(stem + suffix)
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True, slots=True)
class BuildInfo:
    """The build this process runs, for ``gcs status``, ``gcs bench`` and ``gcs demo``."""

    compiled: bool
    mypyc: str | None  # the mypyc (mypy) version that compiled the installed extensions
    reason: str  # why pure, when pure; empty when compiled
    modules: int  # hot-path modules running compiled

    def describe(self) -> str:
        """``compiled (mypyc 1.15.0)`` or ``pure Python (<reason>)``: one line for humans."""
        if self.compiled:
            return f"compiled (mypyc {self.mypyc or '?'}, {self.modules} modules)"
        return f"pure Python ({self.reason})"

    def as_json(self) -> dict[str, object]:
        kind = "compiled" if self.compiled else "pure"
        return {"kind": kind, "mypyc": self.mypyc, "reason": self.reason, "modules": self.modules}

    @classmethod
    def from_json(cls, value: object) -> BuildInfo:
        """Read ``as_json``'s map back (a status map from a daemon that had none: unknown)."""
        if not isinstance(value, dict):
            return cls(False, None, "unknown: the node did not say", 0)
        mypyc, reason, modules = value.get("mypyc"), value.get("reason"), value.get("modules")
        return cls(
            value.get("kind") == "compiled",
            mypyc if isinstance(mypyc, str) else None,
            reason if isinstance(reason, str) else "",
            modules if isinstance(modules, int) else 0,
        )


def _read_stamp() -> dict[str, object]:
    try:
        stamp = json.loads((_PACKAGE_DIR / STAMP_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return stamp if isinstance(stamp, dict) else {}


def stale_source(stamp: dict[str, object]) -> str | None:
    """The first compiled source edited since an in-place build, if any (None for wheels)."""
    sources = stamp.get("sources")
    if not isinstance(sources, dict):
        return None
    root = _PACKAGE_DIR.parent
    for rel, recorded in sorted(sources.items()):
        try:
            st = (root / rel).stat()
        except OSError:
            return str(rel)
        if recorded != [st.st_size, st.st_mtime_ns]:
            return str(rel)
    return None


class _PureFinder(importlib.abc.MetaPathFinder):
    """Finds the hot-path modules as ``.py`` sources, so their extensions are never loaded."""

    def __init__(self, names: Sequence[str], root: Path) -> None:
        self._names = frozenset(names)
        self._root = root

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self._names:
            return None
        source = _source(self._root, fullname)
        search = [str(source.parent)] if source.name == "__init__.py" else None
        return importlib.util.spec_from_file_location(
            fullname, source, submodule_search_locations=search
        )


_selected: BuildInfo | None = None


def select() -> None:
    """Decide once, before any hot-path module loads, which build this process runs."""
    global _selected  # noqa: PLW0603 - one decision per process, made at package import
    if _selected is not None:
        return
    root = _PACKAGE_DIR.parent
    names = hot_path_modules(root)
    compiled = [n for n in names if _extension(_source(root, n)) is not None]
    stamp = _read_stamp()
    mypyc = stamp.get("mypyc") if isinstance(stamp.get("mypyc"), str) else None
    reason = ""
    if not compiled:
        reason = "no compiled extensions: installed without a C compiler or Python headers"
    elif os.environ.get(PURE_ENV, "") not in ("", "0"):
        reason = f"{PURE_ENV}={os.environ[PURE_ENV]}"
    elif (stale := stale_source(stamp)) is not None:
        reason = f"{stale} changed since the compiled build; rerun pip install -e ."
        print(f"gcs: running pure Python: {reason}", file=sys.stderr)
    if reason and compiled:
        sys.meta_path.insert(0, _PureFinder(names, root))
    modules = 0 if reason else len(compiled)
    _selected = BuildInfo(not reason, str(mypyc) if mypyc else None, reason, modules)


def build_info() -> BuildInfo:
    """The build this process runs (``select`` has run: ``import gcs`` calls it)."""
    select()
    assert _selected is not None
    return _selected
