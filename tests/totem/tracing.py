"""Drive one ``gcs.totem.Node`` by a script, and read and write the traces of protocol/traces/.

A trace (RFC 0003 Appendix A) is the node's configuration, then an ordered list of steps. Each
step is one input (``start``, ``persisted``, ``receive``, ``timeout``, ``submit``, ``leave``)
with the effects the core must return for it, in order, ``Trace`` effects left out, plus the
node's membership state and next deadline afterwards. Everything is JSON:

* frames use the field layout of protocol/vectors/frames.json (RFC 0002 §4): an object with a
  ``type`` (the frame type name in lower case) and the fields of ``gcs.wire.frames`` in order,
  ring ids as ``{"rep", "seq"}``, node sets as ascending arrays, bytes as lowercase hex;
* effects are objects with a ``type`` (``send``, ``multicast``, ``deliver``, ``configuration``,
  ``persist_ring_seq``, ``send_window``) and the fields of ``gcs.totem.effects``;
* times are integer nanoseconds.

The helpers here are shared by tests/totem/test_traces.py (replay) and
tools/make_traces.py (generation); nothing in ``gcs`` imports them.
"""

from __future__ import annotations

import enum
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import gcs.sim.world as world_module
from gcs.history import events as h
from gcs.sim.network import LatencyKind, LinkParams
from gcs.totem.config import FailToRecvMode, TotemConfig
from gcs.totem.effects import (
    Configuration,
    Deliver,
    Effect,
    Multicast,
    PersistRingSeq,
    Send,
    SendWindow,
    Trace,
)
from gcs.totem.node import Node
from gcs.wire.frames import (
    FRAME_TYPES,
    Frame,
    LinkProbe,
    Mcast,
    MembCommitToken,
    MemberEntry,
    MembJoin,
    MembLeave,
    OrfToken,
    Record,
    RingId,
    RtrEntry,
)

__all__ = [
    "MS",
    "TRACE_FORMAT",
    "advance",
    "TRACES_DIR",
    "Cluster",
    "RecordingNode",
    "Step",
    "apply_input",
    "config_from_json",
    "config_to_json",
    "effect_to_json",
    "effects_to_json",
    "frame_from_json",
    "frame_to_json",
    "load_traces",
    "mcast_carrying",
    "next_token",
    "once",
    "operational",
    "prefix",
    "record_from_json",
    "record_to_json",
    "replay",
    "token_to",
    "visible",
]

MS = 1_000_000
TRACE_FORMAT = "gcs-trace/1"
TRACES_DIR = Path(__file__).resolve().parents[2] / "protocol" / "traces"

# ---------------------------------------------------------------------- frames

_TYPE_NAMES = {cls: code.name.lower() for cls, code in FRAME_TYPES.items()}
_CLASSES = {name: cls for cls, name in _TYPE_NAMES.items()}


def ring_to_json(ring: RingId) -> dict[str, int]:
    return {"rep": ring.rep, "seq": ring.seq}


def ring_from_json(obj: dict[str, int]) -> RingId:
    return RingId(seq=obj["seq"], rep=obj["rep"])


def record_to_json(record: Record) -> dict[str, Any]:
    return {
        "group": record.group,
        "handle": record.handle,
        "flags": record.flags,
        "data": record.data.hex(),
    }


def record_from_json(obj: dict[str, Any]) -> Record:
    return Record(obj["group"], obj["handle"], obj["flags"], bytes.fromhex(obj["data"]))


def _mcast_body(mcast: Mcast) -> dict[str, Any]:
    return {
        "sender": mcast.sender,
        "ring_id": ring_to_json(mcast.ring_id),
        "seq": mcast.seq,
        "safe": mcast.safe,
        "records": [record_to_json(r) for r in mcast.records],
        "encapsulated": None if mcast.encapsulated is None else _mcast_body(mcast.encapsulated),
    }


def _mcast_from(obj: dict[str, Any]) -> Mcast:
    inner = obj["encapsulated"]
    return Mcast(
        obj["sender"],
        ring_from_json(obj["ring_id"]),
        obj["seq"],
        obj["safe"],
        tuple(record_from_json(r) for r in obj["records"]),
        None if inner is None else _mcast_from(inner),
    )


def frame_to_json(frame: Frame) -> dict[str, Any]:
    """The JSON object of a frame, as in protocol/vectors/frames.json."""
    head: dict[str, Any] = {"type": _TYPE_NAMES[type(frame)]}
    match frame:
        case Mcast():
            return head | _mcast_body(frame)
        case OrfToken():
            return head | {
                "ring_id": ring_to_json(frame.ring_id),
                "token_seq": frame.token_seq,
                "seq": frame.seq,
                "aru": frame.aru,
                "aru_id": frame.aru_id,
                "fcc": frame.fcc,
                "backlog": frame.backlog,
                "retrans_flg": frame.retrans_flg,
                "rtr": [{"ring_id": ring_to_json(e.ring_id), "seq": e.seq} for e in frame.rtr],
            }
        case MembJoin() | MembLeave():
            return head | {
                "sender": frame.sender,
                "proc_set": sorted(frame.proc_set),
                "fail_set": sorted(frame.fail_set),
                "ring_seq": frame.ring_seq,
            }
        case MembCommitToken():
            return head | {
                "ring_id": ring_to_json(frame.ring_id),
                "token_seq": frame.token_seq,
                "memb_index": frame.memb_index,
                "members": [
                    {
                        "node_id": m.node_id,
                        "old_ring_id": ring_to_json(m.old_ring_id),
                        "aru": m.aru,
                        "high_delivered": m.high_delivered,
                        "received_flg": m.received_flg,
                    }
                    for m in frame.members
                ],
            }
        case LinkProbe():  # a transport frame (RFC 0010): in vectors, never in a trace
            return head | {
                "link": frame.link,
                "seq": frame.seq,
                "reply": frame.reply,
                "hears": frame.hears,
            }
        case _:  # MembMergeDetect, TokenHoldCancel
            return head | {"sender": frame.sender, "ring_id": ring_to_json(frame.ring_id)}


def frame_from_json(obj: dict[str, Any]) -> Frame:
    """Inverse of ``frame_to_json``."""
    cls = _CLASSES[obj["type"]]
    if cls is Mcast:
        return _mcast_from(obj)
    if cls is LinkProbe:
        return LinkProbe(obj["link"], obj["seq"], obj["reply"], obj["hears"])  # type: ignore[return-value]
    if cls is OrfToken:
        rtr = tuple(RtrEntry(ring_from_json(e["ring_id"]), e["seq"]) for e in obj["rtr"])
        keys = ("token_seq", "seq", "aru", "aru_id", "fcc", "backlog", "retrans_flg")
        return OrfToken(ring_from_json(obj["ring_id"]), *(obj[k] for k in keys), rtr)
    if cls is MembJoin or cls is MembLeave:
        proc, fail = frozenset(obj["proc_set"]), frozenset(obj["fail_set"])
        return cls(obj["sender"], proc, fail, obj["ring_seq"])  # type: ignore[no-any-return]
    if cls is MembCommitToken:
        members = tuple(
            MemberEntry(
                m["node_id"],
                ring_from_json(m["old_ring_id"]),
                m["aru"],
                m["high_delivered"],
                m["received_flg"],
            )
            for m in obj["members"]
        )
        return MembCommitToken(
            ring_from_json(obj["ring_id"]), obj["token_seq"], obj["memb_index"], members
        )
    return cls(obj["sender"], ring_from_json(obj["ring_id"]))  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- effects


def effect_to_json(effect: Effect) -> dict[str, Any]:
    """The JSON object of one effect (``Trace`` effects have none: they are not compared)."""
    match effect:
        case Send(dest=dest, frame=frame):
            return {"type": "send", "dest": dest, "frame": frame_to_json(frame)}
        case Multicast(frame=frame, dests=dests):
            return {"type": "multicast", "dests": list(dests), "frame": frame_to_json(frame)}
        case Deliver():
            return {
                "type": "deliver",
                "config": {
                    "kind": effect.config.kind.value,
                    "ring_id": ring_to_json(effect.config.ring_id),
                },
                "origin": ring_to_json(effect.origin),
                "seq": effect.seq,
                "sender": effect.sender,
                "safe": effect.safe,
                "records": [record_to_json(r) for r in effect.records],
            }
        case Configuration():
            return {
                "type": "configuration",
                "kind": effect.kind.value,
                "ring_id": ring_to_json(effect.ring_id),
                "members": list(effect.members),
                "left": list(effect.left),
                "joined": list(effect.joined),
                "reason": {"kind": effect.reason.kind.value, "nodes": list(effect.reason.nodes)},
            }
        case PersistRingSeq(seq=seq):
            return {"type": "persist_ring_seq", "seq": seq}
        case SendWindow(open=is_open):
            return {"type": "send_window", "open": is_open}
        case Trace():
            raise ValueError("Trace effects are not part of a trace's expectations")


def effects_to_json(effects: list[Effect]) -> list[dict[str, Any]]:
    """Every effect but ``Trace``, in order."""
    return [effect_to_json(e) for e in effects if not isinstance(e, Trace)]


# ---------------------------------------------------------------------- the node configuration


def config_to_json(config: TotemConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def config_from_json(obj: dict[str, Any]) -> TotemConfig:
    kwargs = dict(obj)
    kwargs["nodes"] = tuple(kwargs["nodes"])
    kwargs["fail_to_recv_mode"] = FailToRecvMode(kwargs["fail_to_recv_mode"])
    return TotemConfig(**kwargs)


# ---------------------------------------------------------------------- inputs


def apply_input(node: Node, step: dict[str, Any]) -> list[Effect]:
    """Feed one input (a trace step's ``input`` object) to ``node``; return its effects."""
    now = step["now_ns"]
    match step["type"]:
        case "start":
            return node.start(now, step["stored_ring_seq"])
        case "persisted":
            return node.on_persisted(now, step["seq"])
        case "receive":
            return node.receive(now, step["src"], frame_from_json(step["frame"]))
        case "timeout":
            return node.on_timeout(now)
        case "submit":
            return node.submit(now, record_from_json(step["record"]), safe=step["safe"])
        case "leave":
            return node.leave(now)
    raise ValueError(f"unknown input type {step['type']!r}")


@dataclass(frozen=True, slots=True)
class Step:
    """One replayed step: what the trace expects and what the core did."""

    index: int
    input: dict[str, Any]
    expected: list[dict[str, Any]]
    actual: list[dict[str, Any]]
    expected_state: str
    actual_state: str
    expected_deadline: int | None
    actual_deadline: int | None
    note: str


def new_node(trace: dict[str, Any]) -> Node:
    """A fresh core for ``trace``. The traces draw no random numbers (join_jitter_ns = 0)."""
    return Node(config_from_json(trace["config"]), random.Random(0))


def replay(trace: dict[str, Any]) -> Iterator[Step]:
    """Run every input of ``trace`` against a fresh core, yielding expected against actual."""
    node = new_node(trace)
    for index, step in enumerate(trace["steps"]):
        actual = effects_to_json(apply_input(node, step["input"]))
        yield Step(
            index,
            step["input"],
            step["expect"],
            actual,
            step["state"],
            node.state.value,
            step["deadline_ns"],
            node.next_deadline_ns,
            step.get("note", ""),
        )


def load_traces() -> dict[str, dict[str, Any]]:
    """Every committed trace, by name."""
    out = {}
    for path in sorted(TRACES_DIR.glob("*.json")):
        trace = json.loads(path.read_text())
        out[trace["name"]] = trace
    return out


# ---------------------------------------------------------------------- recording


class RecordingNode(Node):
    """A core that records every input it gets and the effects it returns (trace generation)."""

    def __init__(self, config: TotemConfig, rng: random.Random) -> None:
        super().__init__(config, rng)
        self.steps: list[dict[str, Any]] = []
        self.recording = True

    def _record(self, inp: dict[str, Any], effects: list[Effect]) -> list[Effect]:
        if self.recording:
            self.steps.append(
                {
                    "input": inp,
                    "expect": effects_to_json(effects),
                    "state": self.state.value,
                    "deadline_ns": self.next_deadline_ns,
                }
            )
        return effects

    def start(self, now_ns: int, stored_ring_seq: int | None) -> list[Effect]:
        inp = {"type": "start", "now_ns": now_ns, "stored_ring_seq": stored_ring_seq}
        return self._record(inp, super().start(now_ns, stored_ring_seq))

    def on_persisted(self, now_ns: int, seq: int) -> list[Effect]:
        inp = {"type": "persisted", "now_ns": now_ns, "seq": seq}
        return self._record(inp, super().on_persisted(now_ns, seq))

    def receive(self, now_ns: int, src: int, frame: Frame) -> list[Effect]:
        inp = {"type": "receive", "now_ns": now_ns, "src": src, "frame": frame_to_json(frame)}
        return self._record(inp, super().receive(now_ns, src, frame))

    def on_timeout(self, now_ns: int) -> list[Effect]:
        return self._record({"type": "timeout", "now_ns": now_ns}, super().on_timeout(now_ns))

    def submit(self, now_ns: int, record: Record, *, safe: bool = False) -> list[Effect]:
        inp = {"type": "submit", "now_ns": now_ns, "record": record_to_json(record), "safe": safe}
        return self._record(inp, super().submit(now_ns, record, safe=safe))

    def leave(self, now_ns: int) -> list[Effect]:
        return self._record({"type": "leave", "now_ns": now_ns}, super().leave(now_ns))


# ---------------------------------------------------------------------- a scripted cluster

DropRule = Callable[[int, int, Frame], bool]
Watcher = Callable[[int, int, Frame], None]


class Cluster:
    """Real cores in the simulator, frames as objects, a constant latency and scripted drops.

    ``drops`` are predicates ``(src, dst, frame) -> bool`` consulted for every copy of every
    frame; ``watchers`` see every copy before the drops. ``subject``, if given, is built as a
    ``RecordingNode``. Every node uses ``join_jitter_ns = 0`` unless ``overrides`` says
    otherwise, so nothing here is random.
    """

    def __init__(
        self,
        nodes: tuple[int, ...] = (1, 2, 3),
        *,
        subject: int | None = None,
        latency_ns: int = 1 * MS,
        **overrides: Any,
    ) -> None:
        self.nodes = nodes
        self.overrides = {"join_jitter_ns": 0, **overrides}
        self.drops: list[DropRule] = []
        self.watchers: list[Watcher] = []
        self.recorder: RecordingNode | None = None
        self._subject = subject
        self.world = world_module.World(
            seed=0,
            nodes=nodes,
            totem_config=self.config,
            link=LinkParams(latency=LatencyKind.CONSTANT, latency_ns=latency_ns),
        )
        transmit = self.world.transmit

        def filtered(src: int, dests: tuple[int, ...], payload: Any, size: int) -> None:
            for watch in self.watchers:
                for dst in dests:
                    watch(src, dst, payload)
            keep = tuple(d for d in dests if not any(drop(src, d, payload) for drop in self.drops))
            if keep:
                transmit(src, keep, payload, size)

        self.world.transmit = filtered  # type: ignore[method-assign]

    def config(self, node: int) -> TotemConfig:
        return TotemConfig(node_id=node, nodes=self.nodes, **self.overrides)

    def _make_core(self, config: TotemConfig, rng: random.Random) -> Node:
        if config.node_id == self._subject:
            self.recorder = RecordingNode(config, rng)
            return self.recorder
        return Node(config, rng)

    def core(self, node: int) -> Node:
        core = self.world.hosts[node].core
        assert core is not None, f"node {node} is down"
        return core

    # -------------------------------------------------------------- scheduling

    def at(self, at_ns: int, action: Callable[[], None]) -> None:
        self.world.at(at_ns, action)

    def start(self, *nodes: int, at_ns: int = 0) -> None:
        for node in nodes or self.nodes:
            self.world.at(at_ns, self._boot, node)

    def _boot(self, node: int) -> None:
        original = world_module.Core
        world_module.Core = self._make_core  # type: ignore[misc, assignment]
        try:
            self.world.start(node)
        finally:
            world_module.Core = original  # type: ignore[misc]

    def submit(self, at_ns: int, node: int, data: bytes, *, safe: bool = False) -> None:
        """Submit ``Record("g", 1, 0, data)`` to ``node`` at ``at_ns``."""
        record = Record("g", 1, 0, data)

        def go() -> None:
            host = self.world.hosts[node]
            host._run(lambda core, now: core.submit(now, record, safe=safe))

        self.world.at(at_ns, go)

    def run_until(self, until_ns: int) -> None:
        self.world.run_until(until_ns)

    def deliveries(self, node: int) -> list[tuple[str, str, int, int, bool]]:
        """(configuration, origin ring, seq, sender, safe) of every delivery ``node`` recorded."""
        return [
            (f"{e.config_kind}:{e.config_ring}", str(e.origin_ring), e.seq, e.sender, e.safe)
            for e in self.world.history.events
            if isinstance(e, h.Deliver) and e.node == node
        ]

    def configurations(self, node: int) -> list[tuple[str, str, tuple[int, ...], str]]:
        """(kind, ring id, members, reason) of every configuration ``node`` installed."""
        return [
            (e.kind, str(e.ring_id), tuple(e.members), e.reason)
            for e in self.world.history.events
            if isinstance(e, h.Conf) and e.node == node
        ]


def token_to(node: int, ring_seq: int | None = None) -> DropRule:
    """Matches every ORF token sent to ``node`` (of the ring with ``ring_seq``, if given)."""

    def rule(src: int, dst: int, frame: Frame) -> bool:
        return (
            dst == node
            and isinstance(frame, OrfToken)
            and (ring_seq is None or frame.ring_id.seq == ring_seq)
        )

    return rule


def mcast_carrying(data: bytes, *, src: int | None = None, dst: int | None = None) -> DropRule:
    """Matches the original (not encapsulated) mcasts that carry a record with ``data``."""

    def rule(s: int, d: int, frame: Frame) -> bool:
        return (
            (src is None or s == src)
            and (dst is None or d == dst)
            and isinstance(frame, Mcast)
            and frame.encapsulated is None
            and any(r.data == data for r in frame.records)
        )

    return rule


def once(rule: DropRule) -> DropRule:
    """Matches the first frame ``rule`` matches, and no other."""
    fired = False

    def wrapped(src: int, dst: int, frame: Frame) -> bool:
        nonlocal fired
        if not fired and rule(src, dst, frame):
            fired = True
            return True
        return False

    return wrapped


# ---------------------------------------------------------------------- driving one core by hand


def visible(effects: list[Effect]) -> list[Effect]:
    """The effects without the diagnostic ``Trace`` ones."""
    return [e for e in effects if not isinstance(e, Trace)]


def advance(core: Node, until_ns: int) -> list[Effect]:
    """Fire ``core``'s timers on time, one deadline after another, up to ``until_ns``: what a
    driver does while no frame arrives. Returns every visible effect."""
    out: list[Effect] = []
    while (due := core.next_deadline_ns) is not None and due <= until_ns:
        out += visible(core.on_timeout(due))
    return out


def prefix(name: str, steps: int) -> tuple[Node, int]:
    """A fresh core fed the first ``steps`` inputs of trace ``name``; (core, time of the last)."""
    trace = load_traces()[name]
    node = new_node(trace)
    now = 0
    for step in trace["steps"][:steps]:
        apply_input(node, step["input"])
        now = step["input"]["now_ns"]
    return node, now


def operational(
    node: int = 1, nodes: tuple[int, ...] = (1, 2, 3), *, until_ns: int = 25 * MS, **overrides: Any
) -> tuple[Node, int]:
    """The core of ``node`` after ``nodes`` started together and formed a ring (the live ones:
    ``down`` nodes in ``overrides`` are never started). The core is then driven by hand."""
    down = overrides.pop("down", ())
    cluster = Cluster(nodes, **overrides)
    cluster.start(*(n for n in nodes if n not in down))
    cluster.run_until(until_ns)
    core = cluster.core(node)
    assert core.state.value == "operational", core.state
    return core, until_ns


def next_token(core: Node, **fields: Any) -> OrfToken:
    """A token for ``core``'s installed ring that it will accept: a fresh ``token_seq``, the
    ring's current ``seq`` and an ``aru`` equal to it, unless ``fields`` say otherwise."""
    ring = core.ring
    seq = fields.pop("seq", max(ring.last_seq, ring.queue.high_seq, 0))
    values: dict[str, Any] = {
        "ring_id": ring.ring_id,
        "token_seq": ring.token_seq + 3,
        "seq": seq,
        "aru": seq,
        "aru_id": 0,
        "fcc": 0,
        "backlog": 0,
        "retrans_flg": False,
        "rtr": (),
    }
    values.update(fields)
    return OrfToken(**values)
