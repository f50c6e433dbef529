"""Lifecycle of real node processes (``tests.procs.node_proc``) for the process and netns tests.

``ProcCluster`` writes one TOML configuration per node, starts node processes (directly, or
inside a ``NetLab`` namespace through a launcher), reads their stdout protocol on a thread per
process, and keeps the *harness history* (``harness.jsonl``): the events no node can record
itself — ``Crash`` for a node it SIGKILLed (a killed process writes nothing more) and ``Fault``
for every fault it injects (the liveness checkers need them to tell a reaction to a fault from
a spurious view change). Its times are ``time.monotonic_ns()``, the clock the nodes use.

Waiting is polling with generous timeouts (``wait_for``): a slow machine makes a test slower,
never wrong. Failure messages carry the run directory, which holds every configuration,
history and per-node stderr log needed to reproduce or re-judge the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gcs.history.events import History, load_jsonl
from gcs.sim.checkers.liveness import check_liveness
from gcs.sim.checkers.params import CheckParams
from gcs.sim.checkers.verdict import Proc

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60.0
Launcher = Callable[[int, list[str], dict[str, Any]], "subprocess.Popen[str]"]


def wait_for(
    what: str | Callable[[], str],
    predicate: Callable[[], bool],
    timeout: float = TIMEOUT_S,
    interval: float = 0.05,
) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            text = what if isinstance(what, str) else what()
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {text}")
        time.sleep(interval)


def _local_launcher(node: int, argv: list[str], kw: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, **kw)


@dataclass
class NodeProc:
    """One running node process and what it reported on stdout."""

    node_id: int
    popen: subprocess.Popen[str]
    events: list[dict[str, Any]] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def incarnation(self) -> int | None:
        started = next((e for e in self.events if e["event"] == "started"), None)
        return None if started is None else int(started["incarnation"])

    @property
    def ring(self) -> dict[str, Any] | None:
        """The last ring configuration the node reported."""
        return next((e for e in reversed(self.events) if e["event"] == "ring"), None)

    @property
    def joined(self) -> bool:
        return self.saw("joined")

    def saw(self, event: str) -> bool:
        return any(e["event"] == event for e in self.events)

    def read(self) -> None:
        """The reader thread: stdout lines to ``events`` (anything else is ignored)."""
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                continue


class ProcCluster:
    """Node processes ``1..n`` sharing one run directory (see the module docstring)."""

    def __init__(
        self,
        run_dir: Path,
        addresses: Mapping[int, str | list[str]],
        *,
        key_file: Path | None = None,
        token_timeout_ms: int = 400,
        launcher: Launcher = _local_launcher,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.addresses = addresses
        self.launcher = launcher
        self.procs: dict[int, NodeProc] = {}
        self.harness = run_dir / "harness.jsonl"
        self.harness.touch()
        for node in addresses:
            self._write_config(node, key_file, token_timeout_ms, extra_config or {})

    # ------------------------------------------------------------------ files

    def config_path(self, node: int) -> Path:
        return self.run_dir / f"node{node}.toml"

    def history_path(self, node: int) -> Path:
        return self.run_dir / f"node{node}.jsonl"

    def paths(self) -> list[Path]:
        """Every history file of the run: the nodes' and the harness's."""
        nodes = [self.history_path(n) for n in self.addresses if self.history_path(n).exists()]
        return [*nodes, self.harness]

    def history(self) -> History:
        """The merged history of the run so far."""
        return load_jsonl(*self.paths())

    def snapshot(self) -> History:
        """A consistent cut of a running cluster: every event stamped before the cut time.

        Reading the files one after another while the nodes run is not a snapshot: a delivery
        read from one file can precede, in real time, the read of the file that will hold its
        origination. Cutting at a time taken *before* any file is read fixes that: a node
        writes each row before executing the row's effects, so anything that happened because
        of an event missing from the files (written after they were read, so after the cut)
        was stamped after the cut too, and is left out with it.
        """
        cut_ns = time.monotonic_ns()
        merged = load_jsonl(*self.paths())
        return History(e for e in merged.events if e.time_ns <= cut_ns)

    def count(self, node: int, event_type: str) -> int:
        """How many ``event_type`` rows node ``node``'s history file holds (all incarnations)."""
        path = self.history_path(node)
        if not path.exists():
            return 0
        return path.read_text().count(f'"type": "{event_type}"')

    def _write_config(
        self, node: int, key: Path | None, token_ms: int, extra: dict[str, Any]
    ) -> None:
        lines = [
            'cluster_name = "proctest"',
            f"node_id = {node}",
            f'state_dir = "{self.run_dir / f"state{node}"}"',
            f"token_timeout_ms = {token_ms}",
            "recorder_inputs = 0",
        ]
        if key is not None:
            lines.append(f'key_file = "{key}"')
        lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
        for other, address in sorted(self.addresses.items()):
            lines += ["", "[[nodes]]", f"id = {other}", f"address = {json.dumps(address)}"]
        self.config_path(node).write_text("\n".join(lines) + "\n")

    def record(self, row: dict[str, Any]) -> int:
        """Append one event to the harness history, stamped now; return the stamp."""
        now = time.monotonic_ns()
        with self.harness.open("a") as out:
            out.write(json.dumps({**row, "time_ns": now}) + "\n")
        return now

    def fault(self, kind: str, node: int = 0, **detail: Any) -> int:
        """Record a ``Fault`` (the simulator's nemesis kinds: partition, heal, block, ...)."""
        incarnation = 0
        if node and node in self.procs:
            incarnation = self.procs[node].incarnation or 0
        row = {"type": "Fault", "kind": kind, "node": node, "incarnation": incarnation}
        return self.record({**row, "detail": detail})

    # ------------------------------------------------------------------ lifecycle

    def start(self, node: int, *, rate: float = 0.0, extra: Sequence[str] = ()) -> NodeProc:
        """Start node ``node`` and wait until it joined its group (it is in a ring).

        A node that ran before starts its next incarnation (``next_incarnation`` of its history
        file), and a ``restart`` fault is recorded first.
        """
        if node in self.procs:
            assert self.procs[node].popen.poll() is not None, f"node {node} is still running"
            self._release(self.procs[node])
            self.fault("restart", node, wipe=False)
        argv = [
            sys.executable,
            "-m",
            "tests.procs.node_proc",
            "--config",
            str(self.config_path(node)),
            "--history",
            str(self.history_path(node)),
            "--rate",
            str(rate),
            *extra,
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        stderr = (self.run_dir / f"node{node}.stderr").open("a")
        kw = {"stdout": subprocess.PIPE, "stderr": stderr, "text": True, "cwd": ROOT, "env": env}
        popen = self.launcher(node, argv, kw)
        stderr.close()
        proc = NodeProc(node, popen)
        proc.reader = threading.Thread(target=proc.read, daemon=True, name=f"node{node}-stdout")
        proc.reader.start()
        self.procs[node] = proc
        wait_for(f"node {node} to start ({self.run_dir})", lambda: self._started(proc))
        return proc

    def _started(self, proc: NodeProc) -> bool:
        if proc.popen.poll() is not None:
            log = (self.run_dir / f"node{proc.node_id}.stderr").read_text()[-3000:]
            raise AssertionError(f"node {proc.node_id} exited {proc.popen.returncode}:\n{log}")
        return proc.joined

    def start_all(self, *, rate: float = 0.0, extra: Sequence[str] = ()) -> None:
        for node in self.addresses:
            self.start(node, rate=rate, extra=extra)

    def running(self) -> list[int]:
        return [n for n, p in self.procs.items() if p.popen.poll() is None]

    def kill(self, node: int) -> int:
        """SIGKILL ``node`` and record its ``Crash`` (and the fault) after it is gone."""
        proc = self.procs[node]
        proc.popen.send_signal(signal.SIGKILL)
        proc.popen.wait(timeout=TIMEOUT_S)
        stamp = self.fault("crash", node)
        incarnation = proc.incarnation or 0
        self.record({"type": "Crash", "node": node, "incarnation": incarnation})
        return stamp

    def stop(self, node: int, *, fault: bool = True) -> int:
        """SIGTERM ``node`` (a clean leave) and wait for it to exit 0; return when it was asked."""
        proc = self.procs[node]
        stamp = self.fault("leave", node) if fault else time.monotonic_ns()
        proc.popen.send_signal(signal.SIGTERM)
        code = proc.popen.wait(timeout=TIMEOUT_S)
        if proc.reader is not None:
            proc.reader.join(timeout=TIMEOUT_S)
        assert code == 0, f"node {node} exited {code} on SIGTERM; see {self.run_dir}"
        return stamp

    def quiet(self, nodes: Iterable[int] | None = None) -> int:
        """Stop the workload of ``nodes`` (default: all running) and wait until each says it
        stopped submitting; return when it was asked."""
        stamp = time.monotonic_ns()
        listed = list(self.running() if nodes is None else nodes)
        for node in listed:
            self.procs[node].popen.send_signal(signal.SIGUSR1)
        wait_for(
            f"nodes {listed} to stop their workload ({self.run_dir})",
            lambda: all(self.procs[n].saw("quiet") for n in listed),
        )
        return stamp

    def close(self) -> None:
        """Stop every node still running: SIGTERM, then SIGKILL for any that hang."""
        for node in self.running():
            self.procs[node].popen.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.popen.wait(timeout=TIMEOUT_S / 4)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()
            self._release(proc)

    @staticmethod
    def _release(proc: NodeProc) -> None:
        """Finish reading an exited process's stdout and close the pipe."""
        if proc.reader is not None:
            proc.reader.join(timeout=TIMEOUT_S)
        if proc.popen.stdout is not None:
            proc.popen.stdout.close()

    # ------------------------------------------------------------------ conditions

    def one_ring(self, members: Iterable[int], nodes: Iterable[int] | None = None) -> Any:
        """True when every one of ``nodes`` (default: ``members``) reports one regular ring
        whose members are exactly ``members``."""
        want = sorted(members)
        rings = []
        for node in want if nodes is None else nodes:
            ring = self.procs[node].ring
            if ring is None or ring["transitional"] or sorted(ring["members"]) != want:
                return False
            rings.append(tuple(ring["ring_id"]))
        return len(set(rings)) == 1

    def wait_ring(self, members: Iterable[int], nodes: Iterable[int] | None = None) -> list[int]:
        """Wait for ``one_ring``; return its ring id ``[rep, seq]``."""
        members = sorted(members)
        listed = list(members if nodes is None else nodes)
        wait_for(
            lambda: (
                f"one ring of {members} at nodes {listed} ({self.run_dir}); last rings: "
                f"{ {n: self.procs[n].ring for n in listed} }"
            ),
            lambda: self.one_ring(members, listed),
        )
        ring = self.procs[listed[0]].ring
        assert ring is not None
        return list(ring["ring_id"])

    def live(self) -> frozenset[Proc]:
        """The running incarnations, as the checkers name them."""
        return frozenset((n, self.procs[n].incarnation or 0) for n in self.running())

    def settle(self, params: CheckParams, timeout: float = TIMEOUT_S) -> History:
        """Wait until the merged history passes the liveness checker; return that history.

        A history read while messages are in flight fails liveness (some member has not
        delivered them yet); once the workload is quiet the ring catches up and it passes.
        If it never does, the error shows the checker's last report.
        """
        last: dict[str, Any] = {}

        def converged() -> bool:
            last["history"] = history = self.snapshot()
            verdict = check_liveness(history, params)
            last["report"] = verdict.summary()
            return verdict.valid is True

        wait_for(
            lambda: f"liveness in {self.run_dir}:\n{last.get('report', '')}",
            converged,
            timeout,
            interval=0.3,
        )
        history: History = last["history"]
        return history
