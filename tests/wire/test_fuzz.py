"""Fuzzing: whatever the bytes, decoding and opening raise FrameError and nothing else
(WIRE-8.1-10).

Random bytes mostly die in the first check, so most of the effort goes into mutants of valid
frames and datagrams (bit flips, structural bytes, insertions, deletions, truncations, splices),
which get deep into the decoder. Mutated frames are also sealed properly, so they pass
authentication and reach the decoder through a keyed channel. Each property runs twice the
profile's example count: 2,000 under ``HYPOTHESIS_PROFILE=ci``, 10,000 examples in all.
"""

from __future__ import annotations

import json
import logging
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcs.wire.channel import Channel
from gcs.wire.codec import cluster_id_for, decode_frame, encode_frame
from gcs.wire.errors import DropReason, FrameError
from gcs.wire.frames import (
    Frame,
    Mcast,
    MembCommitToken,
    MemberEntry,
    MembJoin,
    OrfToken,
    Record,
    RingId,
    RtrEntry,
)
from gcs.wire.seal import KeySchedule, Suite, pack_header, seal_datagram
from tools.make_vectors import VECTORS, frame_from_json

NAME = "fuzz"
CID = cluster_id_for(NAME)
KEY = bytes(range(7, 71))
FUZZ = settings(max_examples=2 * (settings.default.max_examples or 100))

# Initial bytes that change CBOR structure: 1- and 8-byte lengths, indefinite lengths, tags,
# false/true/null/undefined, a float, break.
INTERESTING_BYTES = [0x00, 0x18, 0x1B, 0x5B, 0x7F, 0x9B, 0x9F, 0xBF, 0xC2, 0xD8, 0xF4, 0xF5]
INTERESTING_BYTES += [0xF6, 0xF7, 0xFA, 0xFF]


@pytest.fixture(autouse=True)
def _silence_unkeyed_warning() -> None:
    logging.getLogger("gcs.wire").setLevel(logging.ERROR)


def decodes_or_frame_error(data: bytes, cluster_id: int = CID) -> Frame | None:
    """Decode; a FrameError is fine, anything else fails the test (pytest shows it)."""
    try:
        frame = decode_frame(data, cluster_id)
    except FrameError as exc:
        assert isinstance(exc.reason, DropReason)
        return None
    # Whatever decodes is a valid frame: it survives a round trip.
    assert decode_frame(encode_frame(frame, cluster_id), cluster_id) == frame
    return frame


def mutate(data: bytes, other: bytes, rng: random.Random) -> bytes:
    """Apply 1-4 random edits: bit flip, structural byte, insert, delete, truncate, splice."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        at = rng.randrange(len(out)) if out else 0
        if op == 0 and out:
            out[at] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            out[at] = rng.choice(INTERESTING_BYTES)
        elif op == 2:
            out[at:at] = rng.randbytes(rng.randint(1, 9))
        elif op == 3:
            del out[at : at + rng.randint(1, 9)]
        elif op == 4:
            del out[at:]
        else:
            out[at:] = other[rng.randrange(len(other) + 1) :]
    return bytes(out)


def mutants(pool: list[bytes]) -> st.SearchStrategy[bytes]:
    """Mutants of pool members.

    The edits come from a seeded ``random.Random`` rather than one Hypothesis draw each: drawing
    every edit costs milliseconds per example, a seed microseconds, and a failing example still
    replays exactly (its seed is in the report).
    """
    index = st.integers(0, len(pool) - 1)
    seeds = st.integers(0, 2**64 - 1)
    return st.builds(
        lambda i, j, seed: mutate(pool[i], pool[j], random.Random(seed)), index, index, seeds
    )


VECTOR_DOC = json.loads((VECTORS / "frames.json").read_text())
VECTOR_CID = VECTOR_DOC["params"]["cluster_id"]


def _pool() -> list[Frame]:
    """Valid frames of every type to mutate: the published vectors plus a few larger ones.

    A fixed pool (rather than fresh frames from ``strategies``) keeps each example cheap, so the
    fuzzer spends its time on mutations; test_codec covers the variety of frames.
    """
    frames = [frame_from_json(v["frame"]) for v in VECTOR_DOC["vectors"]]
    ring = RingId(seq=1 << 40, rep=70_000)
    frames += [
        OrfToken(ring, 9, 500, 430, 3, 12, 40, False, tuple(RtrEntry(ring, n) for n in range(64))),
        MembJoin(7, frozenset(range(1, 385)), frozenset(range(300, 385)), 1 << 33),
        MembCommitToken(ring, 5, 2, tuple(MemberEntry(n, ring, n, n, True) for n in range(1, 40))),
        Mcast(3, ring, 77, True, tuple(Record(f"g{n}", n, 16, bytes(n)) for n in range(40))),
    ]
    return frames


def _sealed(key: bytes | None) -> list[bytes]:
    sender = Channel(1, 1, NAME, key)
    return [sender.seal(frame) for frame in POOL]


POOL = _pool()
POOL_CBOR = [encode_frame(f, CID) for f in POOL]
SEALED_POOL = _sealed(KEY)
UNKEYED_POOL = _sealed(None)


@pytest.mark.req("WIRE-8.1-10")
@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes_only_raise_frame_errors(data: bytes) -> None:
    decodes_or_frame_error(data)
    for key in (KEY, None):
        channel = Channel(2, 1, NAME, key)
        try:
            channel.open(data)
        except FrameError:
            assert channel.receive(data) is None


@pytest.mark.req("WIRE-8.1-10")
@FUZZ
@given(mutants(POOL_CBOR))
def test_mutated_frames_only_raise_frame_errors(data: bytes) -> None:
    decodes_or_frame_error(data)


@pytest.mark.req("SEC-8.4-1")
@FUZZ
@given(mutants(POOL_CBOR), st.sampled_from([Suite.AES_256_GCM, Suite.CHACHA20_POLY1305]))
def test_authentic_datagrams_with_mutated_frames_only_raise_frame_errors(
    body: bytes, suite: Suite
) -> None:
    """A key holder sending garbage: it passes authentication and must still be refused cleanly."""
    header = pack_header(suite, CID, 1, 1, 0, 0)
    datagram = seal_datagram(KeySchedule(KEY, NAME).aead(suite, 1, 1, 0), header, body)
    channel = Channel(2, 1, NAME, KEY)
    try:
        sender, frame = channel.open(datagram)
    except FrameError as exc:
        assert exc.reason is not DropReason.AUTH
        return
    assert sender == 1 and decode_frame(body, CID) == frame


@pytest.mark.req("SEC-3-1")
@FUZZ
@given(mutants(SEALED_POOL))
def test_mutated_sealed_datagrams_only_raise_frame_errors(mutant: bytes) -> None:
    receiver = Channel(2, 1, NAME, KEY)
    try:
        sender, frame = receiver.open(mutant)
    except FrameError:
        assert receiver.receive(mutant) is None
        return
    assert sender == 1 and frame in POOL  # authenticated: only an intact original opens


@pytest.mark.req("SEC-10-1")
@FUZZ
@given(mutants(UNKEYED_POOL))
def test_mutated_unkeyed_datagrams_only_raise_frame_errors(mutant: bytes) -> None:
    """Unkeyed, mutants reach the decoder through the channel (nothing authenticates them)."""
    receiver = Channel(2, 1, NAME, None)
    try:
        sender, frame = receiver.open(mutant)
    except FrameError:
        assert receiver.receive(mutant) is None
        return
    assert 0 < sender < 1 << 32 and sender != 2
    assert decode_frame(encode_frame(frame, CID), CID) == frame


VECTOR_COUNT = len(VECTOR_DOC["vectors"])


@pytest.mark.req("WIRE-8.1-10")
@pytest.mark.parametrize(
    "body", POOL_CBOR[:VECTOR_COUNT], ids=[v["name"] for v in VECTOR_DOC["vectors"]]
)
def test_every_bit_flip_and_truncation_of_the_vector_frames(body: bytes) -> None:
    """Exhaustive, not sampled: each single-bit flip and each prefix of every vector's frame."""
    refused = 0
    for index in range(len(body)):
        for bit in range(8):
            mutant = bytearray(body)
            mutant[index] ^= 1 << bit
            refused += decodes_or_frame_error(bytes(mutant)) is None
        refused += decodes_or_frame_error(body[:index]) is None
    assert refused > len(body)  # most mutants are refused: the checks are really running
