"""Taps: read-only observers of what the driver feeds the core and what the core returns.

Why. Two consumers need to see the core's effects as they happen without becoming part of the
protocol path: the history recorder (``gcs.history.writer``: a run of real processes written
in the simulator's history schema, so the simulator's checkers can judge it) and the daemon's
status view (``gcs.daemon.status``: view changes with their durations, which only the core's
state traces reveal). A tap sees the same inputs and effects as the flight recorder, but it
keeps what *it* needs, in its own form.

Contract. The driver calls a tap only on the loop, after the core returned and before the
effects are executed; a tap must not call into the core or the API, must not block, and must not
raise (an exception from a tap is a runtime bug and fails the node, like any other). Received
frames and timer firings are not reported as inputs (the hot path); their effects are.
"""

from __future__ import annotations

from typing import Protocol

from gcs.history.recorder import InputKind
from gcs.totem.effects import Effect

__all__ = ["Tap"]


class Tap(Protocol):
    """What the driver reports to an observer (see the module docstring)."""

    def on_input(self, kind: InputKind, arg1: object, arg2: object) -> None:
        """A ``START`` (arg1: stored ring seq), accepted ``SUBMIT`` (record, safe), ``LEAVE``
        or ``PERSISTED`` (seq) input; called after the core accepted it, before its effects."""

    def on_effects(self, effects: list[Effect]) -> None:
        """The effects of one core call, in order, before the driver executes them."""

    def on_failure(self, exc: BaseException) -> None:
        """The node failed (fail-stop); nothing more will be reported."""
