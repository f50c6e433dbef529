"""The lab network itself: topology, each fault does exactly what it says, cleanup always runs.

The ring tests in this directory trust ``NetLab`` to cut the links they name and no others;
these tests measure that with datagrams (``udp_probe.py``): every node listens, every node
sends to every other, and the receivers report what arrived from whom.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gcs.bench.netns import NetLab, NetLabError

pytestmark = pytest.mark.netns

PROBE = str(Path(__file__).with_name("udp_probe.py"))
PORT = 7000
SENT = 60


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def _matrix(lab: NetLab, link: int = 0) -> dict[tuple[int, int], int]:
    """Datagrams received per (src, dst) when every node sends ``SENT`` to every other, on
    ``link`` (from and to the nodes' addresses on it)."""
    receivers = {}
    for i in lab.ids:
        argv = [sys.executable, PROBE, "recv", lab.address(i, link), str(PORT), "0.3"]
        receivers[i] = lab.popen(i, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert receivers[i].stdout is not None
        assert receivers[i].stdout.readline().strip() == "ready"
    for src in lab.ids:
        for dst in lab.ids:
            if src != dst:
                argv = [sys.executable, PROBE, "send", lab.address(src, link)]
                lab.run(src, [*argv, lab.address(dst, link), str(PORT), str(SENT)])
    by_address = {lab.address(i, link): i for i in lab.ids}
    got: dict[tuple[int, int], int] = {}
    for dst, proc in receivers.items():
        out, _ = proc.communicate(timeout=30)
        for source, count in json.loads(out).items():
            got[(by_address[source], dst)] = count
    return {(s, d): got.get((s, d), 0) for s in lab.ids for d in lab.ids if s != d}


def test_faults_cut_exactly_the_links_they_name() -> None:
    with NetLab(3) as lab:
        assert [lab.address(i) for i in lab.ids] == ["10.77.0.1", "10.77.0.2", "10.77.0.3"]
        _matrix(lab)  # first datagrams may wait for ARP and the bridge; warm up
        assert set(_matrix(lab).values()) == {SENT}, "every link works before any fault"

        lab.partition([[1], [2, 3]])
        cut = _matrix(lab)
        assert {k for k, v in cut.items() if v == SENT} == {(2, 3), (3, 2)}
        assert {k for k, v in cut.items() if v == 0} == {(1, 2), (2, 1), (1, 3), (3, 1)}
        assert lab.dropped(1) > 0

        lab.heal()
        lab.drop_one_way(1, 2)
        one_way = _matrix(lab)
        assert one_way[(1, 2)] == 0
        assert all(v == SENT for k, v in one_way.items() if k != (1, 2))

        lab.heal()
        lab.loss(2, 0.5)
        lossy = _matrix(lab)
        assert 0 < lossy[(1, 2)] < SENT and 0 < lossy[(3, 2)] < SENT, lossy
        assert all(v == SENT for (_, dst), v in lossy.items() if dst != 2)

        lab.heal()
        assert set(_matrix(lab).values()) == {SENT}, "heal removes every fault"


@pytest.mark.req("LNK-3-1")
def test_two_links_are_two_networks_and_a_cut_takes_one_interface_out() -> None:
    """``links=2``: a second bridge and subnet; ``cut_link`` drops one node's one interface,
    both ways, and nothing else; ``restore_link`` brings it back."""
    with NetLab(3, links=2) as lab:
        assert [lab.address(i, 1) for i in lab.ids] == ["10.77.1.1", "10.77.1.2", "10.77.1.3"]
        for link in (0, 1):
            _matrix(lab, link)  # warm up ARP and the bridges
            assert set(_matrix(lab, link).values()) == {SENT}, link
        lab.cut_link(2, 0)
        cut = _matrix(lab, 0)
        assert {k for k, v in cut.items() if v == 0} == {(1, 2), (2, 1), (3, 2), (2, 3)}
        assert cut[(1, 3)] == cut[(3, 1)] == SENT
        assert set(_matrix(lab, 1).values()) == {SENT}, "the other link is untouched"
        rx_before, _ = lab.packets(2, 1)
        assert rx_before > 0 and lab.dropped(2) > 0
        lab.restore_link(2, 0)
        assert set(_matrix(lab, 0).values()) == {SENT}, "restore_link undoes the cut"


def test_close_kills_its_processes_and_deletes_its_namespaces_after_an_error() -> None:
    with pytest.raises(RuntimeError, match="boom"), NetLab(2) as lab:
        names = {lab.bridge_namespace, lab.namespace(1), lab.namespace(2)}
        assert names <= _namespaces()
        sleeper = lab.popen(1, ["sleep", "60"])
        raise RuntimeError("boom")
    assert sleeper.wait(timeout=10) != 0
    assert not names & _namespaces()
    with pytest.raises(NetLabError, match="closed"):
        lab.partition([[1], [2]])


def test_a_lab_never_reuses_or_removes_namespaces_it_did_not_create() -> None:
    with NetLab(1) as first:
        with pytest.raises(NetLabError, match="already exist"):
            NetLab(1, prefix=first.prefix)
        assert first.namespace(1) in _namespaces(), "the failed lab left the first one alone"
        with NetLab(1) as second:
            assert second.prefix != first.prefix
            assert second.address(1) == first.address(1)  # separate namespaces, no clash


def test_bad_arguments_are_refused() -> None:
    with NetLab(2) as lab:
        with pytest.raises(ValueError, match="every node"):
            lab.partition([[1]])
        with pytest.raises(ValueError, match="no node 3"):
            lab.address(3)
        with pytest.raises(ValueError, match="probability"):
            lab.loss(1, 1.5)
    with pytest.raises(ValueError, match="no room"):
        NetLab(5, subnet="10.77.0.0/30")
