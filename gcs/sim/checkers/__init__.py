"""History checkers: judge a finished run against the guarantees of brief §10.

Each checker is a pure function ``check_<name>(history, params) -> Verdict`` over a
``gcs.history.events.History`` (or a prebuilt ``HistoryIndex``). ``check_all`` runs them all, and
``summarize`` gives counts for run reports. The checkers read only the history, never core
internals, so they judge simulator runs and histories recorded from real processes alike.

| checker | brief §10 | EVS / paper |
| --- | --- | --- |
| streams | preamble (per-incarnation streams) | |
| identity | 1 | Specs 1.3-1.4 |
| no_duplicates | 2 | Spec 1.4 |
| no_creation | 3 | Spec 1.2 |
| config_agreement | 4, 7 | [P §4.1] |
| ring_ids | 5 | |
| change_shape | 6 | [P §3], §2 |
| delivery_location | 8 | Spec 1.3 |
| total_order | 9 | Specs 6.1-6.2 |
| acyclic | 10 | [P §4.2 fn 4] |
| agreed_prefix | 11 | Spec 6.3 |
| virtual_synchrony | 12 | Spec 4 |
| self_delivery | 13 | Spec 3 |
| causal | 14 | Spec 5 |
| safe | 15 | Specs 7.1-7.2 |
| transitional_agreement | 16 | [P §7.2] |
| origination_state | 21 (from State events) | [P §7.2] |
| core_invariants | Invariant events | |
| liveness | 23 (and 13's liveness part) | [P §4.1] termination |
| no_spurious_change | 24 | |
| gather_bound | 25 | |
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
