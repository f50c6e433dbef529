"""protocol/vectors/*.json checked byte for byte against the implementation, and the CDDL.

These tests read the committed JSON only; they do not trust the generator's tables, so a change
to the codec or the sealing that alters any byte fails here until the vectors are regenerated
deliberately (``python tools/make_vectors.py --write``) and the change is reviewed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

from gcs.wire.channel import Channel
from gcs.wire.codec import cluster_id_for, decode_frame, encode_frame
from gcs.wire.errors import DropReason, FrameError
from gcs.wire.frames import FrameType
from gcs.wire.limits import WireLimits
from gcs.wire.seal import (
    KeySchedule,
    Suite,
    derive_subkey,
    extract_prk,
    nonce_for,
    pack_header,
    seal_datagram,
)
from tools.make_vectors import (
    VECTORS,
    build,
    cddl_accepts,
    frame_from_json,
    frame_to_json,
    receiver_channel,
)


def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text())  # type: ignore[no-any-return]


VALID = load("frames.json")
INVALID_FRAMES = load("invalid-frames.json")
INVALID_DATAGRAMS = load("invalid-datagrams.json")
NONCANONICAL = load("noncanonical-frames.json")
SEQUENCES = load("datagram-sequences.json")
KEYS = load("key-schedule.json")
PARAMS = VALID["params"]
CID = PARAMS["cluster_id"]
KEY = bytes.fromhex(PARAMS["key"])


def ids(doc: dict[str, Any]) -> list[str]:
    return [v["name"] for v in doc["vectors"]]


def test_params_are_consistent() -> None:
    assert cluster_id_for(PARAMS["cluster_name"]) == CID
    limits = WireLimits(**PARAMS["limits"])
    assert limits == WireLimits()
    for doc in (INVALID_FRAMES, INVALID_DATAGRAMS, NONCANONICAL, SEQUENCES):
        assert doc["params"] == PARAMS


def test_committed_vectors_are_what_the_generator_writes() -> None:
    logging.getLogger("gcs.wire").setLevel(logging.ERROR)
    try:
        for name, text in build().items():
            assert (VECTORS / name).read_text() == text, f"{name} is stale: run make_vectors"
    finally:
        logging.getLogger("gcs.wire").setLevel(logging.NOTSET)


def test_every_frame_type_and_suite_has_a_valid_vector() -> None:
    types = {v["frame"]["type"] for v in VALID["vectors"]}
    assert types == {
        "orf_token",
        "mcast",
        "memb_merge_detect",
        "memb_join",
        "memb_commit_token",
        "token_hold_cancel",
        "memb_leave",
        "link_probe",
    }
    suites = {v["sealed"]["suite"] for v in VALID["vectors"]}
    assert suites == {int(s) for s in Suite}
    aes_types = {
        v["frame"]["type"] for v in VALID["vectors"] if v["sealed"]["suite"] == Suite.AES_256_GCM
    }
    assert aes_types == types


@pytest.mark.req("WIRE-4-1")
@pytest.mark.parametrize("vector", VALID["vectors"], ids=ids(VALID))
def test_frame_layout(vector: dict[str, Any]) -> None:
    """WIRE-4-1: one array, [1, cluster id, type code, fields...], of the type's fixed length."""
    item = cbor2.loads(bytes.fromhex(vector["cbor"]))
    code = FrameType[vector["frame"]["type"].upper()]
    assert item[:3] == [1, CID, code]
    widths = {0: 12, 1: 9, 2: 5, 3: 7, 4: 7, 5: 5, 6: 7, 7: 7}
    assert len(item) == widths[code]


@pytest.mark.req("WIRE-5-2")
@pytest.mark.parametrize("vector", VALID["vectors"], ids=ids(VALID))
def test_valid_vector_encodes_and_seals_byte_for_byte(vector: dict[str, Any]) -> None:
    frame = frame_from_json(vector["frame"])
    assert frame_to_json(frame) == vector["frame"]
    body = encode_frame(frame, CID)
    assert body.hex() == vector["cbor"]
    sealed = vector["sealed"]
    suite = Suite(sealed["suite"])
    aead = None
    if suite is not Suite.NONE:
        aead = KeySchedule(KEY, PARAMS["cluster_name"]).aead(
            suite, sealed["sender"], sealed["boot_id"], sealed["epoch"]
        )
    header = pack_header(
        suite, CID, sealed["sender"], sealed["boot_id"], sealed["epoch"], sealed["counter"]
    )
    assert seal_datagram(aead, header, body).hex() == sealed["datagram"]


@pytest.mark.parametrize("vector", VALID["vectors"], ids=ids(VALID))
def test_valid_vector_decodes_and_opens_to_its_fields(vector: dict[str, Any]) -> None:
    frame = frame_from_json(vector["frame"])
    assert decode_frame(bytes.fromhex(vector["cbor"]), CID) == frame
    sealed = vector["sealed"]
    keyed = sealed["suite"] != Suite.NONE
    channel = receiver_channel(
        {"node_id": PARAMS["receiver_node_id"], "keyed": keyed, "peers": None}
    )
    assert channel.open(bytes.fromhex(sealed["datagram"])) == (sealed["sender"], frame)


@pytest.mark.req("SEC-11-1")
def test_a_channel_reproduces_the_counter_zero_vectors() -> None:
    """SEC-11-1: a fresh Channel's first datagram is exactly the published one."""
    checked = 0
    for vector in VALID["vectors"]:
        sealed = vector["sealed"]
        if sealed["epoch"] or sealed["counter"]:
            continue
        suite = Suite(sealed["suite"])
        key = None if suite is Suite.NONE else KEY
        logging.getLogger("gcs.wire").setLevel(logging.ERROR)
        channel = Channel(sealed["sender"], sealed["boot_id"], PARAMS["cluster_name"], key, suite)
        logging.getLogger("gcs.wire").setLevel(logging.NOTSET)
        assert channel.seal(frame_from_json(vector["frame"])).hex() == sealed["datagram"]
        checked += 1
    assert checked >= 4


@pytest.mark.parametrize("vector", VALID["vectors"], ids=ids(VALID))
def test_valid_vector_satisfies_the_cddl(vector: dict[str, Any]) -> None:
    assert cddl_accepts(bytes.fromhex(vector["cbor"]))


@pytest.mark.parametrize("vector", INVALID_FRAMES["vectors"], ids=ids(INVALID_FRAMES))
def test_invalid_frame_vector_fails_with_its_reason(vector: dict[str, Any]) -> None:
    """Decoded with the default limits, or the vector's own ``limits`` where it has them."""
    limits = WireLimits(**{**PARAMS["limits"], **vector.get("limits", {})})
    with pytest.raises(FrameError) as info:
        decode_frame(bytes.fromhex(vector["cbor"]), CID, limits)
    assert info.value.reason is DropReason(vector["reason"])
    if "limits" in vector:  # the limit is what makes it invalid
        decode_frame(bytes.fromhex(vector["cbor"]), CID)


@pytest.mark.req("WIRE-5-1")
@pytest.mark.parametrize("vector", NONCANONICAL["vectors"], ids=ids(NONCANONICAL))
def test_noncanonical_encodings_are_accepted(vector: dict[str, Any]) -> None:
    """WIRE-5-1: longer-than-needed heads decode to their values; the sender's form is canonical."""
    frame = frame_from_json(vector["frame"])
    assert decode_frame(bytes.fromhex(vector["cbor"]), CID) == frame
    assert encode_frame(frame, CID).hex() == vector["canonical"] != vector["cbor"]


@pytest.mark.parametrize("vector", INVALID_FRAMES["vectors"], ids=ids(INVALID_FRAMES))
def test_invalid_frame_vector_against_the_cddl(vector: dict[str, Any]) -> None:
    """``cddl: rejects`` values fail CDDL validation, except where pycddl has a known gap;
    ``cddl: accepts`` values pass it (the rule they break is beyond CDDL)."""
    accepted = cddl_accepts(bytes.fromhex(vector["cbor"]))
    if vector["cddl"] == "accepts":
        assert accepted
    elif vector["pycddl_gap"]:
        assert accepted, "pycddl now catches this: set pycddl_gap false (make_vectors --write)"
    else:
        assert not accepted


def test_invalid_frames_cover_every_frame_level_reason() -> None:
    reasons = {v["reason"] for v in INVALID_FRAMES["vectors"]}
    frame_level = {
        "truncated", "cbor", "trailing_bytes", "shape", "type", "range", "too_many", "too_large",
        "not_canonical", "safe_mismatch", "encapsulation", "bad_version", "wrong_cluster",
        "unknown_type",
    }  # fmt: skip
    assert frame_level <= reasons
    assert (
        sum(v["cddl"] == "rejects" and not v["pycddl_gap"] for v in INVALID_FRAMES["vectors"]) > 20
    )


@pytest.mark.parametrize("vector", INVALID_DATAGRAMS["vectors"], ids=ids(INVALID_DATAGRAMS))
def test_invalid_datagram_vector_fails_with_its_reason(vector: dict[str, Any]) -> None:
    channel = receiver_channel(vector["receiver"])
    *before, last = [bytes.fromhex(d) for d in vector["datagrams"]]
    for datagram in before:
        channel.open(datagram)
    with pytest.raises(FrameError) as info:
        channel.open(last)
    assert info.value.reason is DropReason(vector["reason"])
    assert channel.drops[DropReason(vector["reason"])] == 1


@pytest.mark.req("SEC-7.1-1", "SEC-8.3-2")
@pytest.mark.parametrize("vector", SEQUENCES["vectors"], ids=ids(SEQUENCES))
def test_datagram_sequence_vector(vector: dict[str, Any]) -> None:
    """Boots and epochs in time: each step accepted or dropped exactly as published."""
    channel = receiver_channel(vector["receiver"])
    for n, step in enumerate(vector["steps"]):
        datagram = bytes.fromhex(step["datagram"])
        try:
            channel.open(datagram, step["time_ns"], step.get("source"))
            got = "accept"
        except FrameError as exc:
            got = exc.reason.value
        assert got == step["result"], f"step {n} at {step['time_ns']} ns"


def test_invalid_datagrams_cover_every_datagram_level_reason() -> None:
    reasons = {DropReason(v["reason"]) for v in INVALID_DATAGRAMS["vectors"]}
    reasons |= {DropReason(v["reason"]) for v in INVALID_FRAMES["vectors"]}
    steps = [step for v in SEQUENCES["vectors"] for step in v["steps"]]
    reasons |= {DropReason(step["result"]) for step in steps if step["result"] != "accept"}
    assert reasons == set(DropReason)


@pytest.mark.req("SEC-4.2-1")
def test_key_schedule_vectors() -> None:
    """SEC-4.2-1: extract and expand byte-exact, and the same as cryptography's HKDF."""
    key = bytes.fromhex(KEYS["key"])
    name = KEYS["cluster_name"]
    digest = hashlib.sha256(bytes.fromhex(KEYS["cluster_id_input"])).digest()
    assert int.from_bytes(digest[:4], "big") == KEYS["cluster_id"] == cluster_id_for(name)
    prk = extract_prk(key, name)
    assert prk.hex() == KEYS["prk"]
    for sub in KEYS["subkeys"]:
        info = bytes.fromhex(sub["info"])
        expected = HKDFExpand(hashes.SHA256(), 32, info).derive(prk)
        full = HKDF(hashes.SHA256(), 32, bytes.fromhex(KEYS["salt"]), info).derive(key)
        derived = derive_subkey(prk, sub["suite"], sub["sender"], sub["boot_id"], sub["epoch"])
        assert derived == expected == full
        assert derived.hex() == sub["subkey"]
    example = KEYS["nonce_example"]
    header = bytes.fromhex(example["header"])
    assert nonce_for(header).hex() == example["nonce"]
    assert example["nonce"] == "00000000" + header[24:].hex()


def test_rfc_0002_appendix_repeats_the_cddl_verbatim() -> None:
    rfc = (VECTORS.parents[1] / "RFCs" / "0002-wire-format.md").read_text()
    appendix = rfc.split("## Appendix A. CDDL", 1)[1]
    block = appendix.split("```cddl\n", 1)[1].split("```", 1)[0]
    assert block == (VECTORS.parent / "messages.cddl").read_text()


def _cddl_labels(rule: str) -> list[str]:
    """The member labels of one array rule of messages.cddl, in order."""
    text = (VECTORS.parent / "messages.cddl").read_text()
    body = re.search(rf"^{re.escape(rule)} = \[(.*?)\]\s*$", text, re.M | re.S)
    assert body is not None, rule
    return re.findall(r"([a-z_]+): ", re.sub(r";.*", "", body.group(1)))


def _first(frame_type: str, predicate: Any = lambda f: True) -> dict[str, Any]:
    frames = [v["frame"] for v in VALID["vectors"] if v["frame"]["type"] == frame_type]
    return next(f for f in frames if predicate(f))


def test_cddl_labels_are_the_json_field_names() -> None:
    """The CDDL member labels and the JSON field names are the same names, in wire order."""
    prefix = ["version", "cluster_id", "type"]
    mcast = _first("mcast", lambda f: f["encapsulated"] is not None)
    token = _first("orf_token", lambda f: f["rtr"])
    commit = _first("memb_commit_token")
    pairs = {
        "orf-token": list(token)[1:],
        "agreed-mcast": list(mcast)[1:],
        "encapsulating-agreed-mcast": list(mcast)[1:],
        "agreed-inner-mcast": list(mcast["encapsulated"]),
        "memb-merge-detect": list(_first("memb_merge_detect"))[1:],
        "memb-join": list(_first("memb_join"))[1:],
        "memb-commit-token": list(commit)[1:],
        "token-hold-cancel": list(_first("token_hold_cancel"))[1:],
        "memb-leave": list(_first("memb_leave"))[1:],
        "agreed-record": list(mcast["encapsulated"]["records"][0]),
        "rtr-entry": list(token["rtr"][0]),
        "member-entry": list(commit["members"][0]),
        "ring-id": list(token["ring_id"]),
    }
    for rule, names in pairs.items():
        labels = _cddl_labels(rule)
        if rule in ("agreed-inner-mcast", "agreed-record", "rtr-entry", "member-entry", "ring-id"):
            assert labels == names, rule
        else:
            assert labels == prefix + names, rule
