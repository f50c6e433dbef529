"""Common configurations in the quiet period, and which changes between them are excused.

After the faults stop the simulator keeps the scenario's baseline loss on (RFC 0007 SIM-5.4-1),
so the merge and recovery that follow the heal are judged under loss too. The price is that
loss alone can, rarely, drop a token and each of its retransmissions until the token timer
expires: the ring then re-forms with the same members. That is the failure detector doing its
job, not a liveness bug, and RFC 0007 SIM-6.1-1 excuses exactly that case — a *loss-caused
reformation*:

1. the change starts from a *common configuration*: a regular configuration whose members are
   exactly the expected nodes, installed by every expected incarnation, which none of them had
   left before the last of them installed it (the ring had converged);
2. its first departure (the first expected incarnation to leave OPERATIONAL) happens in the
   quiet period, and the quiet period's network loses datagrams (``quiet_loss > 0``); in a
   lossless quiet period nothing is excused;
3. every expected incarnation's next regular configuration is the same common configuration
   (the same members again, nothing in between);
4. the new configuration's root cause (RFC 0007 SIM-7.2-1) is ``token_loss``;
5. it formed within the liveness bound of the departure.

Everything else that delivery and the final configuration require still applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from gcs.sim.checkers.index import REGULAR, ConfigKey, ConfigView, HistoryIndex, ProcView
from gcs.sim.checkers.params import CheckParams
from gcs.sim.checkers.verdict import Proc, fmt_proc, fmt_t
from gcs.wire.frames import RingId

__all__ = [
    "Change",
    "Common",
    "common_configs",
    "excused_installs",
    "quiet_changes",
    "root_cause",
]


@dataclass(frozen=True, slots=True)
class Common:
    """A common configuration: every expected incarnation installed it, members exactly theirs.

    ``formed_ns`` is its last installation among them, ``left_ns`` the first time one of them
    left OPERATIONAL in it (None if none did), ``installs`` the installations in proc order.
    """

    key: ConfigKey
    formed_ns: int
    left_ns: int | None
    installs: tuple[ConfigView, ...]


@dataclass(frozen=True, slots=True)
class Change:
    """The change from one common configuration to the next; ``why_not`` is empty if excused."""

    old: Common
    new: Common
    why_not: str

    @property
    def excused(self) -> bool:
        return not self.why_not


def common_configs(idx: HistoryIndex, params: CheckParams) -> list[Common]:
    """Every common configuration of the expected incarnations, in formation order."""
    expected = params.expected_live
    if not expected:
        return []
    views = [idx.procs.get(proc) for proc in sorted(expected)]
    if any(view is None for view in views):
        return []
    present = [view for view in views if view is not None]
    nodes = frozenset(view.node for view in present)
    by_key = [{c.key: c for c in view.configs} for view in present]
    commons: list[Common] = []
    for config in present[0].configs:
        if config.key.kind != REGULAR or config.members != nodes:
            continue
        installs = [keyed.get(config.key) for keyed in by_key]
        if any(install is None for install in installs):
            continue
        held = tuple(install for install in installs if install is not None)
        formed = max(install.time_ns for install in held)
        lefts = [_departure(view, install) for view, install in zip(present, held, strict=True)]
        known = [t for t in lefts if t is not None]
        left = min(known) if known else None
        if left is None or left > formed:
            commons.append(Common(config.key, formed, left, held))
    return sorted(commons, key=lambda common: common.formed_ns)


def _departure(view: ProcView, install: ConfigView) -> int | None:
    """When this incarnation left OPERATIONAL in ``install`` (else installed its next one)."""
    for pos, state in view.states:
        if pos > install.pos and state.old.lower() == "operational":
            if install.next is None or pos < install.next.pos:
                return state.time_ns
            break
    return None if install.next is None else install.next.time_ns


def quiet_changes(idx: HistoryIndex, params: CheckParams) -> list[Change]:
    """The changes between consecutive common configurations that began in the quiet period."""
    quiet, bound = params.quiet_from_ns, params.liveness_bound_ns
    if quiet is None or bound is None:
        return []
    commons = common_configs(idx, params)
    changes = []
    for old, new in pairwise(commons):
        if old.left_ns is not None and old.left_ns > quiet:
            changes.append(Change(old, new, _why_not(old, new, bound, params.quiet_loss)))
    return changes


def _why_not(old: Common, new: Common, bound: int, quiet_loss: float) -> str:
    assert old.left_ns is not None
    if quiet_loss <= 0:
        return "the quiet period's network is lossless"
    for install in old.installs:
        following = install.next_regular()
        if following is None or following.key != new.key:
            where = "nothing" if following is None else str(following.key)
            return f"node {fmt_proc(install.proc)} installed {where} after it"
    cause = root_cause(new.installs)
    if cause != "token_loss":
        return f"its root cause is {cause}, not token_loss"
    took = new.formed_ns - old.left_ns
    if took > bound:
        return f"it took {took / 1e9:.3f} s from {fmt_t(old.left_ns)}, more than the bound"
    return ""


def root_cause(installs: tuple[ConfigView, ...]) -> str:
    """RFC 0007 SIM-7.2-1: the first reason in installation order other than startup and join."""
    reasons = [c.event.reason.split(" ")[0] for c in sorted(installs, key=lambda c: c.pos)]
    root = [reason for reason in reasons if reason not in ("startup", "join")]
    return root[0] if root else "join"


def excused_installs(changes: list[Change]) -> set[tuple[Proc, RingId]]:
    """The installations that ended an excused reformation: (incarnation, new ring), which
    covers the transitional configuration installed with the regular one."""
    return {
        (install.proc, install.key.ring)
        for change in changes
        if change.excused
        for install in change.new.installs
    }
