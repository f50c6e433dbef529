"""The ``gcs`` command line: one entry point, one module per command family.

Each command module exposes ``register(subparsers)``, which adds its parser(s) and sets
``func`` to a callable taking the parsed ``argparse.Namespace`` and returning an exit code.
Errors a user can fix (bad config, missing daemon, bad arguments) are printed as one line
without a traceback (exit 2 for usage errors, 1 for failures).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gcs import __version__
from gcs.errors import GcsError

__all__ = ["main"]

# Command modules, in the order `gcs --help` lists them.
_COMMAND_MODULES = (
    "gcs.cli.demo",
    "gcs.cli.daemon",
    "gcs.cli.keygen",
    "gcs.cli.bench",
    "gcs.cli.simulate",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gcs",
        description="Totally ordered, reliable group communication (Totem single ring + EVS).",
    )
    parser.add_argument("--version", action="version", version=f"gcs {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        code: int = func(args)
    except GcsError as exc:
        print(f"gcs {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (``gcs ... | head``): not an error of ours
        sys.stderr.close()
        return 141
    return code


if __name__ == "__main__":
    sys.exit(main())
