"""Gathering a new membership: joins, the consensus rule, and what starts a change (RFC 0004 §3-§4).

A node leaves OPERATIONAL for GATHER when the token is lost, a join or merge-detect arrives from
outside its ring, a member leaves, or a member keeps failing to receive. In GATHER every node
broadcasts a join with its ``proc_set`` (nodes it wants) and ``fail_set`` (nodes it gave up on).
Both sets only grow, so gathering terminates: when every node in ``proc - fail`` has sent a join
with exactly my sets, we have consensus, and the smallest id among them (the representative)
creates the commit token (``recovery``). Nodes that do not agree before the consensus timeout
are added to ``fail_set``; in the limit the membership shrinks to the node alone, for which
consensus is immediate.

Departures from the 1995 paper, each for a reason written in RFC 0004 §8:

* a node named in a join's fail set treats the sender as failed (symmetric exclusion), and a
  node excluded again soon after it was excluded while demonstrably alive is kept out for a
  growing penalty (hysteresis), so a flapping link does not reform the ring every few seconds;
* one-way links (RFC 0004 §8.4): a node that a ring-mate gives up on alone goes alone at once;
  a node excluded on a ring-mate's word is kept out until that ring-mate (the one that could
  not hear it) readmits it; evidence of another ring is answered with a probe join instead of
  a gather, so a node never gathers with nodes that cannot hear it; and a commit attempt that
  a ring-mate's join dooms is abandoned at once. A one-way fault costs one view change;
* a sender's fail set is merged in full only from members of my last ring; from others, only
  for nodes outside my ring (I trust my own observation of my ring-mates);
* failure to receive excludes the laggard by consensus, on a time bound, instead of the laggard
  excluding itself (corosync's behaviour remains selectable);
* joins are re-broadcast with jitter drawn from the injected rng and back off in long gathers,
  until a node is heard for the first time in the change (a heal: back to the base interval);
* after a detected process pause, joins that queued up during the pause are not trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, assert_never

from mypy_extensions import mypyc_attr

from gcs.totem import recovery
from gcs.totem.effects import ChangeReason, MembState, Multicast, ReasonKind
from gcs.totem.timers import Timer
from gcs.wire.frames import MembJoin, MembLeave, MembMergeDetect

if TYPE_CHECKING:
    from gcs.totem.node import Node

__all__ = [
    "Penalty",
    "check_consensus",
    "exclude_laggard",
    "foreign_sender",
    "gather_enter",
    "keep_out_excluded",
    "on_consensus_timeout",
    "on_join_timeout",
    "on_memb_join",
    "on_memb_leave",
    "on_merge_detect",
    "on_merge_timeout",
    "on_token_loss_timeout",
    "penalize_excluded",
    "self_exclude",
    "send_leave",
]


@mypyc_attr(serializable=True, allow_interpreted_subclasses=True)
@dataclass(slots=True)
class Penalty:
    """Hysteresis against a node that was excluded while it was alive (RFC 0004 §8.2)."""

    until_ns: int
    count: int
    last_ns: int


# ---------------------------------------------------------------------- entering GATHER


def gather_enter(
    n: Node,
    now_ns: int,
    reason: ChangeReason,
    *,
    failed: tuple[int, ...] = (),
    suspect: bool = False,
) -> None:
    """Enter (or restart) GATHER: broadcast my join, reset consensus, re-arm the timers."""
    prev = n.state
    if prev in (MembState.COMMIT, MembState.RECOVERY):
        recovery.abandon(n, now_ns)
    if prev is MembState.OPERATIONAL or n.gather_reason is None:
        _new_episode(n, reason)
    for node in failed:
        if node != n.me:
            n.proc_set.add(node)
            n.fail_set.add(node)
            if suspect:
                n.suspects.add(node)
    n.proc_set.add(n.me)
    n.fail_set.discard(n.me)
    n.consensus = {n.me}
    n.timers.cancel(
        Timer.TOKEN_LOSS,
        Timer.TOKEN_RETRANSMIT,
        Timer.HOLD,
        Timer.MERGE,
        Timer.SELF_TOKEN,
        Timer.COMMIT_WAIT,
    )
    n.self_frame = None
    n.last_sent = None
    n.timers.arm(Timer.CONSENSUS, now_ns + n.config.consensus_timeout_ns)
    if prev is not MembState.GATHER:
        n.set_state(MembState.GATHER, str(n.gather_reason))
    _send_join(n, now_ns)


def _new_episode(n: Node, reason: ChangeReason) -> None:
    if n.pause_seen and reason.kind is ReasonKind.TOKEN_LOSS:
        reason = ChangeReason(ReasonKind.PAUSE)
    n.pause_seen = False
    n.gather_reason = reason
    n.heard = set()
    n.suspects = set()
    n.left_nodes = set()
    n.adopted_from = {}
    n.went_alone_from = set()
    n.probed = None
    n.join_round = 0
    n.counters.gather_entries += 1
    n.sendq.restart_partial()
    n.ring.holding = None
    n.trace("gather", reason=str(reason))


def _send_join(n: Node, now_ns: int) -> None:
    # The ring seq a join carries is the highest this node has installed *or committed to*: after
    # an abandoned commit, members still in COMMIT/RECOVERY for that ring (MEM-3.3-3) and members
    # that installed it (the stale-join filter) must take this join as news, not as stale.
    ring_seq = max(n.ring.ring_id.seq, n.last_commit_seq)
    listed = n.config.nodes
    for node in [x for x in n.proc_set if x not in listed]:
        n.fail_set.add(node)  # no longer listed (MEM-3.2-4): failed out by this consensus
    join = MembJoin(n.me, frozenset(n.proc_set), frozenset(n.fail_set), ring_seq)
    n.out.append(Multicast(join, n.config.peers))
    n.counters.joins_sent += 1
    n.timers.arm(Timer.JOIN, now_ns + _join_interval(n))


def _join_interval(n: Node) -> int:
    """Join re-broadcast period: jittered, and doubling in a long gather (RFC 0004 §4.3)."""
    cfg = n.config
    interval = cfg.join_timeout_ns
    extra_rounds = n.join_round - cfg.join_backoff_after
    if extra_rounds > 0:
        interval = min(cfg.join_timeout_max_ns, interval << min(extra_rounds, 16))
    if cfg.join_jitter_ns > 0:
        interval += n.rng.randrange(cfg.join_jitter_ns)
    return interval


def on_join_timeout(n: Node, now_ns: int) -> None:
    if n.state is not MembState.GATHER:
        return
    n.join_round += 1
    _send_join(n, now_ns)
    check_consensus(n, now_ns)


def check_consensus(n: Node, now_ns: int) -> None:
    """Consensus: every node of proc - fail sent my exact sets. The smallest id then commits."""
    if n.state is not MembState.GATHER:
        return
    members = n.proc_set - n.fail_set
    if not members <= n.consensus:
        return
    if n.me == min(members):
        recovery.create_commit_token(n, now_ns, tuple(sorted(members)))


def on_consensus_timeout(n: Node, now_ns: int) -> None:
    """Nodes that did not agree in time are failed; an agreed non-representative waits once more."""
    if n.state is not MembState.GATHER:
        return
    members = n.proc_set - n.fail_set
    if members <= n.consensus:
        # Agreed, but no commit token came: wait one token timeout, then judge again.
        n.consensus = {n.me}
        n.timers.arm(Timer.COMMIT_WAIT, now_ns + n.config.token_timeout_ns)
        return
    late = members - n.consensus
    n.suspects |= late & n.heard
    n.trace("consensus_timeout", failed=sorted(late))
    reason = n.gather_reason or ChangeReason(ReasonKind.TOKEN_LOSS)
    gather_enter(n, now_ns, reason, failed=tuple(sorted(late)))


def on_token_loss_timeout(n: Node, now_ns: int) -> None:
    if n.state is MembState.OPERATIONAL:
        n.trace("token_loss", ring=str(n.ring.ring_id))
        gather_enter(n, now_ns, ChangeReason(ReasonKind.TOKEN_LOSS))
    elif n.state in (MembState.COMMIT, MembState.RECOVERY):
        n.trace("recovery_failed", state=n.state.value)
        gather_enter(n, now_ns, n.gather_reason or ChangeReason(ReasonKind.RECOVERY_FAILED))


# ---------------------------------------------------------------------- joins and leaves


def on_memb_join(n: Node, now_ns: int, src: int, join: MembJoin) -> None:
    if join.sender != src:
        n.counters.drop("spoofed_sender")
        return
    if n.learning:
        _learn(n, join)
    if not _sane(n, join):
        n.counters.drop("join_insane")
        return
    n.token_ring_id_seq = max(n.token_ring_id_seq, join.ring_seq)
    if now_ns < n.distrust_joins_until_ns:
        n.counters.drop("join_after_pause")
        return
    match n.state:
        case MembState.OPERATIONAL:
            _join_in_operational(n, now_ns, join)
        case MembState.GATHER:
            news = _hear(n, join.sender)
            if _merge_join(n, join):
                gather_enter(n, now_ns, _reason(n))
            else:
                if news:
                    _send_join(n, now_ns)
                check_consensus(n, now_ns)
        case MembState.COMMIT | MembState.RECOVERY:
            if join.sender in recovery.new_members(n) and (
                join.ring_seq >= recovery.new_ring_seq(n) or _dooms_commit(n, join)
            ):
                _merge_join(n, join)
                gather_enter(n, now_ns, _reason(n))
        case MembState.STARTING | MembState.LEFT | MembState.FAILED:
            pass  # not yet in, or out of, the membership: a join changes nothing (RFC 0004 §2)
        case _:
            assert_never(n.state)


def _dooms_commit(n: Node, join: MembJoin) -> bool:
    """A ring-mate's current join fails a member of my proposal: the attempt cannot succeed.

    (MEM-3.3-4.) Its ``ring_seq`` at least my installed ring's shows it was sent since we left
    that ring together; with a proposed member in its fail set, its sender cannot accept a
    commit token listing that member during this change, so waiting a token timeout for the
    attempt to fail gains nothing, and the verdict must reach the join rules now.
    """
    ring = n.ring
    return (
        n.state is MembState.COMMIT
        and join.sender in ring.members
        and join.ring_seq >= ring.ring_id.seq
        and not join.fail_set.isdisjoint(recovery.new_members(n))
    )


def _hear(n: Node, sender: int) -> bool:
    """Note a join's sender in ``heard``; True when that ends a join backoff (MEM-4.3-4).

    A node heard for the first time in this change means the network changed (a partition
    healed, a node came back): the backoff was for a change where nothing new happens, so the
    node returns to the base join interval, and sends its join at once, since the newcomer
    may not have one of its joins either.
    """
    if sender in n.heard:
        return False
    n.heard.add(sender)
    if n.join_round <= n.config.join_backoff_after:
        return False
    n.join_round = 0
    return True


def _join_in_operational(n: Node, now_ns: int, join: MembJoin) -> None:
    ring = n.ring
    q = join.sender
    if n.penalized(q, now_ns):
        n.counters.drop("join_penalized")
        return
    if n.kept_out(q, now_ns):
        n.counters.drop("join_kept_out")
        return
    if n.me in join.fail_set:
        n.counters.drop("join_excludes_me")
        return
    if _stale(n, join):
        n.counters.drop("join_stale")
        return
    probed, n.probed = n.probed, None
    n.proc_set = set(ring.members)
    n.fail_set = set()
    _merge_join(n, join)
    if probed is not None and q not in ring.members:
        # The answer to my probe (MEM-8.4-3): the change is the merge the probe was about.
        gather_enter(n, now_ns, ChangeReason(ReasonKind.MERGE, (probed,)))
        n.heard.add(probed)
    else:
        gather_enter(n, now_ns, ChangeReason(ReasonKind.JOIN, (q,)))
    n.heard.add(q)


def _stale(n: Node, join: MembJoin) -> bool:
    """Sent before its sender's last change as I know it (MEM-3.3-1): from a ring-mate, before
    our ring formed; from a node I went alone from, during the change in which I did."""
    q, ring = join.sender, n.ring
    if q in ring.members:
        return join.ring_seq < ring.ring_id.seq
    return join.ring_seq <= n.parted.get(q, -1)


def _merge_join(n: Node, join: MembJoin) -> bool:
    """Apply the join rules (RFC 0004 §3.2); True when my sets changed."""
    proc, fail = n.proc_set, n.fail_set
    if join.proc_set == proc and join.fail_set == fail:
        n.consensus.add(join.sender)
        return False
    if (join.proc_set <= proc and join.fail_set <= fail) or join.sender in fail:
        return False
    size = (len(proc), len(fail))
    alive = proc - fail
    proc |= join.proc_set
    if n.me in join.fail_set:
        _excluded_by(n, join, alive)
    elif join.sender in n.ring.members:
        _adopt(n, join, join.fail_set)
    else:
        fail |= join.fail_set - set(n.ring.members)
    fail.discard(n.me)
    return (len(proc), len(fail)) != size


def _excluded_by(n: Node, join: MembJoin, alive: set[int]) -> None:
    """A join names me as failed: its sender cannot have me in its ring during this change.

    Symmetric exclusion ("you gave up on me, so I give up on you") fails the sender, with two
    exceptions for one-way links (MEM-8.4-1):

    * a ring-mate that gives up on me *alone* of the nodes I still count on: my ring-mates take
      its word on me in full, so I am the one going, and I go alone at once, failing every node
      I still counted on. Failing only the sender would put a verdict on it in my join, and a
      ring-mate taking that verdict before the sender's on me would split the ring further;
    * a sender that gives up on every other node it knows is going alone that way: that is its
      decision about itself, not an observation of me. I leave it to the word it is going on
      (or to my consensus timeout), which keeps the record of who excluded it (§8.4) true.
    """
    q = join.sender
    if join.fail_set >= join.proc_set - {q}:
        return
    gone = {q}
    if q in n.ring.members and join.fail_set & alive == {n.me}:
        gone |= n.proc_set - n.fail_set - {n.me}
        n.went_alone_from |= gone
    n.fail_set |= gone
    n.suspects.add(q)


def _adopt(n: Node, join: MembJoin, failed: frozenset[int]) -> None:
    """Merge a ring-mate's fail set, noting whose word each new entry was taken on (§8.4).

    Only a join sent since we left our common ring (its ``ring_seq`` at least the installed
    ring's) counts as that ring-mate's word; an older one is merged as before, unattributed.
    """
    current = join.ring_seq >= n.ring.ring_id.seq
    for node in failed - n.fail_set:
        if current and node != n.me:
            n.adopted_from[node] = join.sender
        n.fail_set.add(node)


def _learn(n: Node, join: MembJoin | MembLeave) -> None:
    """A learning node accepts the nodes a listed node's join names (MEM-3.2-5)."""
    nodes = n.config.nodes
    if join.sender not in nodes:
        return
    new = [x for x in join.proc_set if x not in nodes]
    if new:
        n.config = replace(n.config, nodes=tuple(sorted((*nodes, *new))))
        n.trace("learn", nodes=new, sender=join.sender)


def _sane(n: Node, join: MembJoin | MembLeave) -> bool:
    # Members of my ring stay nameable after the node list dropped them (MEM-3.2-4): they are
    # failed out by the next consensus, and peers name them until then.
    nodes = frozenset(n.config.nodes) | frozenset(n.ring.members)
    return (
        join.proc_set.issubset(nodes)
        and join.fail_set.issubset(nodes)
        and (join.sender in join.proc_set) != isinstance(join, MembLeave)
    )


def _reason(n: Node) -> ChangeReason:
    return n.gather_reason or ChangeReason(ReasonKind.TOKEN_LOSS)


def on_memb_leave(n: Node, now_ns: int, src: int, leave: MembLeave) -> None:
    """A member shuts down cleanly: fail it at once instead of waiting for the token timeout."""
    q = leave.sender
    if q != src or q not in leave.fail_set:
        n.counters.drop("leave_insane")
        return
    n.left_nodes.add(q)
    n.penalties.pop(q, None)
    state = n.state
    if state is MembState.OPERATIONAL:
        if q in n.ring.members:
            n.proc_set = set(n.ring.members)
            n.fail_set = set()
            gather_enter(n, now_ns, ChangeReason(ReasonKind.LEAVE, (q,)), failed=(q,))
            n.left_nodes.add(q)
    elif state is MembState.GATHER:
        if q not in n.fail_set:
            gather_enter(n, now_ns, _reason(n), failed=(q,))
    elif state in (MembState.COMMIT, MembState.RECOVERY) and q in recovery.new_members(n):
        gather_enter(n, now_ns, _reason(n), failed=(q,))


def send_leave(n: Node) -> None:
    others = frozenset(n.proc_set) - {n.me}
    leave = MembLeave(n.me, others, frozenset({n.me}), n.ring.ring_id.seq)
    n.out.append(Multicast(leave, n.config.peers))


# ---------------------------------------------------------------------- merging partitions


def on_merge_detect(n: Node, now_ns: int, src: int, frame: MembMergeDetect) -> None:
    if frame.sender != src:
        n.counters.drop("spoofed_sender")
        return
    if n.state is MembState.OPERATIONAL and (
        frame.sender in n.ring.members or frame.ring_id == n.ring.ring_id
    ):
        return
    foreign_sender(n, now_ns, frame.sender, ChangeReason(ReasonKind.MERGE, (frame.sender,)))


def foreign_sender(n: Node, now_ns: int, sender: int, reason: ChangeReason) -> None:
    """Evidence of another ring (a merge-detect or a foreign mcast) from ``sender``.

    In OPERATIONAL it is answered with a probe (MEM-8.4-3): my join, to the configured nodes
    outside my ring, while I stay in it. The change begins where the probe is accepted, and
    reaches me as their joins; if nobody can hear me (a one-way link), nothing changes here.
    """
    if n.penalized(sender, now_ns):
        n.counters.drop("merge_penalized")
        return
    if n.state is MembState.OPERATIONAL:
        if n.kept_out(sender, now_ns):
            n.counters.drop("merge_kept_out")
            return
        _probe(n, now_ns, sender)
    elif n.state is MembState.GATHER and sender not in n.proc_set:
        n.proc_set.add(sender)
        gather_enter(n, now_ns, _reason(n))
        n.heard.add(sender)


def _probe(n: Node, now_ns: int, sender: int) -> None:
    """Send my join to the nodes outside my ring, at most once per join interval."""
    if n.probed is None:
        n.probed = sender
    if now_ns < n.probe_ready_ns:
        return
    ring = n.ring
    outsiders = tuple(x for x in n.config.peers if x not in ring.members)
    proc = frozenset(ring.members) | {sender}
    join = MembJoin(n.me, proc, frozenset(), max(ring.ring_id.seq, n.last_commit_seq))
    n.out.append(Multicast(join, outsiders))
    n.counters.joins_sent += 1
    n.probe_ready_ns = now_ns + n.config.join_timeout_ns
    n.trace("probe", about=sender)


def on_merge_timeout(n: Node, now_ns: int) -> None:
    """An OPERATIONAL representative reminds configured outsiders that its ring exists."""
    ring = n.ring
    if n.state is not MembState.OPERATIONAL or not ring.is_rep:
        return
    outsiders = tuple(
        x for x in n.config.peers if x not in ring.members and not n.penalized(x, now_ns)
    )
    if outsiders:
        n.out.append(Multicast(MembMergeDetect(n.me, ring.ring_id), outsiders))
    n.timers.arm(Timer.MERGE, now_ns + n.config.merge_timeout_ns)


# ---------------------------------------------------------------------- failure to receive


def exclude_laggard(n: Node, now_ns: int, laggard: int) -> None:
    """The others exclude a member that has not received a message for fail_to_recv_ns."""
    n.trace("failed_to_receive", laggard=laggard)
    n.proc_set = set(n.ring.members)
    n.fail_set = set()
    reason = ChangeReason(ReasonKind.FAILURE_TO_RECEIVE, (laggard,))
    gather_enter(n, now_ns, reason, failed=(laggard,), suspect=True)


def self_exclude(n: Node, now_ns: int) -> None:
    """corosync's variant: the laggard declares itself failed and forms a singleton ring."""
    n.trace("failed_to_receive", laggard=n.me)
    others = tuple(m for m in n.ring.members if m != n.me)
    n.proc_set = set(n.ring.members)
    n.fail_set = set()
    reason = ChangeReason(ReasonKind.FAILURE_TO_RECEIVE, (n.me,))
    gather_enter(n, now_ns, reason, failed=others)


def penalize_excluded(n: Node, now_ns: int) -> None:
    """Hysteresis for nodes excluded while alive (RFC 0004 §8.2), at ring installation.

    One exclusion of a live node is normal (a timeout racing a commit); only a node excluded
    again within the memory window is kept out, for a period that doubles with each repeat.
    Penalties only stop a penalised node from *starting* a merge; in a gather started for any
    other reason it is treated like everyone else, so penalties cannot feed on themselves.
    """
    cfg = n.config
    if not cfg.exclusion_hysteresis:
        return
    memory_ns = 2 * cfg.exclusion_penalty_max_ns
    # Excluded although this node could hear it during the change: alive, so the exclusion is
    # about reachability somewhere (its own timeout, a ring-mate's verdict, or symmetric
    # exclusion), not a crash. Crashed and partitioned nodes are silent and never counted.
    alive = n.suspects | n.heard
    for node in sorted((n.fail_set & alive) - n.left_nodes):
        previous = n.penalties.get(node)
        repeat = previous is not None and now_ns - previous.last_ns <= memory_ns
        count = previous.count + 1 if previous is not None and repeat else 0
        duration = 0
        if count > 0:
            duration = min(
                cfg.exclusion_penalty_max_ns, cfg.exclusion_penalty_ns << min(count - 1, 16)
            )
        n.penalties[node] = Penalty(now_ns + duration, count, now_ns)
        n.trace("penalty", node=node, duration_ns=duration, count=count)


def keep_out_excluded(n: Node, now_ns: int, trans: tuple[int, ...]) -> None:
    """What the excluded may do next, decided at installation with ``F`` as it was for the change.

    *Kept out* (MEM-8.4-2): a node this node could hear, excluded on the current word of a
    member of its transitional configuration ``trans`` (who came from the same ring, and could
    not hear it). Its joins and its evidence of another ring are ignored while this ring lasts,
    at most ``exclusion_penalty_max_ns``: the member whose own observation excluded it brings it
    back, when it hears it. Words from members that came from another ring do not count: such
    a member may carry, from a change it never finished, this very node's earlier verdict, and
    two nodes taking each other's word would keep the node out with nobody to bring it back
    (big-ring seed 172).

    *Parted* (MEM-3.3-5): if this node went alone (MEM-8.4-1), the nodes it left, with the seq
    of the ring the change began from. They gave up on it; a join of theirs carrying no higher
    ring seq was sent during that change, before they installed a ring of their own: it was on
    its way while the change ended, not an invitation.
    """
    old_seq = n.ring.ring_id.seq
    n.parted = dict.fromkeys(n.went_alone_from & n.fail_set, old_seq)
    n.kept_out_until = {}
    cfg = n.config
    if not cfg.exclusion_hysteresis:
        return
    until = now_ns + cfg.exclusion_penalty_max_ns
    for node in sorted(n.fail_set - n.left_nodes):
        if n.adopted_from.get(node) in trans and node in n.heard:
            n.kept_out_until[node] = until
            n.trace("kept_out", node=node, on_word_of=n.adopted_from[node])
