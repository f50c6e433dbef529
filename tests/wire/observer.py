"""A reference passive observer: a capture of sealed datagrams and the key in, the run out.

It holds no node's state and sends nothing. It opens every datagram with the cluster key alone
(RFC 0005: the subkey follows from the clear header), decodes the frame (RFC 0002), and then
reconstructs, from the frames alone, what the nodes did:

* the rings: every ring whose commit token (its member list) and ORF tokens it saw, with the
  number of rotations (distinct ``token_seq`` values of the tokens the representative sent);
* per node, the configurations it installed: a node installs a ring at the token visit where
  the install condition of RFC 0004 REC-6.3-1 holds, which the observer evaluates from the
  node's outgoing tokens (their ``retrans_flg`` and ``seq``) and the tokens it received (their
  ``aru``); the transitional configuration's members are the commit-token entries that share
  the node's old ring (RFC 0004 REC-6.1-1);
* per node, the tokens it sent (ring, ``token_seq``, destination), in capture order;
* per node, the messages it delivered, in order: for each ring it installed, the ring's mcasts
  in seq order up to the first seq nobody had (carriers are unwrapped into their old ring,
  RFC 0004 §7.1), old ring before new ring (extended virtual synchrony).

``compare`` lists every difference from the sequence the nodes recorded themselves (the
capture's ``expected``); a node killed during the run is only required to have delivered a
prefix of what the observer reconstructs, since a capture cannot show when it stopped.
This is the observer of protocol/README.md's checklist, step 5; tests/wire/test_capture.py runs
it on every capture file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gcs.wire.codec import decode_frame
from gcs.wire.frames import Frame, Mcast, MembCommitToken, OrfToken, RingId
from gcs.wire.limits import HEADER_BYTES
from gcs.wire.seal import KeySchedule, Suite, nonce_for, parse_header

RingKey = tuple[int, int]  # (rep, seq), as on the wire


@dataclass
class Seen:
    index: int
    src: int
    dst: int
    frame: Frame


@dataclass
class Observed:
    rings: list[dict[str, Any]] = field(default_factory=list)
    nodes: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    carriers: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _ring(ring: RingId) -> dict[str, int]:
    return {"rep": ring.rep, "seq": ring.seq}


def _key(ring: RingId) -> RingKey:
    return ring.rep, ring.seq


# ------------------------------------------------------------------ opening


def open_all(doc: dict[str, Any]) -> tuple[list[Seen], list[str]]:
    """Every datagram opened with the key alone; problems for any that does not open."""
    params = doc["params"]
    schedule = KeySchedule(bytes.fromhex(params["key"]), params["cluster_name"])
    seen, problems = [], []
    for d in doc["datagrams"]:
        raw = bytes.fromhex(d["datagram"])
        head = parse_header(raw)
        if head.sender != d["src"]:
            problems.append(f"datagram {d['index']}: header sender {head.sender} != src")
        header, body = raw[:HEADER_BYTES], raw[HEADER_BYTES:]
        if head.suite != Suite.NONE:
            aead = schedule.aead(head.suite, head.sender, head.boot_id, head.epoch)
            body = aead.decrypt(nonce_for(header), body, header)
        seen.append(Seen(d["index"], d["src"], d["dst"], decode_frame(body, params["cluster_id"])))
    return seen, problems


# ------------------------------------------------------------------ rings and installation


def _tokens(seen: list[Seen]) -> dict[RingKey, dict[int, Seen]]:
    """Per ring, the first copy of each token_seq (re-sent tokens are copies)."""
    out: dict[RingKey, dict[int, Seen]] = {}
    for s in seen:
        if isinstance(s.frame, OrfToken):
            out.setdefault(_key(s.frame.ring_id), {}).setdefault(s.frame.token_seq, s)
    return out


def _commits(seen: list[Seen]) -> dict[RingKey, MembCommitToken]:
    """Per proposed ring, its last commit token (every entry filled in)."""
    out: dict[RingKey, MembCommitToken] = {}
    for s in seen:
        if isinstance(s.frame, MembCommitToken):
            out[_key(s.frame.ring_id)] = s.frame
    return out


_NO_TOKEN = OrfToken(RingId(seq=0, rep=1), 0, 0, 0, 0, 0, 0, False, ())


def installs(node: int, tokens: dict[int, Seen]) -> bool:
    """Whether ``node`` met the install condition of RFC 0004 REC-6.3-1 on this ring."""
    flg_count = rotations = 0
    install_seq = None
    for token_seq in sorted(t for t, s in tokens.items() if s.src == node):
        outgoing = tokens[token_seq].frame
        received = tokens.get(token_seq - 1)
        # The representative's first visit takes the token it made itself (token_seq 0).
        received_frame = received.frame if received is not None else _NO_TOKEN
        assert isinstance(outgoing, OrfToken) and isinstance(received_frame, OrfToken)
        flg_count = 0 if outgoing.retrans_flg else flg_count + 1
        if flg_count == 2:
            install_seq = outgoing.seq
        if flg_count >= 3 and install_seq is not None and received_frame.aru >= install_seq:
            rotations += 1
        else:
            rotations = 0
        if rotations >= 2:
            return True
    return False


def _trans(
    commit: MembCommitToken, node: int, members: dict[RingKey, tuple[int, ...]]
) -> list[int]:
    """The node's transitional members: entries that come from its old ring (REC-6.1-1)."""
    entries = {e.node_id: e for e in commit.members}
    old = entries[node].old_ring_id
    old_members = members.get(_key(old), (old.rep,))  # a ring not seen: the node's own ring
    return [n for n, e in entries.items() if e.old_ring_id == old and n in old_members]


# ------------------------------------------------------------------ delivery


def _messages(seen: list[Seen]) -> tuple[dict[RingKey, dict[int, Mcast]], list[dict[str, Any]]]:
    """Per ring, its mcasts by seq (carriers' inner mcasts in their own ring); the carriers."""
    by_ring: dict[RingKey, dict[int, Mcast]] = {}
    carriers = []
    for s in seen:
        m = s.frame
        if not isinstance(m, Mcast):
            continue
        by_ring.setdefault(_key(m.ring_id), {}).setdefault(m.seq, m)
        if m.encapsulated is not None:
            inner = m.encapsulated
            by_ring.setdefault(_key(inner.ring_id), {}).setdefault(inner.seq, inner)
            carriers.append(
                {"index": s.index, "src": s.src, "ring_id": _ring(m.ring_id), "seq": m.seq,
                 "inner_ring": _ring(inner.ring_id), "inner_seq": inner.seq,
                 "inner_sender": inner.sender}
            )  # fmt: skip
    return by_ring, carriers


def _delivered(mcasts: dict[int, Mcast]) -> list[dict[str, Any]]:
    """The contiguous run from seq 1, carriers passed over (they count as delivered)."""
    out = []
    seq = 1
    while seq in mcasts:
        m = mcasts[seq]
        if m.encapsulated is None:
            records = [
                {"group": r.group, "handle": r.handle, "flags": r.flags, "data": r.data.hex()}
                for r in m.records
            ]
            out.append({"origin": _ring(m.ring_id), "seq": m.seq, "sender": m.sender,
                        "records": records})  # fmt: skip
        seq += 1
    return out


# ------------------------------------------------------------------ the whole run


def observe(doc: dict[str, Any]) -> Observed:
    seen, problems = open_all(doc)
    found = Observed(problems=problems)
    tokens, commits = _tokens(seen), _commits(seen)
    members = {k: tuple(e.node_id for e in c.members) for k, c in commits.items()}
    rings = sorted((k for k in commits if k in tokens), key=lambda k: (k[1], k[0]))
    for rep, seq in rings:
        sent = {t for t, s in tokens[(rep, seq)].items() if s.src == rep}
        ring = {"ring_id": {"rep": rep, "seq": seq}, "members": list(members[(rep, seq)])}
        found.rings.append({**ring, "rotations": len(sent)})
    messages, found.carriers = _messages(seen)
    for node in sorted(int(n) for n in doc["params"]["nodes"]):
        installed = [k for k in rings if node in members[k] and installs(node, tokens[k])]
        configurations = []
        delivered: list[dict[str, Any]] = []
        for k in installed:
            ring_id = {"rep": k[0], "seq": k[1]}
            trans = _trans(commits[k], node, members)
            configurations.append({"kind": "transitional", "ring_id": ring_id, "members": trans})
            configurations.append({"kind": "regular", "ring_id": ring_id,
                                   "members": list(members[k])})  # fmt: skip
            delivered += _delivered(messages.get(k, {}))
        found.nodes[str(node)] = {
            "configurations": configurations,
            "tokens": [
                {"ring_id": _ring(s.frame.ring_id), "token_seq": s.frame.token_seq, "dest": s.dst}
                for s in seen
                if isinstance(s.frame, OrfToken) and s.src == node
            ],
            "delivered": delivered,
        }
    return found


def _in_order(delivered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deliveries as a node makes them: every ring's messages before the next ring's."""
    return sorted(delivered, key=lambda d: (d["origin"]["seq"], d["origin"]["rep"], d["seq"]))


def compare(found: Observed, doc: dict[str, Any]) -> list[str]:
    """Every difference between the observer's reconstruction and the nodes' own record."""
    expected = doc["expected"]
    out = list(found.problems)
    if found.rings != expected["rings"]:
        out.append(f"rings: observed {found.rings}, the nodes installed {expected['rings']}")
    for node, want in expected["nodes"].items():
        got = found.nodes.get(node, {"configurations": [], "tokens": [], "delivered": []})
        for what in ("configurations", "tokens"):
            if got[what] != want[what]:
                out.append(f"node {node} {what}: {_first_difference(got[what], want[what])}")
        observed = _in_order(got["delivered"])
        recorded = want["delivered"]
        if int(node) in doc.get("killed", []):
            if not recorded or observed[: len(recorded)] != recorded:
                out.append(f"node {node} (killed) delivered: not a prefix of the observed order")
        elif observed != recorded:
            out.append(f"node {node} delivered: {_first_difference(observed, recorded)}")
    return out


def _first_difference(got: list[Any], want: list[Any]) -> str:
    for i, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return f"item {i}: observed {a}, recorded {b}"
    return f"observed {len(got)} items, recorded {len(want)}"
