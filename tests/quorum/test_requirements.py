"""Every MUST of RFC 0008 is cited by a test (as tests/totem/test_requirements.py does for
RFC 0003 and RFC 0004).

A requirement starts with its identifier in bold brackets at the start of a paragraph
(``**[QRM-3.1-1]**``) and runs to the next identifier or heading; it is a MUST requirement when
that text contains "MUST". A test cites it by naming the identifier anywhere in a file under
tests/ (normally its docstring).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RFC = ROOT / "RFCs" / "0008-quorum-and-state-transfer.md"
TESTS = ROOT / "tests"
ID = r"(?:QRM|XFR|P2P)-\d+(?:\.\d+)*-\d+"
DEFINITION = re.compile(rf"^\*\*\[({ID})\]\*\*(.*?)(?=^\*\*\[|^#|\Z)", re.M | re.S)
NOT_YET_TESTED: dict[str, str] = {}


def definitions() -> dict[str, str]:
    found = DEFINITION.findall(RFC.read_text())
    names = [name for name, _ in found]
    assert len(names) == len(set(names)), "duplicate requirement ids"
    return dict(found)


def all_test_text() -> str:
    me = Path(__file__).resolve()
    return "\n".join(p.read_text() for p in sorted(TESTS.rglob("*.py")) if p.resolve() != me)


def cites(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w.-]){re.escape(name)}(?![\d]|\.\d|-\d)", text) is not None


def test_every_must_of_rfc_0008_is_cited() -> None:
    defs = definitions()
    assert len(defs) >= 25
    text = all_test_text()
    musts = [name for name, body in defs.items() if "MUST" in body]
    missing = [n for n in musts if not cites(n, text) and n not in NOT_YET_TESTED]
    assert not missing, f"RFC 0008 MUST requirements cited by no test: {missing}"


def test_tests_cite_only_defined_requirements() -> None:
    defs = definitions()
    cited = set(re.findall(rf"(?<![\w.-])({ID})(?![\d]|\.\d|-\d)", all_test_text()))
    unknown = sorted(c for c in cited if c not in defs)
    assert not unknown, f"tests cite RFC 0008 requirements that it does not define: {unknown}"
