"""Measure which lab links carry datagrams: ``recv`` counts arrivals per source, ``send`` fires.

    python udp_probe.py recv ADDR PORT SECONDS   -> prints {"source address": count} as JSON
    python udp_probe.py send ADDR DST PORT COUNT

Used by ``test_netlab.py`` inside NetLab namespaces (one receiver per node, then senders).
"""

from __future__ import annotations

import json
import socket
import sys
import time


def recv(addr: str, port: int, seconds: float) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, port))
    print("ready", flush=True)
    counts: dict[str, int] = {}
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            _, (source, _) = sock.recvfrom(64)
        except TimeoutError:
            break
        counts[source] = counts.get(source, 0) + 1
    print(json.dumps(counts), flush=True)


def send(addr: str, dst: str, port: int, count: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, 0))
    for _ in range(count):
        sock.sendto(b"probe", (dst, port))
        time.sleep(0.001)


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "recv":
        recv(rest[0], int(rest[1]), float(rest[2]))
    else:
        send(rest[0], rest[1], int(rest[2]), int(rest[3]))
