"""The command line against real ``gcs node`` processes: node, send, listen, status, metrics,
replay-node, demo; and the one-line errors for a bad config and a missing daemon."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runtime.cluster import free_ports

pytestmark = pytest.mark.processes
GCS = [sys.executable, "-m", "gcs"]
WAIT_S = 30.0


def _write_configs(tmp: Path, count: int) -> list[Path]:
    ports = free_ports(count)
    nodes = "".join(
        f'\n[[nodes]]\nid = {i + 1}\naddress = "127.0.0.1:{p}"\n' for i, p in enumerate(ports)
    )
    subprocess.run([*GCS, "keygen", str(tmp / "k.key")], check=True, capture_output=True)
    paths = []
    for node in range(1, count + 1):
        path = tmp / f"n{node}.toml"
        path.write_text(
            f'cluster_name = "cli"\nnode_id = {node}\nkey_file = "k.key"\nstate_dir = "s{node}"\n'
            f"token_timeout_ms = 300\n{nodes}"
        )
        paths.append(path)
    return paths


def _gcs(
    *args: str, stdin: str | None = None, timeout: float = WAIT_S
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GCS, *args], input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )


def _wait_status(config: Path, predicate: object) -> dict[str, object]:
    deadline = time.monotonic() + WAIT_S
    last = ""
    while time.monotonic() < deadline:
        done = _gcs("status", "--config", str(config), "--json")
        if done.returncode == 0:
            status = json.loads(done.stdout)
            if predicate(status):  # type: ignore[operator]
                return status  # type: ignore[no-any-return]
        last = done.stderr
        time.sleep(0.1)
    raise AssertionError(f"status condition not reached; last error: {last}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[list[Path], list[subprocess.Popen[bytes]]]]:
    paths = _write_configs(tmp_path, 2)
    procs = []
    for i, path in enumerate(paths):
        with (tmp_path / f"n{i + 1}.log").open("wb") as log:
            metrics = ["--metrics-port", "0"] if i == 0 else []
            argv = [*GCS, "node", "--config", str(path), *metrics]
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log))
    try:
        _wait_status(paths[0], lambda s: s["members"] == [1, 2] and s["state"] == "operational")
        yield paths, procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_send_listen_status_and_dump(
    cluster: tuple[list[Path], list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    paths, _ = cluster
    listener = subprocess.Popen(
        [*GCS, "listen", "--config", str(paths[1]), "--group", "g", "--json", "--count", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    _wait_status(paths[1], lambda s: s["group_members"] == 1)
    sent = _gcs("send", "--config", str(paths[0]), "--group", "g", "-", stdin="one\ntwo\nthree\n")
    assert sent.returncode == 0, sent.stderr
    assert "sent 3 message(s)" in sent.stdout
    out, _ = listener.communicate(timeout=WAIT_S)
    assert listener.returncode == 0
    events = [json.loads(line) for line in out.splitlines()]
    data = [e["data"] for e in events if e["type"] == "message"]
    assert data == ["one", "two", "three"]
    first = next(e for e in events if e["type"] == "message")
    assert set(first) >= {"member", "ring_id", "seq", "view_id", "safe"} and first["member"][0] == 1
    views = [e for e in events if e["type"] == "view"]
    assert views and all({"members", "reason", "transitional"} <= set(v) for v in views)

    dump = tmp_path / "n1.cbor"
    status = _gcs("status", "--config", str(paths[0]), "--dump", str(dump))
    assert status.returncode == 0, status.stderr
    assert "members       1 2" in status.stdout and "view changes" in status.stdout
    replayed = _gcs("simulate", "replay-node", str(dump), timeout=120)
    assert replayed.returncode == 0 and "reproduced exactly" in replayed.stdout

    port = json.loads(_gcs("status", "--config", str(paths[0]), "--json").stdout)["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    assert 'gcs_up{cluster="cli",node="1"} 1.0' in text and "gcs_ring_members" in text


def test_sighup_is_ignored_and_sigterm_is_a_clean_leave(
    cluster: tuple[list[Path], list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    paths, procs = cluster
    procs[1].send_signal(signal.SIGHUP)  # does not reload, does not stop
    log = tmp_path / "n2.log"
    deadline = time.monotonic() + WAIT_S
    while "SIGHUP ignored" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "SIGHUP ignored" in log.read_text() and procs[1].poll() is None
    procs[1].send_signal(signal.SIGTERM)
    assert procs[1].wait(timeout=WAIT_S) == 0
    status = _wait_status(paths[0], lambda s: s["members"] == [1] and s["state"] == "operational")
    *_, transitional, regular = status["view_changes"]  # type: ignore[misc]
    assert transitional["kind"] == "transitional" and transitional["left"] == [2]
    assert regular["kind"] == "regular" and regular["members"] == [1]
    assert transitional["reason"] == regular["reason"] == "leave 2"


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    missing = _gcs("status", "--config", str(tmp_path / "none.toml"))
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "none.toml" in missing.stderr and "Traceback" not in missing.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('cluster_name = "x"\nnode_id = 1\ntoken_timout_ms = 5\n')
    typo = _gcs("node", "--config", str(bad))
    assert (
        typo.returncode == 1 and "token_timout_ms" in typo.stderr and "Traceback" not in typo.stderr
    )
    (path,) = _write_configs(tmp_path, 1)
    nobody = _gcs("send", "--config", str(path), "--group", "g", "hi")
    assert nobody.returncode == 1 and nobody.stderr.count("\n") == 1
    assert "no gcs node daemon" in nobody.stderr and "gcs node --config" in nobody.stderr


def test_every_command_has_help() -> None:
    for command in ("demo", "node", "send", "listen", "status", "keygen", "bench", "simulate"):
        done = _gcs(command, "--help")
        assert done.returncode == 0 and "usage: gcs" in done.stdout, command


def test_demo_orders_survives_a_crash_and_rejoins() -> None:
    done = _gcs("demo", "--messages", "20", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "transitional view" in out and "regular      view" in out
    assert "node_down 3" in out and "the same" in out and out.rstrip().endswith("node 3 is back")


@pytest.mark.parametrize("case", ["a file", "under a file", "uncreatable", "socket dir a file"])
def test_an_unusable_state_dir_is_one_line_naming_it(tmp_path: Path, case: str) -> None:
    """A state_dir that is a file, or cannot be created, is one line naming the setting (and
    the same for the control socket's directory), exit 1, no traceback."""
    (path,) = _write_configs(tmp_path, 1)
    (tmp_path / "afile").write_text("not a directory\n")
    setting, value = {
        "a file": ("state_dir", "afile"),
        "under a file": ("state_dir", "afile/state"),
        "uncreatable": ("state_dir", "/proc/gcs-no-such-dir/state"),
        "socket dir a file": ("control_socket", "afile/gcs.sock"),
    }[case]
    text = path.read_text().replace('state_dir = "s1"\n', f'{setting} = "{value}"\n')
    path.write_text(text)
    done = _gcs("node", "--config", str(path), timeout=WAIT_S)
    assert done.returncode == 1, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"gcs node: {setting}: "), done.stderr


class _Pipe:
    """A process's stdout lines, read by a thread (so a test can wait for one with a deadline)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.lines: list[str] = []
        stdout = proc.stdout
        threading.Thread(target=lambda: self.lines.extend(stdout), daemon=True).start()

    def data(self) -> list[str]:
        rows = [json.loads(line) for line in list(self.lines)]
        return [r["data"] for r in rows if r["type"] == "message"]


def _wait(what: str, predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_send_dash_streams_lines_as_they_arrive(
    cluster: tuple[list[Path], list[subprocess.Popen[bytes]]],
) -> None:
    """``tail -f log | gcs send ... -``: each line goes out when it is complete, not at EOF."""
    paths, _ = cluster
    listen = [*GCS, "listen", "--config", str(paths[1]), "--group", "g", "--json", "--count", "3"]
    listener = subprocess.Popen(listen, stdout=subprocess.PIPE, text=True)
    send = [*GCS, "send", "--config", str(paths[0]), "--group", "g", "-"]
    sender = subprocess.Popen(
        send, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert sender.stdin is not None
    try:
        received = _Pipe(listener)
        _wait_status(paths[1], lambda s: s["group_members"] == 1)
        sender.stdin.write("first\n")
        sender.stdin.flush()
        _wait("the first line to be delivered while stdin is open", lambda: received.data() != [])
        assert sender.poll() is None and received.data() == ["first"]
        sender.stdin.write("second\nthird")  # the last line has no newline: sent at EOF
        sender.stdin.close()
        code = sender.wait(timeout=WAIT_S)
        assert sender.stdout is not None and sender.stderr is not None
        assert code == 0, sender.stderr.read()
        assert "sent 3 message(s)" in sender.stdout.read()
        assert listener.wait(timeout=WAIT_S) == 0
        assert received.data() == ["first", "second", "third"]
    finally:
        for proc in (sender, listener):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None and not stream.closed:
                    stream.close()


def _exchange(sock: socket.socket, item: dict[str, Any]) -> dict[str, Any]:
    """Send one request; return its reply (events read on the way are skipped)."""
    from gcs.daemon import protocol as proto

    sock.sendall(proto.encode(item))
    while True:
        header = _read_exactly(sock, 4)
        frame = proto.decode(_read_exactly(sock, proto.LENGTH.unpack(header)[0]))
        if frame.get("re") == item["id"]:
            return frame


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "the daemon closed the connection"
        data += chunk
    return data


@pytest.mark.req("API-10.2-3")
def test_unknown_send_numbers_and_handles_are_typed_errors(
    cluster: tuple[list[Path], list[subprocess.Popen[bytes]]], tmp_path: Path
) -> None:
    """``delivered`` naming no send of the connection is ``InvalidArgument``; ``leave`` of a
    handle the connection has not joined (or whose stream ended) is ``GroupClosed``."""
    from gcs.daemon import protocol as proto

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(WAIT_S)
    sock.connect(str(tmp_path / "s1" / "gcs.sock"))
    with sock:
        hello = {"op": "hello", "id": 1, "version": proto.PROTOCOL_VERSION}
        assert "ok" in _exchange(sock, hello)
        handle = _exchange(sock, {"op": "join", "id": 2, "group": "g"})["ok"]["handle"]
        sent = _exchange(sock, {"op": "send", "id": 3, "handle": handle, "data": b"x", "safe": 0})
        assert sent["error"]["type"] == "ControlProtocolError"  # safe must be a bool
        sent = _exchange(
            sock, {"op": "send", "id": 4, "handle": handle, "data": b"x", "safe": False}
        )
        assert sent["ok"] == {"send": 1}, "accepted sends are numbered 1, 2, ... per connection"
        assert _exchange(sock, {"op": "delivered", "id": 5, "send": 1}) == {"re": 5, "ok": {}}
        for req_id, number in ((6, 0), (7, 2), (8, 4)):  # 4: the id of the send request
            refused = _exchange(sock, {"op": "delivered", "id": req_id, "send": number})
            assert refused["error"]["type"] == "InvalidArgument", refused
        stranger = _exchange(sock, {"op": "leave", "id": 9, "handle": handle + 1})
        assert stranger["error"]["type"] == "GroupClosed", stranger
        assert _exchange(sock, {"op": "leave", "id": 10, "handle": handle}) == {"re": 10, "ok": {}}
        again = _exchange(sock, {"op": "leave", "id": 11, "handle": handle})
        assert again["error"]["type"] == "GroupClosed", "a member whose stream ended is gone"
