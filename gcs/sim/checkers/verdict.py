"""What a checker returns, and the text helpers every problem message uses.

A checker's answer is a ``Verdict``: valid (True), invalid (False) or "could not be judged"
(None, with a note saying why), the Jepsen ``:valid?`` / ``:unknown`` convention. Problems are
plain sentences that name the incarnation, the message ids, the rings, the seqs and the virtual
time, so a failing seed can be debugged from the report alone. Only the first ``MAX_PROBLEMS``
sentences are kept; ``problem_count`` says how many there were in total, so a run with ten
thousand violations does not produce a ten-thousand-line report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gcs.history.events import MsgId
from gcs.wire.frames import RingId

__all__ = [
    "MAX_PROBLEMS",
    "Problems",
    "Proc",
    "Stat",
    "Verdict",
    "fmt_ids",
    "fmt_mcast",
    "fmt_proc",
    "fmt_t",
    "overall",
]

MAX_PROBLEMS = 20

Proc = tuple[int, int]  # (node, incarnation): one process incarnation (RFC 0004 §11)
Stat = int | float | str


@dataclass(frozen=True, slots=True)
class Verdict:
    """One checker's judgement of one history.

    ``valid`` is None when the checker could not judge (a parameter it needs was not given,
    or the history lacks the events it reads); ``note`` then says why.
    """

    name: str
    valid: bool | None
    problems: tuple[str, ...] = ()
    problem_count: int = 0
    stats: dict[str, Stat] = field(default_factory=dict)
    note: str = ""

    def summary(self) -> str:
        """A few lines for a run report: the outcome, then the kept problems."""
        if self.valid is None:
            return f"UNKNOWN {self.name}: {self.note}"
        if self.valid:
            return f"PASS {self.name}"
        lines = [f"FAIL {self.name}: {self.problem_count} problem(s)"]
        lines.extend(f"  - {p}" for p in self.problems)
        if self.problem_count > len(self.problems):
            lines.append(f"  ... and {self.problem_count - len(self.problems)} more")
        return "\n".join(lines)


def overall(verdicts: Iterable[Verdict]) -> bool | None:
    """False if any checker failed, None if none failed but one could not judge, else True."""
    outcome: bool | None = True
    for verdict in verdicts:
        if verdict.valid is False:
            return False
        if verdict.valid is None:
            outcome = None
    return outcome


class Problems:
    """Collects one checker's problem sentences, keeping the first ``limit``."""

    __slots__ = ("_kept", "count", "limit", "name")

    def __init__(self, name: str, limit: int = MAX_PROBLEMS) -> None:
        self.name = name
        self.limit = limit
        self.count = 0
        self._kept: list[str] = []

    def add(self, text: str) -> None:
        self.count += 1
        if len(self._kept) < self.limit:
            self._kept.append(text)

    def more(self, count: int) -> None:
        """Count ``count`` further problems without composing their sentences."""
        self.count += max(0, count)

    def verdict(self, stats: Mapping[str, Stat] | None = None) -> Verdict:
        return Verdict(
            name=self.name,
            valid=self.count == 0,
            problems=tuple(self._kept),
            problem_count=self.count,
            stats=dict(stats or {}),
        )

    def unknown(self, note: str, stats: Mapping[str, Stat] | None = None) -> Verdict:
        return Verdict(name=self.name, valid=None, stats=dict(stats or {}), note=note)


def fmt_t(time_ns: int) -> str:
    """Virtual time as exact seconds (``t=1.000250000s``): readable and still ns-precise."""
    sign = "-" if time_ns < 0 else ""
    secs, frac = divmod(abs(time_ns), 1_000_000_000)
    return f"t={sign}{secs}.{frac:09d}s"


def fmt_proc(proc: Proc) -> str:
    """An incarnation as ``node/incarnation`` (message ids extend this with ``/counter``)."""
    return f"{proc[0]}/{proc[1]}"


def fmt_mcast(ring: RingId, seq: int) -> str:
    """One mcast: seq ``seq`` of ring ``rep.seq``, written ``ring 1.8 seq 3``."""
    return f"ring {ring} seq {seq}"


def fmt_ids(ids: Iterable[MsgId], limit: int = 6) -> str:
    """A short list of message ids; fragment-only mcasts carry none."""
    items = list(ids)
    if not items:
        return "[no message ids: fragment]"
    text = ", ".join(str(i) for i in items[:limit])
    if len(items) > limit:
        text += f", ... ({len(items)} in all)"
    return f"[{text}]"
