"""Every MUST of RFC 0003 and RFC 0004 is cited by a test, or listed here as not yet tested.

A requirement starts with its identifier in bold brackets at the start of a paragraph
(``**[ORD-4.5-1]**``) and runs to the next identifier, heading or note; it is a MUST
requirement when that text contains "MUST". A test
cites it by naming the identifier anywhere in a file under tests/ (normally its docstring).
The allow-list below keeps the untested ones visible; an entry must be removed once a test
cites it, so the list never overstates what is missing.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RFCS = (ROOT / "RFCs" / "0003-ordering.md", ROOT / "RFCs" / "0004-membership.md")
TESTS = ROOT / "tests"

ID = r"(?:ORD|MEM|REC|EVS)-\d+(?:\.\d+)*(?:-\d+)?"
# A requirement runs from its identifier to the next identifier, heading or note.
DEFINITION = re.compile(rf"^\*\*\[({ID})\]\*\*(.*?)(?=^\*\*\[|^#|^> |\Z)", re.M | re.S)

# Requirement -> why it has no test yet. Keep sorted by identifier.
NOT_YET_TESTED: dict[str, str] = {
    "ORD-10-1": "not yet tested: a deployment rule (same timers everywhere), nothing to observe "
    "in one core",
}


def definitions() -> dict[str, str]:
    """Identifier -> requirement text, for every requirement of RFC 0003 and RFC 0004."""
    found: list[tuple[str, str]] = []
    for path in RFCS:
        found += DEFINITION.findall(path.read_text())
    counts = Counter(name for name, _ in found)
    assert not [name for name, n in counts.items() if n > 1], "duplicate requirement ids"
    return dict(found)


def cites(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w.-]){re.escape(name)}(?![\d]|\.\d|-\d)", text) is not None


def all_test_text() -> str:
    me = Path(__file__).resolve()
    return "\n".join(p.read_text() for p in sorted(TESTS.rglob("*.py")) if p.resolve() != me)


def must_ids() -> list[str]:
    return [name for name, text in definitions().items() if "MUST" in text]


def test_requirement_ids_are_well_formed_and_unique() -> None:
    defs = definitions()
    assert len(defs) > 100
    for name in defs:
        assert re.fullmatch(ID, name), name
    # ORD-11-1, ORD-11-2, ORD-11-3 keep the meaning the core's invariant() calls give them.
    assert "rtr" in defs["ORD-11-1"]
    assert "token.aru <= token.seq" in defs["ORD-11-2"]
    assert "max_messages" in defs["ORD-11-3"]


def test_every_must_is_tested_or_listed() -> None:
    text = all_test_text()
    missing = [name for name in must_ids() if not cites(name, text) and name not in NOT_YET_TESTED]
    assert not missing, f"MUST requirements cited by no test and not allow-listed: {missing}"


def test_allow_list_is_current() -> None:
    defs = definitions()
    text = all_test_text()
    for name, why in NOT_YET_TESTED.items():
        assert name in defs, f"{name} is allow-listed but not defined"
        assert "MUST" in defs[name], f"{name} is allow-listed but has no MUST"
        assert why.startswith("not yet tested"), name
        assert not cites(name, text), f"{name} is tested now: remove it from NOT_YET_TESTED"


def test_tests_cite_only_defined_requirements() -> None:
    defs = definitions()
    cited = set(re.findall(rf"(?<![\w.-])({ID})(?![\d]|\.\d|-\d)", all_test_text()))
    cited = {c for c in cited if c.split("-")[0] in ("ORD", "MEM", "REC", "EVS")}
    unknown = sorted(c for c in cited if c not in defs)
    assert not unknown, f"tests cite requirements that RFC 0003/0004 do not define: {unknown}"


def test_coverage_summary() -> None:
    """Not a check: prints how many MUST requirements are cited (pytest -s shows it)."""
    musts = must_ids()
    tested = [name for name in musts if name not in NOT_YET_TESTED]
    print(f"\n{len(tested)} of {len(musts)} MUST requirements cited by tests")
    assert len(tested) + len(NOT_YET_TESTED) == len(musts)
