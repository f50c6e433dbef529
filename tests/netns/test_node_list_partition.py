"""Node-list changes across a real partition (RFC 0008 QRM-3.7-1): five ``gcs node`` daemons,
one per network namespace, split 2|3 by iptables; both sides are asked to add a node, with
different addresses. Only the quorate side's change applies, and after the heal every node
holds it. Then, with a node killed, a 2|2 split refuses the change on both sides."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gcs.bench.netns import NetLab
from tests.netns.daemons import GCS, WAIT_S, daemon_status, gcs_cli
from tests.procs.cluster import wait_for
from tests.runtime.cluster import make_key

pytestmark = pytest.mark.netns

PORT = 5405


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[NetLab]:
    with NetLab(5) as built:
        print(f"run directory: {tmp_path}; lab {built.prefix}")
        yield built


def _configs(tmp: Path, lab: NetLab) -> list[Path]:
    key = make_key(tmp)
    nodes = "".join(
        f'\n[[nodes]]\nid = {i}\naddress = "{lab.address(i)}:{PORT}"\n' for i in lab.ids
    )
    paths = []
    for i in lab.ids:
        path = tmp / f"n{i}.toml"
        path.write_text(
            f'cluster_name = "split"\nnode_id = {i}\nkey_file = "{key}"\nstate_dir = "s{i}"\n'
            f'control_socket = "n{i}.sock"\ntoken_timeout_ms = 400\n{nodes}\n'
            "[quorum]\nnode_changes = true\n"
        )
        paths.append(path)
    return paths


def _members(config: Path, members: list[int]) -> bool:
    status = daemon_status(config)
    return status is not None and status["members"] == members and status["state"] == "operational"


def _add(config: Path, node: int, address: str) -> subprocess.Popen[str]:
    argv = [*GCS, "nodes", "add", "--config", str(config), str(node), address, "--json"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.req("QRM-3.7-1", "QRM-3.7-6", "API-3.8-2")
def test_only_the_quorate_side_of_a_split_changes_the_list(lab: NetLab, tmp_path: Path) -> None:
    paths = _configs(tmp_path, lab)
    procs = {}
    for i in lab.ids:
        with (tmp_path / f"n{i}.log").open("wb") as log:
            argv = [*GCS, "node", "--config", str(paths[i - 1])]
            procs[i] = lab.popen(i, argv, stdout=subprocess.DEVNULL, stderr=log)
    wait_for("one ring of five", lambda: _members(paths[0], [1, 2, 3, 4, 5]), timeout=WAIT_S)

    lab.partition([[1, 2], [3, 4, 5]])
    wait_for("side 1-2", lambda: _members(paths[0], [1, 2]), timeout=WAIT_S)
    wait_for("side 3-5", lambda: _members(paths[2], [3, 4, 5]), timeout=WAIT_S)
    minority = _add(paths[0], 6, f"{lab.address(1)}:{PORT + 1}")
    majority = _add(paths[2], 6, f"{lab.address(3)}:{PORT + 1}")
    out_min, err_min = minority.communicate(timeout=WAIT_S)
    out_maj, err_maj = majority.communicate(timeout=WAIT_S)
    assert minority.returncode != 0 and "not_quorate" in err_min, (out_min, err_min)
    assert majority.returncode == 0, err_maj
    added = json.loads(out_maj)
    assert added["version"] == 1 and added["expected_votes"] == 6

    lab.heal()
    wait_for("one ring of five again", lambda: _members(paths[0], [1, 2, 3, 4, 5]), timeout=WAIT_S)
    for path in paths:
        wait_for(
            f"version 1 at {path.stem}",
            lambda path=path: (
                (s := daemon_status(path)) is not None
                and s["node_list"] == {"version": 1, "nodes": [1, 2, 3, 4, 5, 6]}
            ),
            timeout=WAIT_S,
        )
    listed = json.loads(gcs_cli("nodes", "list", "--config", str(paths[0]), "--json").stdout)
    six = next(n for n in listed["nodes"] if n["id"] == 6)
    assert six["addresses"] == [f"{lab.address(3)}:{PORT + 1}"], "the majority's change"

    # Four of six votes left: a 2|2 split leaves neither side quorate.
    procs[5].send_signal(signal.SIGKILL)
    procs[5].wait(timeout=WAIT_S)
    wait_for("ring of four", lambda: _members(paths[0], [1, 2, 3, 4]), timeout=WAIT_S)
    lab.partition([[1, 2], [3, 4, 5]])
    wait_for("side 1-2", lambda: _members(paths[0], [1, 2]), timeout=WAIT_S)
    wait_for("side 3-4", lambda: _members(paths[2], [3, 4]), timeout=WAIT_S)
    attempts = [
        _add(paths[0], 7, f"{lab.address(1)}:{PORT + 2}"),
        _add(paths[2], 7, f"{lab.address(3)}:{PORT + 2}"),
    ]
    for attempt in attempts:
        out, err = attempt.communicate(timeout=WAIT_S)
        assert attempt.returncode != 0 and "not_quorate" in err, (out, err)
    for path in paths[:4]:
        status = daemon_status(path)
        assert status is not None and status["node_list"]["version"] == 1
