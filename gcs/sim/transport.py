"""Real bytes on the simulated network: each simulated host seals and opens with a ``Channel``.

The simulator uses the same wire layer as the runtime (RFC 0001 §4, RFC 0007 §3), so the codec,
the AEAD, the anti-replay windows and the drop counters are exercised by every simulated run, and
a corrupted or replayed datagram is handled exactly as on a real socket.
"""

from __future__ import annotations

import logging
from typing import Any

from gcs.sim.world import Transport
from gcs.totem.config import TotemConfig
from gcs.wire.channel import Channel
from gcs.wire.frames import WireFrame

__all__ = ["SIM_CLUSTER", "SIM_KEY", "ChannelTransport"]

SIM_KEY = bytes(range(32))  # the simulator's published cluster key (not a secret)
SIM_CLUSTER = "gcs-sim"


class ChannelTransport(Transport):
    """A host's channel: frames in, sealed datagrams out, and back."""

    def __init__(
        self, config: TotemConfig, boot_id: int, *, sealed: bool = True, links: int = 1
    ) -> None:
        # Drops are counted and reported by the run; a log line per simulated boot is noise.
        logging.getLogger("gcs.wire").setLevel(logging.ERROR)
        self.channel = Channel(
            config.node_id,
            boot_id,
            SIM_CLUSTER,
            SIM_KEY if sealed else None,
            peers=config.nodes,
            limits=config.wire_limits(),
            silence_ns=config.token_timeout_ns,
            copies_expected=links > 1,
        )

    def seal(self, frame: WireFrame) -> Any:
        return self.channel.seal(frame)

    def open(self, src: int, payload: Any, now_ns: int) -> tuple[int, WireFrame] | None:
        # The simulated network has node ids, not addresses: a source in the sense of
        # Channel.receive would name the node (every link of a node is its home, RFC 0009
        # LNK-6-4), and duplicate node ids are not simulated.
        return self.channel.receive(payload, now_ns)

    def size(self, payload: Any) -> int:
        return len(payload)
