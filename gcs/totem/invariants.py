"""Always-on invariant checks (RFC 0003 §11): cheap, never stripped by ``python -O``.

A broken invariant means the node can no longer promise the guarantees, so it stops (RFC 0006
API-7-1) instead of continuing in a state no proof covers.
"""

from __future__ import annotations

from gcs.errors import InvariantViolation

__all__ = ["InvariantViolation", "invariant"]


def invariant(condition: bool, requirement: str, detail: str) -> None:
    """Raise ``InvariantViolation`` naming the requirement ID when ``condition`` is false."""
    if not condition:
        raise InvariantViolation(f"{requirement}: {detail}")
