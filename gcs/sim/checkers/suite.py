"""Run every applicable checker over one history: the simulator's verdict on a run.

The index is built once and shared (``gcs.sim.checkers.index``). Safety checkers always run;
liveness checkers run when their parameters are given (``CheckParams``), so the verdict list
says exactly what was judged. A checker that raises is reported as "could not judge" with the
exception text rather than hiding the other verdicts; tests treat anything but True as a
failure, so a checker bug cannot pass silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from gcs.sim.checkers.acyclic import check_acyclic
from gcs.sim.checkers.configs import check_change_shape, check_config_agreement, check_ring_ids
from gcs.sim.checkers.evs import (
    check_causal,
    check_safe,
    check_self_delivery,
    check_virtual_synchrony,
)
from gcs.sim.checkers.index import HistoryIndex, Source, as_index, gc_paused
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
from gcs.sim.checkers.params import DEFAULT_PARAMS, CheckParams
from gcs.sim.checkers.verdict import Verdict

__all__ = ["SAFETY_CHECKERS", "Checker", "check_all", "format_report"]

Checker = Callable[[Source, CheckParams], Verdict]

# In RFC 0004 §11 order (roughly), after the history's own well-formedness.
SAFETY_CHECKERS: tuple[Checker, ...] = (
    check_streams,
    check_identity,  # 1
    check_no_duplicates,  # 2
    check_no_creation,  # 3
    check_config_agreement,  # 4, 7
    check_ring_ids,  # 5
    check_change_shape,  # 6
    check_delivery_location,  # 8
    check_total_order,  # 9
    check_acyclic,  # 10
    check_agreed_prefix,  # 11
    check_virtual_synchrony,  # 12
    check_self_delivery,  # 13
    check_causal,  # 14
    check_safe,  # 15
    check_transitional_agreement,  # 16
    check_origination_state,  # 21
    check_core_invariants,
)


def check_all(history: Source, *, params: CheckParams = DEFAULT_PARAMS) -> list[Verdict]:
    """Every safety checker, plus liveness (EVS-11-15) if ``params.quiet_from_ns`` is set, the
    GATHER bound (EVS-11-15) if ``params.gather_bound`` is set and the link-failover claims of a
    scenario (``gcs.sim.checkers.links``) if ``params.link_failover`` is set."""
    with gc_paused():
        return _run(as_index(history), params)


def _run(idx: HistoryIndex, params: CheckParams) -> list[Verdict]:
    checkers = list(SAFETY_CHECKERS)
    if params.quiet_from_ns is not None:
        checkers += [check_liveness, check_no_spurious_change]
    if params.gather_bound is not None:
        checkers.append(check_gather_bound)
    if params.link_failover is not None:
        checkers.append(check_link_failover)
    verdicts = []
    for checker in checkers:
        try:
            verdicts.append(checker(idx, params))
        except Exception as exc:  # a checker bug must not hide the other verdicts
            name = checker.__name__.removeprefix("check_")
            note = f"checker raised {type(exc).__name__}: {exc}"
            verdicts.append(Verdict(name=name, valid=None, note=note))
    return verdicts


def format_report(verdicts: Iterable[Verdict]) -> str:
    """One block per checker: PASS/FAIL/UNKNOWN and the kept problem sentences."""
    return "\n".join(v.summary() for v in verdicts)
