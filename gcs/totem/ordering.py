"""Token handling, retransmission and delivery: the ordering half of Totem (RFC 0003).

The token carries the ring's sequence counter. Whoever holds it may multicast: each new mcast
takes ``seq = token.seq + 1``, so the seq *is* the total order. On every accepted token a member,
in this order (RFC 0003 §4.2, after corosync's refinement of the paper's Fig. 3):

1. rejects duplicates by ``token_seq`` and tokens of other rings;
2. records the token's aru for the safe bound (two successive visits, RFC 0003 §7.2) and frees
   messages that are safe and delivered (garbage collection, §7.4);
3. serves retransmission requests it can (any holder may, not only the originator), within the
   flow-control allowance;
4. originates new mcasts from the send queue (in recovery: from the recovery queue);
5. adds its own holes to the rtr list once they have been missing for ``miss_count_const``
   visits (mcasts can arrive after the token that follows them);
6. updates fcc and backlog, then the aru by the aru/aru_id rule (§5): anyone may lower aru, only
   the node that lowered it (``aru_id``) may raise it, and a null aru_id means nobody is behind;
7. forwards the token (or, as an idle representative whose visit originated nothing, holds it)
   and only then delivers, so delivery work never delays the ring.

Delivery is in strict seq order: agreed mcasts as soon as the prefix below them is complete;
safe mcasts only once ``seq <= safe_upto``, which holds back everything after them too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gcs.totem import membership, recovery
from gcs.totem.config import FailToRecvMode
from gcs.totem.effects import (
    ChangeReason,
    Deliver,
    Effect,
    MembState,
    Multicast,
    ReasonKind,
    Send,
)
from gcs.totem.flow import adapt_window, allowance, byte_allowance, update_token
from gcs.totem.invariants import invariant
from gcs.totem.ring import RingState
from gcs.totem.timers import Timer
from gcs.wire.frames import Mcast, MembCommitToken, OrfToken, RtrEntry, TokenHoldCancel

if TYPE_CHECKING:
    from gcs.totem.node import Node

# Enum members bound once at import: in CPython 3.11 reading an attribute of an Enum class goes
# through EnumType.__getattr__'s hook and costs ~0.25 µs, several times per datagram here.
_OPERATIONAL = MembState.OPERATIONAL
_RECOVERY = MembState.RECOVERY
_GATHER = MembState.GATHER
_COMMIT = MembState.COMMIT
_T_TOKEN_LOSS = Timer.TOKEN_LOSS
_T_TOKEN_RETRANSMIT = Timer.TOKEN_RETRANSMIT
_T_HOLD = Timer.HOLD
_T_SELF_TOKEN = Timer.SELF_TOKEN

__all__ = [
    "deliver",
    "on_hold_timeout",
    "on_mcast",
    "on_orf_token",
    "on_token_hold_cancel",
    "on_token_retransmit_timeout",
    "send_token",
    "wake_held_token",
]


# ---------------------------------------------------------------------- receiving the token


def on_orf_token(n: Node, now_ns: int, token: OrfToken) -> None:
    """An ORF token arrived (or came back to us on a singleton ring)."""
    if n.state is _OPERATIONAL:
        ring = n.ring
    elif n.state is _RECOVERY and n.recovery is not None:
        ring = n.recovery.ring
    else:
        n.counters.drop("token_not_operational")
        return
    if token.ring_id != ring.ring_id:
        n.counters.drop("token_other_ring")
        return
    if token.token_seq <= ring.token_seq:
        n.counters.drop("token_duplicate")
        return
    n.counters.tokens_received += 1
    n.pause_seen = False  # the ring survived any pause: a later token loss is not the pause's
    n.timers.arm(_T_TOKEN_LOSS, now_ns + n.config.token_timeout_ns)
    n.timers.cancel(_T_TOKEN_RETRANSMIT, _T_HOLD)
    n.last_sent = None
    ring.holding = None
    _process_token(n, now_ns, ring, token)


def _process_token(n: Node, now_ns: int, ring: RingState, token: OrfToken) -> None:
    recovering = n.state is _RECOVERY
    ring.token_seq = token.token_seq
    safe = min(ring.last_aru, token.aru)
    ring.last_aru = token.aru
    ring.safe_upto = max(ring.safe_upto, safe)
    if not recovering:
        ring.queue.release(min(ring.safe_upto, ring.high_delivered))
    _idle_bookkeeping(n, ring, token)
    mark = len(n.out)
    seq, sent, rtr = _send_share(n, ring, token, recovering)
    # Accelerated ring (RFC 0003 §9): the visit's new mcasts leave after the token, so the next
    # holder starts its own visit while this node is still multicasting.
    deferred = _take_new_mcasts(n, mark, token.seq) if n.config.accelerated else []
    my_backlog = recovery.backlog(n) if recovering else n.sendq.backlog
    fcc, backlog = update_token(token.fcc, token.backlog, sent, my_backlog, ring.flow)
    aru, aru_id = _aru_rule(n.me, ring, token, seq)
    new_token = OrfToken(
        ring.ring_id, token.token_seq + 1, seq, aru, aru_id, fcc, backlog, token.retrans_flg, rtr
    )
    if recovering:
        new_token = recovery.on_token(n, now_ns, token, new_token)
    elif _failed_to_receive(n, now_ns, ring, token):
        n.out.extend(deferred)
        return
    _forward_or_hold(n, now_ns, new_token)
    n.out.extend(deferred)
    if n.state is _OPERATIONAL:
        deliver(n, n.ring)
        window = n.sendq.window_change()
        if window is not None:
            n.out.append(window)


def _send_share(
    n: Node, ring: RingState, token: OrfToken, recovering: bool
) -> tuple[int, int, tuple[RtrEntry, ...]]:
    """Retransmit, then originate, within the flow-control allowance; then list my holes.

    Returns the token's new seq, the number of mcasts sent (both kinds) and the new rtr list.
    """
    cfg = n.config
    my_backlog = recovery.backlog(n) if recovering else n.sendq.backlog
    window = cfg.window_size
    if cfg.adaptive_window:
        window = adapt_window(
            ring.flow,
            window_size=cfg.window_size,
            window_min=cfg.window_min,
            loss_seen=bool(token.rtr),
            token_seq=token.token_seq,
            ring_size=len(ring.members),
        )
    allowed = allowance(
        window_size=window,
        max_messages=cfg.max_messages,
        fcc=token.fcc,
        backlog=token.backlog,
        my_backlog=my_backlog,
        flow=ring.flow,
    )
    # Never run further ahead than the sort window behind this node's oldest held message.
    allowed = max(0, min(allowed, ring.queue.released + cfg.sort_window - token.seq))
    budget = _byte_budget(n, ring, token, my_backlog, allowed, recovering)
    sent, rtr, budget = _retransmit(n, ring, token.rtr, allowed, budget)
    if recovering:
        seq, originated = recovery.originate(n, ring, token.seq, allowed - sent)
    else:
        seq, originated = _originate(n, ring, token.seq, allowed - sent, budget)
    invariant(originated + sent <= cfg.max_messages, "ORD-11-3", "visit exceeded max_messages")
    _add_holes(n, ring, rtr, seq)
    return seq, sent + originated, tuple(rtr)


def _take_new_mcasts(n: Node, mark: int, old_seq: int) -> list[Effect]:
    """Remove this visit's originations (seq above the received token's) from the effects."""
    kept: list[Effect] = []
    moved: list[Effect] = []
    for effect in n.out[mark:]:
        frame = effect.frame if type(effect) is Multicast else None
        if type(frame) is Mcast and frame.seq > old_seq:
            moved.append(effect)
        else:
            kept.append(effect)
    del n.out[mark:]
    n.out.extend(kept)
    return moved


def _idle_bookkeeping(n: Node, ring: RingState, token: OrfToken) -> None:
    if token.seq == ring.last_seq:
        ring.seq_unchanged += 1
        if not ring.is_rep and ring.seq_unchanged >= n.config.seqno_unchanged_const:
            ring.hold_flag = True
    else:
        ring.seq_unchanged = 0
        ring.hold_flag = False
    ring.last_seq = token.seq


def _byte_budget(
    n: Node, ring: RingState, token: OrfToken, my_backlog: int, allowed: int, recovering: bool
) -> int | None:
    """The visit's byte allowance (ORD-6-4), or None where it cannot bind and is not counted.

    It cannot bind when ``allowed`` full frames fit in it (the common case with the default
    frame size), and RECOVERY visits are bounded by the mcast allowance only.
    """
    if recovering:
        return None
    cfg = n.config
    budget = byte_allowance(
        window_bytes=cfg.window_bytes, backlog=token.backlog, my_backlog=my_backlog, flow=ring.flow
    )
    return None if allowed * cfg.frame_payload_bytes <= budget else budget


def _retransmit(
    n: Node, ring: RingState, requests: tuple[RtrEntry, ...], allowed: int, budget: int | None
) -> tuple[int, list[RtrEntry], int | None]:
    """Serve the requests this node can; return (sent, requests still open, bytes left)."""
    sent = 0
    still_open: list[RtrEntry] = []
    queue = ring.queue
    safe = ring.safe_upto
    for entry in requests:
        if entry.ring_id != ring.ring_id:
            n.counters.drop("rtr_other_ring")
            continue
        if entry.seq <= safe:
            # Every member holds it (and it may be freed everywhere): the request is stale.
            # Left on the token it could never be served and would clog the list for good.
            continue
        mcast = queue.get(entry.seq)
        if mcast is not None and sent < allowed and (budget is None or budget > 0):
            n.out.append(Multicast(mcast, ring.others))
            sent += 1
            if budget is not None:
                budget -= n.sendq.payload_bytes(mcast.records)
        else:
            still_open.append(entry)
    n.counters.mcasts_retransmitted += sent
    return sent, still_open, budget


def _originate(
    n: Node, ring: RingState, seq: int, allowed: int, budget: int | None
) -> tuple[int, int]:
    """Take up to ``allowed`` mcast payloads from the send queue, and while ``budget`` (bytes,
    None: not counted) is not used up; return (new seq, count)."""
    count = 0
    me = n.me
    ring_id = ring.ring_id
    dests = ring.others
    sendq = n.sendq
    out = n.out
    while count < allowed and (budget is None or budget > 0):
        payload = sendq.take()
        if payload is None:
            break
        seq += 1
        mcast = Mcast(me, ring_id, seq, payload[0], payload[1])
        ring.queue.add(mcast)
        out.append(Multicast(mcast, dests))
        count += 1
        if budget is not None:
            budget -= sendq.payload_bytes(payload[1])
    n.counters.mcasts_originated += count
    return seq, count


def _add_holes(n: Node, ring: RingState, rtr: list[RtrEntry], seq: int) -> None:
    """Ask for seqs this node is missing (RFC 0003 §4.5).

    A hole is first requested once it has been missing for ``miss_count_const`` visits: an mcast
    sent just before the token may arrive just after it. Once requested, a hole still missing
    on a later visit whose request is no longer on the token was served by a retransmission that
    was lost too, so it is requested again at once instead of waiting the whole count again.
    """
    queue = ring.queue
    if queue.aru >= seq:
        ring.miss_counts.clear()
        return
    cfg = n.config
    listed = {entry.seq for entry in rtr}
    counts: dict[int, int] = {}
    for missing in queue.missing(queue.aru + 1, seq):
        count = ring.miss_counts.get(missing, 0) + 1
        if count >= cfg.miss_count_const and missing not in listed and len(rtr) < cfg.rtr_max:
            rtr.append(RtrEntry(ring.ring_id, missing))
            n.counters.rtr_requested += 1
            count = cfg.miss_count_const - 1
        counts[missing] = count
        if len(counts) >= cfg.sort_window:
            break
    ring.miss_counts = counts
    invariant(len(rtr) <= cfg.rtr_max, "ORD-11-1", f"rtr list of {len(rtr)} entries")


def _aru_rule(me: int, ring: RingState, token: OrfToken, seq: int) -> tuple[int, int]:
    """RFC 0003 §5: anyone lowers aru; only its aru_id (or anyone, when null) raises it."""
    aru, aru_id = token.aru, token.aru_id
    my_aru = ring.queue.aru
    if my_aru < aru or aru_id in (me, 0):
        aru = my_aru
        aru_id = 0 if aru == seq else me
    invariant(aru <= seq, "ORD-11-2", f"aru {aru} above seq {seq}")
    invariant(ring.queue.aru <= ring.queue.high_seq, "ORD-11-2", "my_aru above my high seq")
    return aru, aru_id


def _failed_to_receive(n: Node, now_ns: int, ring: RingState, token: OrfToken) -> bool:
    """RFC 0004 §8.1: a member that keeps failing to receive is excluded (or excludes itself)."""
    stuck = token.aru_id != 0 and token.aru < token.seq and token.aru == ring.ftr_aru
    if not stuck or token.aru_id != ring.ftr_id:
        ring.ftr_aru, ring.ftr_id, ring.ftr_since_ns, ring.ftr_count = (
            token.aru,
            token.aru_id,
            now_ns,
            0,
        )
        return False
    ring.ftr_count += 1
    laggard = token.aru_id
    if n.config.fail_to_recv_mode is FailToRecvMode.SELF_EXCLUDE:
        if laggard == n.me and ring.ftr_count > n.config.fail_to_recv_const:
            membership.self_exclude(n, now_ns)
            return True
        return False
    if (
        laggard != n.me
        and laggard in ring.members
        and now_ns - ring.ftr_since_ns >= n.config.fail_to_recv_ns
    ):
        membership.exclude_laggard(n, now_ns, laggard)
        return True
    return False


# ---------------------------------------------------------------------- sending the token


def _forward_or_hold(n: Node, now_ns: int, token: OrfToken) -> None:
    ring = n.ring if n.state is _OPERATIONAL else None
    if (
        ring is not None
        and ring.is_rep
        and n.config.token_hold
        and ring.seq_unchanged > n.config.seqno_unchanged_const
        and token.seq == ring.last_seq  # this visit originated nothing (ORD-4.9-2)
        and not n.sendq
        and not token.rtr
    ):
        ring.holding = token
        n.counters.tokens_held += 1
        n.timers.arm(_T_HOLD, now_ns + n.config.hold_timeout_ns)
        return
    target = n.ring.succ if n.state is _OPERATIONAL else _recovery_succ(n)
    send_token(n, now_ns, target, token)
    n.counters.tokens_forwarded += 1


def _recovery_succ(n: Node) -> int:
    assert n.recovery is not None
    return n.recovery.ring.succ


def send_token(n: Node, now_ns: int, dest: int, token: OrfToken | MembCommitToken) -> None:
    """Send a token or commit token and arm its retransmission (to ourselves: via a timer)."""
    if dest == n.me:
        n.self_frame = token
        n.timers.arm(_T_SELF_TOKEN, now_ns)
        return
    n.out.append(Send(dest, token))
    n.last_sent = (dest, token)
    n.timers.arm(_T_TOKEN_RETRANSMIT, now_ns + n.config.token_retransmit_ns)


def on_token_retransmit_timeout(n: Node, now_ns: int) -> None:
    """No newer token arrived: send the stored copy again (the successor drops duplicates)."""
    if n.last_sent is None or n.state not in (
        _OPERATIONAL,
        _COMMIT,
        _RECOVERY,
    ):
        return
    dest, token = n.last_sent
    n.out.append(Send(dest, token))
    n.counters.tokens_retransmitted += 1
    n.timers.arm(_T_TOKEN_RETRANSMIT, now_ns + n.config.token_retransmit_ns)


def on_hold_timeout(n: Node, now_ns: int) -> None:
    """The idle representative lets the held token go round once more, and holds it again."""
    release_held_token(n, now_ns, still_idle=True)


def release_held_token(n: Node, now_ns: int, *, still_idle: bool = False) -> None:
    ring = n.ring
    token, ring.holding = ring.holding, None
    if token is None or n.state is not _OPERATIONAL:
        return
    n.timers.cancel(_T_HOLD)
    if not still_idle:
        ring.seq_unchanged = 0  # new data: stay active for a while before holding again
    send_token(n, now_ns, ring.succ, token)
    n.counters.tokens_forwarded += 1


def wake_held_token(n: Node, now_ns: int) -> None:
    """New data to send on an idle ring: release the token, or ask the representative to."""
    ring = n.ring
    if ring.holding is not None:
        release_held_token(n, now_ns)
    elif ring.hold_flag:
        ring.hold_flag = False
        n.out.append(Multicast(TokenHoldCancel(n.me, ring.ring_id), ring.others))


def on_token_hold_cancel(n: Node, now_ns: int, src: int, frame: TokenHoldCancel) -> None:
    if frame.sender != src:
        n.counters.drop("spoofed_sender")
        return
    if n.state is _OPERATIONAL and frame.ring_id == n.ring.ring_id:
        release_held_token(n, now_ns)


# ---------------------------------------------------------------------- mcasts and delivery


def on_mcast(n: Node, now_ns: int, mcast: Mcast) -> None:
    """Store an mcast of our ring (or the ring being recovered); foreign ones trigger a merge."""
    n.counters.mcasts_received += 1
    state = n.state
    if state is _RECOVERY and n.recovery is not None:
        if mcast.ring_id == n.recovery.ring.ring_id:
            _store(n, n.recovery.ring, mcast)
        return
    ring = n.ring
    if mcast.ring_id == ring.ring_id:
        accepting = state is _OPERATIONAL or (state is _GATHER and not n.old_ring_frozen)
        if accepting and _store(n, ring, mcast):
            deliver(n, ring)
        return
    if mcast.ring_id.seq > ring.ring_id.seq and state in (_OPERATIONAL, _GATHER):
        membership.foreign_sender(
            n, now_ns, mcast.sender, ChangeReason(ReasonKind.MERGE, (mcast.sender,))
        )
    else:
        n.counters.drop("mcast_stale_ring")


def _store(n: Node, ring: RingState, mcast: Mcast) -> bool:
    queue = ring.queue
    if mcast.seq > queue.aru + 2 * n.config.sort_window or mcast.sender not in ring.members:
        n.counters.drop("mcast_out_of_window")
        return False
    if not queue.add(mcast):
        n.counters.mcasts_duplicate += 1
        return False
    return True


def deliver(n: Node, ring: RingState) -> None:
    """Deliver every mcast that the agreed and safe rules allow, in seq order (RFC 0003 §7)."""
    queue = ring.queue
    seq = ring.high_delivered + 1
    limit = queue.aru
    if seq > limit:
        return
    safe_upto = ring.safe_upto
    config = n.config_id
    ring_id = ring.ring_id
    out = n.out
    complete = n.reassembler.complete
    delivered = 0
    records = 0
    while seq <= limit:
        mcast = queue.get(seq)
        assert mcast is not None
        if mcast.encapsulated is None:
            if mcast.safe and seq > safe_upto:
                break
            done = complete(mcast.sender, mcast.records)
            out.append(Deliver(config, ring_id, seq, mcast.sender, mcast.safe, done))
            delivered += 1
            records += len(done)
        ring.high_delivered = seq
        seq += 1
    n.counters.mcasts_delivered += delivered
    n.counters.records_delivered += records
