"""Summarise py-spy ``--format raw`` (collapsed stacks): the functions where a node spends time.

Usage: python docs/bench/pyspy_summary.py FILE... [--top N]

For each file: total samples, then the top functions by *self* time (the frame at the top of the
stack; C code called from a Python function counts as that function's self time) and by
*inclusive* time (the function anywhere on the stack). py-spy leaves idle threads out by
default, so the sample count itself says how busy the process was (samples / rate / seconds).
"""

from __future__ import annotations

import collections
import sys
from pathlib import Path


def _name(frame: str) -> str:
    """``func (path/to/file.py:123)`` -> ``func (gcs/x.py)``, shortened to the package path."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def summarise(path: Path, top: int) -> str:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_name(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"== {path.name}: {total} samples", "-- self"]
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines.append("-- inclusive")
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top + 10)]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    top = 25
    if "--top" in argv:
        at = argv.index("--top")
        top = int(argv[at + 1])
        del argv[at : at + 2]
    for arg in argv:
        print(summarise(Path(arg), top))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
