"""A connection flood against one ``gcs node`` daemon of three, each in its own namespace.

The daemon under attack runs under ``prlimit --nofile=1024`` with a client cap far above what
its descriptors allow (``max_clients = 4096``), so only the descriptor-derived cap and reserve
of API-10.1-3 protect it. A local attacker (``flood.py``) makes 2,000 connection attempts and holds
every connection it gets, half of them after a hello, half silent (the hello timeout is long
enough not to help). Then another node is killed with SIGKILL: the daemon under attack must
store the new ring's seq (API-10.1-3's reserve), install the ring, tell its already-connected
client the new view, and serve new clients once the attacker goes away.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gcs.bench.netns import NetLab
from tests.netns.daemons import GCS, WAIT_S, daemon_status, gcs_cli
from tests.procs.cluster import wait_for
from tests.runtime.cluster import make_key

pytestmark = pytest.mark.netns

PORT = 5405
ATTEMPTS = 2000
FD_LIMIT = 1024
LIMITS = "max_clients = 4096\nhello_timeout_ms = 120000\n"
"""The daemons' client settings: a cap the descriptors cannot honour, a hello timeout that
never fires during the test (so neither setting is what saves the daemon)."""


class _Lines:
    """A process's stdout lines, collected by a thread (waits poll ``lines``)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        assert proc.stdout is not None
        stdout = proc.stdout
        self._thread = threading.Thread(target=lambda: self.lines.extend(stdout), daemon=True)
        self._thread.start()

    def json(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]


def _configs(tmp: Path, lab: NetLab) -> list[Path]:
    key = make_key(tmp)
    nodes = "".join(
        f'\n[[nodes]]\nid = {i}\naddress = "{lab.address(i)}:{PORT}"\n' for i in lab.ids
    )
    paths = []
    for i in lab.ids:
        path = tmp / f"n{i}.toml"
        path.write_text(
            f'cluster_name = "flood"\nnode_id = {i}\nkey_file = "{key}"\nstate_dir = "s{i}"\n'
            f'control_socket = "n{i}.sock"\ntoken_timeout_ms = 400\n{LIMITS}{nodes}'
        )
        paths.append(path)
    return paths


def _alive(procs: dict[int, subprocess.Popen[bytes]], tmp: Path, *nodes: int) -> Callable[[], bool]:
    """A wait predicate that fails at once, with the log, when a daemon that must run exited."""

    def check() -> bool:
        for node in nodes:
            if procs[node].poll() is not None:
                log = (tmp / f"n{node}.log").read_text()[-3000:]
                raise AssertionError(f"daemon {node} exited {procs[node].returncode}:\n{log}")
        return True

    return check


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[NetLab]:
    with NetLab(3) as built:
        print(f"run directory: {tmp_path}; lab {built.prefix}")
        yield built


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


@pytest.mark.req("API-10.1-3")
def test_a_connection_flood_under_1024_descriptors_then_a_crash(
    lab: NetLab, tmp_path: Path
) -> None:
    paths = _configs(tmp_path, lab)
    procs: dict[int, subprocess.Popen[bytes]] = {}
    for i in lab.ids:
        limit = ["prlimit", f"--nofile={FD_LIMIT}"] if i == 1 else []
        with (tmp_path / f"n{i}.log").open("wb") as log:
            argv = [*limit, *GCS, "node", "--config", str(paths[i - 1])]
            procs[i] = lab.popen(i, argv, stdout=subprocess.DEVNULL, stderr=log)
    started: list[subprocess.Popen[Any]] = []
    try:
        _flood_then_crash(lab, tmp_path, paths, procs, started)
    finally:
        for proc in started:
            _stop(proc)


def _flood_then_crash(
    lab: NetLab,
    tmp_path: Path,
    paths: list[Path],
    procs: dict[int, subprocess.Popen[bytes]],
    started: list[subprocess.Popen[Any]],
) -> None:
    alive = _alive(procs, tmp_path, 1, 2)
    wait_for(
        "one ring of nodes 1-3 at node 1",
        lambda: (
            alive() and (s := daemon_status(paths[0])) is not None and s["members"] == [1, 2, 3]
        ),
        timeout=WAIT_S,
        interval=0.2,
    )
    listeners = {}
    for i in (1, 3):
        argv = [*GCS, "listen", "--config", str(paths[i - 1]), "--group", "g", "--json"]
        started.append(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True))
        listeners[i] = _Lines(started[-1])
    member_of = {}

    def both_in_view() -> bool:
        alive()
        for i, listener in listeners.items():
            views = [e for e in listener.json() if e["type"] == "view"]
            if not views or len(views[-1]["members"]) != 2:  # type: ignore[arg-type]
                return False
            joined = views[0]["joined"]
            member_of[i] = next(m for m in joined if m[0] == i)  # type: ignore[union-attr]
        return True

    wait_for("listeners on nodes 1 and 3 in one view", both_in_view, timeout=WAIT_S)

    flood_argv = [sys.executable, str(Path(__file__).with_name("flood.py"))]
    flood = subprocess.Popen(
        [*flood_argv, str(tmp_path / "n1.sock"), str(ATTEMPTS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    started.append(flood)
    assert flood.stdout is not None and flood.stdin is not None
    summary = json.loads(flood.stdout.readline() or "null")
    print(f"flood: {summary}")
    assert summary is not None, "the attacker died"
    assert summary["connected"] + sum(summary["failed"].values()) == ATTEMPTS
    assert summary["served"] < FD_LIMIT, "the cap kept the daemon's descriptors"
    assert set(summary["refused"]) == {"refused: too many clients"}, summary
    assert sum(summary["refused"].values()) + summary["served"] == ATTEMPTS, summary
    alive()

    procs[3].kill()  # SIGKILL: a membership change, so a ring seq to store at node 1
    procs[3].wait()

    def node_3_gone_at_1() -> bool:
        alive()
        last = [e for e in listeners[1].json() if e["type"] == "view"][-1]
        return not last["transitional"] and last["members"] == [member_of[1]]

    wait_for("node 1's listener to see node 3's member go", node_3_gone_at_1, WAIT_S)
    flood.stdin.close()  # the attacker releases its connections
    assert flood.wait(timeout=WAIT_S) == 0

    wait_for(
        "node 1 to serve a new client",
        lambda: alive() and daemon_status(paths[0]) is not None,
        timeout=WAIT_S,
        interval=0.2,
    )
    final = daemon_status(paths[0])
    assert final is not None and final["members"] == [1, 2] and final["failure"] is None
    sent = gcs_cli("send", "--config", str(paths[0]), "--group", "g", "after the flood")
    assert sent.returncode == 0, sent.stderr
    wait_for(
        "the listener on node 1 to receive the message sent after the flood",
        lambda: any(e.get("data") == "after the flood" for e in listeners[1].json()),
        WAIT_S,
    )
    log = (tmp_path / "n1.log").read_text()
    refusals = [line for line in log.splitlines() if "refused" in line]
    assert 1 <= len(refusals) <= 3, f"refusals are logged once, then summarised: {refusals}"
    assert "lowered to" in log, "the daemon said why it serves fewer than max_clients"
