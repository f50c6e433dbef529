"""Frames and effects write their own ``__init__`` (see gcs.wire.frames): it must take exactly
the dataclass's fields, in order, with the same defaults and keyword-only-ness, and store each
under its own name. Checked on the source, so it holds for both builds (a compiled ``__init__``
has no introspectable signature)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GCS = Path(__file__).parents[2] / "gcs"
MODULES = {
    "gcs.wire.frames": GCS / "wire" / "frames.py",
    "gcs.totem.effects": GCS / "totem" / "effects.py",
}


def _classes() -> list[tuple[str, ast.ClassDef]]:
    found = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and any(
                isinstance(m, ast.FunctionDef) and m.name == "__init__" for m in node.body
            ):
                found.append((f"{module}.{node.name}", node))
    return found


CLASSES = _classes()


def test_the_hot_frames_and_effects_have_their_own_init() -> None:
    names = {name.rsplit(".", 1)[1] for name, _ in CLASSES}
    assert {"Record", "Mcast", "OrfToken", "RingId", "RtrEntry", "Deliver", "Multicast"} <= names


@pytest.mark.parametrize(("name", "node"), CLASSES, ids=[name for name, _ in CLASSES])
def test_init_takes_the_fields_in_order(name: str, node: ast.ClassDef) -> None:
    decorator = ast.unparse(node.decorator_list[0])
    assert "frozen=True" in decorator and "init=False" in decorator, decorator
    fields = [
        (s.target.id, None if s.value is None else ast.unparse(s.value))
        for s in node.body
        if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
    ]
    init = next(m for m in node.body if isinstance(m, ast.FunctionDef) and m.name == "__init__")
    args = init.args
    kw_only = "kw_only=True" in decorator
    params = args.kwonlyargs if kw_only else args.args[1:]
    assert not (args.args[1:] if kw_only else args.kwonlyargs)
    defaults = args.kw_defaults if kw_only else args.defaults
    padded = [None] * (len(params) - len(defaults)) + [
        None if d is None else ast.unparse(d) for d in defaults
    ]
    assert [(p.arg, d) for p, d in zip(params, padded, strict=True)] == fields
    stores = [ast.unparse(s) for s in init.body]
    assert stores == [f"object.__setattr__(self, '{f}', {f})" for f, _ in fields]
