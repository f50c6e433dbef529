"""Generate protocol/vectors/capture-3-nodes-kill.json: every datagram of a short real run.

Three real node processes (``tools/capture_node.py``) run on the loopback interface of a
private network namespace, keyed with the published test key (bytes 0x00..0x3f). The run:

1. the three nodes start and form one ring;
2. each joins a process group and sends three messages (every third one safe);
3. an iptables rule drops node 3's datagrams to node 2, and node 3 sends four messages of 600
   bytes (two mcasts): node 1 receives and delivers them, node 2 cannot;
4. node 3 is killed with SIGKILL; nodes 1 and 2 lose the token, form a new ring, and in its
   recovery node 1 re-sends node 3's messages, encapsulated, so that node 2 delivers them too
   (RFC 0004 §6);
5. nodes 1 and 2 send three messages each on the new ring; once everything is delivered and the
   ring is idle, both are stopped (SIGSTOP, then the capture ends, then SIGKILL).

A packet socket on the namespace's loopback records every UDP datagram as it arrives, in
arrival order, with its source and destination port (one port per node). Each node records its
own history (``capture_node.py``): configurations, tokens sent, messages delivered. The file
holds the datagrams, the key, and the expected sequence taken from those histories. Before
writing, the tool checks that the run contains re-sent old-ring messages delivered at node 2,
and that the reference observer (``tests/wire/observer.py``) reconstructs exactly the expected
sequence from the datagrams alone; a run that fails a check (a kill landing between a node's
record and its send, say) is run again, up to ``--attempts`` times.

Needs root (a network namespace, iptables, a packet socket) and ``ip``/``iptables``; it
creates the namespace ``gcs-capture-<pid>`` and deletes it when done. The capture is not
byte-for-byte reproducible (boot ids are wall-clock milliseconds, timing differs), so the
committed file is the reference, checked by tests/wire/test_capture.py.

    sudo python tools/make_capture.py            # writes protocol/vectors/capture-3-nodes-kill.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gcs.wire.codec import cluster_id_for  # noqa: E402
from gcs.wire.limits import WireLimits  # noqa: E402
from tests.wire import observer  # noqa: E402

OUT = ROOT / "protocol" / "vectors" / "capture-3-nodes-kill.json"
CLUSTER = "gcs-capture"
KEY = bytes(range(64))  # the published test key: never use it for a real cluster
PORTS = {1: 5401, 2: 5402, 3: 5403}
TOKEN_TIMEOUT_MS = 400
GROUP = "capture"
WAIT_S = 30.0
ETH_P_ALL = 3
PACKET_HOST = 0
SOL_PACKET, PACKET_STATISTICS = 263, 6


# ------------------------------------------------------------------ the packet capture


class Sniffer:
    """Every UDP datagram arriving on ``lo`` between the nodes' ports, in arrival order."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE: never drop
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.05)
        self.packets: list[tuple[int, int, int, bytes]] = []  # (time ns, src port, dst port, data)
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        ports = set(PORTS.values())
        while self.running:
            try:
                frame, address = self.sock.recvfrom(1 << 17)
            except TimeoutError:
                continue
            if address[2] != PACKET_HOST or frame[12:14] != b"\x08\x00":
                continue  # the outgoing copy of a loopback packet, or not IPv4
            ip = frame[14:]
            if ip[9] != socket.IPPROTO_UDP:
                continue
            udp = ip[(ip[0] & 15) * 4 :]
            src, dst, length = struct.unpack(">HHH", udp[:6])
            if src in ports and dst in ports:
                self.packets.append((time.monotonic_ns(), src, dst, bytes(udp[8:length])))

    def stop(self) -> int:
        """Stop reading; return how many packets the kernel dropped (must be 0)."""
        self.running = False
        self.thread.join()
        _, drops = struct.unpack("II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        self.sock.close()
        return int(drops)


# ------------------------------------------------------------------ the node processes


class NodeProc:
    def __init__(self, node: int, workdir: Path) -> None:
        self.node = node
        self.record = workdir / f"node{node}.jsonl"
        self.events: list[dict[str, Any]] = []
        argv = [sys.executable, str(ROOT / "tools" / "capture_node.py")]
        argv += ["--config", str(workdir / f"node{node}.toml"), "--record", str(self.record)]
        stderr = (workdir / f"node{node}.stderr").open("w")
        self.popen = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        stderr.close()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.events.append(json.loads(line))

    def command(self, line: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    def ring(self) -> dict[str, Any] | None:
        return next((e for e in reversed(self.events) if e["event"] == "ring"), None)

    def delivered(self) -> int:
        counts = [e["count"] for e in self.events if e["event"] == "delivered"]
        return counts[-1] if counts else 0

    def saw(self, event: str) -> bool:
        return any(e["event"] == event for e in self.events)


def wait(what: str, predicate: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.005)


def in_ring(procs: list[NodeProc], members: list[int]) -> bool:
    rings = [p.ring() for p in procs]
    return (
        all(
            r is not None and not r["transitional"] and sorted(r["members"]) == members
            for r in rings
        )
        and len({tuple(r["ring_id"]) for r in rings if r is not None}) == 1
    )


def iptables(*args: str) -> None:
    subprocess.run(["iptables", "-w", *args], check=True)


def write_configs(workdir: Path) -> None:
    key_file = workdir / "cluster.key"
    key_file.write_bytes(KEY)
    key_file.chmod(0o600)
    for node in PORTS:
        lines = [
            f'cluster_name = "{CLUSTER}"',
            f"node_id = {node}",
            f'key_file = "{key_file}"',
            f'state_dir = "{workdir / f"state{node}"}"',
            f"token_timeout_ms = {TOKEN_TIMEOUT_MS}",
            "recorder_inputs = 0",
        ]
        for other, port in PORTS.items():
            lines += ["", "[[nodes]]", f"id = {other}", f'address = "127.0.0.1:{port}"']
        (workdir / f"node{node}.toml").write_text("\n".join(lines) + "\n")


# ------------------------------------------------------------------ one run


def run_once(workdir: Path) -> dict[str, Any]:
    """Run the scenario of the module docstring; return the capture document."""
    write_configs(workdir)
    sniffer = Sniffer()
    procs = {n: NodeProc(n, workdir) for n in PORTS}
    script: list[dict[str, Any]] = []

    def step(text: str) -> None:
        script.append({"before_datagram": len(sniffer.packets), "step": text})

    try:
        step("nodes 1, 2 and 3 start")
        wait("a ring of 1, 2, 3", lambda: in_ring(list(procs.values()), [1, 2, 3]))
        step(f"each node joins group {GROUP!r} and sends 3 messages (the third safe)")
        for p in procs.values():
            p.command(f"join {GROUP}")
        wait("the joins", lambda: all(p.saw("joined") for p in procs.values()))
        for p in procs.values():
            p.command(f"send {GROUP} 3 3")
        wait("9 deliveries everywhere", lambda: all(p.delivered() >= 9 for p in procs.values()))
        step("iptables drops node 3's datagrams to node 2; node 3 sends 4 messages of 600 bytes")
        drop = ["OUTPUT", "-p", "udp", "--sport", str(PORTS[3]), "--dport", str(PORTS[2])]
        iptables("-A", *drop, "-j", "DROP")
        procs[3].command(f"send {GROUP} 4 0 600")  # two per mcast: two carriers later
        wait("node 1 to deliver node 3's messages", lambda: procs[1].delivered() >= 13)
        step("kill -9 node 3")
        procs[3].popen.send_signal(signal.SIGKILL)
        procs[3].popen.wait()
        survivors = [procs[1], procs[2]]
        wait("a ring of 1, 2", lambda: in_ring(survivors, [1, 2]))
        iptables("-D", *drop, "-j", "DROP")
        step("the iptables rule is removed; nodes 1 and 2 send 3 messages each")
        wait("node 2 to deliver node 3's messages", lambda: procs[2].delivered() >= 13)
        for p in survivors:
            p.command(f"send {GROUP} 3")
        wait("19 deliveries at 1 and 2", lambda: all(p.delivered() >= 19 for p in survivors))
        time.sleep(3 * TOKEN_TIMEOUT_MS / 1000)  # the ring goes idle: the token is held
        step("nodes 1 and 2 are stopped (SIGSTOP), then the capture ends")
        for p in survivors:
            p.popen.send_signal(signal.SIGSTOP)
        time.sleep(0.2)
    finally:
        drops = sniffer.stop()
        for p in procs.values():
            if p.popen.poll() is None:
                p.popen.send_signal(signal.SIGKILL)
                p.popen.wait()
    if drops:
        raise RuntimeError(f"the packet socket dropped {drops} packets")
    boots = {
        n: next(e["boot_id"] for e in p.events if e["event"] == "started") for n, p in procs.items()
    }
    return document(sniffer.packets, procs, boots, script)


# ------------------------------------------------------------------ the document


def document(
    packets: list[tuple[int, int, int, bytes]],
    procs: dict[int, NodeProc],
    boots: dict[int, int],
    script: list[dict[str, Any]],
) -> dict[str, Any]:
    node_of = {port: node for node, port in PORTS.items()}
    start = packets[0][0] if packets else 0
    datagrams = [
        {
            "index": i,
            "time_ms": round((t - start) / 1e6, 3),
            "src": node_of[src],
            "dst": node_of[dst],
            "datagram": data.hex(),
        }
        for i, (t, src, dst, data) in enumerate(packets)
    ]
    records = {
        n: [json.loads(line) for line in p.record.read_text().splitlines()]
        for n, p in procs.items()
    }
    limits = WireLimits()
    return {
        "format": "gcs-capture/1",
        "description": "Every datagram of a real three-node run on loopback: formation, traffic, "
        "node 3 killed with SIGKILL, recovery with node 3's messages re-sent by node 1, the new "
        "ring, traffic (tools/make_capture.py; protocol/README.md describes the format)",
        "params": {
            "cluster_name": CLUSTER,
            "cluster_id": cluster_id_for(CLUSTER),
            "key": KEY.hex(),
            "nodes": {
                str(n): {"address": f"127.0.0.1:{PORTS[n]}", "boot_id": boots[n]} for n in PORTS
            },
            "token_timeout_ms": TOKEN_TIMEOUT_MS,
            "limits": {"max_datagram_bytes": limits.max_datagram_bytes},
        },
        "script": script,
        "killed": [3],
        "datagrams": datagrams,
        "expected": expected(records),
    }


def expected(records: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    """The sequence the nodes recorded, limited to what crossed the network: rings of one node
    (each node's start-up ring) and what was delivered in them never left the node."""
    multi = {
        _ring_key(r["configuration"]["ring_id"]): r["configuration"]["members"]
        for rows in records.values()
        for r in rows
        if "configuration" in r
        and r["configuration"]["kind"] == "regular"
        and len(r["configuration"]["members"]) > 1
    }
    rings = [
        {"ring_id": {"rep": rep, "seq": seq}, "members": members}
        for (seq, rep), members in sorted(multi.items())
    ]
    nodes = {}
    for node, rows in records.items():
        nodes[str(node)] = {
            "configurations": [
                r["configuration"]
                for r in rows
                if "configuration" in r and _ring_key(r["configuration"]["ring_id"]) in multi
            ],
            "tokens": [r["token"] for r in rows if "token" in r],
            "delivered": [
                r["deliver"]
                for r in rows
                if "deliver" in r and _ring_key(r["deliver"]["origin"]) in multi
            ],
        }
    for ring in rings:
        rep = ring["ring_id"]["rep"]
        sent = {
            t["token_seq"] for t in nodes[str(rep)]["tokens"] if t["ring_id"] == ring["ring_id"]
        }
        ring["rotations"] = len(sent)
    return {"rings": rings, "nodes": nodes}


def _ring_key(ring: dict[str, int]) -> tuple[int, int]:
    return ring["seq"], ring["rep"]


def problems(doc: dict[str, Any]) -> list[str]:
    """Why this run cannot be the capture (empty: it can)."""
    found = observer.observe(doc)
    out = observer.compare(found, doc)
    carriers = [c for c in found.carriers if c["inner_sender"] == 3]
    if not carriers:
        out.append("no re-sent (encapsulated) message of node 3 in the capture")
    if len(doc["expected"]["rings"]) < 2:
        out.append("fewer than two rings")
    return out


# ------------------------------------------------------------------ namespace and main


def inside(args: argparse.Namespace) -> int:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for attempt in range(1, args.attempts + 1):
        with tempfile.TemporaryDirectory(prefix="gcs-capture-") as tmp:
            doc = run_once(Path(tmp))
        issues = problems(doc)
        print(f"attempt {attempt}: {len(doc['datagrams'])} datagrams, {len(issues)} problems")
        for issue in issues[:10]:
            print(f"  {issue}")
        if not issues:
            Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
            print(f"wrote {args.out}")
            return 0
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--attempts", type=int, default=5)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("make_capture needs root: a network namespace, iptables, a packet socket")
        return 2
    if args.inside:
        return inside(args)
    namespace = f"gcs-capture-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        argv = [sys.executable, __file__, "--inside", "--out", args.out]
        argv += ["--attempts", str(args.attempts)]
        return subprocess.run(["ip", "netns", "exec", namespace, *argv], check=False).returncode
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)


if __name__ == "__main__":
    sys.exit(main())
