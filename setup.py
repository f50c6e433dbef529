"""Build script: gcs with its hot path compiled by mypyc, or pure Python where that cannot be.

Everything declarative is in ``pyproject.toml``; this file only adds the C extensions. The modules
to compile are listed once, in ``gcs/build.py`` (``HOT_PATH``), and compiled from the same ``.py``
files that the pure build runs. The build falls back to pure Python, with one line on stderr,
when ``GCS_PURE_BUILD=1`` is set, when mypyc cannot be imported, when no C compiler can build
against the Python headers, or when compiling fails; the package then behaves identically, only
slower (``gcs status`` names the build). ``pip install -e .`` builds the extensions in place
(setuptools' editable mode), so a developer's tree runs compiled too; ``gcs/build.py`` notices a
source edited after that and runs pure until the next install.
"""

from __future__ import annotations

import ast
import json
import os
import sys
import sysconfig
import tempfile
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
STAMP = "gcs/_compiled.json"


class BuildFailedError(Exception):
    """Compiling the extensions failed: build pure Python instead."""


def say(line: str) -> None:
    print(f"gcs: {line}", file=sys.stderr, flush=True)


def hot_path_sources() -> list[str]:
    """The ``.py`` files ``HOT_PATH`` in gcs/build.py names, relative to the project root."""
    tree = ast.parse((ROOT / "gcs" / "build.py").read_text())
    entries: tuple[str, ...] = ()
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "HOT_PATH":
            assert node.value is not None
            entries = ast.literal_eval(node.value)
    sources: list[str] = []
    for entry in entries:
        path = ROOT.joinpath(*entry.split("."))
        if path.is_dir():
            sources += sorted(str(p.relative_to(ROOT)) for p in path.glob("*.py"))
        else:
            sources.append(str(path.with_suffix(".py").relative_to(ROOT)))
    return sources


def can_compile() -> str | None:
    """None if a C compiler builds against Python.h here, else why not (one short clause)."""
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.errors import CCompilerError, DistutilsError
    from setuptools._distutils.sysconfig import customize_compiler

    compiler = new_compiler()
    customize_compiler(compiler)  # type: ignore[no-untyped-call]
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.c"
        probe.write_text("#include <Python.h>\nint gcs_probe(void) { return 0; }\n")
        try:
            compiler.compile(
                [str(probe)], output_dir=tmp, include_dirs=[sysconfig.get_paths()["include"]]
            )
        except (CCompilerError, DistutilsError, OSError):
            return "no C compiler with the Python headers"
    return None


def compiled_extensions() -> tuple[list[Any], str | None]:
    """The mypyc extensions to build, or an empty list and the reason there are none."""
    if os.environ.get("GCS_PURE_BUILD", "") not in ("", "0"):
        return [], "GCS_PURE_BUILD is set"
    try:
        from mypyc.build import mypycify
    except ImportError:
        return [], "mypyc (mypy) is not installed"
    reason = can_compile()
    if reason is not None:
        return [], reason
    try:
        return mypycify(hot_path_sources(), opt_level="3", group_name="gcs"), None
    except (Exception, SystemExit) as exc:  # mypy found an error: never block an install on it
        return [], f"mypyc could not compile the sources ({exc})"


class BuildExt(build_ext):
    """Compile the extensions, record the build (``gcs/_compiled.json``); failures go pure."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # CompileError, LinkError, DistutilsExecError, ...
            raise BuildFailedError(str(exc)) from exc
        self.write_stamp()

    def write_stamp(self) -> None:
        import mypy.version

        stamp: dict[str, Any] = {"mypyc": mypy.version.__version__}
        if self.inplace:  # an editable install: remember the sources, to detect edits
            stamp["sources"] = {
                rel: [(st := (ROOT / rel).stat()).st_size, st.st_mtime_ns]
                for rel in hot_path_sources()
            }
        base = ROOT if self.inplace else Path(self.build_lib)
        (base / STAMP).write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n")


def forget_inplace_build() -> None:
    """A pure build must not leave an earlier in-place compiled build shadowing the sources."""
    built = [ROOT / rel for rel in hot_path_sources()]
    stale = [p.with_name(p.stem + suffix) for p in built for suffix in EXTENSION_SUFFIXES]
    stale += [ROOT / f"gcs__mypyc{suffix}" for suffix in EXTENSION_SUFFIXES]
    for path in [*stale, ROOT / STAMP]:
        path.unlink(missing_ok=True)


BUILDS = {"bdist_wheel", "editable_wheel", "build", "build_ext", "develop", "install"}


def main() -> None:
    if not BUILDS & set(sys.argv):  # metadata, requirements: nothing is compiled, nothing said
        setup()
        return
    extensions, reason = compiled_extensions()
    if extensions:
        try:
            setup(ext_modules=extensions, cmdclass={"build_ext": BuildExt})
        except BuildFailedError as exc:
            reason = f"compiling failed ({str(exc).splitlines()[0][:80]})"
        else:
            return
    say(f"building pure Python: {reason}")
    if "editable_wheel" in sys.argv or "develop" in sys.argv:
        forget_inplace_build()
    setup()


main()
