"""A throwaway lab network of Linux network namespaces, for real-network tests and benchmarks.

Why. Loopback shows that real processes agree; it cannot show what a partition, a one-way link
or a lossy receiver does to them. Network namespaces can, on one machine, without touching the
machine's own network: ``NetLab(n)`` builds the topology of the corosync anchor scripts
(``/work/shared/anchors/corosync/common.sh``) —

* a bridge namespace ``<prefix>-br`` holding bridge ``br0`` (no address), and
* node namespaces ``<prefix>-n1 .. -nN``, each with loopback up and one veth end ``eth0``
  addressed ``.1 .. .N`` of ``subnet``, whose peer ``p<i>`` is a port of ``br0``.

With ``links=2`` (or more) every node gets one veth ``eth<k>`` per link ``k``, each on its own
bridge ``br<k>`` and subnet (link ``k`` uses the ``k``-th subnet after ``subnet``: 10.77.1.0/24
for link 1 of the default), as two separate networks would: ``address(i, k)`` is node ``i``'s
address on link ``k``, and ``cut_link(i, k)`` drops everything in and out of ``eth<k>`` at node
``i`` (a pulled cable or a failed switch port), ``restore_link`` removes that again.

Every command names a lab namespace (``ip -n NS ...``, ``ip netns exec NS ...``), so nothing is
configured in the root namespace and no packet can leave the lab: the bridge has no uplink.

Faults are ``iptables`` rules in the node namespaces only, in chains the lab owns, on traffic
arriving from ``eth0``: ``gcs-drop`` (partitions and one-way drops; they accumulate until
``heal``) and ``gcs-loss`` (random inbound loss, ``-m statistic --mode random``; one rate per
node). The kernel here has no netem qdisc, so latency is not modelled.

Cleanup. ``close()`` (or leaving the ``with`` block) kills every process the lab started and
every process still inside its namespaces, then deletes the namespaces; it never raises, so it
can run from a failing test. A ``weakref.finalize`` does the same at interpreter exit for a lab
that was never closed. A SIGKILLed test runner leaves namespaces behind; they are named after
its pid (``gcs<pid>``) and ``ip netns del`` removes them.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import itertools
import json
import os
import shutil
import signal
import subprocess
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

__all__ = ["NetLab", "NetLabError", "netns_available"]

_DROP = "gcs-drop"
_LOSS = "gcs-loss"
_CUT_IN = "gcs-cut-in"
_CUT_OUT = "gcs-cut-out"
_IP_TIMEOUT_S = 30.0
_labs = itertools.count()


class NetLabError(RuntimeError):
    """A lab command failed; the message names the command and what it printed."""


def _run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=_IP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetLabError(f"{' '.join(argv)}: {exc}") from exc
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()
        raise NetLabError(f"{' '.join(argv)} exited {done.returncode}: {detail}")
    return done


def _existing_namespaces() -> set[str]:
    listing = _run(["ip", "netns", "list"], check=False).stdout
    return {line.split()[0] for line in listing.splitlines() if line.strip()}


@functools.cache
def netns_available() -> str | None:
    """None if this process can build a lab, else why not (for a test's skip message).

    Tries the real thing once per process: a namespace with a veth pair and an iptables rule
    using the statistic match, deleted again.
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (iproute2 / iptables)"
    probe = f"gcsprobe{os.getpid()}"
    try:
        _run(["ip", "netns", "add", probe])
    except NetLabError as exc:
        return f"cannot create a network namespace: {exc}"
    try:
        _run(["ip", "-n", probe, "link", "add", "eth0", "type", "veth", "peer", "name", "p0"])
        rule = ["-A", "INPUT", "-m", "statistic", "--mode", "random", "--probability", "0.5"]
        _run(["ip", "netns", "exec", probe, "iptables", *rule, "-j", "DROP"])
    except NetLabError as exc:
        return f"network namespaces work but the lab cannot be built: {exc}"
    finally:
        _run(["ip", "netns", "del", probe], check=False)
    return None


@dataclass
class _Owned:
    """What a lab must undo; kept apart from the lab so the finalizer does not keep it alive."""

    namespaces: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[Any]] = field(default_factory=list)
    closed: bool = False


def _cleanup(owned: _Owned) -> None:
    """Kill what the lab started or what runs inside it, delete its namespaces. Never raises."""
    if owned.closed:
        return
    owned.closed = True
    for proc in owned.procs:
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()
    for proc in owned.procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    for ns in reversed(owned.namespaces):
        with contextlib.suppress(NetLabError):
            for pid in _run(["ip", "netns", "pids", ns], check=False).stdout.split():
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            _run(["ip", "netns", "del", ns], check=False)


class NetLab:
    """``nodes`` namespaces on one bridge, with iptables faults (see the module docstring).

    Built by the constructor (a failure part-way removes what was built and raises
    ``NetLabError``); use it as a context manager or call ``close()``. Nodes are numbered
    ``1..nodes``.
    """

    def __init__(
        self,
        nodes: int,
        prefix: str | None = None,
        subnet: str = "10.77.0.0/24",
        *,
        links: int = 1,
    ) -> None:
        if nodes < 1:
            raise ValueError(f"a lab needs at least one node, got {nodes}")
        if not 1 <= links <= 8:
            raise ValueError(f"a lab has 1..8 links, got {links}")
        self.network = ipaddress.ip_network(subnet)
        if self.network.version != 4 or self.network.num_addresses < nodes + 2:
            raise ValueError(f"subnet {subnet} has no room for {nodes} IPv4 nodes")
        size = self.network.num_addresses
        self.networks = tuple(
            ipaddress.ip_network(
                f"{self.network.network_address + k * size}/{self.network.prefixlen}"
            )
            for k in range(links)
        )
        self.links = links
        self.nodes = nodes
        self.prefix = prefix if prefix is not None else _default_prefix()
        self._owned = _Owned()
        self._finalizer = weakref.finalize(self, _cleanup, self._owned)
        clash = _existing_namespaces() & {self.bridge_namespace, *map(self.namespace, self.ids)}
        if clash:
            raise NetLabError(f"namespaces already exist: {sorted(clash)}; not reusing them")
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------ names

    @property
    def ids(self) -> range:
        return range(1, self.nodes + 1)

    @property
    def bridge_namespace(self) -> str:
        return f"{self.prefix}-br"

    def namespace(self, i: int) -> str:
        """Node ``i``'s namespace name."""
        self._check(i)
        return f"{self.prefix}-n{i}"

    def address(self, i: int, link: int = 0) -> str:
        """Node ``i``'s IPv4 address on ``link`` (host ``i`` of that link's subnet)."""
        self._check(i)
        return str(self.networks[link][i])

    def _check(self, i: int) -> None:
        if i not in self.ids:
            raise ValueError(f"no node {i} in a lab of {self.nodes}")

    # ------------------------------------------------------------------ building

    def _add_namespace(self, name: str) -> None:
        _run(["ip", "netns", "add", name])
        self._owned.namespaces.append(name)
        _run(["ip", "-n", name, "link", "set", "lo", "up"])

    def _build(self) -> None:
        br = self.bridge_namespace
        self._add_namespace(br)
        for k in range(self.links):
            _run(["ip", "-n", br, "link", "add", f"br{k}", "type", "bridge"])
            _run(["ip", "-n", br, "link", "set", f"br{k}", "up"])
        for i in self.ids:
            ns = self.namespace(i)
            self._add_namespace(ns)
            for chain in (_DROP, _LOSS, _CUT_IN, _CUT_OUT):
                self._iptables(i, "-N", chain)
            self._iptables(i, "-A", "INPUT", "-j", _CUT_IN)
            self._iptables(i, "-A", "OUTPUT", "-j", _CUT_OUT)
            for k in range(self.links):
                self._add_port(i, k)

    def _add_port(self, i: int, k: int) -> None:
        """Node ``i``'s veth ``eth<k>`` on bridge ``br<k>``, addressed, with its fault hooks."""
        ns, br, eth = self.namespace(i), self.bridge_namespace, f"eth{k}"
        peer = f"p{i}" if k == 0 else f"p{i}l{k}"
        _run(["ip", "-n", ns, "link", "add", eth, "type", "veth", "peer", "name", peer])
        _run(["ip", "-n", ns, "link", "set", peer, "netns", br])
        cidr = f"{self.address(i, k)}/{self.network.prefixlen}"
        _run(["ip", "-n", ns, "addr", "add", cidr, "dev", eth])
        _run(["ip", "-n", ns, "link", "set", eth, "up"])
        _run(["ip", "-n", br, "link", "set", peer, "master", f"br{k}"])
        _run(["ip", "-n", br, "link", "set", peer, "up"])
        for chain in (_DROP, _LOSS):
            self._iptables(i, "-A", "INPUT", "-i", eth, "-j", chain)

    # ------------------------------------------------------------------ processes

    def exec_argv(self, i: int, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` inside node ``i``'s namespace."""
        return ["ip", "netns", "exec", self.namespace(i), *argv]

    def popen(self, i: int, argv: Sequence[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` in node ``i``'s namespace; ``kw`` goes to ``subprocess.Popen``.

        ``ip netns exec`` execs the command, so the returned process *is* the command (its pid
        can be signalled directly). ``close()`` kills it if it is still running.
        """
        self._check_open()
        proc: subprocess.Popen[Any] = subprocess.Popen(self.exec_argv(i, argv), **kw)
        self._owned.procs.append(proc)
        return proc

    def run(self, i: int, argv: Sequence[str], *, check: bool = True) -> str:
        """Run ``argv`` to completion in node ``i``'s namespace; return its stdout."""
        self._check_open()
        return _run(self.exec_argv(i, argv), check=check).stdout

    # ------------------------------------------------------------------ faults

    def _iptables(self, i: int, *args: str) -> None:
        _run(self.exec_argv(i, ["iptables", "-w", *args]))

    def partition(self, groups: Sequence[Sequence[int]]) -> None:
        """Drop everything between nodes of different groups, both ways.

        Every node must be in exactly one group. Adds to the faults already in place.
        """
        self._check_open()
        placed = [n for group in groups for n in group]
        if sorted(placed) != list(self.ids):
            raise ValueError(f"groups {groups} must name every node 1..{self.nodes} once")
        side = {n: k for k, group in enumerate(groups) for n in group}
        for dst in self.ids:
            for src in self.ids:
                if side[src] != side[dst]:
                    self._drop_from(dst, src)

    def drop_one_way(self, src: int, dst: int) -> None:
        """Drop what ``src`` sends to ``dst``; ``dst`` still reaches ``src``."""
        self._check_open()
        self._check(src)
        if src == dst:
            raise ValueError("a node's traffic to itself does not cross the lab network")
        self._drop_from(dst, src)

    def _drop_from(self, dst: int, src: int) -> None:
        for k in range(self.links):
            self._iptables(dst, "-A", _DROP, "-s", self.address(src, k), "-j", "DROP")

    def cut_link(self, i: int, link: int) -> None:
        """Node ``i`` loses link ``link``: everything in and out of ``eth<link>`` is dropped."""
        self._check_open()
        self._check(i)
        if not 0 <= link < self.links:
            raise ValueError(f"no link {link} in a lab of {self.links}")
        self._iptables(i, "-A", _CUT_IN, "-i", f"eth{link}", "-j", "DROP")
        self._iptables(i, "-A", _CUT_OUT, "-o", f"eth{link}", "-j", "DROP")

    def restore_link(self, i: int, link: int) -> None:
        """Undo ``cut_link(i, link)`` (every cut of that link, if it was cut more than once)."""
        self._check_open()
        for chain, flag in ((_CUT_IN, "-i"), (_CUT_OUT, "-o")):
            rule = [chain, flag, f"eth{link}", "-j", "DROP"]
            while (
                _run(self.exec_argv(i, ["iptables", "-w", "-C", *rule]), check=False).returncode
                == 0
            ):
                self._iptables(i, "-D", *rule)

    def packets(self, i: int, link: int) -> tuple[int, int]:
        """(received, sent) packets on node ``i``'s ``eth<link>`` so far (the kernel's counters)."""
        out = _run(["ip", "-n", self.namespace(i), "-j", "-s", "link", "show", f"eth{link}"])
        stats = json.loads(out.stdout)[0]["stats64"]
        return int(stats["rx"]["packets"]), int(stats["tx"]["packets"])

    def loss(self, i: int, probability: float) -> None:
        """Drop each datagram arriving at node ``i`` with ``probability`` (replaces its rate)."""
        self._check_open()
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {probability}")
        self._iptables(i, "-F", _LOSS)
        if probability > 0:
            rule = ["-m", "statistic", "--mode", "random", "--probability", f"{probability:.6f}"]
            self._iptables(i, "-A", _LOSS, *rule, "-j", "DROP")

    def heal(self) -> None:
        """Remove every fault rule: partitions, one-way drops, loss and cut links."""
        self._check_open()
        for i in self.ids:
            for chain in (_DROP, _LOSS, _CUT_IN, _CUT_OUT):
                self._iptables(i, "-F", chain)

    def dropped(self, i: int) -> int:
        """Datagrams the fault rules dropped at node ``i`` so far (shows a fault took effect)."""
        total = 0
        for chain in (_DROP, _LOSS, _CUT_IN):
            out = self.run(i, ["iptables", "-w", "-L", chain, "-n", "-v", "-x"])
            for line in out.splitlines()[2:]:
                fields = line.split()
                if fields and fields[0].isdigit():
                    total += int(fields[0])
        return total

    # ------------------------------------------------------------------ lifecycle

    def _check_open(self) -> None:
        if self._owned.closed:
            raise NetLabError(f"lab {self.prefix} is closed")

    def close(self) -> None:
        """Kill the lab's processes and delete its namespaces. Idempotent; never raises."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        return self._owned.closed

    def __enter__(self) -> NetLab:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        links = "" if self.links == 1 else f" {self.links} links"
        return f"<NetLab {self.prefix} {self.nodes} nodes {self.network}{links} {state}>"


def _default_prefix() -> str:
    """``gcs<pid>``, then ``gcs<pid>x1``, ...: unique per process and per lab within it."""
    n = next(_labs)
    return f"gcs{os.getpid()}" if n == 0 else f"gcs{os.getpid()}x{n}"
