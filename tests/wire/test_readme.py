"""protocol/README.md stands alone: no source files, every artefact described, a checklist.

An implementer in another language works from ``RFCs/`` and ``protocol/`` only, so the README
must not send them to the reference implementation's code, must describe every file in the
folder, and must say in which order to build a node and which files prove each step.
"""

from __future__ import annotations

import re

from tools.make_vectors import VECTORS

PROTOCOL = VECTORS.parent
README = (PROTOCOL / "README.md").read_text()


def test_no_source_file_is_referenced() -> None:
    assert not re.findall(r"[\w/.-]+\.py\b|\bgcs/|\btests/|\btools/|\bgcs\.\w", README)


def test_every_artefact_is_described() -> None:
    files = [p.name for p in (PROTOCOL / "vectors").glob("*.json")]
    files += [p.name for p in (PROTOCOL / "traces").glob("*.json")]
    files.append("messages.cddl")
    assert [f for f in files if f not in README] == []


def test_the_checklist_orders_the_steps_and_names_their_proofs() -> None:
    checklist = README.split("## The implementer's checklist", 1)[1].split("\n## ", 1)[0]
    steps = re.findall(r"^(\d+)\. \*\*(.+?)\*\*(.*?)(?=^\d+\. |\Z)", checklist, re.M | re.S)
    assert [int(n) for n, _, _ in steps] == list(range(1, len(steps) + 1))
    assert len(steps) >= 8
    for _, title, body in steps:
        assert re.search(r"\.json|\.cddl", body), f"step {title!r} names no vector or trace"
        assert "RFC 0" in title + body, f"step {title!r} names no RFC"
