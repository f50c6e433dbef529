"""History checkers: judge a finished run against the guarantees of RFC 0001 §5 and RFC 0004 §11.

Each checker is a pure function ``check_<name>(history, params) -> Verdict`` over a
``gcs.history.events.History`` (or a prebuilt ``HistoryIndex``). ``check_all`` runs them all, and
``summarize`` gives counts for run reports. The checkers read only the history, never core
internals, so they judge simulator runs and histories recorded from real processes alike.

| checker | RFC requirement | EVS / paper |
| --- | --- | --- |
| streams | RFC 0004 §11 (per-incarnation streams) | |
| identity | EVS-11-5 | Specs 1.3-1.4 |
| no_duplicates | EVS-11-6 | Spec 1.4 |
| no_creation | EVS-11-5 | Spec 1.2 |
| config_agreement | EVS-11-1 | [P §4.1] |
| ring_ids | EVS-11-2 | |
| change_shape | EVS-11-3 | [P §3], §2 |
| delivery_location | EVS-11-4 | Spec 1.3 |
| total_order | EVS-11-7 | Specs 6.1-6.2 |
| acyclic | EVS-11-14 | [P §4.2 fn 4] |
| agreed_prefix | EVS-11-8 | Spec 6.3 |
| virtual_synchrony | EVS-11-9 | Spec 4 |
| self_delivery | EVS-11-11 | Spec 3 |
| causal | EVS-11-12 | Spec 5 |
| safe | EVS-11-13 | Specs 7.1-7.2 |
| transitional_agreement | EVS-11-10 | [P §7.2] |
| origination_state | ORD-4.6-2, REC-6.2-3 (from State events) | [P §7.2] |
| core_invariants | RFC 0003 §11 (Invariant events) | |
| liveness | EVS-11-15 (and EVS-11-11's liveness part) | [P §4.1] termination |
| no_spurious_change | EVS-11-15 | |
| gather_bound | EVS-11-15 | |
| link_failover | LNK-7-1, LNK-7-2 | a scenario's ``[expect]``: no view change, cut latency |
"""

from __future__ import annotations

from gcs.sim.checkers.acyclic import check_acyclic
from gcs.sim.checkers.configs import check_change_shape, check_config_agreement, check_ring_ids
from gcs.sim.checkers.evs import (
    check_causal,
    check_safe,
    check_self_delivery,
    check_virtual_synchrony,
)
from gcs.sim.checkers.index import HistoryIndex, build_index
from gcs.sim.checkers.integrity import (
    check_core_invariants,
    check_identity,
    check_no_creation,
    check_no_duplicates,
    check_origination_state,
    check_streams,
)
from gcs.sim.checkers.links import check_link_failover
from gcs.sim.checkers.liveness import check_gather_bound, check_liveness, check_no_spurious_change
from gcs.sim.checkers.order import (
    check_agreed_prefix,
    check_delivery_location,
    check_total_order,
    check_transitional_agreement,
)
from gcs.sim.checkers.params import CheckParams
from gcs.sim.checkers.stats import summarize
from gcs.sim.checkers.suite import SAFETY_CHECKERS, check_all, format_report
from gcs.sim.checkers.verdict import MAX_PROBLEMS, Verdict, overall

__all__ = [
    "MAX_PROBLEMS",
    "SAFETY_CHECKERS",
    "CheckParams",
    "HistoryIndex",
    "Verdict",
    "build_index",
    "check_acyclic",
    "check_agreed_prefix",
    "check_all",
    "check_causal",
    "check_change_shape",
    "check_config_agreement",
    "check_core_invariants",
    "check_delivery_location",
    "check_gather_bound",
    "check_identity",
    "check_link_failover",
    "check_liveness",
    "check_no_creation",
    "check_no_duplicates",
    "check_no_spurious_change",
    "check_origination_state",
    "check_ring_ids",
    "check_safe",
    "check_self_delivery",
    "check_streams",
    "check_total_order",
    "check_transitional_agreement",
    "check_virtual_synchrony",
    "format_report",
    "overall",
    "summarize",
]
