"""Tables of contents of the RFCs, generated from their headings so that they cannot rot.

Every RFC lists its numbered sections, subsections, appendices and its Changes section under
"## Table of Contents", one bullet per ``##`` heading and an indented bullet per ``###``
heading, with the heading's text exactly as written. The unnumbered front matter (Abstract,
Status of This Memo, the contents themselves) is not listed, and neither is anything inside a
fenced code block.

    python -m tools.rfc_toc            # exit 1 and name every RFC whose contents are stale
    python -m tools.rfc_toc --write    # rewrite the contents of every RFC from its headings

``tests/rfcs/test_front_matter.py`` runs the check, so a heading added, renamed or removed
without ``--write`` fails the suite.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

RFCS = Path(__file__).resolve().parent.parent / "RFCs"
TOC_HEADING = "## Table of Contents"
UNLISTED = frozenset({"Abstract", "Status of This Memo", "Table of Contents"})
_HEADING = re.compile(r"^(#{2,3}) (\S.*?)\s*$")


def rfc_paths() -> list[Path]:
    """The documents of the series, in number order."""
    return sorted(RFCS.glob("[0-9][0-9][0-9][0-9]-*.md"))


def headings(text: str) -> list[tuple[int, str]]:
    """(level, title) of every ``##`` and ``###`` heading outside fenced code blocks."""
    found: list[tuple[int, str]] = []
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            found.append((len(match.group(1)), match.group(2)))
    return found


def render_toc(text: str) -> str:
    """The contents a document with these headings must carry (without the heading line)."""
    lines = []
    for level, title in headings(text):
        if title not in UNLISTED:
            lines.append(("  " if level == 3 else "") + "- " + title)
    return "\n".join(lines) + "\n"


def _toc_span(text: str) -> tuple[int, int]:
    """Start and end offsets of the body of the Table of Contents section.

    Raises ``ValueError`` when the document has no such section followed by another one.
    """
    heading = text.find("\n" + TOC_HEADING + "\n")
    end = text.find("\n## ", heading + 1)
    if heading < 0 or end < 0:
        raise ValueError(f"no {TOC_HEADING!r} section followed by a numbered one")
    return heading + len(TOC_HEADING) + 2, end + 1


def current_toc(text: str) -> str | None:
    """The contents as written, blank lines around them ignored; None without a contents."""
    try:
        start, end = _toc_span(text)
    except ValueError:
        return None
    return text[start:end].strip("\n") + "\n"


def with_toc(text: str) -> str:
    """The document with its contents regenerated from its headings."""
    start, end = _toc_span(text)
    return text[:start] + "\n" + render_toc(text) + "\n" + text[end:]


def stale(paths: list[Path]) -> list[str]:
    """Names of the documents whose contents differ from their headings."""
    out = []
    for path in paths:
        text = path.read_text()
        if current_toc(text) != render_toc(text):
            out.append(path.name)
    return out


def main(argv: list[str]) -> int:
    """Check the contents of every RFC, or rewrite them with ``--write``."""
    paths = rfc_paths()
    if "--write" in argv:
        for path in paths:
            try:
                path.write_text(with_toc(path.read_text()))
            except ValueError as e:
                print(f"{path.name}: {e}")
        return 0
    bad = stale(paths)
    for name in bad:
        print(f"{name}: table of contents does not match the headings (run with --write)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
