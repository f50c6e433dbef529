"""Replay a recorded run exactly, and print it as a readable per-node event log.

A run directory stores the resolved scenario and the seed; since a run is a pure function of
the two (RFC 0007 §8), re-running them must give the same history, which ``replay`` proves by
comparing the SHA-256 digest of the new history with the one stored in ``run.json``. A
mismatch means the simulator or the core changed behaviour since the run was recorded (or
lost determinism): the report says so rather than silently showing a different run.

The event log interleaves the history (starts, crashes, configurations, membership states,
faults; optionally every submission, origination and delivery) with the cores' own trace
events (gather reasons, token loss, consensus timeouts, penalties), in the order they happened,
one line each: virtual time, node, what happened. It is the terminal view of a run (VOPR's
one-line-per-event state dump).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, assert_never

from gcs.history import events as h
from gcs.sim.report.figures import CounterProbe, probe_for
from gcs.sim.report.rundir import RunRecord, load_run
from gcs.sim.run import Result, run
from gcs.sim.world import World

__all__ = ["EventLog", "Replay", "describe", "replay"]

S = 1_000_000_000
_MESSAGE_EVENTS = (h.Submit, h.Originate, h.Deliver)


@dataclass(frozen=True, slots=True)
class Replay:
    """A replayed run and whether it reproduced the recorded one."""

    record: RunRecord
    result: Result
    digest: str
    probe: CounterProbe

    @property
    def matches(self) -> bool:
        return self.digest == self.record.digest


@dataclass
class EventLog:
    """Collects the cores' trace events with their position in the history, for interleaving."""

    world: World | None = None
    traces: list[tuple[int, int, int, str, Any]] = field(default_factory=list)

    def attach(self, world: World) -> None:
        self.world = world

    def __call__(self, now_ns: int, node: int, event: str, data: Any) -> None:
        position = len(self.world.history) if self.world is not None else 0
        self.traces.append((position, now_ns, node, event, data))

    def lines(self, history: h.History, *, messages: bool = False, node: int = 0) -> Iterator[str]:
        """The merged log; ``node`` keeps one node's lines (and cluster-wide faults)."""
        traces = iter(self.traces)
        pending = next(traces, None)
        for index, event in enumerate(history.events):
            while pending is not None and pending[0] <= index:
                if pending[3] != "state" and node in (0, pending[2]):
                    yield _line(pending[1], pending[2], _trace_text(pending[3], pending[4]))
                pending = next(traces, None)
            if not messages and isinstance(event, _MESSAGE_EVENTS):
                continue
            if node and event.node not in (0, node):
                continue
            yield _line(event.time_ns, event.node, describe(event))
        while pending is not None:
            if pending[3] != "state" and node in (0, pending[2]):
                yield _line(pending[1], pending[2], _trace_text(pending[3], pending[4]))
            pending = next(traces, None)


def _line(time_ns: int, node: int, text: str) -> str:
    who = f"n{node}" if node else "--"
    return f"{time_ns / S:12.6f}  {who:<4} {text}"


def _trace_text(event: str, data: Any) -> str:
    detail = " ".join(f"{k}={v}" for k, v in dict(data).items())
    return f"  . {event} {detail}".rstrip()


def describe(event: h.Event) -> str:
    """One history event as a short sentence."""
    match event:
        case h.Start():
            return (
                f"START incarnation {event.incarnation} (stored ring seq {event.stored_ring_seq})"
            )
        case h.Crash():
            return "CRASH"
        case h.Leave():
            return "LEAVE"
        case h.State():
            return f"state {event.old} -> {event.new}" + (
                f" ({event.reason})" if event.reason else ""
            )
        case h.Conf():
            return (
                f"CONF {event.kind} ring {event.ring_id} members {list(event.members)}"
                + (f" left {list(event.left)}" if event.left else "")
                + (f" joined {list(event.joined)}" if event.joined else "")
                + f" [{event.reason}]"
            )
        case h.Fault():
            detail = " ".join(f"{k}={v}" for k, v in event.detail.items())
            return f"FAULT {event.kind} {detail}".rstrip()
        case h.Persist():
            return f"persisted ring seq {event.ring_seq}"
        case h.Invariant():
            return f"INVARIANT VIOLATION {event.message}"
        case h.Submit():
            return f"submit {event.msg_id} {'safe' if event.safe else 'agreed'} {event.size} B"
        case h.Originate():
            ids = ", ".join(str(i) for i in event.msg_ids)
            return f"originate ring {event.ring_id} seq {event.seq} [{ids}]"
        case h.Deliver():
            ids = ", ".join(str(i) for i in event.msg_ids)
            return f"deliver {event.config_kind} seq {event.seq} from n{event.sender} [{ids}]"
        case _:
            assert_never(event)


def replay(
    path: str | Path,
    *,
    log: EventLog | None = None,
    runner: Callable[..., Result] = run,
) -> Replay:
    """Re-run the run recorded in ``path`` and compare digests.

    ``runner`` is ``gcs.sim.run.run`` unless a test substitutes one; with ``log`` the cores'
    trace events are collected for ``EventLog.lines``.
    """
    record = load_run(path)
    probe = probe_for(record.scenario)
    probes: list[Callable[[World], None]] = [probe]
    if log is not None:
        probes.append(log.attach)
    result = runner(record.scenario, record.seed, trace=log, probes=probes)
    return Replay(record=record, result=result, digest=result.digest(), probe=probe)
