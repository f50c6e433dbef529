"""From consensus to a new configuration: the commit token, recovery, installation (RFC 0004 §5-§7).

The representative creates the commit token for the agreed membership with a ring seq 4 above
any it knows. The token goes round twice. On the first rotation each member writes its line:
its old ring, old aru, the highest old-ring seq it knows was delivered, and whether it has no
gaps (``received_flg``, cleared when a ring-mate is known to hold more). On the second rotation
each member, knowing everyone's line, enters RECOVERY: members that share my old ring form my
*transitional* membership, and unless all of them already hold the same messages, the
old-ring messages above their lowest aru are re-sent, encapsulated in new-ring mcasts: each
one up to their highest aru by a single member whose line shows it holds it (its *keeper*),
the rest by everyone who has them (the paper and corosync have every member re-send
everything, RFC 0004 §6.1). The new ring's token then circulates with only those recovery
messages until, by the ``retrans_flg`` protocol, everyone is known to hold all of them. Then
each member, in one atomic step with no communication, delivers what the old configuration's
rules allow, the transitional configuration, the remaining old-ring messages of its
transitional members, and the new regular configuration.

If recovery fails (token loss, or a new join from a member), the node returns to GATHER keeping
its old ring's messages — and the ones it recovered — because a peer may already have installed
the new ring counting on it (the obligation set, RFC 0004 §7.3).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from mypy_extensions import mypyc_attr

from gcs.totem import membership, ordering
from gcs.totem.effects import (
    ChangeReason,
    ConfigurationKind,
    Deliver,
    MembState,
    Multicast,
    PersistRingSeq,
    ReasonKind,
)
from gcs.totem.ring import RingState
from gcs.totem.timers import Timer
from gcs.wire.frames import Mcast, MembCommitToken, MemberEntry, OrfToken, RingId

if TYPE_CHECKING:
    from gcs.totem.node import Node

__all__ = [
    "CommitState",
    "RecoveryState",
    "abandon",
    "backlog",
    "create_commit_token",
    "new_members",
    "new_ring_seq",
    "on_commit_token",
    "on_persisted",
    "on_token",
    "originate",
]

RING_SEQ_STEP = 4


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class CommitState:
    """COMMIT: the proposed ring, the last commit token_seq seen, a token waiting for storage."""

    ring_id: RingId
    members: tuple[int, ...]
    token_seq: int
    pending: MembCommitToken | None = None


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class RecoveryState:
    """RECOVERY: the new ring and the retrans_flg protocol's bookkeeping (RFC 0004 §6.3)."""

    ring: RingState
    trans: tuple[int, ...]
    retrans: deque[Mcast]
    commit_token_seq: int
    originated_orf: bool = False
    i_set_flag: bool = False
    flg_count: int = 0
    install_seq: int = 0
    received_all: bool = False
    rotations: int = 0
    trans_lines: tuple[MemberEntry, ...] = field(default=())


# ---------------------------------------------------------------------- the commit token


def create_commit_token(n: Node, now_ns: int, members: tuple[int, ...]) -> None:
    """The representative turns consensus into a commit token for a never-used ring id."""
    seq = max(n.token_ring_id_seq, n.ring.ring_id.seq, n.last_commit_seq) + RING_SEQ_STEP
    ring_id = RingId(seq=seq, rep=n.me)
    blank = tuple(MemberEntry(m, RingId(seq=0, rep=m), 0, 0, False) for m in members)
    n.trace("commit_token_created", ring=str(ring_id), members=list(members))
    _commit_enter(n, now_ns, MembCommitToken(ring_id, 0, 0, blank))


def on_commit_token(n: Node, now_ns: int, token: MembCommitToken) -> None:
    match n.state:
        case MembState.GATHER:
            _accept_in_gather(n, now_ns, token)
        case MembState.COMMIT:
            commit = n.commit
            if (
                commit is not None
                and token.ring_id == commit.ring_id
                and token.memb_index == len(commit.members)
                and token.token_seq > commit.token_seq
            ):
                commit.token_seq = token.token_seq
                if n.persisted_seq >= token.ring_id.seq:
                    _recovery_enter(n, now_ns, token)
                else:
                    commit.pending = token  # wait for stable storage (REC-5.3-2)
            else:
                n.counters.drop("commit_token_unexpected")
        case MembState.RECOVERY:
            rec = n.recovery
            if (
                rec is not None
                and rec.ring.is_rep
                and not rec.originated_orf
                and token.ring_id == rec.ring.ring_id
                and token.token_seq > rec.commit_token_seq
            ):
                _originate_orf_token(n, now_ns, rec)
            else:
                n.counters.drop("commit_token_unexpected")
        case _:
            n.counters.drop("commit_token_unexpected")


def _accept_in_gather(n: Node, now_ns: int, token: MembCommitToken) -> None:
    ids = tuple(entry.node_id for entry in token.members)
    if (
        set(ids) != n.proc_set - n.fail_set
        or list(ids) != sorted(ids)
        or token.ring_id.rep != ids[0]
        or token.ring_id.seq <= max(n.ring.ring_id.seq, n.last_commit_seq)
        or token.memb_index >= len(ids)
        or ids[token.memb_index] != n.me
    ):
        n.counters.drop("commit_token_mismatch")
        n.trace(
            "commit_token_mismatch",
            ring=str(token.ring_id),
            members=list(ids),
            proc=sorted(n.proc_set),
            fail=sorted(n.fail_set),
        )
        return
    _commit_enter(n, now_ns, token)


def _commit_enter(n: Node, now_ns: int, token: MembCommitToken) -> None:
    """Fill my line, freeze the old ring, persist the new ring seq, pass the token on."""
    old = n.ring
    index = token.memb_index
    n.old_ring_frozen = True
    aru = old.queue.aru
    mine = MemberEntry(
        n.me,
        old.ring_id,
        aru,
        max(old.high_delivered, n.carry_high_delivered),
        aru == old.queue.high_seq,
    )
    lines = list(token.members)
    lines[index] = mine
    same = [i for i in range(index + 1) if lines[i].old_ring_id == old.ring_id]
    top = max(lines[i].aru for i in same)
    for i in same:
        if lines[i].aru < top and lines[i].received_flg:
            lines[i] = replace(lines[i], received_flg=False)
    ids = tuple(line.node_id for line in lines)
    n.commit = CommitState(token.ring_id, ids, token.token_seq)
    seq = token.ring_id.seq
    n.token_ring_id_seq = max(n.token_ring_id_seq, seq)
    n.last_commit_seq = max(n.last_commit_seq, seq)
    n.timers.cancel(Timer.JOIN, Timer.CONSENSUS, Timer.COMMIT_WAIT)
    n.timers.arm(Timer.TOKEN_LOSS, now_ns + n.config.token_timeout_ns)
    n.set_state(MembState.COMMIT, f"commit {token.ring_id}")
    if seq > n.persisted_seq:
        n.out.append(PersistRingSeq(seq))
    forward = MembCommitToken(token.ring_id, token.token_seq + 1, index + 1, tuple(lines))
    ordering.send_token(n, now_ns, ids[(index + 1) % len(ids)], forward)


def on_persisted(n: Node, now_ns: int) -> None:
    commit = n.commit
    if commit is not None and commit.pending is not None:
        token, commit.pending = commit.pending, None
        if n.persisted_seq >= token.ring_id.seq:
            _recovery_enter(n, now_ns, token)
        else:
            commit.pending = token


# ---------------------------------------------------------------------- recovery


def _recovery_enter(n: Node, now_ns: int, token: MembCommitToken) -> None:
    """Second rotation: compute the transitional membership and what must be re-sent."""
    old = n.ring
    lines = token.members
    ids = tuple(line.node_id for line in lines)
    trans_lines = tuple(
        line for line in lines if line.old_ring_id == old.ring_id and line.node_id in old.members
    )
    retrans: deque[Mcast] = deque()
    if not all(line.received_flg for line in trans_lines):
        retrans.extend(_mine_to_resend(n.me, trans_lines, old.queue.values()))
    high = max(line.high_delivered for line in trans_lines)
    n.carry_high_delivered = max(n.carry_high_delivered, high)
    ring = RingState(token.ring_id, ids, n.me)
    n.recovery = RecoveryState(
        ring=ring,
        trans=tuple(line.node_id for line in trans_lines),
        retrans=retrans,
        commit_token_seq=token.token_seq,
        trans_lines=trans_lines,
    )
    n.commit = None
    n.set_state(MembState.RECOVERY, f"recovery {token.ring_id}")
    n.trace("recovery", ring=str(token.ring_id), trans=list(n.recovery.trans), resend=len(retrans))
    n.timers.arm(Timer.TOKEN_LOSS, now_ns + n.config.token_timeout_ns)
    forward = MembCommitToken(token.ring_id, token.token_seq + 1, token.memb_index, lines)
    ordering.send_token(n, now_ns, ring.succ, forward)


def _mine_to_resend(
    me: int, trans_lines: tuple[MemberEntry, ...], held: Iterable[Mcast]
) -> Iterator[Mcast]:
    """The old-ring mcasts this node re-sends in recovery, in seq order (REC-6.1-1 step 2).

    A member whose line shows ``aru >= s`` holds seq ``s`` (nothing above the lowest ``aru`` can
    have been released, RFC 0003 ORD-7.4-1), so one of those members suffices: the *keepers* of
    ``s`` are the transitional members with ``aru >= s`` ordered by (``aru``, id), and
    ``keepers[s mod len(keepers)]`` re-sends it, which spreads the work over every member that
    can do it. Above the highest ``aru`` nobody knows who holds what, and every holder re-sends.
    Every member computes the same keepers from the same commit token.
    """
    ranked = sorted(trans_lines, key=lambda line: (line.aru, line.node_id))
    arus = [line.aru for line in ranked]
    low = arus[0]
    for mcast in held:
        seq = mcast.seq
        if seq <= low or mcast.encapsulated is not None:
            continue
        first = bisect_left(arus, seq)  # ranked[first:] are the keepers of seq
        if first == len(ranked) or ranked[first + seq % (len(ranked) - first)].node_id == me:
            yield mcast


def _originate_orf_token(n: Node, now_ns: int, rec: RecoveryState) -> None:
    """End of the second rotation at the representative: the new ring's first token."""
    rec.originated_orf = True
    first = OrfToken(rec.ring.ring_id, 0, 0, 0, 0, 0, 0, False, ())
    ordering.on_orf_token(n, now_ns, first)


def originate(n: Node, ring: RingState, seq: int, allowed: int) -> tuple[int, int]:
    """In RECOVERY only old-ring messages are sent, each wrapped in a new-ring mcast."""
    rec = n.recovery
    assert rec is not None
    count = 0
    while count < allowed and rec.retrans:
        inner = rec.retrans.popleft()
        seq += 1
        mcast = Mcast(n.me, ring.ring_id, seq, False, (), inner)
        ring.queue.add(mcast)
        n.out.append(Multicast(mcast, ring.others))
        count += 1
    n.counters.mcasts_originated += count
    return seq, count


def backlog(n: Node) -> int:
    return len(n.recovery.retrans) if n.recovery is not None else 0


def on_token(n: Node, now_ns: int, received: OrfToken, token: OrfToken) -> OrfToken:
    """The retrans_flg protocol (RFC 0004 §6.3), then maybe install, before forwarding."""
    rec = n.recovery
    assert rec is not None
    flag = token.retrans_flg
    if rec.retrans and not flag:
        flag = True
        rec.i_set_flag = True
    elif not rec.retrans and rec.i_set_flag:
        flag = False
        rec.i_set_flag = False
    rec.flg_count = rec.flg_count + 1 if not flag else 0
    if rec.flg_count == 2:
        rec.install_seq = token.seq
    if rec.flg_count >= 2 and not rec.received_all and rec.ring.queue.aru >= rec.install_seq:
        rec.received_all = True
        n.obligation |= set(rec.trans)
    if rec.flg_count >= 3 and received.aru >= rec.install_seq:
        rec.rotations += 1
    else:
        rec.rotations = 0
    if flag != token.retrans_flg:
        token = replace(token, retrans_flg=flag)
    if rec.rotations >= 2:
        _operational_enter(n, now_ns)
    return token


# ---------------------------------------------------------------------- installation


def _operational_enter(n: Node, now_ns: int) -> None:
    """The atomic shift to OPERATIONAL (RFC 0004 §7.1): deliveries and two configurations."""
    rec = n.recovery
    assert rec is not None
    old, new = n.ring, rec.ring
    reason = n.gather_reason or ChangeReason(ReasonKind.TOKEN_LOSS)
    _unwrap(old, new)
    # 1. What the old configuration's own rules allow (safe: known delivered by a ring-mate).
    old.safe_upto = max(old.safe_upto, n.carry_high_delivered)
    ordering.deliver(n, old)
    # 2. The transitional configuration, then the rest from its members, skipping gaps.
    trans = rec.trans
    left = tuple(m for m in old.members if m not in trans)
    n.configuration(ConfigurationKind.TRANSITIONAL, new.ring_id, trans, left, (), reason)
    _deliver_transitional(n, old, set(trans), set(trans) | n.obligation)
    # 3. The new regular configuration.
    n.reassembler.reset()
    joined = tuple(m for m in new.members if m not in trans)
    n.configuration(ConfigurationKind.REGULAR, new.ring_id, new.members, (), joined, reason)
    membership.penalize_excluded(n, now_ns)
    membership.keep_out_excluded(n, now_ns, trans)
    n.ring = new
    n.recovery = None
    n.proc_set = set(new.members)
    n.fail_set = set()
    n.consensus = {n.me}
    n.obligation = set()
    n.carry_high_delivered = 0
    n.old_ring_frozen = False
    n.gather_reason = None
    n.set_state(MembState.OPERATIONAL, f"installed {new.ring_id}")
    if new.is_rep and len(new.members) < len(n.config.nodes):
        n.timers.arm(Timer.MERGE, now_ns + n.config.merge_timeout_ns)


def _unwrap(old: RingState, new: RingState) -> None:
    """Recovered messages of my old ring join its sort queue under their old seqs."""
    for carrier in new.queue.values():
        inner = carrier.encapsulated
        if inner is not None and inner.ring_id == old.ring_id and inner.seq > old.queue.released:
            old.queue.add(inner)


def _deliver_transitional(n: Node, old: RingState, trans: set[int], deliver_memb: set[int]) -> None:
    queue = old.queue
    config = n.config_id
    complete = n.reassembler.complete
    gap = False
    for seq in range(old.high_delivered + 1, queue.high_seq + 1):
        mcast = queue.get(seq)
        if mcast is None:
            gap = True
            n.reassembler.gap(keep=trans)
            continue
        if mcast.encapsulated is not None or (gap and mcast.sender not in deliver_memb):
            continue
        done = complete(mcast.sender, mcast.records)
        n.out.append(Deliver(config, old.ring_id, seq, mcast.sender, mcast.safe, done))
        n.counters.mcasts_delivered += 1
        n.counters.records_delivered += len(done)
    old.high_delivered = queue.high_seq


def abandon(n: Node, now_ns: int) -> None:
    """Recovery failed: back to the old ring's state, keeping every old-ring message we hold."""
    n.counters.recoveries_failed += 1
    rec = n.recovery
    if rec is not None:
        _unwrap(n.ring, rec.ring)
    n.recovery = None
    n.commit = None
    n.old_ring_frozen = False


def new_members(n: Node) -> tuple[int, ...]:
    if n.commit is not None:
        return n.commit.members
    if n.recovery is not None:
        return n.recovery.ring.members
    return ()


def new_ring_seq(n: Node) -> int:
    if n.commit is not None:
        return n.commit.ring_id.seq
    if n.recovery is not None:
        return n.recovery.ring.ring_id.seq
    return 0
