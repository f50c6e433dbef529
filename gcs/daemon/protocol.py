"""The daemon client protocol's codec: frames, requests, replies, events (RFC 0006 §10).

Pure and asyncio-free, so the normative text, the daemon (``gcs.daemon.server``) and the client
(``gcs.daemon.client``) share one definition and it can be tested without sockets.

A frame is a 4-byte big-endian length followed by that many bytes of deterministic CBOR
(RFC 8949 §4.2.1) encoding one map with text keys. Requests carry ``op`` and ``id``; each gets
exactly one reply, ``{"re": id, "ok": map}`` or ``{"re": id, "error": {"type", "message"}}``.
Events pushed by the daemon carry ``ev``. Group values cross the socket in the shapes below and
are rebuilt as the same ``gcs.View`` / ``gcs.Message`` / ``gcs.Member`` values an embedded node
hands out::

    member   = [node, handle]
    view-id  = [ring-seq, ring-rep, seq, index, lineage]
    view     = {"view_id", "members": [*member], "joined", "left", "transitional",
                "reason": {"kind", "nodes": [*uint], "detail"}}
    ring     = {"ring_id": [seq, rep], "members": [*uint], "transitional", "joined", "left",
                "reason"}

Errors travel by class name (``"GroupClosed"``, ...) and are raised on the client as the same
``gcs`` exception classes, so application code catches the same errors in both modes.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

import cbor2

from gcs import errors
from gcs.groups.views import Member, Message, Reason, View, ViewId, ViewReason
from gcs.quorum.nodelist import NodeEntry, NodeList
from gcs.quorum.rules import Quorum, QuorumReason
from gcs.wire.frames import RingId

__all__ = [
    "HELLO_LIMIT",
    "LENGTH",
    "MIN_FRAME_LIMIT",
    "PROTOCOL_VERSION",
    "ControlProtocolError",
    "decode",
    "encode",
    "error_from_wire",
    "error_to_wire",
    "frame_limit",
    "message_from_wire",
    "message_to_wire",
    "member_from_wire",
    "quorum_from_wire",
    "quorum_to_wire",
    "ring_to_wire",
    "view_from_wire",
    "view_to_wire",
]

PROTOCOL_VERSION = 2
"""2: ``send`` replies carry the connection's number for the send, which ``delivered`` names
(1 named the send request's id, which the daemon could not tell apart from other requests')."""
LENGTH = struct.Struct(">I")
HELLO_LIMIT = 64 * 1024
"""Largest frame either side accepts before the hello exchange settled the real limit (a hello
and its reply are a few hundred bytes; a client that has not greeted may not make the daemon
buffer more, API-10.1-2)."""
MIN_FRAME_LIMIT = 1 << 20
"""The smallest limit after the hello, whatever ``max_message_bytes`` (status replies)."""
FRAME_SLACK = 64 * 1024
"""Room for a message's map around its data (keys, member, view id)."""

_U64 = (1 << 64) - 1


class ControlProtocolError(errors.GcsError):
    """The other side of a control socket broke the protocol (RFC 0006 §10.6)."""


def frame_limit(max_message_bytes: int) -> int:
    """The largest frame a side accepts once it knows the node's ``max_message_bytes``."""
    return max(MIN_FRAME_LIMIT, max_message_bytes + FRAME_SLACK)


def encode(item: Mapping[str, Any]) -> bytes:
    """One frame: length prefix and deterministic CBOR."""
    body = cbor2.dumps(item, canonical=True)
    return LENGTH.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    """The map in one frame's body; ``ControlProtocolError`` if it is not a map of text keys."""
    try:
        item = cbor2.loads(body)
    except Exception as exc:  # cbor2 raises several types for malformed input
        raise ControlProtocolError(f"frame is not valid CBOR: {exc}") from None
    if type(item) is not dict or not all(type(k) is str for k in item):
        raise ControlProtocolError("frame is not a CBOR map with text keys")
    return item


# ---------------------------------------------------------------------- field checks


def field(item: Mapping[str, Any], name: str, kind: type, *, optional: bool = False) -> Any:
    """``item[name]`` if it has type ``kind`` (None allowed when ``optional``)."""
    value = item.get(name)
    if value is None and optional:
        return None
    if kind is int:
        if type(value) is not int or not 0 <= value <= _U64:
            raise ControlProtocolError(f"{name!r} must be an unsigned integer")
    elif type(value) is not kind:
        raise ControlProtocolError(f"{name!r} must be {kind.__name__}")
    return value


# ---------------------------------------------------------------------- errors

_ERROR_TYPES: dict[str, type[errors.GcsError]] = {
    cls.__name__: cls
    for cls in (
        errors.GroupClosed,
        errors.InvalidArgument,
        errors.InvariantViolation,
        errors.MessageTooLarge,
        errors.NodeClosed,
        errors.NodeFailed,
        errors.NodeListRefused,
        errors.NotMember,
        errors.NotSupported,
        errors.SlowConsumer,
        errors.StateTransferFailed,
        ControlProtocolError,
    )
}


def error_to_wire(exc: BaseException) -> dict[str, Any]:
    """``{"type", "message"}`` for an exception (a class outside the table travels as GcsError)."""
    name = type(exc).__name__
    if name not in _ERROR_TYPES:
        name = "GcsError"
    out: dict[str, Any] = {"type": name, "message": str(exc)}
    if isinstance(exc, errors.MessageTooLarge):
        out["size"], out["limit"] = exc.size, exc.limit
    if isinstance(exc, errors.NodeListRefused):
        out["reason"], out["message"] = exc.reason, exc.detail
    return out


def error_from_wire(item: object) -> errors.GcsError:
    """The ``gcs`` exception an error map names (never raises on a malformed one)."""
    if type(item) is not dict:
        return ControlProtocolError(f"malformed error: {item!r}")
    name, message = item.get("type"), str(item.get("message", ""))
    if name == "MessageTooLarge":
        size, limit = item.get("size"), item.get("limit")
        if type(size) is int and type(limit) is int:
            return errors.MessageTooLarge(size, limit)
    if name == "NodeListRefused":
        return errors.NodeListRefused(str(item.get("reason", "refused")), message)
    cls = _ERROR_TYPES.get(name) if type(name) is str else None
    if cls is None or cls is errors.MessageTooLarge or cls is errors.NodeListRefused:
        return errors.GcsError(f"{name}: {message}")
    return cls(message)


# ---------------------------------------------------------------------- group values


def member_to_wire(member: Member) -> list[int]:
    return [member.node, member.handle]


def member_from_wire(value: object) -> Member:
    if type(value) is not list or len(value) != 2 or not all(type(v) is int for v in value):
        raise ControlProtocolError(f"malformed member {value!r}")
    return Member(value[0], value[1])


def view_id_to_wire(view_id: ViewId) -> list[int]:
    ring = view_id.ring
    return [ring.seq, ring.rep, view_id.seq, view_id.index, view_id.lineage]


def view_id_from_wire(value: object) -> ViewId:
    if type(value) is not list or len(value) != 5 or not all(type(v) is int for v in value):
        raise ControlProtocolError(f"malformed view id {value!r}")
    ring_seq, ring_rep, seq, index, lineage = value
    return ViewId(RingId(seq=ring_seq, rep=ring_rep), seq, index, lineage)


def view_to_wire(view: View) -> dict[str, Any]:
    return {
        "view_id": view_id_to_wire(view.view_id),
        "members": [member_to_wire(m) for m in view.members],
        "joined": [member_to_wire(m) for m in view.joined],
        "left": [member_to_wire(m) for m in view.left],
        "transitional": view.transitional,
        "reason": {
            "kind": view.reason.kind.value,
            "nodes": list(view.reason.nodes),
            "detail": view.reason.detail,
        },
    }


def view_from_wire(item: object) -> View:
    if type(item) is not dict:
        raise ControlProtocolError("malformed view")
    reason = item.get("reason")
    if type(reason) is not dict:
        raise ControlProtocolError("malformed view reason")
    try:
        kind = ViewReason(str(reason.get("kind")))
    except ValueError:
        raise ControlProtocolError(f"unknown view reason {reason.get('kind')!r}") from None
    nodes = reason.get("nodes", [])
    if type(nodes) is not list or not all(type(n) is int for n in nodes):
        raise ControlProtocolError("malformed view reason nodes")

    def members(name: str) -> tuple[Member, ...]:
        values = item.get(name)
        if type(values) is not list:
            raise ControlProtocolError(f"malformed view {name}")
        return tuple(member_from_wire(v) for v in values)

    return View(
        view_id=view_id_from_wire(item.get("view_id")),
        members=members("members"),
        joined=members("joined"),
        left=members("left"),
        transitional=bool(item.get("transitional")),
        reason=Reason(kind, tuple(nodes), str(reason.get("detail", ""))),
    )


def quorum_to_wire(quorum: Quorum) -> dict[str, Any]:
    """A ``gcs.Quorum`` verdict (RFC 0008 §3.3), for a ``quorum`` event or a status reply::

    quorum = {"ring_id": [seq, rep], "quorate", "members": [*uint], "total_votes",
              "expected_votes", "quorum", "reason", "pending"}
    """
    return {
        "ring_id": [quorum.ring_id.seq, quorum.ring_id.rep],
        "quorate": quorum.quorate,
        "members": list(quorum.members),
        "total_votes": quorum.total_votes,
        "expected_votes": quorum.expected_votes,
        "quorum": quorum.quorum,
        "reason": quorum.reason.value,
        "pending": quorum.pending,
    }


def quorum_from_wire(item: object) -> Quorum:
    if type(item) is not dict:
        raise ControlProtocolError("malformed quorum")
    ring = item.get("ring_id")
    if type(ring) is not list or len(ring) != 2 or not all(type(v) is int for v in ring):
        raise ControlProtocolError(f"malformed quorum ring id {ring!r}")
    members = item.get("members")
    if type(members) is not list or not all(type(m) is int for m in members):
        raise ControlProtocolError("malformed quorum members")
    counts = [item.get(k) for k in ("total_votes", "expected_votes", "quorum")]
    if not all(type(c) is int and c >= 0 for c in counts):
        raise ControlProtocolError("malformed quorum vote counts")
    try:
        reason = QuorumReason(str(item.get("reason")))
    except ValueError:
        raise ControlProtocolError(f"unknown quorum reason {item.get('reason')!r}") from None
    total, expected, needed = counts
    assert type(total) is int and type(expected) is int and type(needed) is int
    return Quorum(
        ring_id=RingId(seq=ring[0], rep=ring[1]),
        quorate=bool(item.get("quorate")),
        members=tuple(members),
        total_votes=total,
        expected_votes=expected,
        quorum=needed,
        reason=reason,
        pending=bool(item.get("pending")),
    )


def message_to_wire(handle: int, message: Message) -> dict[str, Any]:
    """The whole ``msg`` event for local member ``handle``."""
    return {
        "ev": "msg",
        "handle": handle,
        "sender": member_to_wire(message.sender),
        "data": message.data,
        "safe": message.safe,
        "view_id": view_id_to_wire(message.view_id),
        "ring": None if message.ring_id is None else [message.ring_id.seq, message.ring_id.rep],
        "seq": message.seq,
        **({} if message.to is None else {"to": member_to_wire(message.to)}),
        **({"uncommitted": True} if message.uncommitted else {}),
    }


def message_from_wire(item: Mapping[str, Any]) -> Message:
    data = item.get("data")
    if type(data) is not bytes:
        raise ControlProtocolError("message data must be a byte string")
    ring = item.get("ring")
    ring_id = None
    if ring is not None:
        if type(ring) is not list or len(ring) != 2 or not all(type(v) is int for v in ring):
            raise ControlProtocolError(f"malformed message ring {ring!r}")
        ring_id = RingId(seq=ring[0], rep=ring[1])
    seq = item.get("seq", 0)
    if type(seq) is not int or seq < 0:
        raise ControlProtocolError(f"malformed message seq {seq!r}")
    return Message(
        sender=member_from_wire(item.get("sender")),
        data=data,
        safe=bool(item.get("safe")),
        view_id=view_id_from_wire(item.get("view_id")),
        ring_id=ring_id,
        seq=seq,
        to=None if item.get("to") is None else member_from_wire(item.get("to")),
        uncommitted=item.get("uncommitted") is True,
    )


def ring_to_wire(
    ring_id: RingId,
    members: tuple[int, ...],
    transitional: bool,
    joined: tuple[int, ...],
    left: tuple[int, ...],
    reason: str,
) -> dict[str, Any]:
    return {
        "ring_id": [ring_id.seq, ring_id.rep],
        "members": list(members),
        "transitional": transitional,
        "joined": list(joined),
        "left": list(left),
        "reason": reason,
    }


def ring_from_wire(
    item: object,
) -> tuple[RingId, tuple[int, ...], bool, tuple[int, ...], tuple[int, ...], str]:
    """The fields of a ``gcs.RingView`` (the caller builds it: this module avoids gcs.api.node)."""
    if type(item) is not dict:
        raise ControlProtocolError("malformed ring view")
    ring_id = item.get("ring_id")
    if type(ring_id) is not list or len(ring_id) != 2 or not all(type(v) is int for v in ring_id):
        raise ControlProtocolError("malformed ring id")

    def ints(name: str) -> tuple[int, ...]:
        values = item.get(name)
        if type(values) is not list or not all(type(v) is int for v in values):
            raise ControlProtocolError(f"malformed ring {name}")
        return tuple(values)

    return (
        RingId(seq=ring_id[0], rep=ring_id[1]),
        ints("members"),
        bool(item.get("transitional")),
        ints("joined"),
        ints("left"),
        str(item.get("reason", "")),
    )


# ---------------------------------------------------------------------- node lists


def nodes_to_wire(nodes: NodeList, expected_votes: int | None) -> dict[str, Any]:
    """The reply of ``nodes``, ``add_node`` and ``remove_node`` (RFC 0006 §10.2)."""
    return {
        "version": nodes.version,
        "nodes": [
            {"id": e.node_id, "votes": e.votes, "addresses": list(e.addresses)}
            for e in nodes.entries
        ],
        "expected_votes": expected_votes,
    }


def nodes_from_wire(item: object) -> NodeList:
    """The list a ``nodes`` reply carries; ControlProtocolError if malformed."""
    try:
        version = field(item, "version", int)  # type: ignore[arg-type]
        raw = field(item, "nodes", list)  # type: ignore[arg-type]
        entries = tuple(
            NodeEntry(
                field(e, "id", int), field(e, "votes", int), tuple(field(e, "addresses", list))
            )
            for e in raw
        )
    except (TypeError, AttributeError) as exc:
        raise ControlProtocolError(f"malformed node list: {exc}") from None
    return NodeList(version, entries)
