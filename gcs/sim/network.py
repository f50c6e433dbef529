"""The simulated network: per directed link latency, loss, duplication, reordering, bandwidth.

Each directed link (a -> b) has its own parameters and its own random stream from the seed tree,
so the fate of a datagram depends only on the seed, the link and how many datagrams crossed that
link before it (RFC 0007 §3). Partitions are sets of blocked directed links: blocking a -> b but
not b -> a is a one-way (asymmetric) partition. Nothing here knows about frames: it moves bytes.

Redundant links (RFC 0010, RFC 0007 §3.1). With ``links`` > 1 every node is on that many
independent networks: the path a -> b on network ``k`` has its own random stream (network 0
keeps the stream it has with one link, so a one-link run is unchanged), and a node's link can be
cut (``cut_link``: nothing crosses network ``k`` to or from that node) and restored, the
simulated NIC or cable failure. A partition (``block``) cuts the paths on every network.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, replace

from gcs.sim.seeds import SeedTree

__all__ = ["LatencyKind", "LinkParams", "Network"]

MS = 1_000_000
US = 1_000


class LatencyKind(enum.Enum):
    CONSTANT = "constant"
    UNIFORM = "uniform"
    EXPONENTIAL = "exponential"


_UNIFORM = LatencyKind.UNIFORM  # bound once: Enum class attributes are slow in CPython 3.11
_EXPONENTIAL = LatencyKind.EXPONENTIAL


@dataclass(frozen=True, slots=True)
class LinkParams:
    """How one directed link behaves. Times in ns, probabilities in [0, 1]."""

    latency: LatencyKind = LatencyKind.UNIFORM
    latency_ns: int = 200 * US  # constant value, or the mean (exponential), or the low bound
    latency_max_ns: int = 600 * US  # uniform high bound
    latency_floor_ns: int = 50 * US  # exponential: minimum
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0  # probability that a datagram is held back by reorder_delay_ns extra
    reorder_delay_ns: int = 2 * MS
    bandwidth_bytes_per_s: int = 0  # 0 = unlimited

    def draw_latency(self, rng: random.Random) -> int:
        kind = self.latency
        if kind is _UNIFORM:
            span = max(0, self.latency_max_ns - self.latency_ns)
            return self.latency_ns + int(rng.random() * span)
        if kind is _EXPONENTIAL:
            return self.latency_floor_ns + int(rng.expovariate(1.0) * self.latency_ns)
        return self.latency_ns


class Network:
    """All directed links between ``nodes`` and the partition state."""

    def __init__(
        self, nodes: tuple[int, ...], seeds: SeedTree, default: LinkParams, links: int = 1
    ) -> None:
        self.nodes = nodes
        self.links = links
        self._seeds = seeds
        self._default = default
        self._params: dict[tuple[int, int], LinkParams] = {}
        self._rngs: dict[tuple[int, ...], random.Random] = {}
        self._busy_until: dict[tuple[int, ...], int] = {}
        self.blocked: set[tuple[int, int]] = set()
        self.cut: set[tuple[int, int]] = set()
        """(node, link): that node's link is cut, both ways (``cut_link``)."""
        self.sent = 0
        self.lost = 0
        self.blocked_drops = 0
        self.cut_drops = 0
        self.duplicated = 0

    # -------------------------------------------------------------- configuration

    def params(self, src: int, dst: int) -> LinkParams:
        return self._params.get((src, dst), self._default)

    def set_params(self, src: int, dst: int, params: LinkParams) -> None:
        self._params[(src, dst)] = params

    def set_all(self, **changes: object) -> None:
        """Change parameters on every link (e.g. ``loss=0.05``)."""
        self._default = replace(self._default, **changes)  # type: ignore[arg-type]
        for key, params in list(self._params.items()):
            self._params[key] = replace(params, **changes)  # type: ignore[arg-type]

    def max_loss(self) -> float:
        """The highest loss probability of any link (the liveness checker's ``quiet_loss``)."""
        return max([self._default.loss, *(params.loss for params in self._params.values())])

    def block(self, src: int, dst: int) -> None:
        self.blocked.add((src, dst))

    def unblock(self, src: int, dst: int) -> None:
        self.blocked.discard((src, dst))

    def partition(self, groups: list[list[int]]) -> None:
        """Block every link between different groups (symmetric); nodes not listed are isolated."""
        side = {node: i for i, group in enumerate(groups) for node in group}
        for a in self.nodes:
            for b in self.nodes:
                if a != b and side.get(a, -1 - a) != side.get(b, -1 - b):
                    self.blocked.add((a, b))

    def heal(self) -> None:
        """End every partition and one-way block (link cuts are restored one by one)."""
        self.blocked.clear()

    def cut_link(self, node: int, link: int) -> None:
        """Nothing crosses network ``link`` to or from ``node`` until ``restore_link``."""
        self.cut.add((node, link))

    def restore_link(self, node: int, link: int) -> None:
        self.cut.discard((node, link))

    def connected(self, a: int, b: int) -> bool:
        return (a, b) not in self.blocked and (b, a) not in self.blocked

    # -------------------------------------------------------------- sending

    def fate(self, now_ns: int, src: int, dst: int, size: int, link: int = 0) -> tuple[int, ...]:
        """When (if ever) a datagram arrives: its delays, from the link's own random stream.

        Empty when it is lost or the link is blocked or cut; two delays when it is duplicated.
        ``link`` is the network it crosses (0 with one link).
        """
        self.sent += 1
        pair = (src, dst)
        key = pair if link == 0 else (src, dst, link)
        rng = self._rngs.get(key)
        if rng is None:
            name = f"link/{src}/{dst}" if link == 0 else f"link/{src}/{dst}/{link}"
            rng = self._rngs[key] = self._seeds.rng(name)
        params = self._params.get(pair, self._default)
        # Draw every random number even when the datagram is blocked, so a partition does not
        # shift the stream of later datagrams on this link.
        draw = rng.random
        lost = draw() < params.loss
        delay = params.draw_latency(rng)
        if draw() < params.reorder:
            delay += params.reorder_delay_ns
        delays: tuple[int, ...] = (delay,)
        if draw() < params.duplicate:
            delays = (delay, params.draw_latency(rng))
        if pair in self.blocked:
            self.blocked_drops += 1
            return ()
        cut = self.cut
        if cut and ((src, link) in cut or (dst, link) in cut):
            self.cut_drops += 1
            return ()
        if lost:
            self.lost += 1
            return ()
        if params.bandwidth_bytes_per_s > 0:
            start = max(now_ns, self._busy_until.get(key, 0))
            done = start + size * 1_000_000_000 // params.bandwidth_bytes_per_s
            self._busy_until[key] = done
            delays = tuple(d + done - now_ns for d in delays)
        if len(delays) == 2:
            self.duplicated += 1
        return delays
