"""The values a group member receives: members, view ids, views, reasons, messages (RFC 0006 §3).

Why a module of their own: they are the application's vocabulary, shared by the group layer that
computes them (``gcs.groups.state``), the API and daemon protocol that carry them, and the state
transfer built on them; none of those needs the group layer's machinery to name a ``View``.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from gcs.wire.frames import RingId

__all__ = ["Member", "Message", "Reason", "View", "ViewId", "ViewReason", "new_message"]


@dataclass(frozen=True, slots=True, order=True)
class Member:
    """A group member: the node it runs on and the handle that node gave it (never reused)."""

    node: int
    handle: int

    def __str__(self) -> str:
        return f"{self.node}/{self.handle:x}"


@dataclass(frozen=True, slots=True, order=True)
class ViewId:
    """Names a group view identically at every member (see the module docstring).

    ``seq == 0``: a configuration's view; ``ring`` is the new ring, ``index`` is 0 for a regular
    view and the lowest node id of the transitional configuration for a transitional one.
    ``seq > 0``: the view a record caused; ``ring``/``seq`` name the record's mcast in the ring
    that originated it and ``index`` its position in that mcast. ``lineage`` is 0 when the group
    state is settled (every node of the ring holds the same state); while it is not, a view is
    derived from the member's previous view and ``lineage`` is a digest of that view's id, so
    that members that had different views get different ids. A view id is unique per group.
    """

    ring: RingId
    seq: int
    index: int
    lineage: int = 0

    def __str__(self) -> str:
        if self.seq:
            text = f"{self.ring}#{self.seq}.{self.index}"
        else:
            text = f"{self.ring}~{self.index}" if self.index else str(self.ring)
        return f"{text}/{self.lineage:016x}" if self.lineage else text

    def derived(self) -> int:
        """The lineage of a view derived from this one (a 64-bit digest, never 0)."""
        text = f"{self.ring.seq}.{self.ring.rep}#{self.seq}.{self.index}/{self.lineage}"
        digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") or 1


class ViewReason(enum.StrEnum):
    """Why a group view changed, in CPG's vocabulary."""

    JOIN = "join"  # a member joined
    LEAVE = "leave"  # a member left, or its node shut down cleanly
    NODE_DOWN = "node_down"  # nodes failed or became unreachable (token loss, partition, ...)
    NODE_UP = "node_up"  # nodes joined the ring or partitions merged; states were exchanged


@dataclass(frozen=True, slots=True)
class Reason:
    """A structured view-change reason: what happened, to which nodes, and the ring's own words."""

    kind: ViewReason
    nodes: tuple[int, ...] = ()
    detail: str = ""

    def __str__(self) -> str:
        nodes = ",".join(map(str, self.nodes))
        return f"{self.kind.value} {nodes}".rstrip() + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True, slots=True)
class View:
    """A group membership view. ``joined``/``left`` are relative to this member's previous view."""

    view_id: ViewId
    members: tuple[Member, ...]
    joined: tuple[Member, ...]
    left: tuple[Member, ...]
    transitional: bool
    reason: Reason


@dataclass(frozen=True, slots=True)
class Message:
    """One delivered message: who sent it, the bytes, and the view it was delivered in.

    ``ring_id`` and ``seq`` name the mcast that carried it in the ring that ordered it (several
    small messages can share one mcast, and a large one spans several: ``seq`` is its last), so
    logs of different members can be lined up; ``None``/0 only in hand-built values. ``to`` is
    the member a point-to-point message (``Group.send_to``) was addressed to, None for the
    group's multicast messages.
    """

    sender: Member
    data: bytes
    safe: bool
    view_id: ViewId
    ring_id: RingId | None = None
    seq: int = 0
    to: Member | None = None
    uncommitted: bool = False
    """Only for members that asked for tails (RFC 0008 §4.2): a message of the last quorate
    configuration, delivered after it, that this member may not apply on its own."""


_MESSAGE_SLOTS = tuple(
    getattr(Message, name).__set__
    for name in ("sender", "data", "safe", "view_id", "ring_id", "seq", "to", "uncommitted")
)


def new_message(
    sender: Member, data: bytes, safe: bool, view_id: ViewId, ring_id: RingId, seq: int
) -> Message:
    """``Message(sender, data, safe, view_id, ring_id, seq)``, made for the receive path.

    Why: a frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, a
    Python-level call per field, and that was the largest single cost of handing one message up
    (about 4x this). This writes the same slots directly: the value is identical in every respect
    (type, fields, equality, hash, repr). Only for the group layer's hot path. It relies on
    ``Message`` being an interpreted class: were this module compiled (``HOT_PATH``), its classes
    would be native and the plain constructor the fast one.
    """
    message: Message = object.__new__(Message)
    s_sender, s_data, s_safe, s_view, s_ring, s_seq, s_to, s_unc = _MESSAGE_SLOTS
    s_sender(message, sender)
    s_data(message, data)
    s_safe(message, safe)
    s_view(message, view_id)
    s_ring(message, ring_id)
    s_seq(message, seq)
    s_to(message, None)
    s_unc(message, False)
    return message
