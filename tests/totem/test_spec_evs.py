"""RFC 0004 §11: the EVS guarantees, judged by the simulator's checkers on faulty runs.

Each run is a seeded simulation (real cores, real sealing, a lossy network) with a nemesis
aimed at the membership protocol; every checker of ``gcs.sim.checkers`` must pass. Which
checker verifies which guarantee is listed in RFC 0004 §11, and each checker names the
guarantees it judges (``@judges``).
"""

from __future__ import annotations

from typing import Any

import pytest

from gcs.sim.checkers.judges import JUDGED
from gcs.sim.run import run
from gcs.sim.scenario import parse_scenario

# EVS id -> the checkers that judge it, as they declare it (gcs.sim.checkers.judges).
CHECKERS = {
    ident: tuple(sorted(name for name, ids in JUDGED.items() if ident in ids))
    for ident in sorted({i for ids in JUDGED.values() for i in ids if i.startswith("EVS-")})
}

BASE: dict[str, Any] = {
    "nodes": 4,
    "duration_s": 8,
    "quiet_s": 4,
    "wire": "objects",
    "network": {"latency_ms": 1.0, "latency_max_ms": 2.0, "loss": 0.01},
    "workload": {"rate": 40, "sizes": [64, 600, 3000], "safe": 0.4, "start_s": 0.5},
}

SCENARIOS: dict[str, list[dict[str, Any]]] = {
    "crash-restart-in-commit": [
        {"at_s": 1.5, "action": "crash", "node": 2, "duration_s": 1.5},
        {"at_s": 4.0, "action": "crash", "when": "commit", "nodes": [3], "duration_s": 1.0},
    ],
    "partition-heals-in-recovery": [
        {"at_s": 1.5, "action": "partition", "spec": "halves"},
        {"at_s": 3.0, "action": "heal", "when": "recovery"},
        {"at_s": 5.0, "action": "pause", "node": 1, "duration_s": 1.5},
    ],
    "accelerated-ring-with-crashes": [
        {"at_s": 1.5, "action": "crash", "node": 4, "duration_s": 1.0},
        {"at_s": 4.0, "action": "partition", "spec": "halves", "duration_s": 1.0},
    ],
    "token-and-commit-token-loss": [
        {"at_s": 1.0, "action": "token_loss", "value": 0.3, "duration_s": 2.0},
        {"at_s": 4.0, "action": "commit_token_loss", "value": 0.5, "duration_s": 2.0},
        {"at_s": 4.5, "action": "partition", "spec": "one", "duration_s": 1.0},
    ],
}


@pytest.mark.req(
    "EVS-11-1",
    "EVS-11-15",
    "ORD-9-2",
    "EVS-11-2",
    "EVS-11-3",
    "EVS-11-4",
    "EVS-11-5",
    "EVS-11-6",
    "EVS-11-7",
    "EVS-11-8",
    "EVS-11-9",
    "EVS-11-10",
    "EVS-11-11",
    "EVS-11-12",
    "EVS-11-13",
    "EVS-11-14",
    "GUAR-5-1",
    "GUAR-5-2",
    "GUAR-5-3",
    "GUAR-5-4",
    "GUAR-5-5",
    "GUAR-5-6",
    "GUAR-5-7",
    "GUAR-5-8",
    "GUAR-5-9",
    "GUAR-5-10",
    "GUAR-5-11",
)
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_evs_guarantees_hold_under_faults(name: str) -> None:
    """EVS-11-1 to EVS-11-15: every checker passes on a run with crashes, restarts, partitions
    healing mid-recovery, pauses and token losses (ORD-9-2: also with the accelerated ring)."""
    totem = {"accelerated": True} if name.startswith("accelerated") else {}
    scenario = parse_scenario(BASE | {"name": name, "faults": SCENARIOS[name], "totem": totem})
    result = run(scenario, seed=7)
    verdicts = {v.name: v for v in result.verdicts}
    assert len(CHECKERS) == 15, "every EVS guarantee has a checker"
    for requirement, names in CHECKERS.items():
        ran = [checker for checker in names if checker in verdicts]  # gather_bound is optional
        assert ran, f"{requirement}: none of {names} ran"
        for checker in ran:
            assert verdicts[checker].valid is True, (
                f"{requirement} ({checker}): {verdicts[checker]}"
            )
    assert verdicts["core_invariants"].valid is True
    configurations = [e for e in result.history.events if type(e).__name__ == "Conf"]
    assert len(configurations) > 4 * 3  # the faults did cause changes
