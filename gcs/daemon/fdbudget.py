"""How many clients the daemon may serve without starving its own persistence of descriptors.

Why. Every client connection holds a descriptor, and the process has ``RLIMIT_NOFILE`` of them.
When idle clients took the last one, the next membership change could not open the file that
stores the ring seq, and the node fail-stopped (EMFILE): a local client took a healthy node out
of service. So the daemon serves at most

    min(max_clients, soft RLIMIT_NOFILE - descriptors in use at start - FD_RESERVE)

clients at once (RFC 0006 API-10.1-3), and the descriptors above that stay free for what the node
must be able to open at any time: the ring seq, boot id and quorum files (two descriptors each
while written: the file and its directory for the ``fsync``), the flight-recorder dump, the
metrics server's connections (``METRICS_CONNECTIONS``), and the one connection being refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = [
    "FD_RESERVE",
    "METRICS_CONNECTIONS",
    "ClientCap",
    "client_cap",
    "descriptors_in_use",
    "own_client_cap",
]

FD_RESERVE = 64
"""Descriptors never given to clients (the module docstring lists their uses, about 16)."""
METRICS_CONNECTIONS = 8
"""Metrics requests served at once; more are closed at once (they come from the reserve)."""
UNKNOWN_IN_USE = 64
"""Assumed descriptors in use where the process cannot list its own (no /proc or /dev/fd)."""


@dataclass(frozen=True, slots=True)
class ClientCap:
    """The client cap and the figures it came from (logged when it is below ``configured``)."""

    cap: int
    configured: int
    limit: int | None
    in_use: int
    reserve: int

    @property
    def lowered(self) -> bool:
        return self.cap < self.configured

    def describe(self) -> str:
        if not self.lowered:
            return f"max_clients {self.configured}"
        return (
            f"max_clients {self.configured} lowered to {self.cap}: RLIMIT_NOFILE is {self.limit}, "
            f"{self.in_use} descriptors in use, {self.reserve} kept for the node's own files"
        )


def descriptor_limit() -> int | None:
    """The soft ``RLIMIT_NOFILE`` (None: unlimited, or no such limit on this platform)."""
    try:
        import resource
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def descriptors_in_use() -> int:
    """How many descriptors this process has open now (``UNKNOWN_IN_USE`` if it cannot tell)."""
    for directory in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(directory)) - 1  # minus the one listdir itself held
        except OSError:
            continue
    return UNKNOWN_IN_USE


def client_cap(
    max_clients: int, limit: int | None, in_use: int, reserve: int = FD_RESERVE
) -> ClientCap:
    """The cap for ``max_clients`` under descriptor ``limit`` (None: unlimited); at least 1."""
    cap = max_clients if limit is None else min(max_clients, limit - in_use - reserve)
    return ClientCap(max(1, cap), max_clients, limit, in_use, reserve)


def own_client_cap(max_clients: int) -> ClientCap:
    """``client_cap`` with this process's limit and descriptors in use now."""
    return client_cap(max_clients, descriptor_limit(), descriptors_in_use())
