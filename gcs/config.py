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
nodes                      (required)          node id -> "host:port" ("[::1]:5405" for IPv6),
                                               or a list of them: one address per link
bind                       own address(es)     "host:port" the UDP socket binds to (a list:
                                               one per link)
link_mode                  "passive"           several links: "passive" (one carries the
                                               traffic) or "active" (every frame on each)
link_down_ms               token / 3           a link silent this long is down (< token)
link_up_ms                 link_down_ms        a down link is used again after answering
                                               steadily this long
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gcs.errors import ConfigError
from gcs.links.health import MIN_DOWN_NS, LinkMode, LinkTimings
from gcs.quorum.rules import MAX_VOTES, QuorumOptions, QuorumRules
from gcs.totem.config import MS, TotemConfig
from gcs.wire.limits import MAX_LINKS

__all__ = ["Config", "LinkAddress", "NodeAddress", "NodeEntry", "parse_address"]

_TOTEM_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(TotemConfig)}
_TOKEN_DEFAULT_NS: int = _TOTEM_DEFAULTS["token_timeout_ns"]

MIB = 1024 * 1024
MAX_FRAME_PAYLOAD_BYTES = 65_000
"""Largest payload budget whose datagram (plus headers and sealing) still fits one UDP datagram."""
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\.?$")


@dataclass(frozen=True, slots=True)
class LinkAddress:
    """One UDP address: an IP literal (or host name, resolved at start) and a port."""

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


@dataclass(frozen=True, slots=True)
class NodeEntry:
    """One configured node: its id and its UDP address on each link, in link order.

    Link ``k`` of every node is one network (RFC 0010 LNK-3-1): a node sends its link-``k``
    datagrams from its own link-``k`` address to the destination's link-``k`` address. With one
    link, ``host`` and ``port`` are the node's address.
    """

    node_id: int
    links: tuple[LinkAddress, ...]

    @property
    def host(self) -> str:
        return self.links[0].host

    @property
    def port(self) -> int:
        return self.links[0].port

    @property
    def ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The first link's address as an IP literal, or None for a host name."""
        return self.links[0].ip

    @property
    def is_loopback(self) -> bool:
        """Every link's address is a loopback address."""
        return all(link.is_loopback for link in self.links)

    def __str__(self) -> str:
        return ", ".join(map(str, self.links))


NodeAddress = NodeEntry
"""The name ``NodeEntry`` had while a node had one address (kept for existing imports)."""


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
    nodes: Mapping[int, str | Sequence[str]] = field(hash=False)
    bind: str | Sequence[str] | None = None
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
    link_mode: str = LinkMode.PASSIVE.value
    link_down_ms: int | None = None
    link_up_ms: int | None = None
    subscriber_queue: int = 10_000
    socket_buffer_bytes: int = 4 * MIB
    recorder_inputs: int = 10_000
    votes: Mapping[int, int] | None = field(default=None, hash=False)
    quorum: QuorumOptions | Mapping[str, Any] = field(default_factory=QuorumOptions, hash=False)
    addresses: tuple[NodeEntry, ...] = field(init=False, repr=False, compare=False)
    """The parsed ``nodes``, ascending by node id (derived; not a constructor argument)."""

    def __post_init__(self) -> None:
        self._check_scalars()
        addresses = _parse_nodes(self.nodes)
        object.__setattr__(self, "addresses", addresses)
        object.__setattr__(
            self,
            "nodes",
            MappingProxyType({a.node_id: _frozen(self.nodes[a.node_id]) for a in addresses}),
        )
        if isinstance(self.bind, list | tuple):
            object.__setattr__(self, "bind", tuple(self.bind))
        if self.node_id not in self.nodes:
            raise ConfigError("node_id", f"{self.node_id} is not one of nodes {list(self.nodes)}")
        for name in ("key_file", "state_dir", "control_socket"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str | os.PathLike):
                raise ConfigError(name, f"expected a path, got {type(value).__name__}")
        self._check_addresses()
        self.totem()  # the core's own cross-field checks, reported under our field names
        self.link_timings()
        if not isinstance(self.quorum, QuorumOptions):
            if not isinstance(self.quorum, Mapping):
                raise ConfigError("quorum", "expected a [quorum] table")
            object.__setattr__(self, "quorum", QuorumOptions.from_mapping(self.quorum))
        self.quorum_rules()
        if self.links > 1 and isinstance(self.quorum, QuorumOptions) and self.quorum.node_changes:
            raise ConfigError(
                "quorum.node_changes",
                "changing the node list at run time is not supported yet with several links "
                "per node (a node-list entry carries no per-link addresses to the drivers)",
            )

    # ------------------------------------------------------------------ derived values

    @property
    def own_address(self) -> NodeEntry:
        return next(a for a in self.addresses if a.node_id == self.node_id)

    @property
    def links(self) -> int:
        """How many links every node has (RFC 0010): one address each."""
        return len(self.addresses[0].links)

    @property
    def bind_address(self) -> tuple[str, int]:
        """Where the (first link's) socket binds: ``bind`` if given, else the own address."""
        return self.bind_addresses[0]

    @property
    def bind_addresses(self) -> tuple[tuple[str, int], ...]:
        """Where each link's socket binds, in link order (``bind``, else the own addresses)."""
        if self.bind is None:
            return tuple((link.host, link.port) for link in self.own_address.links)
        if isinstance(self.bind, str):
            return (parse_address("bind", self.bind),)
        return tuple(parse_address(f"bind[{k}]", text) for k, text in enumerate(self.bind))

    @property
    def mode(self) -> LinkMode:
        """``link_mode`` as the enum (RFC 0010)."""
        return LinkMode(self.link_mode)

    def link_timings(self) -> LinkTimings:
        """Link-down time and hysteresis (RFC 0010 LNK-3-3); defaults from the token timeout."""
        token = self.token_timeout_ms
        down = token // 3 if self.link_down_ms is None else self.link_down_ms
        down = max(down, MIN_DOWN_NS // MS)
        if down >= token:
            raise ConfigError(
                "link_down_ms",
                f"{down} is not below token_timeout_ms ({token}): a cut link must be noticed "
                "before the token is declared lost (a third of it is the default)",
            )
        up = down if self.link_up_ms is None else self.link_up_ms
        return LinkTimings(down * MS, up * MS)

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
        if self.multicast is not None and not isinstance(self.multicast, str):
            raise ConfigError("multicast", 'expected a "host:port" string')
        bind = self.bind
        if not (bind is None or isinstance(bind, str) or _strings(bind)):
            raise ConfigError("bind", 'expected a "host:port" string or a list, one per link')
        if self.link_mode not in {m.value for m in LinkMode}:
            raise ConfigError(
                "link_mode", f'expected "passive" or "active", got {self.link_mode!r}'
            )

    def _check_addresses(self) -> None:
        links = self.links
        if self.bind is not None and (1 if isinstance(self.bind, str) else len(self.bind)) != links:
            raise ConfigError(
                "bind", f"give one address per link ({links}), in link order, or leave it out"
            )
        binds = self.bind_addresses
        mcast = self.multicast_address
        if mcast is not None:
            ip = _ip_or_none(mcast[0])
            if ip is None or not ip.is_multicast:
                raise ConfigError("multicast", f"{mcast[0]!r} is not an IP multicast group")
            if links > 1:
                raise ConfigError("multicast", "is not supported with several links per node")
        for k in range(links):
            families = {ip.version for a in self.addresses if (ip := a.links[k].ip) is not None}
            for host in (binds[k][0], None if mcast is None else mcast[0]):
                ip = None if host is None else _ip_or_none(host)
                if ip is not None:
                    families.add(ip.version)
            if len(families) > 1:
                where = "nodes" if links == 1 else f"nodes (link {k})"
                raise ConfigError(where, "mixes IPv4 and IPv6 addresses; one socket speaks one")
        if self.key_file is None and not self.insecure:
            self._refuse_unkeyed_network(binds, mcast)

    def _refuse_unkeyed_network(
        self, binds: tuple[tuple[str, int], ...], mcast: tuple[str, int] | None
    ) -> None:
        """An unkeyed node accepts forged frames from anyone who can reach it: loopback only."""
        exposed: list[tuple[str, str]] = [
            (f"nodes[{a.node_id}]", link.host)
            for a in self.addresses
            for link in a.links
            if not link.is_loopback
        ]
        for bind_host, _ in binds:
            bind_ip = _ip_or_none(bind_host)
            if (bind_ip is None and bind_host != "localhost") or (
                bind_ip and not bind_ip.is_loopback
            ):
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
    {
        "token_retransmit_ms",
        "hold_timeout_ms",
        "consensus_timeout_ms",
        "fail_to_recv_ms",
        "link_down_ms",
        "link_up_ms",
    }
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
    ("link_down_ms", MIN_DOWN_NS // MS, _HOUR_MS),
    ("link_up_ms", 1, _HOUR_MS),
)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if type(value) is not int:
        raise ConfigError(name, f"expected an integer, got {type(value).__name__}")
    if not low <= value <= high:
        raise ConfigError(name, f"{value} is not in {low}..{high}")


def _parse_nodes(nodes: object) -> tuple[NodeEntry, ...]:
    if not isinstance(nodes, Mapping) or not nodes:
        raise ConfigError("nodes", 'expected a non-empty mapping of node id to "host:port"')
    out: list[NodeEntry] = []
    seen: dict[tuple[str, int], int] = {}
    for node_id in sorted(nodes, key=lambda n: (type(n) is not int, n if type(n) is int else 0)):
        where = f"nodes[{node_id!r}]"
        _check_int(where, node_id, 1, 2**32 - 1)
        links = _parse_links(where, nodes[node_id])
        if out and len(links) != len(out[0].links):
            first = out[0]
            raise ConfigError(
                where,
                f"{len(links)} address(es), but node {first.node_id} has {len(first.links)}: "
                "every node lists one address per link, in the same link order",
            )
        for link in links:
            key = (link.host, link.port)
            if key in seen:
                raise ConfigError(where, f"{link} is also an address of node {seen[key]}")
            seen[key] = node_id
        out.append(NodeEntry(node_id, links))
    return tuple(out)


def _parse_links(where: str, value: object) -> tuple[LinkAddress, ...]:
    """``"host:port"`` (one link) or a list of 1..MAX_LINKS of them, in link order."""
    if isinstance(value, str):
        return (LinkAddress(*parse_address(where, value)),)
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= MAX_LINKS:
        raise ConfigError(
            where, f'expected "host:port" or a list of 1..{MAX_LINKS} of them, one per link'
        )
    if len(value) == 1:
        return (LinkAddress(*parse_address(where, value[0])),)
    return tuple(LinkAddress(*parse_address(f"{where}[{k}]", text)) for k, text in enumerate(value))


def _strings(value: object) -> bool:
    """A non-empty list or tuple of strings."""
    return (
        isinstance(value, list | tuple) and bool(value) and all(isinstance(v, str) for v in value)
    )


def _frozen(value: str | Sequence[str]) -> str | tuple[str, ...]:
    """A node's configured address(es) as given, lists as tuples (the config is immutable)."""
    return value if isinstance(value, str) else tuple(value)


def _nodes_from_toml(value: object) -> tuple[dict[int, str | list[str]], dict[int, int]]:
    """``[[nodes]]`` tables -> ({id: address(es)}, {id: votes}), errors naming ``nodes[i].field``.

    ``address`` is a string, or an array of strings: one per link, in link order.
    """
    if not isinstance(value, list) or not value:
        raise ConfigError("nodes", "expected one or more [[nodes]] tables")
    out: dict[int, str | list[str]] = {}
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
        _parse_links(f"{where}.address", entry["address"])
        if node_id in out:
            raise ConfigError(f"{where}.id", f"node id {node_id} appears twice")
        out[node_id] = entry["address"]
        if "votes" in entry:
            _check_int(f"{where}.votes", entry["votes"], 0, MAX_VOTES)
            votes[node_id] = entry["votes"]
    return out, votes
