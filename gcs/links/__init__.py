"""Redundant links: per-peer link health and the choice of links for each frame (RFC 0010).

A node may reach its peers over several independent networks (links). Which of them are up,
which carry the next frame, when to send a heartbeat and when a cut link has healed is decided
here, by ``Links``: a deterministic state machine without I/O, clock or randomness, like the
wire layer's ``Channel``. Both drivers (the asyncio runtime and the simulator's hosts) own one,
feed it what they send and receive with the time, and carry out what it returns, so a link bug
seen on a real network is reproducible in the simulator with a seed. The protocol core never
sees links: it asks for frames to go to nodes, and the driver picks the links.
"""

from __future__ import annotations

from gcs.links.health import (
    LinkChange,
    LinkMode,
    Links,
    LinkStatus,
    LinkTimings,
    Output,
    ProbeOut,
    Reroute,
)

__all__ = [
    "LinkChange",
    "LinkMode",
    "LinkStatus",
    "LinkTimings",
    "Links",
    "Output",
    "ProbeOut",
    "Reroute",
]
