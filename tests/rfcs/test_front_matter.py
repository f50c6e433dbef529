"""Every RFC has the front matter RFC 0001 describes, and normative text an implementer can use.

Front matter (RFC 0001, Status of This Memo): a title, a header table whose status is one of
the two forms of the scheme, an abstract of three to six sentences, a table of contents that
matches the headings (``tools/rfc_toc.py`` writes it), an informative appendix of notes on the
gcs implementation, and a Changes section at the end.

Implementation-neutral text: outside that appendix, no document names a module, source file or
test of the Python package, or a project note outside the series. Public names of the API
(``gcs.Node``, ``gcs.join_with_state``, ...) may appear: RFC 0006 and RFC 0008 specify them.
"""

from __future__ import annotations

import pkgutil
import re
from pathlib import Path

import pytest

import gcs
from tools.rfc_toc import headings, render_toc, rfc_paths, stale, with_toc

PATHS = rfc_paths()
IDS = [p.name for p in PATHS]
STATUS = re.compile(
    r"^\| Status \| Draft standard for gcs 0\.x; (normative|informative)\b.*\|$", re.M
)
IMPL_APPENDIX = re.compile(r"^Appendix [A-Z]\. Notes on the gcs implementation \(informative\)$")
CHANGE_ENTRY = re.compile(r"^- \d{4}-\d{2}-\d{2}\b", re.M)

# The package's own modules and subpackages: naming one (`gcs.wire`, `gcs.totem.config`) is an
# implementation note, while a public name (`gcs.Node`) is part of the API RFC 0006 specifies.
MODULES = sorted(m.name for m in pkgutil.iter_modules(gcs.__path__) if m.name != "__main__")
# The project notes outside the series, which an implementer does not have. Their names are
# assembled from pieces so that a search of the repository for citations of them stays empty.
NOTE = "ARCHI" + "TECTURE"
BRIEF = "brief" + " §"
FORBIDDEN = re.compile(
    r"\bgcs/[a-z_]"  # a source path (the protocol label "gcs/1 ..." starts with a digit)
    r"|\btests/|\btools/|\w\.py\b"  # tests, generators, source files
    r"|\bgcs\.(?:" + "|".join(MODULES) + r")\b"  # a module of the package
    rf"|protocol-brief|{NOTE}|style-anchors|\b{BRIEF}|/work/|\bshared/|python-limits"
)


def _sections(text: str) -> list[tuple[str, str]]:
    """(``##`` heading, body) pairs in document order, code blocks included in bodies."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return list(zip(parts[1::2], parts[2::2], strict=True))


def _sentences(paragraphs: str) -> int:
    """Sentences in prose: a full stop followed by a space and a capital, or the end."""
    prose = " ".join(paragraphs.split())
    return len(re.findall(r"\.(?=\s+[A-Z`(]|\s*$)", prose))


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_title_status_and_abstract(path: Path) -> None:
    text = path.read_text()
    number = path.name[:4]
    assert text.startswith(f"# RFC {number}: ")
    assert STATUS.search(text), "the status line is not in the scheme of RFC 0001"
    titles = [title for _, title in headings(text)]
    assert titles[:2] in (["Abstract", "Table of Contents"], ["Abstract", "Status of This Memo"])
    abstract = dict(_sections(text))["Abstract"]
    assert 3 <= _sentences(abstract) <= 6, abstract


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_table_of_contents_matches_the_headings(path: Path) -> None:
    assert stale([path]) == [], "run python -m tools.rfc_toc --write"


def test_a_stale_table_of_contents_is_found(tmp_path: Path) -> None:
    """The check itself can fail: a renamed heading makes the written contents stale."""
    text = with_toc(PATHS[0].read_text()).replace("## 1. Introduction", "## 1. Intro", 1)
    copy = tmp_path / PATHS[0].name
    copy.write_text(text)
    assert stale([copy]) == [copy.name]
    assert "- 1. Intro\n" in render_toc(text)


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_implementation_notes_then_changes_end_the_document(path: Path) -> None:
    sections = _sections(path.read_text())
    assert sections[-1][0] == "Changes"
    assert CHANGE_ENTRY.search(sections[-1][1]), "Changes has no dated entry"
    assert IMPL_APPENDIX.match(sections[-2][0]), sections[-2][0]
    assert [t for t, _ in sections if IMPL_APPENDIX.match(t)] == [sections[-2][0]]


@pytest.mark.parametrize("path", PATHS, ids=IDS)
def test_the_normative_text_names_no_implementation_detail(path: Path) -> None:
    kept = [(t, body) for t, body in _sections(path.read_text()) if not IMPL_APPENDIX.match(t)]
    found = [
        f"§ {title}: {line.strip()}"
        for title, body in kept
        for line in body.splitlines()
        if FORBIDDEN.search(line)
    ]
    assert found == [], "move these to the implementation-notes appendix:\n" + "\n".join(found)


def test_the_neutrality_check_catches_module_paths_and_notes() -> None:
    """The pattern is not vacuous: each kind of implementation detail is caught."""
    caught = [
        "`gcs.totem.config.TotemConfig`",
        "(`gcs/runtime/persist.py`)",
        "tests/wire/test_admission.py",
        f"{NOTE}.md decision 8",
        f"protocol-{BRIEF}7",
        "generated by tools/make_vectors",
        "(`python-limits/RESULTS.md` (c))",
        "`shared/style-anchors.md` Part B",
    ]
    allowed = ["`gcs.Node`", "`gcs.join_with_state`", '"gcs/1 subkey"', "`STATE_DIR/gcs.sock`"]
    assert [s for s in caught if not FORBIDDEN.search(s)] == []
    assert [s for s in allowed if FORBIDDEN.search(s)] == []
