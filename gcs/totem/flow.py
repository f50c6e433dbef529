"""Token flow control (RFC 0003 §6): how many mcasts this visit may send.

Three limits from the Totem paper (§8), in signed arithmetic (corosync's unsigned version wraps
when fcc exceeds a lowered window):

1. at most ``max_messages`` per visit;
2. at most ``window_size - fcc``, the room left in the last rotation's total;
3. a share of the window proportional to this node's backlog,
   ``window_size * my_backlog / (token.backlog + my_backlog - my_previous_backlog)``,
   so a node with more queued gets more of the window (the paper's numerator, not corosync's).

Retransmissions come out of the same allowance first: a ring that is losing messages slows
down new traffic until the holes are filled.

A fourth limit counts bytes (``byte_allowance``, RFC 0003 ORD-6-4): the same backlog share of
``window_bytes``. With the default 1,400-byte frames the mcast limits bind first; with frames
of tens of kilobytes, fifty mcasts a rotation would release tens of thousands of small messages
at once, more than a reader can take between two turns of the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FlowState", "adapt_window", "allowance", "byte_allowance", "update_token"]


@dataclass(slots=True)
class FlowState:
    """What this node contributed to the token's fcc and backlog on its previous visit, and
    its adaptive window (RFC 0003 §6.1)."""

    my_trc: int = 0  # mcasts (new + retransmitted) sent on the previous visit
    my_pbl: int = 0  # backlog reported on the previous visit
    window: int = 0  # adaptive window in force (0: not adapting; use the configured window)
    last_cut_token_seq: int = -(1 << 62)


def adapt_window(
    flow: FlowState,
    *,
    window_size: int,
    window_min: int,
    loss_seen: bool,
    token_seq: int,
    ring_size: int,
) -> int:
    """AIMD on the window this node uses (RFC 0003 §6.1).

    Retransmission requests on the token mean the ring is sending faster than some member (or
    the network) can take: halve the window, at most once per rotation, since a request stays
    on the token for up to a rotation after one loss. A clean visit grows it by one mcast
    back towards the configured window. Each node adapts its own sending only; the token's fcc
    still bounds the whole ring.
    """
    if flow.window == 0:
        flow.window = window_size
    if loss_seen:
        if token_seq - flow.last_cut_token_seq >= ring_size:
            flow.window = max(min(window_min, window_size), flow.window // 2)
            flow.last_cut_token_seq = token_seq
    elif flow.window < window_size:
        flow.window += 1
    return flow.window


def allowance(
    *,
    window_size: int,
    max_messages: int,
    fcc: int,
    backlog: int,
    my_backlog: int,
    flow: FlowState,
) -> int:
    """Mcasts (retransmissions included) this visit may send; never negative."""
    allowed = min(max_messages, window_size - fcc)
    total = backlog + my_backlog - flow.my_pbl
    if my_backlog > 0 and total > 0:
        share = max(1, window_size * my_backlog // total)
        allowed = min(allowed, share)
    return max(allowed, 0)


def byte_allowance(*, window_bytes: int, backlog: int, my_backlog: int, flow: FlowState) -> int:
    """Bytes of mcasts (retransmissions included) this visit may send (ORD-6-4).

    The visit stops once it has sent this many; the mcast that crosses the line still goes, so
    a visit with any allowance sends at least one.
    """
    total = backlog + my_backlog - flow.my_pbl
    if my_backlog > 0 and total > 0:
        return max(1, window_bytes * my_backlog // total)
    return window_bytes


def update_token(
    fcc: int, backlog: int, sent: int, my_backlog: int, flow: FlowState
) -> tuple[int, int]:
    """The token's new (fcc, backlog) after this visit; replaces last visit's contribution."""
    fcc = max(0, fcc + sent - flow.my_trc)
    backlog = max(0, backlog + my_backlog - flow.my_pbl)
    flow.my_trc = sent
    flow.my_pbl = my_backlog
    return fcc, backlog
