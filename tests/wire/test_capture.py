"""protocol/vectors/capture-*.json: the reference observer reconstructs what the nodes recorded.

A capture holds the sealed datagrams of a real run and, separately, the sequence the nodes
recorded themselves (RFC 0009 §9). The observer (``tests/wire/observer.py``) sees only the
datagrams and the key; the test fails on any difference. The other tests check the capture
shows what it claims (a kill, old-ring messages re-sent encapsulated and delivered by a node
that had missed them, two or more rings) and that the comparison is not vacuous: a recorded
sequence changed in any part is caught.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from gcs.wire.frames import (
    Mcast,
    MembCommitToken,
    MembJoin,
    MembLeave,
    MembMergeDetect,
    OrfToken,
    TokenHoldCancel,
)
from tools.make_vectors import VECTORS

from . import observer

CAPTURES = sorted(VECTORS.glob("capture-*.json"))
DOCS = {path.name: json.loads(path.read_text()) for path in CAPTURES}


def test_there_is_a_capture() -> None:
    assert "capture-3-nodes-kill.json" in DOCS


@pytest.mark.req("TRN-4.1-1")
@pytest.mark.parametrize("name", sorted(DOCS))
def test_the_observer_reconstructs_the_recorded_run(name: str) -> None:
    """Rings, token rotations, every node's configurations, tokens and deliveries (TRN-4.1-1:
    every datagram opens with the key alone, and its header names its source node)."""
    doc = DOCS[name]
    assert observer.compare(observer.observe(doc), doc) == []


@pytest.mark.parametrize("name", sorted(DOCS))
def test_the_capture_shows_a_crash_and_re_sent_old_ring_messages(name: str) -> None:
    doc = DOCS[name]
    found = observer.observe(doc)
    assert len(doc["expected"]["rings"]) >= 2
    assert doc["killed"] and any("kill -9" in s["step"] for s in doc["script"])
    killed = doc["killed"][0]
    resent = [c for c in found.carriers if c["inner_sender"] == killed]
    assert len(resent) >= 2, "the survivors re-send the killed node's messages"
    survivors = [n for n in doc["expected"]["nodes"] if int(n) not in doc["killed"]]
    for node in survivors:
        record = doc["expected"]["nodes"][node]["delivered"]
        delivered = {(d["origin"]["seq"], d["seq"]) for d in record}
        for carrier in resent:
            assert (carrier["inner_ring"]["seq"], carrier["inner_seq"]) in delivered
    # One survivor had not received them before the kill: only the carriers brought them.
    seen, _ = observer.open_all(doc)
    direct = {
        s.dst
        for s in seen
        if s.src == killed
        and isinstance(s.frame, Mcast)
        and s.frame.encapsulated is None
        and any(c["inner_seq"] == s.frame.seq for c in resent)
    }
    assert set(survivors) - {str(n) for n in direct}


@pytest.mark.req("TRN-4.1-1")
@pytest.mark.parametrize("name", sorted(DOCS))
def test_one_frame_one_seal_the_same_bytes_to_each_destination(name: str) -> None:
    """Datagrams with one (sender, boot id, epoch, counter) are copies of one seal: identical
    bytes, each to another destination."""
    copies: dict[bytes, list[dict[str, Any]]] = {}
    for d in DOCS[name]["datagrams"]:
        copies.setdefault(bytes.fromhex(d["datagram"])[8:32], []).append(d)
    assert any(len(group) > 1 for group in copies.values())
    for group in copies.values():
        assert len({d["datagram"] for d in group}) == 1
        assert len({d["dst"] for d in group}) == len(group)


def _mutations(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The recorded sequence changed in one place each: every one must be caught."""
    out = []
    nodes = doc["expected"]["nodes"]
    for node, record in nodes.items():
        for what in ("configurations", "tokens", "delivered"):
            items = record[what]
            if len(items) >= 2:
                swapped = copy.deepcopy(doc)
                lst = swapped["expected"]["nodes"][node][what]
                lst[-1], lst[-2] = lst[-2], lst[-1]
                out.append((f"node {node} {what} swapped", swapped))
            if what != "delivered" or int(node) not in doc["killed"]:
                dropped = copy.deepcopy(doc)
                dropped["expected"]["nodes"][node][what].pop(0)
                out.append((f"node {node} {what} first dropped", dropped))
    rings = copy.deepcopy(doc)
    rings["expected"]["rings"][0]["rotations"] += 1
    out.append(("rotations", rings))
    return out


@pytest.mark.parametrize("name", sorted(DOCS))
def test_any_change_to_the_recorded_run_is_caught(name: str) -> None:
    doc = DOCS[name]
    found = observer.observe(doc)
    for label, changed in _mutations(doc):
        assert observer.compare(found, changed), f"{label} was not caught"


@pytest.mark.req("TRN-5-1")
@pytest.mark.parametrize("name", sorted(DOCS))
def test_each_frame_type_goes_where_the_transport_table_says(name: str) -> None:
    """RFC 0009 §5 on the wire: tokens to the next member, mcasts and hold-cancels to the other
    members, joins and leaves to every other configured node (the dead one too), merge-detects
    to nodes outside the sender's ring. Only the firewall of the run removes copies: node 3's
    datagrams to node 2 between the drop step and the kill."""
    doc = DOCS[name]
    seen, _ = observer.open_all(doc)
    nodes = {int(n) for n in doc["params"]["nodes"]}
    members = {
        (s.frame.ring_id.rep, s.frame.ring_id.seq): [m.node_id for m in s.frame.members]
        for s in seen
        if isinstance(s.frame, MembCommitToken)
    }
    steps = {s["step"].split(";")[0]: s["before_datagram"] for s in doc["script"]}
    drop = next(i for step, i in steps.items() if step.startswith("iptables drops"))
    kill = next(i for step, i in steps.items() if step.startswith("kill -9"))
    copies: dict[bytes, list[int]] = {}
    for s, d in zip(seen, doc["datagrams"], strict=True):
        copies.setdefault(bytes.fromhex(d["datagram"])[8:32], []).append(s.index)
    by_index = {s.index: s for s in seen}
    kinds = set()
    for indexes in copies.values():
        first = by_index[indexes[0]]
        src, frame = first.src, first.frame
        dsts = {by_index[i].dst for i in indexes}
        kinds.add(type(frame).__name__)
        if isinstance(frame, OrfToken | Mcast | TokenHoldCancel | MembMergeDetect):
            ring = members.get((frame.ring_id.rep, frame.ring_id.seq), [frame.ring_id.rep])
        if isinstance(frame, OrfToken):
            assert dsts == {ring[(ring.index(src) + 1) % len(ring)]}
        elif isinstance(frame, MembCommitToken):
            ids = [m.node_id for m in frame.members]
            assert dsts == {ids[(ids.index(src) + 1) % len(ids)]}
        elif isinstance(frame, MembJoin | MembLeave):
            assert dsts == nodes - {src}
        elif isinstance(frame, MembMergeDetect):
            assert dsts and dsts <= nodes - set(ring)
        else:
            want = set(ring) - {src}
            if src == 3 and drop <= indexes[0] < kill:
                want -= {2}
            assert dsts == want, (indexes, frame)
    assert kinds >= {"OrfToken", "MembCommitToken", "MembJoin", "Mcast", "MembMergeDetect"}
