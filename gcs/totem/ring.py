"""The ordering state of one ring: its members, sort queue, token bookkeeping and delivery point.

A node holds one ``RingState`` for the ring it has installed and, during recovery, a second one
for the ring being formed. Replacing the object at installation is what makes the per-ring
state (queues, counters, flow control) impossible to mix up across configurations.
"""

from __future__ import annotations

from mypy_extensions import mypyc_attr

from gcs.totem.flow import FlowState
from gcs.totem.sortqueue import SortQueue
from gcs.wire.frames import OrfToken, RingId

__all__ = ["RingState"]


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
class RingState:
    """Everything a member tracks about one ring (RFC 0003 §3)."""

    __slots__ = (
        "flow",
        "ftr_aru",
        "ftr_count",
        "ftr_id",
        "ftr_since_ns",
        "high_delivered",
        "hold_flag",
        "holding",
        "index",
        "is_rep",
        "last_aru",
        "last_seq",
        "members",
        "miss_counts",
        "others",
        "queue",
        "ring_id",
        "safe_upto",
        "seq_unchanged",
        "succ",
        "token_seq",
    )

    def __init__(self, ring_id: RingId, members: tuple[int, ...], me: int) -> None:
        self.ring_id = ring_id
        self.members = members
        self.index = members.index(me)
        self.succ = members[(self.index + 1) % len(members)]
        self.is_rep = self.index == 0
        self.others = tuple(m for m in members if m != me)
        self.queue = SortQueue()
        self.high_delivered = 0
        self.token_seq = -1  # token_seq of the last accepted token
        self.last_aru = 0  # the token's aru as received on the previous accepted visit
        self.safe_upto = 0  # every member holds every seq <= safe_upto (RFC 0003 §7.2)
        self.miss_counts: dict[int, int] = {}
        self.flow = FlowState()
        self.last_seq = -1  # token.seq seen on the previous visit (idle detection)
        self.seq_unchanged = 0
        self.hold_flag = False  # a non-representative believes the token is being held
        self.holding: OrfToken | None = None  # the representative is holding this token
        self.ftr_aru = -1  # failure-to-receive tracking: the stuck aru, its holder, since when
        self.ftr_id = 0
        self.ftr_since_ns = 0
        self.ftr_count = 0

    def __repr__(self) -> str:
        return f"RingState({self.ring_id}, members={self.members})"
