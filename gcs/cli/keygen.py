"""``gcs keygen PATH``: write a new random cluster key file (RFC 0005 §2).

This is the one place that draws key material from the operating system; the wire layer itself
takes the bytes as an argument so it stays deterministic and testable.
"""

from __future__ import annotations

import argparse
import os

from gcs.errors import ConfigError
from gcs.wire.seal import MAX_KEY_BYTES, MIN_KEY_BYTES, generate_key

__all__ = ["register"]

DEFAULT_KEY_BYTES = 64


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "keygen",
        help="write a new random cluster key file",
        description=(
            "Write a new random cluster key to PATH with mode 0600, atomically. Copy the same "
            "file to every node over a secure channel; it authenticates and encrypts all traffic."
        ),
    )
    parser.add_argument("path", metavar="PATH", help="where to write the key file")
    parser.add_argument(
        "--bytes",
        dest="nbytes",
        type=int,
        default=DEFAULT_KEY_BYTES,
        metavar="N",
        help=f"key length in bytes, {MIN_KEY_BYTES}..{MAX_KEY_BYTES} (default {DEFAULT_KEY_BYTES})",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    nbytes: int = args.nbytes
    if not MIN_KEY_BYTES <= nbytes <= MAX_KEY_BYTES:
        raise ConfigError("--bytes", f"must be {MIN_KEY_BYTES}..{MAX_KEY_BYTES}, got {nbytes}")
    generate_key(args.path, os.urandom(nbytes), force=args.force)
    print(f"wrote a {nbytes}-byte cluster key to {args.path} (mode 0600)")
    return 0
