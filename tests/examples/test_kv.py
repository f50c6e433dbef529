"""examples/kv.py as OS processes in network namespaces: partitions, kill -9, restarts.

Checks what the example promises (RFC 0008 §8): writes are accepted only in the quorate
partition and never in two partitions at once (every replica's applied log is one history),
every acknowledged write survives, and after the faults every replica holds the same state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gcs.bench.netns import NetLab
from tests.examples.lab import Service, wait_for

pytestmark = [pytest.mark.netns, pytest.mark.processes]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kv.py"


def one_history(logs: dict[int, list[dict[str, Any]]]) -> dict[int, tuple[str, str]]:
    """version -> (request, chain) over every replica's log; fails on two histories."""
    history: dict[int, tuple[str, str]] = {}
    for node, lines in logs.items():
        for line in lines:
            if "version" not in line:
                continue
            entry = (line["req"], line["chain"])
            known = history.setdefault(line["version"], entry)
            assert known == entry, f"version {line['version']}: {known} and {entry} (node {node})"
    for node, lines in logs.items():
        for line in lines:
            if line.get("installed"):
                got = history.get(line["installed"])
                assert got is None or got[1] == line["chain"], f"node {node} installed a fork"
    return history


def put(service: Service, node: int, key: str, value: str) -> dict[str, Any]:
    return service.request(node, {"op": "put", "key": key, "value": value})


@pytest.mark.req("QRM-3.6-1", "QRM-4.1-4", "XFR-5.3-1", "XFR-5.5-1")
def test_kv_store_survives_partitions_crashes_and_restarts(tmp_path: Path) -> None:
    """QRM-3.6-1, QRM-4.1-4, XFR-5.3-1, XFR-5.5-1 on real processes and real partitions."""
    with NetLab(3) as lab:
        kv = Service(lab, EXAMPLE, tmp_path)
        try:
            _scenario(lab, kv)
        finally:
            kv.stop_all()


def _scenario(lab: NetLab, kv: Service) -> None:
    for i in lab.ids:
        kv.start(i)
    kv.ready([1, 2, 3], members=3)
    acked: list[tuple[int, str]] = []

    def write(node: int, key: str, value: str, *, expect: bool = True) -> None:
        reply = put(kv, node, key, value)
        if expect:
            assert reply["ok"], reply
            acked.append((reply["version"], value))
        else:
            assert not reply["ok"], reply

    for i in range(10):
        write(1 + i % 3, f"k{i % 4}", f"before-{i}")
    lab.partition([[1, 2], [3]])
    wait_for("replica 3 to lose quorum", lambda: not kv.status(3).get("quorate", True))
    kv.ready([1, 2], members=2)
    for i in range(10):
        write(1 + i % 2, f"k{i % 4}", f"majority-{i}")
    write(3, "k0", "minority", expect=False)
    stale = kv.request(3, {"op": "get", "key": "k0"})
    assert stale["ok"] and stale["quorate"] is False
    lab.heal()
    kv.ready([1, 2, 3], members=3)
    kv.kill(1)  # kill -9 a replica of the majority
    kv.ready([2, 3], members=2)
    for i in range(10):
        write(2 + i % 2, f"k{i % 4}", f"after-kill-{i}")
    kv.start(1)  # restarted: a new member, gets the state by transfer
    kv.ready([1, 2, 3], members=3)
    write(1, "k9", "restarted")
    read = kv.request(1, {"op": "get", "key": "k9", "linearizable": True})
    assert read["ok"] and read["value"] == "restarted"

    def converged() -> bool:
        states = [kv.status(i) for i in lab.ids]
        return len({(s.get("version"), s.get("chain")) for s in states}) == 1

    wait_for("replicas to converge", converged)
    final = kv.status(1)
    history = one_history(kv.logs())
    assert final["version"] == len(acked) == max(history)
    for version, value in acked:
        assert version <= final["version"] and version in history, value
