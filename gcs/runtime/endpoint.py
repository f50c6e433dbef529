"""The UDP endpoint: one datagram socket per node (per link) for tokens and data, IPv4 or IPv6.

Why one socket: the token and the mcasts it orders then arrive through one queue, so the driver
can apply the data of a read batch before the token (RFC 0009 §4.3, "drain before token"). Why large
buffers: a token rotation releases up to ``window_size`` mcasts from every node at once; a
receive buffer smaller than that burst drops datagrams the ring must then retransmit (the
"Retransmit List" floods of corosync, RFC 0003 §6). The kernel silently caps SO_RCVBUF/SO_SNDBUF at
``net.core.rmem_max``/``wmem_max``, so the sizes are read back and a cap is logged with the
figure and the sysctl to raise.

Optional IP multicast: a second socket bound to the group's port joins the group, and mcasts go
out once to the group instead of once per peer. A node receives its own multicasts back; the
channel drops them as ``loopback`` (counted).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gcs.errors import ConfigError

__all__ = ["Endpoint", "free_udp_ports", "open_endpoint", "resolve"]

_LOG = logging.getLogger("gcs.runtime.endpoint")

SockAddr = tuple[Any, ...]
_warned: set[tuple[int, int, int]] = set()


class _Protocol(asyncio.DatagramProtocol):
    """Hands every datagram and its source address to the driver; counts the kernel's errors."""

    def __init__(self, on_datagram: Callable[[bytes, SockAddr], None]) -> None:
        self.on_datagram = on_datagram
        self.errors = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that is down, ENOBUFS on a full send buffer: the
        # protocol copes with loss, so count and go on.
        self.errors += 1


@dataclass(slots=True)
class Endpoint:
    """An open UDP socket (and maybe a multicast receive socket) with its achieved buffer sizes."""

    transport: asyncio.DatagramTransport
    protocol: _Protocol
    local_address: SockAddr
    rcvbuf_bytes: int
    sndbuf_bytes: int
    multicast: SockAddr | None = None
    multicast_transport: asyncio.DatagramTransport | None = None

    @property
    def errors(self) -> int:
        return self.protocol.errors

    def close(self) -> None:
        self.transport.close()
        if self.multicast_transport is not None:
            self.multicast_transport.close()


async def resolve(
    loop: asyncio.AbstractEventLoop, where: str, host: str, port: int, family: int
) -> SockAddr:
    """One socket address for ``host:port`` in ``family`` (name lookups run off the loop)."""
    try:
        infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise ConfigError(where, f"cannot resolve {host!r}: {exc}") from exc
    if not infos:
        raise ConfigError(where, f"{host!r} has no {_family_name(family)} address")
    return tuple(infos[0][4])


def free_udp_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Ports the kernel just handed out for UDP on ``host``, released again.

    For launching local rings (``gcs demo``, benchmarks, tests): another process could take a
    port before the node binds it, which is unlikely and shows as a bind error, never silently.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = [socket.socket(family, socket.SOCK_DGRAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def family_of(host: str) -> int:
    """The address family a host string implies (names default to IPv4)."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return socket.AF_INET
    return socket.AF_INET6 if ip.version == 6 else socket.AF_INET


async def open_endpoint(
    loop: asyncio.AbstractEventLoop,
    bind: SockAddr,
    family: int,
    on_datagram: Callable[[bytes, SockAddr], None],
    *,
    buffer_bytes: int,
    multicast: SockAddr | None = None,
    where: str = "bind",
) -> Endpoint:
    """Bind the node's socket and start reading; raise ConfigError if the address is unusable.

    ``where`` names the setting in the error (``bind[1]`` for a second link's socket).
    """
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        rcv, snd = _size_buffers(sock, buffer_bytes)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if multicast is not None:
            _multicast_sender(sock, family, bind[0])
        sock.bind(bind)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError(where, f"cannot bind UDP {bind[0]}:{bind[1]}: {exc}") from exc
    protocol = _Protocol(on_datagram)
    transport, _ = await loop.create_datagram_endpoint(lambda: protocol, sock=sock)
    endpoint = Endpoint(transport, protocol, tuple(sock.getsockname()), rcv, snd)
    if multicast is not None:
        try:
            endpoint.multicast_transport = await _multicast_receiver(
                loop, multicast, family, protocol, buffer_bytes, bind[0]
            )
        except BaseException:
            transport.close()
            raise
        endpoint.multicast = multicast
    return endpoint


def _size_buffers(sock: socket.socket, want: int) -> tuple[int, int]:
    """Ask for ``want`` bytes each way; read back; warn (once per process and figure) if capped."""
    if want <= 0:
        return (
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
        )
    got: list[int] = []
    for option, sysctl in ((socket.SO_RCVBUF, "rmem_max"), (socket.SO_SNDBUF, "wmem_max")):
        sock.setsockopt(socket.SOL_SOCKET, option, want)
        actual = sock.getsockopt(socket.SOL_SOCKET, option)
        # Linux reports twice the usable size (it counts bookkeeping); compare like with like.
        usable = actual // 2 if sys.platform.startswith("linux") else actual
        if usable < want and (option, usable, want) not in _warned:
            _warned.add((option, usable, want))
            name = "SO_RCVBUF" if option == socket.SO_RCVBUF else "SO_SNDBUF"
            _LOG.warning(
                "the kernel capped %s at %d bytes (asked for %d): bursts of a token rotation "
                "may be dropped; raise it with: sysctl -w net.core.%s=%d",
                name,
                usable,
                want,
                sysctl,
                want,
            )
        got.append(usable)
    return got[0], got[1]


def _multicast_sender(sock: socket.socket, family: int, bind_ip: str) -> None:
    """TTL 1 (one link), loopback on (other nodes may share the host), out of the bound address."""
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 1)
        return
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    if _specific(bind_ip):
        # Send from the interface the node is bound to, not the default route's: a datagram
        # from 127.0.0.1 leaving through eth0 would be dropped as a martian.
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(bind_ip))


async def _multicast_receiver(
    loop: asyncio.AbstractEventLoop,
    group: SockAddr,
    family: int,
    protocol: _Protocol,
    buffer_bytes: int,
    bind_ip: str,
) -> asyncio.DatagramTransport:
    """A socket bound to the group's port that joined the group; several nodes may share it."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        _size_buffers(sock, buffer_bytes)
        packed = socket.inet_pton(family, group[0])
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(("::", group[1]))
            mreq6 = packed + struct.pack("@I", 0)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq6)
        else:
            sock.bind(("", group[1]))
            interface = socket.inet_aton(bind_ip) if _specific(bind_ip) else bytes(4)
            mreq = packed + interface
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError("multicast", f"cannot join {group[0]} port {group[1]}: {exc}") from exc
    transport, _ = await loop.create_datagram_endpoint(lambda: protocol, sock=sock)
    return transport


def _specific(ip: str) -> bool:
    """A bound IPv4 address that names one interface (not the wildcard)."""
    return ip not in ("", "0.0.0.0")


def _family_name(family: int) -> str:
    return "IPv6" if family == socket.AF_INET6 else "IPv4"
