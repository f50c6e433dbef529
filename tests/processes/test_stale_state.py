"""One authentic datagram must not be remembered against its sender for ever (RFC 0005 SEC-8.3-2).

Real keyed node processes on 127.0.0.1. The test plays a key holder (or a cloned machine): it
builds a ``Channel`` for node 3 with node 3's own boot id (read from its state directory), seals
datagrams of node 3's later key epochs, and sends them to node 2 from a socket of its own.
Before SEC-8.3-2, epochs 1 and 2 arriving once each evicted the epoch node 3 was really using, and
node 2 dropped all of node 3's traffic as ``old_epoch`` until node 3 restarted: 18 configuration
changes in 20 s at node 2 (the ring kept losing node 3's token). Now the epoch node 3 uses stays.
"""

from __future__ import annotations

import socket
import time

import pytest

from gcs.history import events as h
from gcs.wire.channel import Channel
from gcs.wire.frames import MembMergeDetect, RingId
from tests.processes.conftest import MakeCluster
from tests.procs.cluster import ProcCluster, wait_for
from tests.procs.judge import judge, liveness_params

pytestmark = pytest.mark.processes

RATE = 40.0
WATCH_S = 10.0


def _delivered_from(cluster: ProcCluster, receiver: int, sender: int, after_ns: int) -> int:
    """Messages of ``sender`` that ``receiver`` delivered after ``after_ns``."""
    history = cluster.snapshot()
    return sum(
        1
        for e in history.of(receiver, 1)
        if isinstance(e, h.Deliver) and e.time_ns > after_ns
        for m in e.msg_ids
        if m.node == sender
    )


def _forged_epochs(cluster: ProcCluster, key: bytes, ring: list[int]) -> dict[int, bytes]:
    """Node 3's datagrams of epochs 0..9 (counter 0 each), authentic under the cluster key."""
    boot = int((cluster.run_dir / "state3" / "boot_id").read_text())
    forger = Channel(3, boot, "proctest", key, epoch_frames=1)
    frame = MembMergeDetect(3, RingId(rep=ring[0], seq=ring[1]))  # ignored: 3 is a member
    return {epoch: forger.seal(frame) for epoch in range(10)}


@pytest.mark.req("SEC-8.3-2")
def test_authentic_datagrams_of_later_epochs_do_not_cut_their_sender_off(
    loopback: MakeCluster,
) -> None:
    cluster = loopback(3, keyed=True)
    cluster.start_all(rate=RATE)
    ring = cluster.wait_ring([1, 2, 3])
    key_file = cluster.run_dir / "cluster.key"
    forged = _forged_epochs(cluster, key_file.read_bytes(), ring)
    target = cluster.addresses[2].rsplit(":", 1)
    injected_ns = time.monotonic_ns()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for epoch in (1, 2, 9):  # the next epoch, the one after it, one far ahead
            sock.sendto(forged[epoch], (target[0], int(target[1])))
    time.sleep(WATCH_S)

    assert cluster.one_ring([1, 2, 3]), f"ring changed: {cluster.run_dir}"
    changes = [
        e for e in cluster.snapshot().of(2, 1) if isinstance(e, h.Conf) and e.time_ns > injected_ns
    ]
    assert changes == [], f"node 2 changed configuration {len(changes)} times: {changes[:4]}"
    wait_for(
        f"node 2 delivering node 3's messages after the injection ({cluster.run_dir})",
        lambda: _delivered_from(cluster, 2, 3, injected_ns + int(WATCH_S * 1e9) // 2) > 0,
    )
    log = (cluster.run_dir / "node2.stderr").read_text()
    assert "(epoch_jump)" in log and "(old_epoch)" not in log, log[-2000:]

    quiet_ns = cluster.quiet()
    params = liveness_params(quiet_ns, cluster.live())
    judge(cluster.paths(), history=cluster.settle(params), params=params, what="epoch injection")
    cluster.close()
    judge(cluster.paths(), what="epoch injection, complete history")
