"""What the checkers need to know about a run beyond its history.

Safety checkers need nothing: the history is enough. Liveness checkers (RFC 0004 EVS-11-15)
need to know when the nemesis stopped, how long the cluster may take to settle, and which
incarnations the run expects to be alive and connected at the end; the ring-id checker
(item 5) needs to know which restarts found their storage wiped on purpose. Every field has a
default meaning "not known", and a checker whose parameter is unknown says it could not judge
rather than guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

from gcs.sim.checkers.verdict import Proc

__all__ = ["DEFAULT_PARAMS", "CheckParams"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckParams:
    """Run facts the history does not carry.

    ``quiet_from_ns``: virtual time at which faults stopped (the last heal/restart). None: the
    run had no quiet period, so liveness is not judged.

    ``liveness_bound_ns``: how long after ``quiet_from_ns`` the expected incarnations have to
    form their common configuration (RFC 0004 §9.2, EVS-11-15: roughly token + consensus + k·join +
    rotations).

    ``expected_live``: the incarnations expected alive and mutually connected at the end. They
    must end in one common regular configuration whose members are exactly their nodes, and
    end-of-run obligations (self-delivery, safe delivery) apply to them. None: unknown.

    ``wiped``: incarnations that started on storage wiped on purpose; their ring ids may go
    backwards relative to earlier incarnations of the same node (RFC 0004 EVS-11-2: "provided its
    stable storage survived").

    ``all_restarts_wiped``: every restart ran without stable storage.

    ``submit_cutoff_ns``: messages submitted after this time are exempt from the liveness
    delivery requirement (the workload was still sending when the run stopped).

    ``gather_bound``: most consecutive GATHER entries allowed without reaching OPERATIONAL
    (RFC 0004 EVS-11-15). None: not checked.

    ``quiet_loss``: the probability that the network loses a datagram in the quiet period (the
    scenario's baseline loss, or a loss step never undone). Above 0, a reformation of the
    converged ring with the same members caused by token loss is excused (RFC 0007 SIM-6.1-1,
    ``gcs.sim.checkers.reformation``); at 0 nothing is.

    ``strict_transitional_gap``: in a transitional configuration, a message that follows a gap
    must come from the deliver set (RFC 0004 EVS-11-8, REC-7.2-1): the transitional members, or,
    if the incarnation abandoned a recovery attempt since its previous regular configuration
    (visible in its ``State`` events), any member of the old ring, since the paper's obligation
    set (RFC 0004 §7.3) is not recorded. False turns the rule off; causality (EVS-11-12) still
    catches a skipped message that the later one depends on.

    ``link_failover``: (no view change expected, latency bound in ns or 0) from a link-cut
    scenario's ``[expect]`` table (``gcs.sim.checkers.links``). None: not judged.
    """

    quiet_from_ns: int | None = None
    liveness_bound_ns: int | None = None
    expected_live: frozenset[Proc] | None = None
    wiped: frozenset[Proc] = frozenset()
    all_restarts_wiped: bool = False
    submit_cutoff_ns: int | None = None
    gather_bound: int | None = None
    quiet_loss: float = 0.0
    strict_transitional_gap: bool = True
    link_failover: tuple[bool, int] | None = None

    def is_wiped(self, proc: Proc) -> bool:
        return self.all_restarts_wiped or proc in self.wiped


DEFAULT_PARAMS = CheckParams()
