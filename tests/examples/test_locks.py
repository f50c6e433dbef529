"""examples/locks.py as OS processes in network namespaces: holders crash, partitions form.

Checks what the example promises (RFC 0008 §8): a lock held by a client of a server that dies
is released to the next waiter, with a higher fencing token; a minority grants nothing; every
replica applied one history in which no lock ever had two holders.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from gcs.bench.netns import NetLab
from tests.examples.lab import Service, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.processes]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "locks.py"


def lock_history(logs: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The one history of changes (fails on two), replayed: a grant only ever of a free lock."""
    history: dict[int, tuple[str, str, str]] = {}
    for node, lines in logs.items():
        for line in lines:
            if "op" in line:
                entry = (line["op"], line["lock"], line["holder"])
                known = history.setdefault(line["version"], entry)
                assert known == entry, f"version {line['version']}: {known} vs {entry} ({node})"
    holders: dict[str, str] = {}
    for version in sorted(history):
        op, lock, who = history[version]
        if op == "grant":
            assert lock not in holders, f"version {version}: {lock} granted while held"
            holders[lock] = who
        else:
            assert holders.pop(lock, None) == who, f"version {version}: release by a non-holder"
    return [{"version": v, "op": e[0], "lock": e[1]} for v, e in sorted(history.items())]


def acquire(locks: Service, node: int, lock: str, client: str) -> dict[str, Any]:
    return locks.request(node, {"op": "acquire", "lock": lock, "client": client}, timeout=60)


@pytest.mark.req("QRM-3.6-1", "QRM-4.1-4")
def test_locks_follow_their_holders_out_of_the_view(tmp_path: Path) -> None:
    """QRM-3.6-1, QRM-4.1-4: lease-free release on leaving the view; a minority grants nothing."""
    with NetLab(3) as lab:
        locks = Service(lab, EXAMPLE, tmp_path)
        try:
            _scenario(lab, locks)
        finally:
            locks.stop_all()


def _scenario(lab: NetLab, locks: Service) -> None:
    for i in lab.ids:
        locks.start(i)
    locks.ready([1, 2, 3], members=3)
    first = acquire(locks, 1, "x", "alice")
    assert first["ok"], first
    waiting: dict[str, Any] = {}
    bob = threading.Thread(target=lambda: waiting.update(acquire(locks, 2, "x", "bob")))
    bob.start()
    wait_for("bob to queue", lambda: _queued(locks, 2))
    assert not waiting, "bob waits while alice holds x"
    locks.kill(1)  # alice's server dies: x must go to bob, with a higher token
    bob.join(timeout=60)
    assert waiting.get("ok") and waiting["token"] > first["token"], waiting
    locks.start(1)
    locks.ready([1, 2, 3], members=3)
    lab.partition([[1, 2], [3]])
    wait_for("server 3 to lose quorum", lambda: not locks.status(3).get("quorate", True))
    refused = acquire(locks, 3, "y", "carol")
    assert not refused["ok"] and "quorate" in refused["error"]
    locks.ready([1, 2], members=2)
    granted = acquire(locks, 1, "y", "dave")
    assert granted["ok"], granted
    lab.heal()
    locks.ready([1, 2, 3], members=3)
    release = locks.request(1, {"op": "release", "lock": "y", "client": "dave"})
    assert release["ok"]

    def converged() -> bool:
        versions = {locks.status(i).get("version") for i in lab.ids}
        return len(versions) == 1

    wait_for("replicas to converge", converged)
    history = lock_history(locks.logs())
    assert [h["op"] for h in history if h["lock"] == "x"][:3] == ["grant", "release", "grant"]


def _queued(locks: Service, node: int) -> bool:
    # bob's acquire is in the order once the version stops at alice's grant and x is held
    status = locks.status(node)
    return bool(status.get("ok")) and status.get("holders", {}).get("x", "").endswith("|alice")
