"""A second process with a node's id must not lock the real node out (RFC 0005 SEC-7.1-1,
SEC-7.1-2).

Three keyed ``gcs node`` daemons, one per network namespace, and an impostor in a fourth: the
same cluster key, ``node_id = 2``, its own address and state directory. It runs 12 s and stops.
Before SEC-7.1-1 its newer boot id made nodes 1 and 3 drop every datagram of the real node 2 as
``old_boot`` from then on: node 2 was still alone 60 s after the impostor stopped, and nothing
said why. Now nodes 1 and 3 keep hearing the real node 2 (the impostor is not at node 2's
configured address), say once each "DUPLICATE NODE ID 2" with both addresses, count it in
``gcs status`` and the metrics, and the ring does not change at all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gcs.bench.netns import NetLab
from gcs.history import events as h
from tests.procs.cluster import ROOT, wait_for
from tests.runtime.cluster import make_key

pytestmark = pytest.mark.netns

GCS = [sys.executable, "-m", "gcs"]
PORT = 5405
TOKEN_MS = 400
IMPOSTOR_S = 12.0
STABLE_S = 60.0
NODES = (1, 2, 3)


@dataclass
class Daemons:
    """``gcs node`` daemons in a lab's namespaces, their configs, logs and histories."""

    lab: NetLab
    run: Path
    key: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def config(self, name: str, node_id: int, address_of: dict[int, int]) -> Path:
        """A config for ``name``: node ``node_id``, node ``n`` at lab host ``address_of[n]``."""
        lines = [
            'cluster_name = "dup"',
            f"node_id = {node_id}",
            f'key_file = "{self.key}"',
            f'state_dir = "{self.run / f"state-{name}"}"',
            f"token_timeout_ms = {TOKEN_MS}",
        ]
        for n, host in sorted(address_of.items()):
            lines += ["", "[[nodes]]", f"id = {n}", f'address = "{self.lab.address(host)}:{PORT}"']
        path = self.run / f"{name}.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, name: str, host: int, config: Path, *extra: str) -> None:
        argv = [*GCS, "node", "--config", str(config), *extra]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with (self.run / f"{name}.log").open("ab") as log:
            self.procs[name] = self.lab.popen(
                host, argv, stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT, env=env
            )

    def status(self, name: str) -> dict[str, Any] | None:
        text = self.status_text(name, "--json")
        return None if text is None else json.loads(text)  # type: ignore[no-any-return]

    def status_text(self, name: str, *extra: str) -> str | None:
        done = subprocess.run(
            [*GCS, "status", "--config", str(self.run / f"{name}.toml"), *extra],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return done.stdout if done.returncode == 0 else None

    def log(self, name: str) -> str:
        return (self.run / f"{name}.log").read_text(errors="replace")

    def stop(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, f"{name} exited {proc.returncode}: {self.run}"

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    with NetLab(4) as lab:
        print(f"run directory: {tmp_path}; lab {lab.prefix} ({lab.network})")
        d = Daemons(lab, tmp_path, make_key(tmp_path))
        try:
            yield d
        finally:
            d.close()


def _one_ring(d: Daemons) -> Callable[[], bool]:
    def check() -> bool:
        statuses = [d.status(f"n{n}") for n in NODES]
        return all(
            s is not None and s["members"] == list(NODES) and s["state"] == "operational"
            for s in statuses
        )

    return check


def _confs_after(d: Daemons, after_ns: int) -> list[h.Conf]:
    history = h.load_jsonl(*(d.run / f"n{n}.jsonl" for n in NODES))
    return [e for e in history.events if isinstance(e, h.Conf) and e.time_ns > after_ns]


def _ring_at(d: Daemons, node: int, at_ns: int) -> h.Conf | None:
    """The last configuration ``node`` installed at or before ``at_ns``."""
    confs = [
        e
        for e in h.load_jsonl(d.run / f"n{node}.jsonl").events
        if isinstance(e, h.Conf) and e.time_ns <= at_ns
    ]
    return confs[-1] if confs else None


def _metric(d: Daemons, node: int, port: int, name: str) -> str:
    code = (
        "import urllib.request;"
        f"print(urllib.request.urlopen('http://127.0.0.1:{port}/metrics', timeout=10).read()"
        ".decode())"
    )
    text = d.lab.run(node, [sys.executable, "-c", code])
    return "\n".join(line for line in text.splitlines() if line.startswith(name))


@pytest.mark.req("SEC-7.1-1", "SEC-7.1-2")
def test_an_impostor_with_the_same_node_id_is_reported_and_locks_nobody_out(
    daemons: Daemons,
) -> None:
    d = daemons
    real = {n: n for n in NODES}
    for n in NODES:
        history = ["--history", str(d.run / f"n{n}.jsonl"), "--metrics-port", "0"]
        d.start(f"n{n}", n, d.config(f"n{n}", n, real), *history)
    wait_for(f"one ring of {NODES} ({d.run})", _one_ring(d))

    started_ns = time.monotonic_ns()
    d.start("impostor", 4, d.config("impostor", 2, {1: 1, 2: 4, 3: 3}))
    time.sleep(IMPOSTOR_S)
    d.stop("impostor")
    stopped_ns = time.monotonic_ns()

    # The real node is in the ring 3 token timeouts after the impostor stopped...
    time.sleep(3 * TOKEN_MS / 1000)
    back_ns = stopped_ns + 3 * TOKEN_MS * 1_000_000
    for n in NODES:
        conf = _ring_at(d, n, back_ns)
        assert conf is not None and conf.kind == "regular", f"node {n}: {conf} ({d.run})"
        assert conf.members == NODES, f"node {n} is in {conf.members} ({d.run})"
    # ... and nothing changes for a minute (nor did anything while the impostor ran).
    time.sleep(STABLE_S)
    assert _confs_after(d, started_ns) == [], f"configurations changed ({d.run})"

    for n in (1, 3):
        status = d.status(f"n{n}")
        assert status is not None and status["members"] == list(NODES)
        assert status["duplicate_node_id"] == 1, status
        (seen,) = status["duplicate_sightings"]
        addresses = {f"{d.lab.address(2)}:{PORT}", f"{d.lab.address(4)}:{PORT}"}
        assert seen["node"] == 2 and set(seen["addresses"]) == addresses, seen
        assert status["drops"].get("shadowed_boot", 0) > 0 and "old_boot" not in status["drops"]
        warnings = [line for line in d.log(f"n{n}").splitlines() if "DUPLICATE NODE ID 2" in line]
        assert len(warnings) == 1 and all(a in warnings[0] for a in addresses), warnings
        metric = _metric(d, n, status["metrics_port"], "gcs_duplicate_node_id_total")
        assert float(metric.rsplit(" ", 1)[1]) == 1, metric  # the exposition writes "1.0"
        text = d.status_text(f"n{n}") or ""
        assert "DUPLICATE ID  node 2" in text and all(a in text for a in addresses), text
    assert d.status("n2")["duplicate_node_id"] == 0  # type: ignore[index]
