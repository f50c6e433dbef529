"""Hypothesis strategies for every wire frame, valid under the default ``WireLimits``.

Reusable outside tests/wire: ``frames()`` draws any frame type, ``mcasts()`` etc. one type.
Values span the whole field ranges (node ids up to 2^32-1, seqs up to 2^64-1) but sizes stay
small enough that every drawn frame fits the default 1,600-byte datagram once sealed.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st

from gcs.wire.frames import (
    LinkProbe,
    Mcast,
    MembCommitToken,
    MemberEntry,
    MembJoin,
    MembLeave,
    MembMergeDetect,
    OrfToken,
    Record,
    RecordFlags,
    RingId,
    RtrEntry,
    TokenHoldCancel,
    WireFrame,
)

__all__ = [
    "PROPERTY",
    "commit_tokens",
    "frames",
    "joins",
    "leaves",
    "link_probes",
    "mcasts",
    "merge_detects",
    "node_ids",
    "orf_tokens",
    "record_flags",
    "records",
    "ring_ids",
    "token_hold_cancels",
    "u64",
]

PROPERTY = settings(max_examples=min(300, settings.default.max_examples or 100))
"""For properties over whole frames: drawing a frame costs milliseconds, so the ``ci`` profile's
1,000 examples per test would blow the time budget; 300 still covers every branch many times."""

U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1

u64 = st.one_of(st.integers(0, 1000), st.integers(0, U64_MAX))
node_ids = st.one_of(st.integers(1, 16), st.integers(1, U32_MAX))
ring_ids = st.builds(lambda rep, seq: RingId(seq=seq, rep=rep), node_ids, u64)

_KINDS = (RecordFlags.DATA, RecordFlags.JOIN, RecordFlags.LEAVE)
_FRAGMENTS = (RecordFlags.WHOLE, RecordFlags.FIRST, RecordFlags.MIDDLE, RecordFlags.LAST)


def record_flags(safe: bool) -> st.SearchStrategy[int]:
    """Valid ``Record.flags`` whose SAFE bit equals ``safe``."""
    safe_bit = int(RecordFlags.SAFE) if safe else 0
    return st.builds(
        lambda kind, fragment: int(kind) | int(fragment) | safe_bit,
        st.sampled_from(_KINDS),
        st.sampled_from(_FRAGMENTS),
    )


def records(safe: bool) -> st.SearchStrategy[Record]:
    return st.builds(
        Record,
        st.text(max_size=12),
        u64,
        record_flags(safe),
        st.binary(max_size=40),
    )


def _mcast(safe: bool, sender: int, ring_id: RingId, seq: int, recs: list[Record]) -> Mcast:
    return Mcast(sender, ring_id, seq, safe, tuple(recs))


def plain_mcasts() -> st.SearchStrategy[Mcast]:
    """An mcast carrying records (no encapsulation)."""
    return st.booleans().flatmap(
        lambda safe: st.builds(
            _mcast,
            st.just(safe),
            node_ids,
            ring_ids,
            u64,
            st.lists(records(safe), max_size=8),
        )
    )


def _encapsulating(sender: int, ring_id: RingId, seq: int, safe: bool, inner: Mcast) -> Mcast:
    return Mcast(sender, ring_id, seq, safe, (), inner)


mcasts = st.one_of(
    plain_mcasts(),
    st.builds(_encapsulating, node_ids, ring_ids, u64, st.booleans(), plain_mcasts()),
)

orf_tokens = st.builds(
    OrfToken,
    ring_ids,
    u64,
    u64,
    u64,
    st.one_of(st.just(0), node_ids),
    u64,
    u64,
    st.booleans(),
    st.lists(st.builds(RtrEntry, ring_ids, u64), max_size=12).map(tuple),
)

_node_sets = st.frozensets(node_ids, max_size=20)
joins = st.builds(MembJoin, node_ids, _node_sets, _node_sets, u64)
leaves = st.builds(MembLeave, node_ids, _node_sets, _node_sets, u64)

_member_entries = st.builds(MemberEntry, node_ids, ring_ids, u64, u64, st.booleans())
commit_tokens = st.builds(
    MembCommitToken,
    ring_ids,
    u64,
    u64,
    st.lists(_member_entries, max_size=10).map(tuple),
)
merge_detects = st.builds(MembMergeDetect, node_ids, ring_ids)
token_hold_cancels = st.builds(TokenHoldCancel, node_ids, ring_ids)
link_probes = st.builds(LinkProbe, st.integers(0, 7), u64, st.booleans(), st.booleans())


def frames() -> st.SearchStrategy[WireFrame]:
    """Any valid frame, every type equally likely."""
    return st.one_of(
        orf_tokens,
        mcasts,
        joins,
        leaves,
        commit_tokens,
        merge_detects,
        token_hold_cancels,
        link_probes,
    )
