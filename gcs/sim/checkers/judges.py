"""Which requirements a checker judges: ``@judges("GUAR-5-1", "EVS-11-7")`` on a checker.

A checker's verdict is only as meaningful as the requirement it stands for, so each checker
names the RFC requirement identifiers (RFC 0001 §2.1) it judges, in code where a reader and the
test suite's requirement gate can both see them; the gate fails on an identifier no RFC defines
and on a guarantee whose text names a checker that does not judge it. ``@judges()`` with no
identifier marks a checker that judges only the history's own form, which the others assume.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["JUDGED", "judges"]

F = TypeVar("F", bound=Callable[..., object])

JUDGED: dict[str, tuple[str, ...]] = {}
"""Checker name (without ``check_``) -> the requirement identifiers it judges."""


def judges(*ids: str) -> Callable[[F], F]:
    """Record ``ids`` as the requirements the decorated checker judges; returns it unchanged."""

    def mark(checker: F) -> F:
        name = getattr(checker, "__name__", "").removeprefix("check_")
        # A checker is named by its verdict; two checkers of one name would hide each other's ids.
        if name in JUDGED and JUDGED[name] != ids:
            raise ValueError(f"two checkers are named {name!r}: name each after its verdict")
        JUDGED[name] = ids
        return checker

    return mark
