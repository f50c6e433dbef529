"""The requirement gate: every MUST of every RFC is checked by a test that cites it in code.

RFC 0001 §2.1 defines the identifiers: ``**[PREFIX-S-N]**`` at the start of a paragraph (or
list item), S the innermost numbered section, N counting 1, 2, ... within it, PREFIX from the
table of RFC 0001 §2.1. A test cites a requirement with a marker, never a comment:
``@pytest.mark.req("ORD-4.1-1")`` on a test function or class, ``pytestmark =
pytest.mark.req(...)`` for a module, or ``pytest.param(..., marks=pytest.mark.req(...))`` for
one parametrized case. The simulator's checkers name the guarantees they judge with
``@judges(...)`` (gcs/sim/checkers/judges.py).

The gate is static (it parses the RFCs and the tests' syntax trees, imports and runs nothing),
so it costs the suite a fraction of a second. It fails on a MUST no test cites (unless listed
in ``NOT_OBSERVABLE`` with the reason), on a citation of an identifier that does not exist, on
malformed, duplicate or misplaced identifiers, on an old identifier (RFC 0001 Appendix A) still
named anywhere, and on an old identifier given to a new requirement.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Requirement -> why no test can observe it. Every entry is reported in the closing note.
NOT_OBSERVABLE: dict[str, str] = {
    "ORD-10-1": "a rule for whoever configures a cluster (every member gets the same timers and "
    "limits); nothing on the wire carries them, so no node or test can see another's values",
}

PREFIX_ROW = re.compile(r"^\| `([A-Z][A-Z0-9]*)` \| RFC (\d{4}) \|", re.M)
HEADING = re.compile(r"^#{2,6} (?:(\d+(?:\.\d+)*)|Appendix ([A-Z])|([A-Z](?:\.\d+)+))\.?(?:\s|$)")
ANY_HEADING = re.compile(r"^#{1,6} ")
DEFINITION = re.compile(r"^(?:\d+\. |- )?\*\*\[([^\]\s]+)\]\*\*")
BOLD_ID = re.compile(r"`[^`\n]*`|\*\*\[?[A-Z][A-Z0-9]*-\d[\d.-]*\]?\.?\*\*")
KEYWORD = re.compile(r"\b(?:MUST|REQUIRED|SHALL)\b")
RENAME_ROW = re.compile(r"^\| `([^`]+)` \| `?([^`|]+?)`? \|", re.M)
RENAME_APPENDIX = "## Appendix A. Renamed requirement identifiers"
CITED_TREES = ("RFCs", "tests", "gcs", "protocol", "docs", "simulations", "examples", "tools")
TEXT_SUFFIXES = {".md", ".py", ".json", ".toml", ".txt", ".cddl", ".yaml", ".yml", ".csv"}


@dataclass(frozen=True)
class Requirement:
    ident: str
    where: str
    text: str

    @property
    def mandatory(self) -> bool:
        return KEYWORD.search(self.text) is not None


@dataclass
class Audit:
    """What the gate found in one tree; ``problems`` is empty when the tree passes."""

    prefixes: dict[str, str] = field(default_factory=dict)
    requirements: dict[str, Requirement] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)
    cited: dict[str, list[str]] = field(default_factory=dict)
    judged: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def id_pattern(self) -> re.Pattern[str]:
        names = "|".join(sorted(self.prefixes, key=len, reverse=True)) or "(?!)"
        return re.compile(rf"(?<![\w.-])(?:{names})-[\d.]*\d(?:-\d+)?(?![\w]|\.\d|-\d)")


# ---------------------------------------------------------------------------------- the RFCs


def read_prefixes(rfcs: Path) -> dict[str, str]:
    """PREFIX -> the RFC number that defines it, from the table of RFC 0001 §2.1."""
    overview = next(iter(sorted(rfcs.glob("0001-*.md"))), None)
    if overview is None:
        return {}
    return dict(PREFIX_ROW.findall(overview.read_text()))


def normative_lines(text: str) -> Iterator[tuple[int, str]]:
    """Line number and line, skipping fenced code blocks and the rename appendix."""
    fenced = False
    for number, line in enumerate(text.split("\n"), 1):
        if line.startswith("```"):
            fenced = not fenced
        elif line.startswith(RENAME_APPENDIX):
            return
        elif not fenced:
            yield number, line


def read_rfc(path: Path, audit: Audit) -> None:
    """Add the requirements of one RFC to ``audit``, checking form, place and numbering."""
    number = path.name[:4]
    lines = list(normative_lines(path.read_text()))
    section: str | None = None
    for k, (line_no, line) in enumerate(lines):
        where = f"{path.name}:{line_no}"
        heading = HEADING.match(line)
        if heading or ANY_HEADING.match(line):
            section = next((g for g in heading.groups() if g), None) if heading else None
            continue
        _check_inline_ids(line, where, audit)
        found = DEFINITION.match(line)
        if found is None:
            continue
        ident = found.group(1)
        previous = lines[k - 1][1] if k else ""
        if previous.strip() and not re.match(r"\d+\. |- ", line):
            audit.problems.append(f"{where}: {ident} does not start its paragraph")
        wrong = _misplaced(ident, number, section, audit)
        if wrong:
            audit.problems.append(f"{where}: {ident} {wrong}")
        if ident in audit.requirements:
            audit.problems.append(f"{where}: {ident} defined twice")
        audit.requirements[ident] = Requirement(ident, where, _body(lines, k, found.end()))


def _check_inline_ids(line: str, where: str, audit: Audit) -> None:
    """A bold identifier anywhere but at the start of its paragraph, or in an old form."""
    lead = len(line) - len(re.sub(r"^(?:\d+\. |- )", "", line))
    for bold in BOLD_ID.finditer(line):
        text = bold.group(0)
        if text.startswith("`"):
            continue
        if not text.startswith("**["):
            audit.problems.append(f"{where}: {text} is not in the form **[PREFIX-S-N]**")
        elif bold.start() != lead:
            audit.problems.append(f"{where}: {text} is not at the start of a paragraph")


ID_FORM = re.compile(r"([A-Z][A-Z0-9]*)-((?:\d+|[A-Z])(?:\.\d+)*)-([1-9]\d*)")


def _misplaced(ident: str, number: str, section: str | None, audit: Audit) -> str:
    """Why ``ident`` is not a valid identifier for a requirement of RFC ``number`` in
    ``section`` (RFC 0001 §2.1), or "" when it is."""
    form = ID_FORM.fullmatch(ident)
    if form is None:
        return "is not of the form PREFIX-S-N"
    prefix, in_section, _ = form.groups()
    if audit.prefixes.get(prefix) != number:
        return f"does not use a prefix of RFC {number} (RFC 0001 §2.1)"
    if section is None:
        return "is not in a numbered section"
    if in_section != section:
        return f"sits in §{section}: it should be {prefix}-{section}-<n>"
    return ""


def _check_numbering(audit: Audit) -> None:
    """Within a prefix and section the numbers run 1..k with none skipped: a new requirement
    takes the next number never used there, counting renamed and withdrawn identifiers."""
    used: dict[tuple[str, str], dict[int, str]] = {}
    for ident in [*audit.requirements, *audit.renamed]:
        form = ID_FORM.fullmatch(ident)
        if form:
            prefix, section, n = form.groups()
            used.setdefault((prefix, section), {})[int(n)] = ident
    for (prefix, section), numbers in sorted(used.items()):
        skipped = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
        if skipped and any(ident in audit.requirements for ident in numbers.values()):
            names = ", ".join(f"{prefix}-{section}-{n}" for n in skipped)
            audit.problems.append(f"{names} skipped: number new requirements 1, 2, ... in turn")


def _body(lines: list[tuple[int, str]], k: int, start: int) -> str:
    """A requirement runs to the next identifier, heading or note."""
    body = [lines[k][1][start:]]
    for _, line in lines[k + 1 :]:
        if DEFINITION.match(line) or ANY_HEADING.match(line) or line.startswith("> "):
            break
        body.append(line)
    return "\n".join(body)


def read_renamed(rfcs: Path, audit: Audit) -> None:
    """Old -> new (or "withdrawn") identifiers of RFC 0001 Appendix A; an old one never names a
    requirement again."""
    for path in sorted(rfcs.glob("0001-*.md")):
        text = path.read_text()
        if RENAME_APPENDIX in text:
            table = text.split(RENAME_APPENDIX, 1)[1]
            audit.renamed.update(RENAME_ROW.findall(table))
    for old, new in audit.renamed.items():
        if old in audit.requirements:
            audit.problems.append(f"renamed {old} is reused as a requirement identifier")
        if new != "withdrawn" and new not in audit.requirements:
            audit.problems.append(f"{old} is renamed to {new}, which is not defined")


# ------------------------------------------------------------------------ markers in the tests


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _is_req(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and _dotted(node.func) in ("pytest.mark.req", "mark.req")


def _calls(node: ast.expr) -> list[ast.expr]:
    return list(node.elts) if isinstance(node, ast.List | ast.Tuple) else [node]


def markers(tree: ast.Module) -> tuple[list[ast.Call], set[int]]:
    """Every ``pytest.mark.req`` call of a module, and the ids of those placed where pytest
    applies them to tests: on a test function or class, in ``pytestmark``, or in a
    ``pytest.param``'s marks. One walk over the tree."""
    placed: list[ast.expr] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            placed += _calls(node.value)
    found: list[ast.Call] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name.startswith(("test", "Test")):
                placed += node.decorator_list
        elif isinstance(node, ast.Call):
            if _is_req(node):
                found.append(node)
            elif _dotted(node.func) in ("pytest.param", "param"):
                placed += [c for kw in node.keywords if kw.arg == "marks" for c in _calls(kw.value)]
    return found, {id(node) for node in placed}


def read_markers(path: Path, root: Path, audit: Audit) -> None:
    """Every ``pytest.mark.req`` of one test file: placed on a test, with literal identifiers."""
    text = path.read_text()
    if "req(" not in text:
        return
    found, placed = markers(ast.parse(text, filename=str(path)))
    for node in found:
        where = f"{path.relative_to(root)}:{node.lineno}"
        if id(node) not in placed:
            audit.problems.append(f"{where}: a req marker not on a test, class, module or param")
        if not node.args or node.keywords:
            audit.problems.append(f"{where}: a req marker names no identifier")
        for arg in node.args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                audit.cited.setdefault(arg.value, []).append(where)
            else:
                audit.problems.append(f"{where}: a req marker's identifiers must be literals")


def read_judges(path: Path, root: Path, audit: Audit) -> None:
    """The ``@judges(...)`` identifiers of every ``check_*`` function of a checker module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or not node.name.startswith("check_"):
            continue
        calls = [
            dec
            for dec in node.decorator_list
            if isinstance(dec, ast.Call) and _dotted(dec.func) == "judges"
        ]
        if not calls:
            where = f"{path.relative_to(root)}:{node.lineno}"
            audit.problems.append(f"{where}: checker {node.name} has no @judges(...)")
        name = node.name.removeprefix("check_")
        for arg in (arg for call in calls for arg in call.args):
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                audit.judged.setdefault(arg.value, []).append(name)


CHECKED_BY = re.compile(r"(?:[Cc]hecked by|Checkers?:)((?:,? (?:and )?`[a-z_]+`)+)")


def _check_named_checkers(audit: Audit) -> None:
    """A guarantee that names its checker (\"checked by `safe`\") is judged by that checker."""
    for ident, req in sorted(audit.requirements.items()):
        first_paragraph = req.text.split("\n\n", 1)[0].replace("\n", " ")
        for names in CHECKED_BY.findall(first_paragraph):
            for checker in re.findall(r"`([a-z_]+)`", names):
                if checker not in audit.judged.get(ident, []):
                    audit.problems.append(f"{req.where}: checker {checker} does not judge {ident}")


# ----------------------------------------------------------------------------------- the gate


def audit_tree(root: Path, not_observable: Mapping[str, str]) -> Audit:
    """Read one source tree (RFCs/, tests/, gcs/sim/checkers/) and list what is wrong with it."""
    audit = Audit(prefixes=read_prefixes(root / "RFCs"))
    if not audit.prefixes:
        audit.problems.append("RFC 0001 §2.1 lists no prefixes")
    for path in sorted((root / "RFCs").glob("*.md")):
        read_rfc(path, audit)
    read_renamed(root / "RFCs", audit)
    _check_numbering(audit)
    for path in sorted((root / "tests").rglob("*.py")):
        read_markers(path, root, audit)
    for path in sorted((root / "gcs" / "sim" / "checkers").glob("*.py")):
        if path.name not in ("suite.py", "judges.py"):
            read_judges(path, root, audit)
    _check_citations(audit, not_observable)
    _check_named_checkers(audit)
    _check_names_everywhere(root, audit)
    return audit


def _check_citations(audit: Audit, not_observable: Mapping[str, str]) -> None:
    defined = audit.requirements
    for ident, places in sorted(audit.cited.items()):
        if ident not in defined:
            audit.problems.append(f"{places[0]}: cites {ident}, which no RFC defines")
    for ident, checkers in sorted(audit.judged.items()):
        if ident not in defined:
            audit.problems.append(f"checker {checkers[0]} judges {ident}, which no RFC defines")
    for ident, why in sorted(not_observable.items()):
        if ident not in defined or not defined[ident].mandatory:
            audit.problems.append(f"{ident} is allow-listed but is not a MUST requirement")
        elif ident in audit.cited:
            audit.problems.append(f"{ident} is allow-listed but a test cites it: remove it")
        elif not why.strip():
            audit.problems.append(f"{ident} is allow-listed without a reason")
    for ident, req in sorted(defined.items()):
        if req.mandatory and ident not in audit.cited and ident not in not_observable:
            audit.problems.append(f"{req.where}: MUST requirement {ident} is cited by no test")


def _check_names_everywhere(root: Path, audit: Audit) -> None:
    """No file names an identifier that is not defined (an old one included), except the
    rename table itself and this gate, whose toy trees are made of such names."""
    pattern = audit.id_pattern()
    me = Path(__file__).resolve()
    for tree in CITED_TREES:
        for path in sorted((root / tree).rglob("*")):
            if path.suffix not in TEXT_SUFFIXES or not path.is_file() or ".venv" in path.parts:
                continue
            if path.resolve() == me:
                continue
            text = path.read_text(errors="replace")
            if path.parent.name == "RFCs" and path.name.startswith("0001-"):
                text = text.split(RENAME_APPENDIX, 1)[0]
            for match in pattern.finditer(text):
                if match.group(0) not in audit.requirements:
                    line = text.count("\n", 0, match.start()) + 1
                    name = f"{path.relative_to(root)}:{line}"
                    audit.problems.append(f"{name}: names {match.group(0)}, which is not defined")


# ------------------------------------------------------------------------------ the repository


@functools.cache
def repository() -> Audit:
    return audit_tree(ROOT, NOT_OBSERVABLE)


def test_every_must_is_cited_by_a_test_and_every_citation_exists() -> None:
    audit = repository()
    assert len(audit.requirements) > 250
    if audit.problems:
        pytest.fail("\n".join(audit.problems), pytrace=False)


def test_coverage_summary() -> None:
    """Prints the gate's figures (pytest -s shows them) and checks their arithmetic."""
    audit = repository()
    musts = [r for r in audit.requirements.values() if r.mandatory]
    cited = [r for r in musts if r.ident in audit.cited]
    print(f"\n{len(cited)} of {len(musts)} MUST requirements cited by tests in code")
    assert len(cited) + len(NOT_OBSERVABLE) == len(musts)


# ------------------------------------------------------------- the gate's own logic, on a toy tree

TOY_OVERVIEW = """# RFC 0001: toy

## 2. Conventions

| prefix | document | topic |
| --- | --- | --- |
| `GUAR` | RFC 0001 | guarantees |
| `WIRE` | RFC 0002 | frames |

## 5. Guarantees

**[GUAR-5-1]** Runs MUST be fine. Checked by `safe`.

## Appendix A. Renamed requirement identifiers

| old | new | RFC |
| --- | --- | --- |
| `GUAR-1` | `GUAR-5-1` | 0001 |
"""

TOY_RFC = """# RFC 0002: toy frames

## 4. Frames

**[WIRE-4-1]** A sender MUST send.

**[WIRE-4-2]** A receiver MUST receive.

### 4.1. Options

**[WIRE-4.1-1]** A node MAY do more.
"""

TOY_TEST = """import pytest


@pytest.mark.req("GUAR-5-1", "WIRE-4-1")
def test_sending() -> None:
    assert True


@pytest.mark.parametrize("x", [pytest.param(1, marks=pytest.mark.req("WIRE-4-2"))])
def test_receiving(x: int) -> None:
    assert x == 1
"""

TOY_CHECKER = """@judges("GUAR-5-1")
def check_safe(history: object) -> bool:
    return True
"""


def toy_tree(root: Path, **replace: tuple[str, str]) -> Path:
    """A minimal repository; ``replace[name] = (old, new)`` edits one of its files first."""
    files = {
        "RFCs/0001-overview.md": TOY_OVERVIEW,
        "RFCs/0002-frames.md": TOY_RFC,
        "tests/test_toy.py": TOY_TEST,
        "gcs/sim/checkers/safe.py": TOY_CHECKER,
    }
    for key, (old, new) in replace.items():
        name = next(n for n in files if Path(n).stem.startswith(key))
        assert old in files[name], (key, old)
        files[name] = files[name].replace(old, new)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_gate_passes_a_toy_tree_where_every_must_is_cited(tmp_path: Path) -> None:
    audit = audit_tree(toy_tree(tmp_path), {})
    assert audit.problems == []
    assert sorted(audit.requirements) == ["GUAR-5-1", "WIRE-4-1", "WIRE-4-2", "WIRE-4.1-1"]
    assert not audit.requirements["WIRE-4.1-1"].mandatory
    assert audit.cited["WIRE-4-2"] == ["tests/test_toy.py:9"]


MARKER = '[pytest.param(1, marks=pytest.mark.req("WIRE-4-2"))]'


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # an uncited MUST: the marker removed, or only named in a comment or docstring
        ({"test_toy": (MARKER, "[1]")}, "MUST requirement WIRE-4-2 is cited by no test"),
        (
            {"test_toy": (MARKER, "[1],  # checks WIRE-4-2\n")},
            "MUST requirement WIRE-4-2 is cited by no test",
        ),
        # a citation of an identifier that does not exist
        ({"test_toy": ('"WIRE-4-2"', '"WIRE-4-9"')}, "cites WIRE-4-9, which no RFC defines"),
        ({"test_toy": ("assert True", "assert True  # WIRE-7-1")}, "names WIRE-7-1, which is"),
        # a marker that is not on a test
        (
            {"test_toy": ("def test_sending", "def sending")},
            "a req marker not on a test, class, module or param",
        ),
        ({"test_toy": ('req("WIRE-4-2")', "req(NAME)")}, "identifiers must be literals"),
        # malformed, misplaced, duplicate and reused identifiers
        ({"0002": ("**[WIRE-4-2]**", "**WIRE-2.**")}, "not in the form **[PREFIX-S-N]**"),
        ({"0002": ("**[WIRE-4-2]**", "**[WIRE-5-1]**")}, "sits in §4: it should be WIRE-4-<n>"),
        ({"0002": ("**[WIRE-4-2]**", "**[WIRE-4-3]**")}, "WIRE-4-2 skipped"),
        ({"0002": ("**[WIRE-4-2]**", "**[WIRE-4-0]**")}, "is not of the form PREFIX-S-N"),
        ({"0002": ("**[WIRE-4.1-1]**", "**[WIRE-4-1]**")}, "WIRE-4-1 defined twice"),
        ({"0002": ("**[WIRE-4-2]**", "**[ORD-4-2]**")}, "does not use a prefix of RFC 0002"),
        ({"0002": ("send.", "send, see **[WIRE-4-2]**.")}, "not at the start of a paragraph"),
        ({"0002": ("send.\n\n**[WIRE-4-2]**", "send.\n**[WIRE-4-2]**")}, "does not start its"),
        ({"0001": ("**[GUAR-5-1]**", "**[GUAR-1]**")}, "GUAR-1 is not of the form"),
        ({"test_toy": ("import pytest", '"""GUAR-1"""\nimport pytest')}, "names GUAR-1"),
        # the checkers: each names what it judges, and a guarantee's checker judges it
        ({"safe": ('@judges("GUAR-5-1")', '@judges("GUAR-5-9")')}, "judges GUAR-5-9, which no"),
        ({"safe": ('@judges("GUAR-5-1")', "")}, "check_safe has no @judges"),
        ({"0001": ("`safe`", "`safe`, `total_order`")}, "total_order does not judge GUAR-5-1"),
    ],
)
def test_the_gate_fails_a_toy_tree_with_one_fault(
    tmp_path: Path, edit: dict[str, tuple[str, str]], expected: str
) -> None:
    problems = audit_tree(toy_tree(tmp_path, **edit), {}).problems
    assert any(expected in p for p in problems), problems


def test_the_allow_list_holds_only_uncited_musts_with_a_reason(tmp_path: Path) -> None:
    root = toy_tree(tmp_path, test_toy=(MARKER, "[1]"))
    assert audit_tree(root, {"WIRE-4-2": "no test can see it"}).problems == []
    for allow, expected in [
        ({"WIRE-4-1": "cited"}, "WIRE-4-1 is allow-listed but a test cites it"),
        ({"WIRE-4.1-1": "optional"}, "WIRE-4.1-1 is allow-listed but is not a MUST"),
        ({"WIRE-4-2": " "}, "WIRE-4-2 is allow-listed without a reason"),
    ]:
        problems = audit_tree(root, allow).problems
        assert any(expected in p for p in problems), (allow, problems)


def test_a_requirement_added_later_takes_the_next_number_wherever_it_sits(tmp_path: Path) -> None:
    later = "**[WIRE-4-3]** A node MAY wait.\n\n**[WIRE-4-1]** A sender MUST send."
    root = toy_tree(tmp_path, **{"0002": ("**[WIRE-4-1]** A sender MUST send.", later)})
    assert audit_tree(root, {}).problems == []


def test_a_withdrawn_identifier_keeps_its_number(tmp_path: Path) -> None:
    gap = ("**[WIRE-4-2]** A receiver", "**[WIRE-4-3]** A receiver")
    cited = ('req("WIRE-4-2")', 'req("WIRE-4-3")')
    problems = audit_tree(toy_tree(tmp_path / "a", **{"0002": gap, "test_toy": cited}), {}).problems
    assert problems == ["WIRE-4-2 skipped: number new requirements 1, 2, ... in turn"]
    withdrawn = ("| `GUAR-1` |", "| `WIRE-4-2` | withdrawn | 0002 |\n| `GUAR-1` |")
    root = toy_tree(tmp_path / "b", **{"0002": gap, "test_toy": cited, "0001": withdrawn})
    assert audit_tree(root, {}).problems == []
