"""RFC 0002 §8.2-§8.3: one table of every check, each with invalid vectors that name its reason.

The table is parsed from the RFC itself, so the document, the vectors and the implementation
cannot drift apart: every row lists vectors that exist and carry the row's reason, every vector
is listed in exactly one row, every ``DropReason`` has a row, and the registry of §8.3 maps each
reason to exactly the rows that produce it (WIRE-8.2-1).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from gcs.wire.errors import DropReason
from tools.make_vectors import VECTORS

RFC = (VECTORS.parents[1] / "RFCs" / "0002-wire-format.md").read_text()
VECTOR_FILES = ("invalid-frames.json", "invalid-datagrams.json")


def _vectors() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in VECTOR_FILES:
        for vector in json.loads((VECTORS / name).read_text())["vectors"]:
            assert vector["name"] not in out, f"vector name {vector['name']} is not unique"
            out[vector["name"]] = vector
    return out


def _section(title: str) -> str:
    return RFC.split(title, 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]


def _rows() -> list[tuple[str, list[str], list[str]]]:
    """(row id, reasons, vector names) of each row of the §8.2 table."""
    rows = []
    for line in _section("### 8.2 Order of checks").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"[DF]\d+", cells[0]):
            reasons = re.findall(r"`([a-z_]+)`", cells[2])
            names = re.findall(r"`([^`]+)`", cells[4])
            rows.append((cells[0], reasons, names))
    return rows


def _sequences() -> dict[str, set[str]]:
    """The results of each stepwise vector: the checks that depend on time and source."""
    doc = json.loads((VECTORS / "datagram-sequences.json").read_text())
    return {v["name"]: {step["result"] for step in v["steps"]} for v in doc["vectors"]}


ROWS = _rows()
VECTORS_BY_NAME = _vectors()
SEQUENCES = _sequences()


def test_rows_are_numbered_in_order() -> None:
    ids = [row for row, _, _ in ROWS]
    datagram = [row for row in ids if row.startswith("D")]
    assert ids == datagram + [f"F{i}" for i in range(1, 22)]
    assert datagram == [f"D{i}" for i in range(1, len(datagram) + 1)]


@pytest.mark.req("WIRE-8.2-1")
def test_every_row_has_vectors_with_its_reason() -> None:
    for row, reasons, names in ROWS:
        assert names, f"row {row} has no vector"
        for name in names:
            if name in SEQUENCES:
                assert set(reasons) & SEQUENCES[name], f"row {row}: sequence {name}"
                continue
            assert name in VECTORS_BY_NAME, f"row {row}: no vector named {name}"
            assert VECTORS_BY_NAME[name]["reason"] in reasons, f"row {row}: {name}"


def test_every_vector_is_in_exactly_one_row() -> None:
    listed = [name for _, _, names in ROWS for name in names if name not in SEQUENCES]
    assert len(listed) == len(set(listed))
    assert set(listed) == set(VECTORS_BY_NAME)


def test_every_reason_has_a_row_and_the_registry_agrees() -> None:
    by_reason: dict[str, set[str]] = {}
    for row, reasons, _ in ROWS:
        for reason in reasons:
            by_reason.setdefault(reason, set()).add(row)
    assert set(by_reason) == {r.value for r in DropReason}
    registry = {}
    for line in _section("### 8.3 Drop reasons").splitlines():
        match = re.fullmatch(r"\| `([a-z_]+)` \| ([^|]+) \|", line.strip())
        if match:
            registry[match.group(1)] = set(re.findall(r"[DF]\d+", match.group(2)))
    assert registry == by_reason
