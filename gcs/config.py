"""The user-facing configuration: one frozen ``Config``, built in code or loaded from TOML.

Why one frozen value: every node of a cluster must agree on its timers and limits, so the
configuration is read once, validated once, and never consulted anywhere but where a node is
constructed (RFC 0006 Appendix A). Durations are integer milliseconds with the
unit in the name; ``config.totem()`` converts them into the core's nanosecond ``TotemConfig``.
Every validation error is a ``gcs.ConfigError`` that names the field (``nodes[2].address: ...``)
so an operator can fix the file without reading code.

Defaults (the one place they are documented; RFC 0006 appendix A shows a TOML file):

=========================  ==================  ============================================
field                      default             meaning
=========================  ==================  ============================================
cluster_name               (required)          1..255 UTF-8 bytes; separates clusters
node_id                    (required)          this node, a key of ``nodes``
nodes                      (required)          node id -> "host:port" ("[::1]:5405" for IPv6)
bind                       own address         "host:port" the UDP socket binds to
key_file                   none                cluster key (``gcs keygen``); none = unkeyed
insecure                   false               allow an unkeyed node on non-loopback addresses
token_timeout_ms           1000                token loss declares a failure after this
token_retransmit_ms        token * 0.238       re-send the token when no progress is seen
hold_timeout_ms            token * 0.18        how long an idle representative holds the token
join_timeout_ms            50                  interval between join messages while gathering
consensus_timeout_ms       token * 1.2         gather gives up on silent nodes after this
merge_timeout_ms           200                 how often a representative probes for partitions
fail_to_recv_ms            token * 4           a member missing messages this long is excluded
window_size                50                  mcasts per token rotation (flow control)
max_messages               17                  mcasts one node may originate per token visit
window_bytes               256 KiB             record bytes per token rotation (flow control)
max_message_bytes          1 MiB               largest application message
frame_payload_bytes        1400                payload budget of one datagram (MTU minus headers)
accelerated                false               pass the token before multicasting (RFC 0003 §9)
send_queue_bytes           4 MiB               bound of the send queue (backpressure)
state_dir                  none                where ring seq and boot id are stored durably
control_socket             none                the daemon's local control socket
max_clients                256                 daemon clients at once (fewer if fds are short)
hello_timeout_ms           5000                a daemon client with no hello by then is closed
multicast                  none                "group:port" to send mcasts by IP multicast
subscriber_queue           10000               events a group subscriber may fall behind
socket_buffer_bytes        4 MiB               SO_RCVBUF / SO_SNDBUF requested
recorder_inputs            10000               flight-recorder inputs kept (0 disables it)
votes                      1 per node          node id -> quorum votes (TOML: in [[nodes]])
quorum                     see below           the [quorum] table (gcs.quorum.rules.QuorumOptions)
=========================  ==================  ============================================

The ``[quorum]`` table (RFC 0008 §3; corosync votequorum's names and meanings):

===========================  ==============  ===============================================
key                          default         meaning
===========================  ==============  ===============================================
expected_votes               sum of votes    votes of the whole cluster (at least that sum)
two_node                     false           a two-node cluster stays quorate with one node
wait_for_all                 two_node        first quorum only once all nodes were seen together
last_man_standing            false           lower expected_votes after a stable window
last_man_standing_window_ms  10000           how long a shrunk quorate configuration must last
auto_tie_breaker             false           an exact half with the tie-breaker node is quorate
auto_tie_breaker_node        "lowest"        "lowest", "highest" or a node id
node_changes                 false           the node list may change at run time (RFC 0008 §3.7)
===========================  ==============  ===============================================

The derived timer defaults scale with ``token_timeout_ms`` in the same ratios as the core's
defaults (``gcs.totem.config.TotemConfig``), so shortening the token timeout for a test or a
fast LAN keeps the timers consistent.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gcs.errors import ConfigError
from gcs.quorum.rules import MAX_VOTES, QuorumOptions, QuorumRules
from gcs.totem.config import MS, TotemConfig

__all__ = ["Config", "NodeAddress", "parse_address"]

_TOTEM_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(TotemConfig)}
_TOKEN_DEFAULT_NS: int = _TOTEM_DEFAULTS["token_timeout_ns"]

MIB = 1024 * 1024
MAX_FRAME_PAYLOAD_BYTES = 65_000
"""Largest payload budget whose datagram (plus headers and sealing) still fits one UDP datagram."""
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """One node's UDP address: an IP literal (or host name, resolved at start) and a port."""

    node_id: int
    host: str
    port: int

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The address as an IP literal, or None for a host name."""
        return _ip_or_none(self.host)

    @property
    def is_loopback(self) -> bool:
        ip = self.ip
        return self.host == "localhost" if ip is None else ip.is_loopback

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_address(where: str, text: object) -> tuple[str, int]:
    """Split ``"host:port"`` or ``"[v6]:port"``; raise ConfigError naming ``where``."""
    if not isinstance(text, str):
        raise ConfigError(where, f'expected a "host:port" string, got {type(text).__name__}')
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep or _ip_or_none(host) is None or ":" not in host:
            raise ConfigError(where, f'{text!r} is not "[IPv6 address]:port"')
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ConfigError(where, f'{text!r} is not "host:port"')
        if ":" in host:
            raise ConfigError(where, f"{text!r}: write IPv6 addresses in brackets, e.g. [::1]:5405")
        if _ip_or_none(host) is None and (len(host) > 253 or not _HOSTNAME.match(host)):
            raise ConfigError(where, f"{host!r} is neither an IP address nor a host name")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConfigError(where, f"port {port_text!r} is not in 1..65535")
    return host, int(port_text)


def _ip_or_none(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """Everything one node needs to join a cluster. See the module docstring for defaults.

    Raises ``ConfigError`` (naming the field) for any invalid value, at construction.
    """

    cluster_name: str
    node_id: int
    nodes: Mapping[int, str] = field(hash=False)
    bind: str | None = None
    key_file: str | os.PathLike[str] | None = None
    insecure: bool = False
    token_timeout_ms: int = _TOKEN_DEFAULT_NS // MS
    token_retransmit_ms: int | None = None
    hold_timeout_ms: int | None = None
    join_timeout_ms: int = _TOTEM_DEFAULTS["join_timeout_ns"] // MS
    consensus_timeout_ms: int | None = None
    merge_timeout_ms: int = _TOTEM_DEFAULTS["merge_timeout_ns"] // MS
    fail_to_recv_ms: int | None = None
    window_size: int = _TOTEM_DEFAULTS["window_size"]
    max_messages: int = _TOTEM_DEFAULTS["max_messages"]
    window_bytes: int = _TOTEM_DEFAULTS["window_bytes"]
    max_message_bytes: int = _TOTEM_DEFAULTS["max_message_bytes"]
    frame_payload_bytes: int = _TOTEM_DEFAULTS["frame_payload_bytes"]
    send_queue_bytes: int = _TOTEM_DEFAULTS["send_queue_max_bytes"]
    accelerated: bool = _TOTEM_DEFAULTS["accelerated"]
    state_dir: str | os.PathLike[str] | None = None
    control_socket: str | os.PathLike[str] | None = None
    max_clients: int = 256
    hello_timeout_ms: int = 5000
    multicast: str | None = None
    subscriber_queue: int = 10_000
    socket_buffer_bytes: int = 4 * MIB
    recorder_inputs: int = 10_000
    votes: Mapping[int, int] | None = field(default=None, hash=False)
    quorum: QuorumOptions | Mapping[str, Any] = field(default_factory=QuorumOptions, hash=False)
    addresses: tuple[NodeAddress, ...] = field(init=False, repr=False, compare=False)
    """The parsed ``nodes``, ascending by node id (derived; not a constructor argument)."""

    def __post_init__(self) -> None:
        self._check_scalars()
        addresses = _parse_nodes(self.nodes)
        object.__setattr__(self, "addresses", addresses)
        object.__setattr__(
            self, "nodes", MappingProxyType({a.node_id: self.nodes[a.node_id] for a in addresses})
        )
        if self.node_id not in self.nodes:
            raise ConfigError("node_id", f"{self.node_id} is not one of nodes {list(self.nodes)}")
        for name in ("key_file", "state_dir", "control_socket"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str | os.PathLike):
                raise ConfigError(name, f"expected a path, got {type(value).__name__}")
        self._check_addresses()
        self.totem()  # the core's own cross-field checks, reported under our field names
        if not isinstance(self.quorum, QuorumOptions):
            if not isinstance(self.quorum, Mapping):
                raise ConfigError("quorum", "expected a [quorum] table")
            object.__setattr__(self, "quorum", QuorumOptions.from_mapping(self.quorum))
        self.quorum_rules()

    # ------------------------------------------------------------------ derived values

    @property
    def own_address(self) -> NodeAddress:
        return next(a for a in self.addresses if a.node_id == self.node_id)

    @property
    def bind_address(self) -> tuple[str, int]:
        """Where the socket binds: ``bind`` if given, else this node's own address."""
        if self.bind is None:
            own = self.own_address
            return own.host, own.port
        return parse_address("bind", self.bind)

    @property
    def multicast_address(self) -> tuple[str, int] | None:
        return None if self.multicast is None else parse_address("multicast", self.multicast)

    @property
    def keyed(self) -> bool:
        return self.key_file is not None

    def totem(self) -> TotemConfig:
        """The core's configuration (nanoseconds), with derived timers filled in."""
        token = self.token_timeout_ms

        def scaled(value: int | None, default_name: str) -> int:
            if value is not None:
                return value * MS
            default_ns: int = _TOTEM_DEFAULTS[default_name]
            return max(1, default_ns * token // (_TOKEN_DEFAULT_NS // MS))

        join_ns = self.join_timeout_ms * MS
        try:
            return TotemConfig(
                node_id=self.node_id,
                nodes=tuple(self.nodes),
                token_timeout_ns=token * MS,
                token_retransmit_ns=scaled(self.token_retransmit_ms, "token_retransmit_ns"),
                hold_timeout_ns=scaled(self.hold_timeout_ms, "hold_timeout_ns"),
                join_timeout_ns=join_ns,
                join_timeout_max_ns=max(_TOTEM_DEFAULTS["join_timeout_max_ns"], 8 * join_ns),
                consensus_timeout_ns=scaled(self.consensus_timeout_ms, "consensus_timeout_ns"),
                merge_timeout_ns=self.merge_timeout_ms * MS,
                fail_to_recv_ns=scaled(self.fail_to_recv_ms, "fail_to_recv_ns"),
                window_size=self.window_size,
                max_messages=self.max_messages,
                window_bytes=self.window_bytes,
                send_queue_max_bytes=self.send_queue_bytes,
                frame_payload_bytes=self.frame_payload_bytes,
                max_message_bytes=self.max_message_bytes,
                accelerated=self.accelerated,
            )
        except ConfigError as exc:
            raise ConfigError(_TOTEM_FIELD_NAMES.get(exc.field, exc.field), exc.problem) from None

    def quorum_rules(self) -> QuorumRules:
        """The validated quorum rules of this cluster (RFC 0008 §3)."""
        assert isinstance(self.quorum, QuorumOptions)
        return QuorumRules.build(self.nodes, self.votes, self.quorum)

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Config:
        """Read a TOML file (see RFC 0006 appendix A for an example).

        Relative ``key_file``, ``state_dir`` and ``control_socket`` paths are taken relative to
        the file's directory, so a configuration directory can be moved as a whole. This reads
        the file synchronously: call it before starting the event loop or at start-up.
        """
        source = Path(path)
        try:
            raw = tomllib.loads(source.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError("file", f"cannot read {source}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("file", f"{source} is not valid TOML: {exc}") from exc
        return cls.from_mapping(raw, base_dir=source.parent)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], base_dir: Path | None = None) -> Config:
        """Build from a parsed TOML document (``[[nodes]]`` tables with ``id`` and ``address``)."""
        known = {f.name for f in fields(cls) if f.init}
        for key in raw:
            if key not in known:
                hint = difflib.get_close_matches(key, sorted(known), n=1)
                suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
                raise ConfigError(key, f"unknown setting{suggestion}")
        values = dict(raw)
        if "nodes" not in values:
            raise ConfigError("nodes", "missing: add one [[nodes]] table per node")
        values["nodes"], votes = _nodes_from_toml(values["nodes"])
        if votes:
            if values.get("votes") is not None:
                raise ConfigError("votes", "given both here and in [[nodes]] tables; keep one")
            values["votes"] = votes
        for name in ("key_file", "state_dir", "control_socket"):
            value = values.get(name)
            if isinstance(value, str) and base_dir is not None:
                values[name] = base_dir / value
        for name in ("cluster_name", "node_id"):
            if name not in values:
                raise ConfigError(name, "missing")
        return cls(**values)

    # ------------------------------------------------------------------ validation

    def _check_scalars(self) -> None:
        if not isinstance(self.cluster_name, str):
            raise ConfigError("cluster_name", "expected a string")
        if not 1 <= len(self.cluster_name.encode()) <= 255:
            raise ConfigError("cluster_name", "must be 1..255 UTF-8 bytes")
        _check_int("node_id", self.node_id, 1, 2**32 - 1)
        for name in ("insecure", "accelerated"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(name, "expected true or false")
        for name, low, high in _INT_RANGES:
            value = getattr(self, name)
            if value is not None or name not in _OPTIONAL:
                _check_int(name, value, low, high)
        if self.max_message_bytes > self.send_queue_bytes // 2:
            raise ConfigError("max_message_bytes", "must be at most half of send_queue_bytes")
        for name in ("bind", "multicast"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(name, 'expected a "host:port" string')

    def _check_addresses(self) -> None:
        bind_host, _ = self.bind_address
        mcast = self.multicast_address
        if mcast is not None:
            ip = _ip_or_none(mcast[0])
            if ip is None or not ip.is_multicast:
                raise ConfigError("multicast", f"{mcast[0]!r} is not an IP multicast group")
        families = {ip.version for a in self.addresses if (ip := a.ip) is not None}
        for host in (bind_host, None if mcast is None else mcast[0]):
            ip = None if host is None else _ip_or_none(host)
            if ip is not None:
                families.add(ip.version)
        if len(families) > 1:
            raise ConfigError("nodes", "mixes IPv4 and IPv6 addresses; one socket speaks one")
        if self.key_file is None and not self.insecure:
            self._refuse_unkeyed_network(bind_host, mcast)

    def _refuse_unkeyed_network(self, bind_host: str, mcast: tuple[str, int] | None) -> None:
        """An unkeyed node accepts forged frames from anyone who can reach it: loopback only."""
        exposed: list[tuple[str, str]] = [
            (f"nodes[{a.node_id}]", a.host) for a in self.addresses if not a.is_loopback
        ]
        bind_ip = _ip_or_none(bind_host)
        if (bind_ip is None and bind_host != "localhost") or (bind_ip and not bind_ip.is_loopback):
            exposed.append(("bind", bind_host))
        if mcast is not None:
            exposed.append(("multicast", mcast[0]))
        if exposed:
            where, host = exposed[0]
            raise ConfigError(
                "key_file",
                f"not set, and {where} ({host}) is not a loopback address: traffic would be "
                "neither authenticated nor encrypted. Create a key with `gcs keygen` and set "
                "key_file, or set insecure = true to accept an unauthenticated cluster",
            )


_TOTEM_FIELD_NAMES = {
    "token_timeout": "token_timeout_ms",
    "token_retransmit": "token_retransmit_ms",
    "hold_timeout": "hold_timeout_ms",
    "join_timeout": "join_timeout_ms",
    "consensus_timeout": "consensus_timeout_ms",
    "merge_timeout": "merge_timeout_ms",
    "fail_to_recv": "fail_to_recv_ms",
    "send_queue_max_bytes": "send_queue_bytes",
    "send_queue_high_pct": "send_queue_bytes",
    "nodes": "nodes",
}

_OPTIONAL = frozenset(
    {"token_retransmit_ms", "hold_timeout_ms", "consensus_timeout_ms", "fail_to_recv_ms"}
)
_HOUR_MS = 3_600_000
_INT_RANGES: tuple[tuple[str, int, int], ...] = (
    ("token_timeout_ms", 10, _HOUR_MS),
    ("token_retransmit_ms", 1, _HOUR_MS),
    ("hold_timeout_ms", 1, _HOUR_MS),
    ("join_timeout_ms", 1, _HOUR_MS),
    ("consensus_timeout_ms", 1, _HOUR_MS),
    ("merge_timeout_ms", 1, _HOUR_MS),
    ("fail_to_recv_ms", 1, _HOUR_MS),
    ("window_size", 1, 100_000),
    ("max_messages", 1, 100_000),
    ("window_bytes", 64, 1 << 34),
    ("max_message_bytes", 1, 1 << 30),
    ("frame_payload_bytes", 64, MAX_FRAME_PAYLOAD_BYTES),
    ("send_queue_bytes", 4096, 1 << 34),
    ("subscriber_queue", 1, 1 << 30),
    ("socket_buffer_bytes", 0, 1 << 31),
    ("recorder_inputs", 0, 1 << 30),
    ("max_clients", 1, 1 << 20),
    ("hello_timeout_ms", 1, _HOUR_MS),
)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if type(value) is not int:
        raise ConfigError(name, f"expected an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise ConfigError(name, f"{value} is not in {low}..{high}")


def _parse_nodes(nodes: object) -> tuple[NodeAddress, ...]:
    if not isinstance(nodes, Mapping) or not nodes:
        raise ConfigError("nodes", 'expected a non-empty mapping of node id to "host:port"')
    out: list[NodeAddress] = []
    seen: dict[tuple[str, int], int] = {}
    for node_id in sorted(nodes, key=lambda n: (type(n) is not int, n if type(n) is int else 0)):
        _check_int(f"nodes[{node_id!r}]", node_id, 1, 2**32 - 1)
        host, port = parse_address(f"nodes[{node_id}]", nodes[node_id])
        if (host, port) in seen:
            raise ConfigError(f"nodes[{node_id}]", f"same address as node {seen[(host, port)]}")
        seen[(host, port)] = node_id
        out.append(NodeAddress(node_id, host, port))
    return tuple(out)


def _nodes_from_toml(value: object) -> tuple[dict[int, str], dict[int, int]]:
    """``[[nodes]]`` tables -> ({id: address}, {id: votes}), errors naming ``nodes[i].field``."""
    if not isinstance(value, list) or not value:
        raise ConfigError("nodes", "expected one or more [[nodes]] tables")
    out: dict[int, str] = {}
    votes: dict[int, int] = {}
    for i, entry in enumerate(value):
        where = f"nodes[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(where, "expected a table with id and address")
        extra = sorted(set(entry) - {"id", "address", "votes"})
        if extra:
            raise ConfigError(
                f"{where}.{extra[0]}", "unknown setting (a node has id, address and votes)"
            )
        if "id" not in entry:
            raise ConfigError(f"{where}.id", "missing")
        if "address" not in entry:
            raise ConfigError(f"{where}.address", "missing")
        node_id = entry["id"]
        _check_int(f"{where}.id", node_id, 1, 2**32 - 1)
        parse_address(f"{where}.address", entry["address"])
        if node_id in out:
            raise ConfigError(f"{where}.id", f"node id {node_id} appears twice")
        out[node_id] = entry["address"]
        if "votes" in entry:
            _check_int(f"{where}.votes", entry["votes"], 0, MAX_VOTES)
            votes[node_id] = entry["votes"]
    return out, votes
