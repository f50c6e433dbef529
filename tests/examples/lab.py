"""Run example services as OS processes in network namespaces, and talk to them.

Each replica runs in its own namespace of a ``NetLab`` (so partitions are iptables rules
between real sockets) and serves clients on a Unix socket in the test's directory: the file
system is shared across network namespaces, so the test process reaches every replica
whatever the partition. ``Service`` starts, kills (SIGKILL) and restarts replicas and sends them
JSON-line requests; nothing here sleeps to assert timing, ``wait_for`` polls with a generous
bound.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gcs.bench.netns import NetLab
from tests.runtime.cluster import make_key

PORT = 5405
TIMEOUT_S = 60.0


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class Service:
    """``nodes`` replicas of ``script`` (an examples/ program) in a lab (see module docstring)."""

    def __init__(self, lab: NetLab, script: Path, run_dir: Path, token_timeout_ms: int = 400):
        self.lab = lab
        self.script = script
        self.dir = run_dir
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        key = make_key(run_dir)
        nodes = "".join(
            f'[[nodes]]\nid = {i}\naddress = "{lab.address(i)}:{PORT}"\n\n' for i in lab.ids
        )
        for i in lab.ids:
            (run_dir / f"node{i}.toml").write_text(
                f'cluster_name = "example"\nnode_id = {i}\nkey_file = "{key}"\n'
                f'state_dir = "state{i}"\ntoken_timeout_ms = {token_timeout_ms}\n\n{nodes}'
            )

    def socket(self, i: int) -> Path:
        return self.dir / f"r{i}.sock"

    def log(self, i: int) -> Path:
        return self.dir / f"applied-{i}.jsonl"

    def start(self, i: int) -> None:
        argv = [sys.executable, str(self.script), str(self.dir / f"node{i}.toml")]
        argv += ["--socket", str(self.socket(i)), "--log", str(self.log(i))]
        with (self.dir / f"stderr-{i}.txt").open("ab") as err:
            self.procs[i] = self.lab.popen(i, argv, stdout=err, stderr=err)

    def kill(self, i: int) -> None:
        proc = self.procs.pop(i)
        proc.kill()
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for i in list(self.procs):
            self.kill(i)

    def request(self, i: int, item: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """One request to replica ``i``; ``{"ok": False, "error": ...}`` if it is unreachable."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(str(self.socket(i)))
                sock.sendall(json.dumps(item).encode() + b"\n")
                data = b""
                while not data.endswith(b"\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except OSError as exc:
                return {"ok": False, "error": f"unreachable: {exc}"}
        if not data:
            return {"ok": False, "error": "connection closed"}
        reply: dict[str, Any] = json.loads(data)
        return reply

    def status(self, i: int) -> dict[str, Any]:
        return self.request(i, {"op": "status"}, timeout=5.0)

    def ready(self, nodes: list[int], members: int) -> None:
        """Wait until every replica in ``nodes`` is quorate, has the state, sees ``members``."""

        def good() -> bool:
            for i in nodes:
                s = self.status(i)
                if not (s.get("ok") and s.get("quorate") and s.get("installed")):
                    return False
                if len(s.get("members", [])) != members:
                    return False
            return True

        wait_for(f"replicas {nodes} quorate with {members} members ({self.dir})", good)

    def logs(self) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        for i in self.lab.ids:
            path = self.log(i)
            lines = path.read_text().splitlines() if path.exists() else []
            out[i] = [json.loads(line) for line in lines if line.strip()]
        return out
