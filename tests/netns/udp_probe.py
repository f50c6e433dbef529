"""Measure which lab links carry datagrams: ``recv`` counts arrivals per source, ``send`` fires.

    python udp_probe.py recv ADDR PORT QUIET     -> {"source address": count} as JSON, once
                                                    stdin closes and QUIET s pass in silence
    python udp_probe.py send ADDR DST PORT COUNT

Used by ``test_netlab.py`` inside NetLab namespaces (one receiver per node, then senders).
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import sys
import time


def recv(addr: str, port: int, quiet: float) -> None:
    """Count until standard input closes (every sender is done), then until ``quiet`` seconds
    pass without a datagram: the window follows the senders, however slowly they start."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, port))
    print("ready", flush=True)
    counts: dict[str, int] = {}
    stdin_open = True
    while True:
        readable, _, _ = select.select([sock, sys.stdin] if stdin_open else [sock], [], [], quiet)
        if sys.stdin in readable and not sys.stdin.readline():
            stdin_open = False
        if sock in readable:
            _, (source, _) = sock.recvfrom(64)
            counts[source] = counts.get(source, 0) + 1
        elif not readable and not stdin_open:
            break
    print(json.dumps(counts), flush=True)


def send(addr: str, dst: str, port: int, count: int) -> None:
    """Send ``count`` datagrams; one refused by the local firewall (a cut link drops output:
    EPERM) is simply not sent, as a real node's refused send is counted and skipped."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, 0))
    for _ in range(count):
        with contextlib.suppress(PermissionError):
            sock.sendto(b"probe", (dst, port))
        time.sleep(0.001)


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "recv":
        recv(rest[0], int(rest[1]), float(rest[2]))
    else:
        send(rest[0], rest[1], int(rest[2]), int(rest[3]))
