"""Scenario files: a cluster, its network, its workload and a fault schedule, in TOML.

A scenario is data, resolved once into frozen values with every default filled in, so a run
directory can store exactly what ran and ``replay`` needs nothing else (RFC 0007 §2). Every key,
its unit and its default is documented in ``simulations/README.md``; unknown keys are errors
(a typo must not silently change an experiment).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from gcs.errors import ConfigError
from gcs.links.health import LinkMode, LinkTimings
from gcs.quorum.rules import QuorumOptions, QuorumRules
from gcs.sim.network import LatencyKind, LinkParams
from gcs.totem.config import FailToRecvMode, TotemConfig
from gcs.wire.limits import MAX_LINKS

__all__ = [
    "Expect",
    "FaultStep",
    "LinkSpec",
    "Scenario",
    "Workload",
    "load_scenario",
    "parse_scenario",
]

MS = 1_000_000
S = 1_000_000_000

FAULT_ACTIONS = (
    "partition",
    "heal",
    "block",
    "unblock",
    "crash",
    "restart",
    "leave",
    "pause",
    "loss",
    "token_loss",
    "commit_token_loss",
    "recovery_loss",
    "recovery_delay",
    "clock",
    "replay_joins",
    "cut_link",
    "restore_link",
    "add_node",
    "remove_node",
)

# Which frames of the RECOVERY phase the recovery nemesis hits (``spec``, RFC 0007 §4.2).
RECOVERY_FRAMES = ("all", "resend", "token")

# Scenario [totem] keys: file name -> (TotemConfig field, multiplier to the field's unit).
TOTEM_KEYS: dict[str, tuple[str, int]] = {
    "token_ms": ("token_timeout_ns", MS),
    "token_retransmit_ms": ("token_retransmit_ns", MS),
    "hold_ms": ("hold_timeout_ns", MS),
    "join_ms": ("join_timeout_ns", MS),
    "join_jitter_ms": ("join_jitter_ns", MS),
    "join_max_ms": ("join_timeout_max_ns", MS),
    "consensus_ms": ("consensus_timeout_ns", MS),
    "merge_ms": ("merge_timeout_ns", MS),
    "fail_to_recv_ms": ("fail_to_recv_ns", MS),
    "exclusion_penalty_ms": ("exclusion_penalty_ns", MS),
    "exclusion_penalty_max_ms": ("exclusion_penalty_max_ns", MS),
    "window_size": ("window_size", 1),
    "window_min": ("window_min", 1),
    "adaptive_window": ("adaptive_window", 1),
    "max_messages": ("max_messages", 1),
    "miss_count": ("miss_count_const", 1),
    "seqno_unchanged": ("seqno_unchanged_const", 1),
    "fail_to_recv_const": ("fail_to_recv_const", 1),
    "rtr_max": ("rtr_max", 1),
    "frame_payload_bytes": ("frame_payload_bytes", 1),
    "max_message_bytes": ("max_message_bytes", 1),
    "send_queue_max_bytes": ("send_queue_max_bytes", 1),
    "token_hold": ("token_hold", 1),
    "exclusion_hysteresis": ("exclusion_hysteresis", 1),
    "pause_guard": ("pause_guard", 1),
    "accelerated": ("accelerated", 1),
    "fail_to_recv_mode": ("fail_to_recv_mode", 1),
}


@dataclass(frozen=True, slots=True)
class Workload:
    """What the applications do: messages per second per node (0 = as fast as allowed)."""

    rate: float = 40.0
    sizes: tuple[int, ...] = (64,)
    safe: float = 0.25
    senders: tuple[int, ...] = ()  # empty = every node
    start_s: float = 1.0
    burst: int = 64  # saturating mode: submissions per millisecond at most
    batch: int = 1  # messages submitted together at each arrival (they may share an mcast)
    kind: str = "messages"  # "messages" | "groups" | "kv": the module gcs.sim.workloads.<kind>
    keys: int = 8  # kv: how many keys the writes spread over


@dataclass(frozen=True, slots=True)
class FaultStep:
    """One nemesis action at ``at_s`` (or at the first ``when`` state change after it)."""

    at_s: float
    action: str
    nodes: tuple[int, ...] = ()
    groups: tuple[tuple[int, ...], ...] = ()
    spec: str = ""
    duration_s: float = 0.0
    value: float = 0.0
    wipe: bool = False
    when: str = ""  # a membership state ("commit", "recovery", ...) that triggers the action
    delay_ms: float = 0.0  # recovery_delay: how much later a hit copy is transmitted
    link: int = 0  # cut_link / restore_link: which of the node's links
    target: int = 0  # add_node / remove_node: the node (0 with remove_node: one outside)

    def to_toml(self) -> dict[str, Any]:
        out: dict[str, Any] = {"at_s": self.at_s, "action": self.action}
        defaults = FaultStep(0.0, "")
        for f in fields(self):
            if f.name in ("at_s", "action"):
                continue
            value = getattr(self, f.name)
            if value != getattr(defaults, f.name):
                out[f.name] = (
                    [list(g) for g in value]
                    if f.name == "groups"
                    else (list(value) if isinstance(value, tuple) else value)
                )
        return out


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """``[links]``: redundant links per node (RFC 0010). One link is the classic model."""

    count: int = 1
    mode: str = "passive"  # "passive" | "active"
    down_ms: float = 0.0  # 0 = the default, a third of the token timeout
    up_ms: float = 0.0  # 0 = down_ms

    def timings(self, token_timeout_ns: int) -> LinkTimings:
        base = LinkTimings.for_token(token_timeout_ns)
        down = round(self.down_ms * MS) if self.down_ms > 0 else base.down_ns
        up = round(self.up_ms * MS) if self.up_ms > 0 else down
        return LinkTimings(down, up)


@dataclass(frozen=True, slots=True)
class Expect:
    """``[expect]``: what a scenario claims beyond the EVS guarantees (checker ``link_failover``).

    ``no_view_change``: once every node is in one configuration, none installs another.
    ``cut_latency_ms``: every message submitted while a link is cut is delivered everywhere
    within this long (0: not judged).
    """

    no_view_change: bool = False
    cut_latency_ms: float = 0.0

    @property
    def active(self) -> bool:
        return self.no_view_change or self.cut_latency_ms > 0


@dataclass(frozen=True, slots=True)
class Scenario:
    """A fully resolved scenario."""

    name: str
    nodes: int = 5
    duration_s: float = 30.0
    quiet_s: float = 10.0
    description: str = ""
    totem: Mapping[str, Any] = field(default_factory=dict)
    link: LinkParams = field(default_factory=LinkParams)
    workload: Workload = field(default_factory=Workload)
    faults: tuple[FaultStep, ...] = ()
    wire: str = "sealed"  # sealed | unsealed | objects
    persist_delay_ms: float = 0.0
    liveness_bound_s: float = 0.0  # 0 = derived from the timers (RFC 0004 §9)
    start_spread_ms: float = 0.0
    quorum: Mapping[str, Any] = field(default_factory=dict)  # [quorum]: QuorumOptions keys
    votes: tuple[int, ...] = ()  # per node 1..n; empty = one vote each
    links: LinkSpec = field(default_factory=LinkSpec)
    expect: Expect = field(default_factory=Expect)

    @property
    def node_ids(self) -> tuple[int, ...]:
        return tuple(range(1, self.nodes + 1))

    def totem_config(self, node_id: int) -> TotemConfig:
        kwargs: dict[str, Any] = {}
        for key, value in self.totem.items():
            name, unit = TOTEM_KEYS[key]
            if name == "fail_to_recv_mode":
                kwargs[name] = FailToRecvMode(value)
            elif isinstance(value, bool):
                kwargs[name] = value
            else:
                kwargs[name] = int(value * unit)
        return TotemConfig(node_id=node_id, nodes=self.node_ids, **kwargs)

    def quorum_rules(self) -> QuorumRules:
        """The quorum rules of the ``[quorum]`` table and ``votes`` (RFC 0008 §3)."""
        votes = dict(zip(self.node_ids, self.votes, strict=True)) if self.votes else None
        return QuorumRules.build(self.node_ids, votes, QuorumOptions.from_mapping(self.quorum))

    def liveness_bound_ns(self) -> int:
        """Time from the last fault to one common configuration, by RFC 0004 §9."""
        if self.liveness_bound_s > 0:
            return int(self.liveness_bound_s * S)
        cfg = self.totem_config(1)
        return (
            cfg.token_timeout_ns
            + 2 * cfg.consensus_timeout_ns
            + cfg.merge_timeout_ns
            + 4 * cfg.join_timeout_max_ns
        )

    def with_changes(self, **changes: Any) -> Scenario:
        return replace(self, **changes)

    def to_toml(self) -> str:
        """The resolved scenario as TOML (what a run directory stores)."""
        return _dump_toml(self)


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    return parse_scenario(data, default_name=path.stem)


def parse_scenario(data: Mapping[str, Any], default_name: str = "scenario") -> Scenario:
    known = {
        "name",
        "description",
        "nodes",
        "duration_s",
        "quiet_s",
        "totem",
        "network",
        "workload",
        "faults",
        "wire",
        "persist_delay_ms",
        "liveness_bound_s",
        "start_spread_ms",
        "quorum",
        "votes",
        "links",
        "expect",
    }
    _unknown(data, known, "")
    nodes = _int(data, "nodes", 5, 1, 256)
    links = _links(data.get("links", {}))
    totem = dict(data.get("totem", {}))
    _unknown(totem, set(TOTEM_KEYS), "totem.")
    scenario = Scenario(
        name=str(data.get("name", default_name)),
        description=str(data.get("description", "")),
        nodes=nodes,
        duration_s=_num(data, "duration_s", 30.0, 0.0),
        quiet_s=_num(data, "quiet_s", 10.0, 0.0),
        totem=totem,
        link=_link(data.get("network", {})),
        workload=_workload(data.get("workload", {}), nodes),
        faults=tuple(
            _fault(f, i, nodes, links.count) for i, f in enumerate(data.get("faults", []))
        ),
        wire=_choice(data, "wire", "sealed", ("sealed", "unsealed", "objects")),
        persist_delay_ms=_num(data, "persist_delay_ms", 0.0, 0.0),
        liveness_bound_s=_num(data, "liveness_bound_s", 0.0, 0.0),
        start_spread_ms=_num(data, "start_spread_ms", 0.0, 0.0),
        quorum=dict(data.get("quorum", {})),
        votes=_votes(data.get("votes", []), nodes),
        links=links,
        expect=_expect(data.get("expect", {})),
    )
    try:
        cfg = scenario.totem_config(1)
    except (ValueError, TypeError) as exc:
        raise ConfigError("totem", str(exc)) from None
    try:
        timings = links.timings(cfg.token_timeout_ns)
    except ValueError as exc:
        raise ConfigError("links.down_ms", str(exc)) from None
    if links.count > 1 and timings.down_ns >= cfg.token_timeout_ns:
        raise ConfigError("links.down_ms", "must be below the token timeout (RFC 0010 LNK-3-3)")
    scenario.quorum_rules()  # ConfigError naming quorum.<key> or votes[<node>]
    return scenario


def _links(data: Mapping[str, Any]) -> LinkSpec:
    _unknown(data, {"count", "mode", "down_ms", "up_ms"}, "links.")
    p = "links."
    count = data.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_LINKS:
        raise ConfigError("links.count", f"expected an integer in 1..{MAX_LINKS}, got {count!r}")
    return LinkSpec(
        count=count,
        mode=_choice(data, "mode", "passive", tuple(m.value for m in LinkMode)),
        down_ms=_num(data, "down_ms", 0.0, 0.0, p),
        up_ms=_num(data, "up_ms", 0.0, 0.0, p),
    )


def _expect(data: Mapping[str, Any]) -> Expect:
    _unknown(data, {"no_view_change", "cut_latency_ms"}, "expect.")
    flag = data.get("no_view_change", False)
    if not isinstance(flag, bool):
        raise ConfigError("expect.no_view_change", "expected true or false")
    return Expect(flag, _num(data, "cut_latency_ms", 0.0, 0.0, "expect."))


def _votes(value: object, nodes: int) -> tuple[int, ...]:
    if value == []:
        return ()
    if not isinstance(value, list) or len(value) != nodes:
        raise ConfigError("votes", f"a list of {nodes} vote counts, one per node")
    if not all(type(v) is int for v in value):
        raise ConfigError("votes", "vote counts are integers")
    return tuple(value)


# ---------------------------------------------------------------------- parsing helpers


def _unknown(data: Mapping[str, Any], known: set[str], prefix: str) -> None:
    for key in data:
        if key not in known:
            raise ConfigError(f"{prefix}{key}", f"unknown key (known: {', '.join(sorted(known))})")


def _num(data: Mapping[str, Any], key: str, default: float, low: float, prefix: str = "") -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(prefix + key, f"expected a number, got {value!r}")
    if value < low:
        raise ConfigError(prefix + key, f"must be >= {low}")
    return float(value)


def _int(data: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(key, f"expected an integer in {low}..{high}, got {value!r}")
    return value


def _choice(data: Mapping[str, Any], key: str, default: str, options: tuple[str, ...]) -> str:
    value = data.get(key, default)
    if value not in options:
        raise ConfigError(key, f"expected one of {', '.join(options)}, got {value!r}")
    return str(value)


def _prob(data: Mapping[str, Any], key: str, prefix: str) -> float:
    value = _num(data, key, 0.0, 0.0, prefix)
    if value > 1.0:
        raise ConfigError(prefix + key, "a probability must be <= 1")
    return value


def _link(data: Mapping[str, Any]) -> LinkParams:
    known = {
        "latency",
        "latency_ms",
        "latency_max_ms",
        "latency_floor_ms",
        "loss",
        "duplicate",
        "reorder",
        "reorder_delay_ms",
        "bandwidth_mbps",
    }
    _unknown(data, known, "network.")
    base = LinkParams()
    kind = data.get("latency", base.latency.value)
    try:
        latency = LatencyKind(kind)
    except ValueError:
        raise ConfigError("network.latency", f"unknown distribution {kind!r}") from None
    p = "network."
    return LinkParams(
        latency=latency,
        latency_ns=round(_num(data, "latency_ms", base.latency_ns / MS, 0.0, p) * MS),
        latency_max_ns=round(_num(data, "latency_max_ms", base.latency_max_ns / MS, 0.0, p) * MS),
        latency_floor_ns=round(
            _num(data, "latency_floor_ms", base.latency_floor_ns / MS, 0.0, p) * MS
        ),
        loss=_prob(data, "loss", p),
        duplicate=_prob(data, "duplicate", p),
        reorder=_prob(data, "reorder", p),
        reorder_delay_ns=round(
            _num(data, "reorder_delay_ms", base.reorder_delay_ns / MS, 0.0, p) * MS
        ),
        bandwidth_bytes_per_s=round(_num(data, "bandwidth_mbps", 0.0, 0.0, p) * 1_000_000 / 8),
    )


def _workload(data: Mapping[str, Any], nodes: int) -> Workload:
    known = {
        "rate",
        "size",
        "sizes",
        "safe",
        "senders",
        "start_s",
        "burst",
        "batch",
        "kind",
        "keys",
    }
    _unknown(data, known, "workload.")
    p = "workload."
    sizes_raw = data.get("sizes", [data.get("size", 64)])
    if (
        not isinstance(sizes_raw, list)
        or not sizes_raw
        or not all(isinstance(s, int) and 16 <= s <= 64 * 1024 * 1024 for s in sizes_raw)
    ):
        raise ConfigError("workload.sizes", "a list of message sizes in bytes (16 .. 64 MiB)")
    senders = tuple(data.get("senders", ()))
    if any(not isinstance(s, int) or not 1 <= s <= nodes for s in senders):
        raise ConfigError("workload.senders", f"node ids must be in 1..{nodes}")
    return Workload(
        rate=_num(data, "rate", 40.0, 0.0, p),
        sizes=tuple(sizes_raw),
        safe=_prob(data, "safe", p) if "safe" in data else 0.25,
        senders=senders,
        start_s=_num(data, "start_s", 1.0, 0.0, p),
        burst=int(_num(data, "burst", 64, 1, p)),
        batch=int(_num(data, "batch", 1, 1, p)),
        kind=_choice(data, "kind", "messages", ("messages", "groups", "kv")),
        keys=int(_num(data, "keys", 8, 1, p)),
    )


def _fault(data: Mapping[str, Any], index: int, nodes: int, links: int = 1) -> FaultStep:
    prefix = f"faults[{index}]."
    known = {
        "link",
        "at_s",
        "action",
        "nodes",
        "node",
        "groups",
        "spec",
        "duration_s",
        "value",
        "wipe",
        "when",
        "delay_ms",
        "target",
    }
    _unknown(data, known, prefix)
    action = data.get("action")
    if action not in FAULT_ACTIONS:
        raise ConfigError(prefix + "action", f"expected one of {', '.join(FAULT_ACTIONS)}")
    if str(action).startswith("recovery_"):
        _recovery_step(data, prefix)
    node_list = data.get("nodes", [data["node"]] if "node" in data else [])
    if any(not isinstance(x, int) or not 1 <= x <= nodes for x in node_list):
        raise ConfigError(prefix + "nodes", f"node ids must be in 1..{nodes}")
    groups = tuple(tuple(g) for g in data.get("groups", ()))
    if any(not 1 <= x <= nodes for g in groups for x in g):
        raise ConfigError(prefix + "groups", f"node ids must be in 1..{nodes}")
    link = data.get("link", 0)
    if isinstance(link, bool) or not isinstance(link, int) or not 0 <= link < links:
        raise ConfigError(prefix + "link", f"a link index in 0..{links - 1} ([links] count)")
    return FaultStep(
        at_s=_num(data, "at_s", 0.0, 0.0, prefix),
        action=str(action),
        nodes=tuple(node_list),
        groups=groups,
        spec=str(data.get("spec", "")),
        duration_s=_num(data, "duration_s", 0.0, 0.0, prefix),
        value=_num(data, "value", 0.0, 0.0, prefix),
        wipe=bool(data.get("wipe", False)),
        when=str(data.get("when", "")),
        delay_ms=_num(data, "delay_ms", 0.0, 0.0, prefix),
        link=link,
        target=_target(data, prefix, nodes),
    )


def _target(data: Mapping[str, Any], prefix: str, nodes: int) -> int:
    """The node an add_node or remove_node step changes (0: remove_node picks one)."""
    target = data.get("target", 0)
    if type(target) is not int or not 0 <= target <= nodes:
        raise ConfigError(prefix + "target", f"a node id in 1..{nodes} (or 0)")
    if data.get("action") == "add_node" and target == 0:
        raise ConfigError(prefix + "target", "add_node needs the node to add")
    return target


def _recovery_step(data: Mapping[str, Any], prefix: str) -> None:
    """The recovery nemesis: a probability, which frames, and (for delays) how long."""
    _prob(data, "value", prefix)
    if data.get("spec", "all") not in RECOVERY_FRAMES:
        raise ConfigError(prefix + "spec", f"expected one of {', '.join(RECOVERY_FRAMES)}")
    if data.get("action") == "recovery_delay" and _num(data, "delay_ms", 0.0, 0.0, prefix) <= 0:
        raise ConfigError(prefix + "delay_ms", "recovery_delay needs a delay > 0")


# ---------------------------------------------------------------------- writing TOML


def _dump_toml(s: Scenario) -> str:
    lines = [
        f"name = {_toml_value(s.name)}",
        f"description = {_toml_value(s.description)}",
        f"nodes = {s.nodes}",
        f"duration_s = {s.duration_s}",
        f"quiet_s = {s.quiet_s}",
        f"wire = {_toml_value(s.wire)}",
        f"persist_delay_ms = {s.persist_delay_ms}",
        f"liveness_bound_s = {s.liveness_bound_s}",
        f"start_spread_ms = {s.start_spread_ms}",
        "",
        "[totem]",
    ]
    lines += [f"{k} = {_toml_value(v)}" for k, v in sorted(s.totem.items())]
    link = s.link
    lines += [
        "",
        "[network]",
        f"latency = {_toml_value(link.latency.value)}",
        f"latency_ms = {link.latency_ns / MS}",
        f"latency_max_ms = {link.latency_max_ns / MS}",
        f"latency_floor_ms = {link.latency_floor_ns / MS}",
        f"loss = {link.loss}",
        f"duplicate = {link.duplicate}",
        f"reorder = {link.reorder}",
        f"reorder_delay_ms = {link.reorder_delay_ns / MS}",
        f"bandwidth_mbps = {link.bandwidth_bytes_per_s * 8 / 1_000_000}",
        "",
        "[workload]",
    ]
    w = s.workload
    lines += [
        f"rate = {w.rate}",
        f"sizes = {_toml_value(list(w.sizes))}",
        f"safe = {w.safe}",
        f"senders = {_toml_value(list(w.senders))}",
        f"start_s = {w.start_s}",
        f"burst = {w.burst}",
        f"batch = {w.batch}",
    ]
    if w.kind != "messages":
        lines += [f"kind = {_toml_value(w.kind)}", f"keys = {w.keys}"]
    if s.votes:
        lines.insert(lines.index("[totem]") - 1, f"votes = {_toml_value(list(s.votes))}")
    if s.quorum:
        lines += ["", "[quorum]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in sorted(s.quorum.items())]
    if s.links != LinkSpec():
        ln = s.links
        lines += ["", "[links]", f"count = {ln.count}", f"mode = {_toml_value(ln.mode)}"]
        lines += [f"down_ms = {ln.down_ms}", f"up_ms = {ln.up_ms}"]
    if s.expect.active:
        lines += ["", "[expect]", f"no_view_change = {_toml_value(s.expect.no_view_change)}"]
        lines += [f"cut_latency_ms = {s.expect.cut_latency_ms}"]
    for step in s.faults:
        lines += ["", "[[faults]]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in step.to_toml().items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)
