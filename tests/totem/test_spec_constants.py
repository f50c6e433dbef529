"""The constants tables of RFC 0003 §10 and RFC 0004 §10 against ``TotemConfig``'s defaults.

``gcs/totem/config.py`` promises that its defaults match those tables; this is the check.
"""

from __future__ import annotations

import enum
import re
from dataclasses import MISSING, fields
from pathlib import Path

from gcs.totem import node, recovery
from gcs.totem.config import TotemConfig
from gcs.totem.sendqueue import RECORD_OVERHEAD

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", re.M)
UNITS = {"ms": 1_000_000, "s": 1_000_000_000, "ns": 1}


def section(path: Path, heading: str) -> str:
    text = path.read_text()
    start = text.index(heading)
    end = text.index("\n## ", start)
    return text[start:end]


def table(rfc: str) -> dict[str, tuple[str, str]]:
    text = section(ROOT / "RFCs" / rfc, "## 10. Constants")
    return {name: (unit.strip(), default.strip()) for name, unit, default, _ in ROW.findall(text)}


def parse(name: str, default: str) -> object:
    if default in ("true", "false"):
        return default == "true"
    number = re.fullmatch(r"(\d+)(?: (ms|s|ns))?", default)
    if number is None:
        return default
    value = int(number.group(1))
    if name.endswith("_ns"):
        assert number.group(2), f"{name}: a duration needs a unit"
        return value * UNITS[number.group(2)]
    return value


def test_constants_tables_match_the_config_defaults() -> None:
    """RFC 0003 §10 and RFC 0004 §10: every TotemConfig field
    with a default appears in exactly one of the two tables, with that default."""
    ordering, membership = table("0003-ordering.md"), table("0004-membership.md")
    assert not set(ordering) & set(membership)
    documented = ordering | membership
    defaults = {f.name: f.default for f in fields(TotemConfig) if f.default is not MISSING}
    assert set(documented) == set(defaults)
    for name, (unit, text) in documented.items():
        expected = defaults[name]
        if isinstance(expected, enum.Enum):
            expected = expected.value
        assert parse(name, text) == expected, f"{name}: RFC says {text}, code says {expected}"
        assert (unit == "ns") == name.endswith("_ns"), name


def test_fixed_values() -> None:
    """RFC 0003 §10 and RFC 0004 §10, the values that are not configurable."""
    assert node.RING_SEQ_STEP == recovery.RING_SEQ_STEP == 4
    assert RECORD_OVERHEAD == 20
    fixed = section(ROOT / "RFCs" / "0004-membership.md", "## 10. Constants")
    assert "| ring seq step (`RING_SEQ_STEP`) | 4 |" in fixed
    assert "| `RECORD_OVERHEAD` | 20 bytes |" in section(
        ROOT / "RFCs" / "0003-ordering.md", "## 10. Constants"
    )
