"""The Channel: sealing, authentication, replay windows, boots, epochs, counters (RFC 0005)."""

from __future__ import annotations

import dataclasses
import logging
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gcs.wire.channel import REPLAY_WINDOW, Channel
from gcs.wire.codec import cluster_id_for, encode_frame
from gcs.wire.errors import DropReason, EncodeError, FrameError
from gcs.wire.frames import Frame, Mcast, MembMergeDetect, Record, RingId
from gcs.wire.limits import HEADER_BYTES, TAG_BYTES, WireLimits
from gcs.wire.seal import EPOCH_FRAMES, KeySchedule, Suite, pack_header, parse_header, seal_datagram

from . import strategies as s

KEY = bytes(range(100, 164))
NAME = "channel-tests"
CID = cluster_id_for(NAME)
R = RingId(seq=8, rep=1)
AEADS = [Suite.AES_256_GCM, Suite.CHACHA20_POLY1305]
SECOND = 1_000_000_000  # the channels' default silence_ns


@pytest.fixture(autouse=True)
def _capture_wire_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="gcs.wire")


def pair(
    suite: Suite = Suite.AES_256_GCM, *, sender_boot: int = 1, **kw: object
) -> tuple[Channel, Channel]:
    key = None if suite is Suite.NONE else KEY
    a = Channel(1, sender_boot, NAME, key, suite, **kw)  # type: ignore[arg-type]
    b = Channel(2, 1, NAME, key, **kw)  # type: ignore[arg-type]
    return a, b


def frame(n: int = 0) -> Frame:
    return MembMergeDetect(1, RingId(seq=n, rep=1))


def reason(channel: Channel, datagram: bytes) -> DropReason:
    with pytest.raises(FrameError) as info:
        channel.open(datagram)
    return info.value.reason


# ---------------------------------------------------------------- the datagram (SEC-3-1)


@pytest.mark.req("SEC-3-1")
@pytest.mark.parametrize("suite", [*AEADS, Suite.NONE])
def test_seal_then_open_returns_the_authenticated_sender_and_frame(suite: Suite) -> None:
    a, b = pair(suite)

    @s.PROPERTY
    @given(s.frames())
    def check(f: Frame) -> None:
        datagram = a.seal(f)
        body = encode_frame(f, CID)
        overhead = HEADER_BYTES + (0 if suite is Suite.NONE else TAG_BYTES)
        assert len(datagram) == overhead + len(body)
        header = parse_header(datagram)
        assert (header.magic, header.version, header.suite) == (b"GC", 1, suite)
        assert (header.cluster_id, header.sender, header.boot_id) == (CID, 1, 1)
        if suite is Suite.NONE:
            assert datagram[HEADER_BYTES:] == body
        else:
            assert body not in datagram  # encrypted
        assert b.open(datagram) == (1, f)

    check()


@pytest.mark.req("SEC-5-1")
def test_counters_count_up_from_zero_and_statistics_follow() -> None:
    a, b = pair()
    for n in range(5):
        datagram = a.seal(frame(n))
        assert parse_header(datagram).counter == n
        b.open(datagram)
    reason(b, datagram)
    stats = b.statistics()
    assert (stats.opened, stats.dropped, stats.dropped_total) == (5, {"replay": 1}, 1)
    assert a.statistics().sealed == 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.opened = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        b.drops[DropReason.AUTH] = 5  # type: ignore[index]


# ---------------------------------------------------------------- authentication


@pytest.mark.req("SEC-3-1", "SEC-8.4-1")
def test_wrong_key_forgery_and_tampering_fail_authentication() -> None:
    a, b = pair()
    datagram = a.seal(frame())
    stranger = Channel(1, 1, NAME, bytes(64))
    assert reason(b, stranger.seal(frame())) is DropReason.AUTH
    for index in (30, 33, len(datagram) - 1):  # a counter byte (AD), ciphertext, tag
        tampered = bytearray(datagram)
        tampered[index] ^= 0x01
        assert reason(b, bytes(tampered)) is DropReason.AUTH
    assert b.statistics().auth_failures == 4
    assert b.open(datagram) == (1, frame())  # forgeries moved no state (SEC-8.4-1)


def test_other_cluster_name_same_key_is_refused_before_crypto() -> None:
    a = Channel(1, 1, "elsewhere", KEY)
    _, b = pair()
    assert reason(b, a.seal(frame())) is DropReason.WRONG_CLUSTER


@pytest.mark.req("SEC-3.1-1")
def test_keyed_receiver_accepts_both_aead_suites() -> None:
    b = Channel(2, 1, NAME, KEY)
    for sender, suite in ((1, Suite.AES_256_GCM), (3, Suite.CHACHA20_POLY1305)):
        a = Channel(sender, 1, NAME, KEY, suite)
        assert b.open(a.seal(MembMergeDetect(sender, R))) == (sender, MembMergeDetect(sender, R))


@pytest.mark.req("SEC-10-1")
def test_unkeyed_mode_is_loud_and_refuses_sealed_datagrams(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.clear()
    plain_a, plain_b = pair(Suite.NONE)
    warnings = [r for r in caplog.records if "UNKEYED" in r.getMessage()]
    assert len(warnings) == 2 and all(r.levelno == logging.WARNING for r in warnings)
    sealed_a, sealed_b = pair()
    assert reason(plain_b, sealed_a.seal(frame())) is DropReason.SEALED_UNEXPECTED
    assert reason(sealed_b, plain_a.seal(frame())) is DropReason.UNSEALED
    assert plain_b.open(plain_a.seal(frame())) == (1, frame())


@pytest.mark.req("SEC-8.1-2")
def test_unknown_senders_and_own_id_are_dropped() -> None:
    b = Channel(2, 1, NAME, KEY, peers=[1, 3])
    assert b.open(Channel(1, 1, NAME, KEY).seal(frame()))[0] == 1
    assert reason(b, Channel(4, 1, NAME, KEY).seal(frame())) is DropReason.UNKNOWN_SENDER
    assert reason(b, Channel(2, 7, NAME, KEY).seal(frame())) is DropReason.LOOPBACK
    body = encode_frame(frame(), CID)
    header = pack_header(Suite.AES_256_GCM, CID, 0, 1, 0, 0)
    zero = seal_datagram(KeySchedule(KEY, NAME).aead(1, 0, 1, 0), header, body)
    assert reason(Channel(2, 1, NAME, KEY), zero) is DropReason.UNKNOWN_SENDER


@pytest.mark.req("SEC-8.5-1")
def test_inner_cluster_id_must_match_the_header() -> None:
    body = encode_frame(frame(), CID ^ 0xFF)
    header = pack_header(Suite.AES_256_GCM, CID, 1, 1, 0, 0)
    datagram = seal_datagram(KeySchedule(KEY, NAME).aead(1, 1, 1, 0), header, body)
    assert reason(Channel(2, 1, NAME, KEY), datagram) is DropReason.HEADER_MISMATCH


@pytest.mark.req("SEC-8.1-1")
def test_check_order_reports_the_first_fault() -> None:
    a, b = pair()
    good = a.seal(frame())
    bad_magic_and_cluster = b"XX" + good[2:4] + (CID ^ 1).to_bytes(4, "big") + good[8:]
    assert reason(b, bad_magic_and_cluster) is DropReason.BAD_MAGIC
    oversized_garbage = b"\x00" * (WireLimits().max_datagram_bytes + 1)
    assert reason(b, oversized_garbage) is DropReason.TOO_LARGE
    assert reason(b, good[: HEADER_BYTES - 1]) is DropReason.TRUNCATED
    wrong_version_and_suite = good[:2] + b"\x07\x09" + good[4:]
    assert reason(b, wrong_version_and_suite) is DropReason.BAD_VERSION


@pytest.mark.req("WIRE-7-1", "WIRE-7-2")
def test_sizes_both_ways() -> None:
    """Receivers drop oversized datagrams; senders refuse to make them (EncodeError)."""
    a, b = pair()
    limits = WireLimits()
    room = limits.max_frame_bytes - len(
        encode_frame(Mcast(1, R, 1, False, (Record("g", 1, 0, b""),)), CID)
    )
    fits = Mcast(1, R, 1, False, (Record("g", 1, 0, bytes(room - 2)),))
    datagram = a.seal(fits)
    assert len(datagram) <= limits.max_datagram_bytes
    assert b.open(datagram)[1] == fits
    with pytest.raises(EncodeError):
        a.seal(Mcast(1, R, 1, False, (Record("g", 1, 0, bytes(room + 10)),)))
    assert reason(b, datagram + b"\x00" * 100) is DropReason.TOO_LARGE
    for cut in (0, 1, HEADER_BYTES - 1):
        assert reason(b, datagram[:cut]) is DropReason.TRUNCATED
    assert reason(b, datagram[: HEADER_BYTES + TAG_BYTES - 1]) is DropReason.TRUNCATED
    assert reason(b, a.seal(fits)[:-1]) is DropReason.AUTH  # a fresh counter, cut short


# ---------------------------------------------------------------- replay (SEC-8.2-1, SEC-11-2)


@pytest.mark.req("SEC-11-2")
def test_the_same_datagram_twice_is_a_replay_and_resealing_is_not() -> None:
    a, b = pair()
    datagram = a.seal(frame())
    b.open(datagram)
    assert reason(b, datagram) is DropReason.REPLAY
    assert b.open(a.seal(frame()))[1] == frame()  # a retransmission is sealed again


@pytest.mark.req("SEC-8.2-1")
def test_reordering_within_the_window_is_accepted_exactly_once() -> None:
    a, b = pair()
    datagrams = [a.seal(frame(n)) for n in range(300)]
    order = list(range(300))
    random.Random(7).shuffle(order)
    for n in order:
        assert b.open(datagrams[n]) == (1, frame(n))
    for n in order[:50]:
        assert reason(b, datagrams[n]) is DropReason.REPLAY
    assert b.statistics().opened == 300


@pytest.mark.req("SEC-8.2-1")
def test_counters_behind_the_window_are_replays() -> None:
    a, b = pair()
    datagrams = [a.seal(frame()) for _ in range(REPLAY_WINDOW + 2)]
    b.open(datagrams[REPLAY_WINDOW + 1])  # top = 4097
    assert reason(b, datagrams[0]) is DropReason.REPLAY  # 4097 behind: outside
    assert reason(b, datagrams[1]) is DropReason.REPLAY  # 4096 behind: outside
    b.open(datagrams[2])  # 4095 behind: the oldest counter still inside
    b.open(datagrams[REPLAY_WINDOW])


@pytest.mark.req("SEC-8.2-1")
@s.PROPERTY
@given(st.lists(st.integers(0, 3 * REPLAY_WINDOW), max_size=60))
def test_replay_window_matches_a_reference_model(counters: list[int]) -> None:
    """Accept iff never accepted before and within the window behind the highest accepted."""
    ks = KeySchedule(KEY, NAME)
    body = encode_frame(frame(), CID)
    b = Channel(2, 1, NAME, KEY)
    accepted: set[int] = set()
    for counter in counters:
        header = pack_header(Suite.AES_256_GCM, CID, 1, 1, 0, counter)
        datagram = seal_datagram(ks.aead(1, 1, 1, 0), header, body)
        top = max(accepted, default=-1)
        fresh = counter not in accepted and top - counter < REPLAY_WINDOW
        if fresh:
            b.open(datagram)
            accepted.add(counter)
        else:
            assert reason(b, datagram) is DropReason.REPLAY


# ---------------------------------------------------------------- boots (SEC-7-1)


@pytest.mark.req("SEC-7-1", "SEC-7.1-1")
def test_an_older_boot_is_dropped_once_a_newer_one_authenticated() -> None:
    old, b = pair(sender_boot=5)
    new = Channel(1, 6, NAME, KEY)
    b.open(old.seal(frame(1)))
    b.open(new.seal(frame(2)))
    # Kept (SEC-7.1-1), but the newer boot is live: refused.
    assert reason(b, old.seal(frame(3))) is DropReason.SHADOWED_BOOT
    assert b.open(new.seal(frame(4))) == (1, frame(4))
    # new.seal(frame(2)) used counter 0, as old.seal(frame(1)) had: windows belong to
    # (sender, boot, epoch), so a restarted node's counters start afresh.
    assert b.drops[DropReason.REPLAY] == 0
    # One more restart: boot 5 is no longer kept, and is refused before any cryptography.
    b.open(Channel(1, 7, NAME, KEY).seal(frame(5)))
    assert reason(b, old.seal(frame(6))) is DropReason.OLD_BOOT
    assert b.statistics().derivations == 1 + 3


@pytest.mark.req("SEC-8.4-1")
def test_a_forged_newer_boot_moves_no_state() -> None:
    a, b = pair(sender_boot=5)
    b.open(a.seal(frame()))
    forger = Channel(1, 99, NAME, bytes(64))
    assert reason(b, forger.seal(frame())) is DropReason.AUTH
    assert b.open(a.seal(frame())) == (1, frame())


# ---------------------------------------------------------------- epochs (SEC-6-1, SEC-8.3-1)


@pytest.mark.req("SEC-6-1")
@pytest.mark.parametrize("suite", [*AEADS, Suite.NONE])
def test_epoch_rollover_end_to_end(suite: Suite) -> None:
    a, b = pair(suite, epoch_frames=3)
    headers = []
    for n in range(10):
        datagram = a.seal(frame(n))
        headers.append(parse_header(datagram))
        # A second apart: the epoch before last is silent by the time the next one starts.
        assert b.open(datagram, now_ns=n * SECOND) == (1, frame(n))
    assert [(h.epoch, h.counter) for h in headers] == [(n // 3, n % 3) for n in range(10)]
    assert a.statistics().epoch_changes == 3 == a.epoch
    if suite is not Suite.NONE:
        # b's own send subkey, then one per epoch of a's, each derived once.
        assert b.statistics().derivations == 1 + 4


@pytest.mark.req("SEC-8.3-1")
def test_previous_epoch_is_kept_and_older_ones_are_refused() -> None:
    a, b = pair(epoch_frames=2)
    datagrams = [a.seal(frame(n)) for n in range(8)]  # epochs 0,0,1,1,2,2,3,3
    b.open(datagrams[4])  # epoch 2
    b.open(datagrams[6])  # epoch 3: windows {2, 3}
    b.open(datagrams[5])  # previous epoch, reordered: accepted
    assert reason(b, datagrams[2]) is DropReason.OLD_EPOCH
    assert reason(b, datagrams[5]) is DropReason.REPLAY
    b.open(datagrams[7])


@pytest.mark.req("SEC-6-1")
def test_default_epoch_lengths_follow_the_usage_limits() -> None:
    assert EPOCH_FRAMES[Suite.AES_256_GCM] == 1 << 23
    assert Channel(1, 1, NAME, KEY).epoch_frames == 1 << 23
    with pytest.raises(ValueError):
        Channel(1, 1, NAME, KEY, epoch_frames=(1 << 23) + 1)
    with pytest.raises(ValueError):
        Channel(1, 1, NAME, KEY, epoch_frames=0)


# ---------------------------------------------------------------- determinism and drivers


@pytest.mark.req("SEC-11-1")
def test_two_channels_with_the_same_inputs_produce_identical_datagrams() -> None:
    frames = [frame(n) for n in range(20)]
    first = Channel(1, 42, NAME, KEY, epoch_frames=7)
    second = Channel(1, 42, NAME, KEY, epoch_frames=7)
    assert [first.seal(f) for f in frames] == [second.seal(f) for f in frames]
    other_boot = Channel(1, 43, NAME, KEY, epoch_frames=7)
    assert (
        other_boot.seal(frames[0])[HEADER_BYTES:]
        != Channel(1, 42, NAME, KEY).seal(frames[0])[HEADER_BYTES:]
    )


@pytest.mark.req("SEC-9-1")
def test_receive_never_raises_and_logs_each_reason_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = pair()
    datagram = a.seal(frame())
    caplog.clear()
    assert b.receive(datagram) == (1, frame())
    for _ in range(5):
        assert b.receive(datagram) is None
        assert b.receive(b"junk") is None
    logged = [r.getMessage() for r in caplog.records if r.name == "gcs.wire"]
    assert len(logged) == 2
    assert any("(replay)" in m for m in logged) and any("(truncated)" in m for m in logged)
    assert b.drops[DropReason.REPLAY] == 5 and b.drops[DropReason.TRUNCATED] == 5


def test_constructor_validation() -> None:
    for bad in (
        lambda: Channel(0, 1, NAME, KEY),
        lambda: Channel(1 << 32, 1, NAME, KEY),
        lambda: Channel(1, -1, NAME, KEY),
        lambda: Channel(1, 1, NAME, b"short"),
        lambda: Channel(1, 1, NAME, None, Suite.AES_256_GCM),
        lambda: Channel(1, 1, NAME, KEY, Suite.NONE),
        lambda: Channel(1, 1, "", KEY),
    ):
        with pytest.raises(ValueError):
            bad()


@pytest.mark.req("WIRE-9-1")
def test_other_wire_versions_are_dropped_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = pair()
    caplog.clear()
    for version in (0, 2, 255):
        datagram = a.seal(frame())
        future = datagram[:2] + bytes([version]) + datagram[3:]
        assert b.receive(future) is None
    assert b.drops[DropReason.BAD_VERSION] == 3
    assert sum("(bad_version)" in r.getMessage() for r in caplog.records) == 1
    assert b.open(a.seal(frame())) == (1, frame())  # nothing else was disturbed
