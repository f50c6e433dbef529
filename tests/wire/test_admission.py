"""Boots, epochs and liveness at a receiver: no sticky state, no double acceptance (RFC 0005 §7-§8).

Datagrams here are sealed with explicit header fields (``sealed``), as a key holder, a second
process with the same node id, or a clone could seal them; the receiver is a real ``Channel``
fed a monotonic clock in nanoseconds.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gcs.wire.channel import Channel
from gcs.wire.codec import cluster_id_for, encode_frame
from gcs.wire.errors import DropReason, FrameError
from gcs.wire.frames import MembMergeDetect, RingId
from gcs.wire.seal import KeySchedule, Suite, pack_header, seal_datagram

from . import strategies as s

KEY = bytes(range(7, 71))
NAME = "admission-tests"
CID = cluster_id_for(NAME)
MS = 1_000_000
SILENCE = 1000 * MS
BOOT = 1_800_000_000_000
HOME = ("10.0.0.1", 5405)
ELSEWHERE = ("10.0.0.4", 5405)
BODY = encode_frame(MembMergeDetect(1, RingId(seq=8, rep=1)), CID)
_KEYS = KeySchedule(KEY, NAME)


@pytest.fixture(autouse=True)
def _capture_wire_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="gcs.wire")


def sealed(boot: int = 0, epoch: int = 0, counter: int = 0, sender: int = 1) -> bytes:
    """An authentic datagram of node ``sender`` with exactly these header fields."""
    suite = Suite.AES_256_GCM
    header = pack_header(suite, CID, sender, BOOT + boot, epoch, counter)
    return seal_datagram(_KEYS.aead(suite, sender, BOOT + boot, epoch), header, BODY)


def receiver(addresses: bool = False) -> Channel:
    return Channel(
        2,
        1,
        NAME,
        KEY,
        peers=(1, 2, 3),
        silence_ns=SILENCE,
        addresses={1: HOME} if addresses else None,
    )


def outcome(channel: Channel, datagram: bytes, at_ms: float, source: object = None) -> str:
    try:
        channel.open(datagram, int(at_ms * MS), source)  # type: ignore[arg-type]
    except FrameError as exc:
        return exc.reason.value
    return "accept"


# ---------------------------------------------------------------- two boots (SEC-7.1-1)


@pytest.mark.req("SEC-7.1-1")
def test_the_newest_boot_wins_while_live_and_the_other_is_back_once_it_is_silent() -> None:
    ch = receiver()
    assert outcome(ch, sealed(0, 0, 0), 0) == "accept"
    assert outcome(ch, sealed(1, 0, 0), 10) == "accept"  # a second process (or a restart)
    assert outcome(ch, sealed(0, 0, 1), 500) == "shadowed_boot"
    assert outcome(ch, sealed(0, 0, 2), 1009) == "shadowed_boot"  # 999 ms of silence
    assert outcome(ch, sealed(0, 0, 3), 1010) == "accept"  # 1000 ms: back, no restart
    assert outcome(ch, sealed(0, 0, 4), 5000) == "accept"
    assert outcome(ch, sealed(1, 0, 1), 5001) == "accept"  # the newer one speaks: it wins
    assert outcome(ch, sealed(0, 0, 5), 5002) == "shadowed_boot"
    assert ch.statistics().boot_fallbacks == 1


@pytest.mark.req("SEC-7.1-1")
def test_a_boot_from_elsewhere_never_takes_over_from_the_configured_address() -> None:
    ch = receiver(addresses=True)
    assert outcome(ch, sealed(0), 0, HOME) == "accept"
    # An impostor with the same id, a newer boot id, at another address: never accepted while
    # the real node's boot is kept, however long the real node stays quiet.
    for n, at in enumerate((10, 20, 3000, 60_000)):
        assert outcome(ch, sealed(1, 0, n), at, ELSEWHERE) == "shadowed_boot"
    assert outcome(ch, sealed(0, 0, 1), 60_001, HOME) == "accept"
    # A genuine restart at the configured address is accepted at once, as ever.
    assert outcome(ch, sealed(2), 60_002, HOME) == "accept"
    # Of the two boots before it, the restart kept the real one: the impostor's is forgotten.
    assert outcome(ch, sealed(1, 0, 9), 90_000, ELSEWHERE) == "old_boot"
    assert outcome(ch, sealed(0, 0, 2), 60_003, HOME) == "shadowed_boot"
    assert ch.statistics().boot_fallbacks == 0


@pytest.mark.req("SEC-7.1-1")
def test_a_third_boot_keeps_the_one_at_home_then_the_one_heard_last() -> None:
    ch = receiver(addresses=True)
    assert outcome(ch, sealed(0), 0, HOME) == "accept"
    assert outcome(ch, sealed(1), 10, ELSEWHERE) == "shadowed_boot"
    # The impostor restarts; the real node has been quiet longer than it: still kept.
    assert outcome(ch, sealed(2), 5000, ELSEWHERE) == "shadowed_boot"
    assert outcome(ch, sealed(1, 0, 1), 5001, ELSEWHERE) == "old_boot"  # forgotten
    assert outcome(ch, sealed(0, 0, 1), 5002, HOME) == "accept"

    ch = receiver()  # no addresses: of two boots, the one heard last is kept
    assert outcome(ch, sealed(0), 0) == "accept"
    assert outcome(ch, sealed(1), 10) == "accept"
    assert outcome(ch, sealed(0, 0, 1), 20) == "shadowed_boot"  # boot 0 is live
    assert outcome(ch, sealed(2), 30) == "accept"
    assert outcome(ch, sealed(1, 0, 1), 2000) == "old_boot"
    assert outcome(ch, sealed(0, 0, 2), 2000) == "accept"  # boot 2 silent: boot 0 is back


@pytest.mark.req("SEC-7.1-1")
def test_a_restart_first_heard_from_elsewhere_is_at_home_once_heard_from_home() -> None:
    """An on-path party can replay a restarted node's first datagram (a token it sent to
    another node) from its own address, ahead of the node's own: that must not make the new
    boot look like an impostor for good."""
    ch = receiver(addresses=True)
    assert outcome(ch, sealed(0), 0, HOME) == "accept"
    assert outcome(ch, sealed(1, 0, 3), 1, ELSEWHERE) == "shadowed_boot"
    assert outcome(ch, sealed(1, 0, 4), 2, HOME) == "accept"
    assert outcome(ch, sealed(1, 0, 3), 3, HOME) == "accept"  # dropped before, so not a replay
    assert outcome(ch, sealed(0, 0, 1), 4, HOME) == "shadowed_boot"  # the old boot, live or not


@pytest.mark.req("SEC-8.4-1", "SEC-7.1-2")
def test_a_forged_newer_boot_moves_no_state_and_is_not_a_duplicate() -> None:
    ch = receiver()
    assert outcome(ch, sealed(0), 0) == "accept"
    forger = Channel(1, BOOT + 9, NAME, bytes(64))
    assert outcome(ch, forger.seal(MembMergeDetect(1, RingId(seq=8, rep=1))), 1) == "auth"
    assert outcome(ch, sealed(0, 0, 1), 2) == "accept"
    assert ch.statistics().duplicate_node_id == 0


# ---------------------------------------------------------------- duplicate reports (SEC-7.1-2)


@pytest.mark.req("SEC-7.1-2")
def test_a_duplicate_id_is_logged_once_per_pair_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ch = receiver(addresses=True)
    outcome(ch, sealed(0), 0, HOME)
    for n in range(50):
        outcome(ch, sealed(1, 0, n), 10 + n, ELSEWHERE)
        outcome(ch, sealed(0, 0, 1 + n), 10 + n, HOME)
    stats = ch.statistics()
    assert stats.duplicate_node_id == 1
    (sighting,) = stats.duplicates
    assert sighting.node_id == 1
    assert sorted(sighting.boots) == [BOOT, BOOT + 1]
    assert sorted(sighting.sources) == ["10.0.0.1:5405", "10.0.0.4:5405"]
    warnings = [r.getMessage() for r in caplog.records if "DUPLICATE NODE ID" in r.getMessage()]
    assert len(warnings) == 1
    assert "DUPLICATE NODE ID 1" in warnings[0]
    assert "10.0.0.1:5405" in warnings[0] and "10.0.0.4:5405" in warnings[0]
    assert str(BOOT) in warnings[0] and str(BOOT + 1) in warnings[0]
    assert stats.dropped["shadowed_boot"] == 50

    outcome(ch, sealed(2), 100, ELSEWHERE)  # the impostor restarts: a new pair, a new report
    assert ch.statistics().duplicate_node_id == 2
    assert sum("DUPLICATE NODE ID" in r.getMessage() for r in caplog.records) == 2


@pytest.mark.req("SEC-7.1-2")
def test_one_boot_from_two_addresses_is_a_duplicate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ch = receiver()
    outcome(ch, sealed(0, 0, 0), 0, HOME)
    for n in range(1, 10):
        assert outcome(ch, sealed(0, 0, n), n, ELSEWHERE if n % 2 else HOME) == "accept"
    assert ch.statistics().duplicate_node_id == 1
    assert sum("DUPLICATE NODE ID" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.req("SEC-7.1-2")
def test_restarts_are_not_duplicates() -> None:
    ch = receiver(addresses=True)
    for boot in range(5):
        for counter in range(3):
            assert outcome(ch, sealed(boot, 0, counter), boot * 100 + counter, HOME) == "accept"
    assert ch.statistics().duplicate_node_id == 0
    assert ch.statistics().boot_fallbacks == 0


# ---------------------------------------------------------------- epochs (SEC-8.3-2)


@pytest.mark.req("SEC-8.3-2")
def test_authentic_datagrams_of_later_epochs_cannot_cut_a_live_sender_off() -> None:
    """Before SEC-8.3-2, epochs 1 and 2 injected once each evicted the live epoch 0 for good."""
    ch = receiver()
    assert outcome(ch, sealed(0, 0, 0), 0) == "accept"
    assert outcome(ch, sealed(0, 1, 0), 1) == "accept"  # the next epoch: explained
    assert outcome(ch, sealed(0, 2, 0), 2) == "epoch_jump"  # would evict the live epoch 0
    assert outcome(ch, sealed(0, 9, 0), 3) == "epoch_jump"  # far ahead
    for n in range(1, 100):
        assert outcome(ch, sealed(0, 0, n), 3 + n * 10) == "accept"
    # The real sender moves on one epoch at a time, each long after the previous one.
    assert outcome(ch, sealed(0, 1, 0), 2000) == "replay"  # the injected one used that counter
    assert outcome(ch, sealed(0, 1, 1), 2001) == "accept"
    assert outcome(ch, sealed(0, 2, 0), 5000) == "accept"


@pytest.mark.req("SEC-8.3-2")
def test_a_receiver_cut_off_for_long_follows_a_far_epoch_after_silence_ns() -> None:
    ch = receiver()
    assert outcome(ch, sealed(0, 0, 0), 0) == "accept"
    # Healed after a long partition; the sender is three epochs further and keeps sending.
    at, counter = 600_000.0, 0
    while outcome(ch, sealed(0, 3, counter), at) != "accept":
        at, counter = at + 50, counter + 1
    assert at - 600_000 == 1000  # accepted after silence_ns, not before
    assert ch.drops[DropReason.EPOCH_JUMP] == 20


@pytest.mark.req("SEC-8.3-2")
def test_a_second_live_stream_of_one_boot_never_moves_its_epoch() -> None:
    """A clone with the same boot id on a far epoch, both live: the real epoch stays."""
    ch = receiver()
    for n in range(200):
        assert outcome(ch, sealed(0, 0, n), n * 100) == "accept"
        assert outcome(ch, sealed(0, 7, n), n * 100 + 1) == "epoch_jump"


@pytest.mark.req("SEC-7.1-1", "SEC-8.3-2")
@given(
    at=st.integers(1, 39),  # after first contact: a first datagram of a boot sets its epoch
    epoch=st.integers(0, 30),
    counter=st.integers(0, 12),
    boot=st.integers(-1, 1),
)
@s.PROPERTY
def test_one_injected_datagram_costs_a_live_sender_one_counter_and_one_silence(
    at: int, epoch: int, counter: int, boot: int
) -> None:
    """A sender heard every 700 ms, moving epoch every 4 datagrams (2.8 s, longer than twice
    silence_ns: real epochs last 2^23 datagrams), and one authentic datagram of its boot, the
    boot before or a newer one injected anywhere: what it seals is accepted, except the
    datagram whose counter the injection used and, for at most silence_ns and one datagram
    after the injection, datagrams the injection made the receiver doubt."""
    ch = receiver()
    every_ms = 700
    injected_ms = at * every_ms - 1
    for n in range(40):
        if n == at:
            outcome(ch, sealed(boot, epoch, counter), injected_ms)
        e, c = n // 4, n % 4
        got = outcome(ch, sealed(0, e, c), n * every_ms)
        if got == "accept" or (got, boot, e, c) == ("replay", 0, epoch, counter):
            continue
        assert got in ("epoch_jump", "shadowed_boot"), f"datagram {n}: {got}"
        doubt_ms = n * every_ms - injected_ms
        assert doubt_ms < SILENCE // MS + every_ms, f"datagram {n}: {got} {doubt_ms} ms after"


# ---------------------------------------------------------------- replay (SEC-8.2-1, §7.2)

_POOL = [
    (boot, epoch, counter, source)
    for boot in range(3)
    for epoch in range(4)
    for counter in range(3)
    for source in (HOME, ELSEWHERE)
]


@pytest.mark.req("SEC-8.2-1", "SEC-7.1-1", "SEC-8.3-2")
@given(
    st.lists(
        st.tuples(st.integers(0, len(_POOL) - 1), st.integers(0, 1500)), min_size=1, max_size=120
    ),
    st.booleans(),
)
@s.PROPERTY
def test_no_datagram_is_ever_accepted_twice(steps: list[tuple[int, int]], addresses: bool) -> None:
    """Any order, any timing, any mix of boots, epochs and addresses: at most once each."""
    ch = receiver(addresses)
    datagrams = {(b, e, c): sealed(b, e, c) for b, e, c, _ in _POOL}
    accepted: set[tuple[int, int, int]] = set()
    now = 0
    for index, gap_ms in steps:
        boot, epoch, counter, source = _POOL[index]
        now += gap_ms
        if outcome(ch, datagrams[boot, epoch, counter], now, source) == "accept":
            assert (boot, epoch, counter) not in accepted, f"accepted twice at {now} ms"
            accepted.add((boot, epoch, counter))
