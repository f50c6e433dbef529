"""The seed tree: independent, named random streams derived from one run seed.

Every component (a link, a node's core, the workload of node 3, the nemesis) gets its own
``random.Random`` seeded from BLAKE2b of ``"<seed>/<path>"``. Streams depend only on the seed
and the component's name, never on the order components were created or on ``hash()`` (which
is salted per process for str), so adding a node does not reshuffle the network's losses and a
seed replays identically in any process.
"""

from __future__ import annotations

import hashlib
import random

__all__ = ["SeedTree"]


class SeedTree:
    """A node in the seed tree: ``child("network").rng("link/1/2")``."""

    __slots__ = ("path", "seed")

    def __init__(self, seed: int, path: str = "") -> None:
        self.seed = seed
        self.path = path

    def child(self, name: str) -> SeedTree:
        return SeedTree(self.seed, f"{self.path}/{name}" if self.path else name)

    def derive(self, name: str) -> int:
        """A 64-bit integer seed for component ``name`` under this node."""
        label = f"{self.seed}/{self.path}/{name}".encode()
        return int.from_bytes(hashlib.blake2b(label, digest_size=8).digest(), "big")

    def rng(self, name: str) -> random.Random:
        return random.Random(self.derive(name))
