"""WIRE-8.2-1: a frame with several faults is dropped for the first, in the order of RFC 0002 §8.

The reference reader (``tests/wire/reference.py``) applies the document's table literally. The
codec must name the same reason for every vector and for frames built to carry several faults:
mutants of valid frames (bytes flipped, inserted, cut) and decoded frames with two or three
values replaced by wrong ones at random places. The property tests print the failing example
(hypothesis shows it, with its seed, on failure).
"""

from __future__ import annotations

import io
import json
import random
from typing import Any

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gcs.wire.codec import _EVERY_TAG, decode_frame
from gcs.wire.errors import FrameError
from gcs.wire.limits import WireLimits
from gcs.wire.wellformed import first_fault
from tools.make_vectors import VECTORS

from . import reference
from .test_fuzz import CID as FUZZ_CID
from .test_fuzz import POOL_CBOR, mutants

INVALID = json.loads((VECTORS / "invalid-frames.json").read_text())
VALID = json.loads((VECTORS / "frames.json").read_text())
CID = INVALID["params"]["cluster_id"]
MANY = settings(max_examples=3 * (settings.default.max_examples or 100))

# Values that break some rule wherever they land (or none, where they happen to fit).
WRONG_VALUES: list[Any] = [
    -1, 0, 1 << 32, 1 << 64 - 1, True, False, None, 1.5, "x", b"x", [], [1], [1, 2, 3],
    {1: 2}, [[1, 8], 3], 32, 3, 16, list(range(70)), "é" * 200, bytes(2000),
]  # fmt: skip


def codec_reason(data: bytes, limits: WireLimits | None = None, cid: int = CID) -> str | None:
    try:
        decode_frame(data, cid, limits or WireLimits())
    except FrameError as exc:
        return exc.reason.value
    return None


def reference_limits(overrides: dict[str, int] | None) -> tuple[WireLimits, reference.Limits]:
    """The wire limits of a vector (its ``limits`` override, else the defaults) both ways."""
    limits = WireLimits(**(overrides or {}))
    ref = reference.Limits(
        max_frame_bytes=limits.max_frame_bytes,
        max_rtr_entries=limits.max_rtr_entries,
        max_nodes=limits.max_nodes,
        max_records=limits.max_records,
        max_group_bytes=limits.max_group_bytes,
        max_record_data_bytes=limits.max_record_data_bytes,
    )
    return limits, ref


@pytest.mark.req("WIRE-8.2-1")
@pytest.mark.parametrize("vector", INVALID["vectors"], ids=[v["name"] for v in INVALID["vectors"]])
def test_reference_and_codec_agree_with_each_invalid_vector(
    vector: dict[str, Any],
) -> None:
    data = bytes.fromhex(vector["cbor"])
    limits, ref = reference_limits(vector.get("limits"))
    assert reference.reason(data, CID, ref) == vector["reason"]
    assert codec_reason(data, limits) == vector["reason"]


@pytest.mark.parametrize("vector", VALID["vectors"], ids=[v["name"] for v in VALID["vectors"]])
def test_reference_accepts_each_valid_vector(vector: dict[str, Any]) -> None:
    assert reference.reason(bytes.fromhex(vector["cbor"]), CID) is None


@pytest.mark.req("WIRE-8.2-1")
def test_two_faults_are_in_the_vectors() -> None:
    """The vectors themselves show the precedence: several have two faults, named so."""
    two = [v for v in INVALID["vectors"] if v["name"].startswith("two-faults-")]
    assert len(two) >= 8
    assert {v["reason"] for v in two} >= {"shape", "cbor", "too_many", "range", "bad_version"}


@pytest.mark.req("WIRE-8.2-1")
@MANY
@given(mutants(POOL_CBOR))
def test_mutated_frames_get_the_reference_reason(data: bytes) -> None:
    assert codec_reason(data, cid=FUZZ_CID) == reference.reason(data, FUZZ_CID)


@pytest.mark.req("WIRE-8.1-2")
@MANY
@given(mutants(POOL_CBOR))
def test_cbor2_refuses_exactly_what_the_scanner_faults(data: bytes) -> None:
    """The codec's fast path (cbor2) and its fault scanner agree on which items are bad."""
    fp = io.BytesIO(data)
    decoder = cbor2.CBORDecoder(
        fp, semantic_decoders=_EVERY_TAG, max_depth=4, allow_indefinite=False
    )
    try:
        decoder.decode()
    except Exception:
        assert first_fault(data) is not None
    else:
        assert first_fault(data) is None


def _paths(value: Any, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Every position in a decoded frame (below the three-element prefix)."""
    out = [path] if len(path) > 1 or (path and path[0] >= 3) else []
    if type(value) is list:
        for i, item in enumerate(value):
            out += _paths(item, (*path, i))
    return out


def _replace(value: Any, path: tuple[int, ...], new: Any) -> Any:
    if not path:
        return new
    copy = list(value)
    copy[path[0]] = _replace(copy[path[0]], path[1:], new)
    return copy


@pytest.mark.req("WIRE-8.2-1")
@MANY
@given(
    st.sampled_from(POOL_CBOR),
    st.integers(min_value=0, max_value=2**32),
    st.integers(min_value=2, max_value=3),
)
def test_frames_with_several_wrong_values_get_the_reference_reason(
    frame: bytes, seed: int, faults: int
) -> None:
    rng = random.Random(seed)
    item = cbor2.loads(frame)
    for _ in range(faults):
        paths = _paths(item)
        item = _replace(item, rng.choice(paths), rng.choice(WRONG_VALUES))
    data = cbor2.dumps(item)
    expected = reference.reason(data, FUZZ_CID)
    assert codec_reason(data, cid=FUZZ_CID) == expected, f"seed {seed}: {item!r}"
