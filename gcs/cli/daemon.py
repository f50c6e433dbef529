"""``gcs node`` (the daemon) and its clients ``gcs send``, ``gcs listen``, ``gcs status``,
``gcs nodes``.

Every command takes the node's configuration file: the daemon to run it, the clients to find
its control socket (``gcs.daemon.runner.socket_path``). The clients are thin: each is a
``gcs.connect`` session doing one thing, so what they show is what the API promises. Errors a
user can fix — a bad config, no daemon on the socket — are one line, never a traceback
(``gcs.cli.main`` prints every ``GcsError`` that way).
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from gcs.build import BuildInfo
from gcs.errors import DaemonUnavailable, GcsError

if TYPE_CHECKING:
    from typing import TypeAlias

    from gcs.config import Config
    from gcs.daemon.client import Client
    from gcs.groups.views import Message, View

    _Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["register"]


def register(subparsers: _Subparsers) -> None:
    _register_node(subparsers)
    _register_send(subparsers)
    _register_listen(subparsers)
    _register_status(subparsers)
    _register_nodes(subparsers)


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="the node's TOML file")


def _load(args: argparse.Namespace) -> Config:
    from gcs.config import Config

    return Config.load(args.config)


async def _connect(config: Config) -> Client:
    from gcs.daemon.client import REFUSED, connect
    from gcs.daemon.runner import socket_path

    client = connect(socket_path(config))
    try:
        await client.start()
    except DaemonUnavailable as exc:
        if exc.problem.startswith(REFUSED):
            raise  # a daemon runs, but serves its maximum of clients: starting one won't help
        raise DaemonUnavailable(
            exc.path, f"{exc.problem} (start it with: gcs node --config FILE)"
        ) from None
    return client


def _run(coro: Any) -> int:
    from gcs.runtime.loop import run

    code: int = run(coro)
    return code


# ---------------------------------------------------------------------- gcs node


def _register_node(subparsers: _Subparsers) -> None:
    parser = subparsers.add_parser(
        "node",
        help="run a node daemon with a local control socket",
        description="Run this node as a ring member and serve local clients (gcs.connect, gcs "
        "send/listen/status) on its control socket (the config's control_socket, else "
        "STATE_DIR/gcs.sock, else the temp dir). SIGTERM or Ctrl-C leaves the ring cleanly. "
        "The configuration is read once: change it by restarting the node.",
    )
    _config_arg(parser)
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve Prometheus metrics on 127.0.0.1:PORT (0: any free port; needs gcs[metrics])",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="stderr log level (default info)",
    )
    parser.add_argument(
        "--history",
        default=None,
        metavar="FILE",
        help="append this node's protocol history (JSONL, the simulator's schema) for test "
        "workloads judged by the simulator's checkers",
    )
    parser.set_defaults(func=_cmd_node)


def _cmd_node(args: argparse.Namespace) -> int:
    from gcs.daemon.runner import Daemon

    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        print("gcs node: --metrics-port must be 0..65535", file=sys.stderr)
        return 2
    config = _load(args)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    daemon = Daemon(config, metrics_port=args.metrics_port, history=args.history)
    return _run(daemon.run())


# ---------------------------------------------------------------------- gcs send


def _register_send(subparsers: _Subparsers) -> None:
    parser = subparsers.add_parser(
        "send",
        help="multicast a message to a group through the running node",
        description="Join GROUP through the node's daemon, multicast MESSAGE (or, with -, each "
        "line of standard input as one message, sent as soon as the line is complete: "
        "`tail -f log | gcs send ... -` works), wait until the node delivered them, and leave. "
        "With -, a line is read only once the node accepted the one before (flow control), "
        "and the command ends at end of input.",
    )
    _config_arg(parser)
    parser.add_argument("--group", required=True, help="group name")
    parser.add_argument("--safe", action="store_true", help="send as safe messages")
    parser.add_argument("message", metavar="MESSAGE|-", help="the message, or - for stdin lines")
    parser.set_defaults(func=_cmd_send)


def _cmd_send(args: argparse.Namespace) -> int:
    config = _load(args)
    message = None if args.message == "-" else args.message.encode()
    return _run(_send(config, args.group, message, args.safe))


async def _send(config: Config, name: str, message: bytes | None, safe: bool) -> int:
    """Send ``message``, or each line of standard input (None) as it arrives (backpressure:
    the next line is taken once the daemon accepted this one, so a closed send window stops
    the reading)."""
    async with await _connect(config) as client:
        group = await client.join(name)
        count = 0
        last = None
        async for data in _payloads(message, client.max_message_bytes):
            last = await group.send(data, safe=safe)
            count += 1
        if last is not None:
            await last.delivered()  # own messages are delivered in order: all of them are
        await group.leave()
    kind = "safe " if safe else ""
    print(f"sent {count} {kind}message(s) to {name!r} via node {client.node_id}")
    return 0


async def _payloads(message: bytes | None, limit: int) -> AsyncIterator[bytes]:
    from gcs.cli.lines import read_lines

    if message is not None:
        yield message
        return
    try:
        async for line in read_lines(0, limit):
            yield line
    except OSError as exc:
        raise GcsError(f"cannot read standard input: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------- gcs listen


def _register_listen(subparsers: _Subparsers) -> None:
    parser = subparsers.add_parser(
        "listen",
        help="print a group's messages and views as the node delivers them",
        description="Join GROUP through the node's daemon and print every message and view in "
        "delivery order until interrupted (or --count messages). --json prints one JSON object "
        "per line: type, member, ring_id, seq, view_id, safe, data, and for views members, "
        "joined, left, transitional and reason.",
    )
    _config_arg(parser)
    parser.add_argument("--group", required=True, help="group name")
    parser.add_argument("--json", action="store_true", help="one JSON object per event")
    parser.add_argument(
        "--count", type=int, default=0, metavar="N", help="exit after N messages (default: never)"
    )
    parser.set_defaults(func=_cmd_listen)


def _cmd_listen(args: argparse.Namespace) -> int:
    config = _load(args)
    return _run(_listen(config, args.group, args.json, args.count))


async def _listen(config: Config, name: str, as_json: bool, count: int) -> int:
    from gcs.groups.views import Message

    async with await _connect(config) as client:
        group = await client.join(name)
        seen = 0
        async for event in group:
            line = _event_json(event) if as_json else _event_text(event)
            print(line, flush=True)
            if isinstance(event, Message):
                seen += 1
                if count and seen >= count:
                    break
        await group.leave()
    return 0


def _event_json(event: Message | View) -> str:
    from gcs.groups.views import Message

    if isinstance(event, Message):
        row: dict[str, Any] = {
            "type": "message",
            "member": [event.sender.node, event.sender.handle],
            "ring_id": None if event.ring_id is None else str(event.ring_id),
            "seq": event.seq,
            "view_id": str(event.view_id),
            "safe": event.safe,
        }
        try:
            row["data"] = event.data.decode("utf-8")
        except UnicodeDecodeError:
            row["data"] = None
            row["data_base64"] = base64.b64encode(event.data).decode()
        return json.dumps(row)
    return json.dumps(
        {
            "type": "view",
            "view_id": str(event.view_id),
            "ring_id": str(event.view_id.ring),
            "members": [[m.node, m.handle] for m in event.members],
            "joined": [[m.node, m.handle] for m in event.joined],
            "left": [[m.node, m.handle] for m in event.left],
            "transitional": event.transitional,
            "reason": event.reason.kind.value,
            "reason_nodes": list(event.reason.nodes),
            "reason_detail": event.reason.detail,
        }
    )


def _event_text(event: Message | View) -> str:
    from gcs.groups.views import Message

    if isinstance(event, Message):
        data = event.data.decode("utf-8", errors="replace")
        where = f"{event.ring_id}#{event.seq}" if event.ring_id is not None else "?"
        flag = " safe" if event.safe else ""
        return f"[{where}{flag}] {event.sender}: {data}"
    kind = "transitional view" if event.transitional else "view"
    members = " ".join(str(m) for m in event.members) or "-"
    changes = ""
    if event.joined:
        changes += " joined " + " ".join(str(m) for m in event.joined)
    if event.left:
        changes += " left " + " ".join(str(m) for m in event.left)
    return f"--- {kind} {event.view_id}: members {members}{changes} ({event.reason})"


# ---------------------------------------------------------------------- gcs status


def _register_status(subparsers: _Subparsers) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show the running node's ring, counters and last view changes",
        description="Ask the node's daemon for its status: ring id, members, state, token "
        "rotation time, throughput, retransmissions, drops by reason, event-loop lag and the "
        "last view changes with their reasons and durations. --dump FILE also writes its "
        "flight recorder (replay it with gcs simulate replay-node FILE).",
    )
    _config_arg(parser)
    parser.add_argument("--json", action="store_true", help="print the status map as JSON")
    parser.add_argument("--dump", metavar="FILE", default=None, help="dump the flight recorder")
    parser.set_defaults(func=_cmd_status)


def _cmd_status(args: argparse.Namespace) -> int:
    config = _load(args)
    return _run(_status(config, args.json, args.dump))


async def _status(config: Config, as_json: bool, dump: str | None) -> int:
    async with await _connect(config) as client:
        status = await client.status()
        written = None if dump is None else await client.dump_flight_recorder(dump)
    if as_json:
        if written is not None:
            status["dump"] = str(written)
        print(json.dumps(status, indent=2, sort_keys=True))
    else:
        print(format_status(status))
        if written is not None:
            print(f"flight recorder written to {written}")
    return 0


def format_links(links: dict[str, Any] | None) -> list[str]:
    """One line per link to each peer (RFC 0010 §8), then each local link's traffic."""
    if not links:
        return []
    lines = [
        f"  links         {links['mode']}, {links['changes']} changes, "
        f"{links['resends']} tokens re-sent on a new route"
    ]
    for p in links["peers"]:
        rtt = "-" if p["rtt_ms"] is None else f"{p['rtt_ms']:.2f} ms"
        state = "up" if p["up"] else "DOWN"
        why = "" if p["up"] else (" (not heard)" if not p["hears"] else " (peer does not hear us)")
        lines.append(
            f"    node {p['peer']:<5} link {p['link']}  {state:<4}{why} for "
            f"{p['since_ms'] / 1000:.1f} s{'  in use' if p['routed'] else ''}; "
            f"heard {p['heard_ms']:.0f} ms ago, rtt {rtt}, "
            f"{p['lost']} of {p['probes']} heartbeats lost"
        )
    for t in links["traffic"]:
        lines.append(
            f"    link {t['link']}  sent {t['sent']:,}, received {t['received']:,} "
            f"({t['copies']:,} copies dropped), {t['probes_sent']:,} heartbeats, "
            f"{t['send_errors']} send errors"
        )
    return lines


# ---------------------------------------------------------------------- gcs nodes


def _register_nodes(subparsers: _Subparsers) -> None:
    parser = subparsers.add_parser(
        "nodes",
        help="list, add or remove the cluster's nodes while it runs",
        description="Read or change the cluster's node list through the local daemon (RFC 0008 "
        "§3.7). A change is made by a quorate configuration and returns once every member "
        "applied it; it needs [quorum] node_changes = true on every node. A new node is then "
        "started with a configuration listing the nodes of the list.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("list", help="print the node list this node holds")
    add = actions.add_parser("add", help="add a node: ID ADDRESS [--votes N]")
    add.add_argument("node", type=int, metavar="ID")
    add.add_argument("address", metavar="ADDRESS", help='"host:port" or "[v6]:port"')
    add.add_argument("--votes", type=int, default=1, help="its quorum votes (default 1)")
    remove = actions.add_parser("remove", help="remove a node (typically a dead one): ID")
    remove.add_argument("node", type=int, metavar="ID")
    for sub in (show, add, remove):
        _config_arg(sub)
        sub.add_argument("--json", action="store_true", help="print the reply as JSON")
        sub.set_defaults(func=_cmd_nodes)


def _cmd_nodes(args: argparse.Namespace) -> int:
    config = _load(args)
    return _run(_nodes(config, args))


async def _nodes(config: Config, args: argparse.Namespace) -> int:
    async with await _connect(config) as client:
        if args.action == "add":
            reply = await client.nodes_map(
                "add_node", node=args.node, address=args.address, votes=args.votes
            )
        elif args.action == "remove":
            reply = await client.nodes_map("remove_node", node=args.node)
        else:
            reply = await client.nodes_map("nodes")
    if args.json:
        print(json.dumps(reply, indent=2, sort_keys=True))
        return 0
    print(f"node list version {reply['version']}, expected_votes {reply['expected_votes']}")
    for entry in reply["nodes"]:
        print(f"  {entry['id']:>10}  votes {entry['votes']}  {' '.join(entry['addresses'])}")
    return 0


def format_status(s: dict[str, Any]) -> str:
    """The human view of a status map (``gcs.daemon.status.build_status``)."""
    rot = s.get("token_rotation_ms")
    rate = s.get("messages_per_s")
    rtr = s["retransmissions"]
    lag = s["loop_lag_ms"]
    lines = [
        f"node {s['node_id']} of cluster {s['cluster_name']!r}: {s['state']}, ring {s['ring_id']}"
        + (" (transitional)" if s.get("transitional") else ""),
        f"  build         {BuildInfo.from_json(s.get('build')).describe()}",
        f"  members       {' '.join(map(str, s['members']))}  "
        f"(configured: {' '.join(map(str, s['configured_nodes']))})",
        f"  token         {'-' if rot is None else f'{rot:.3f} ms per rotation'}",
        f"  throughput    {'-' if rate is None else f'{rate:,.0f} msgs/s'}, "
        f"{s['delivered_messages']:,} messages delivered",
        f"  retransmitted {rtr['mcasts']} mcasts, {rtr['requested']} requested, "
        f"{rtr['tokens']} tokens",
        f"  loop lag      last {lag['last']:.2f} ms, max {lag['max']:.2f} ms",
        f"  clients       {s['clients']} of at most {s.get('client_limit', '?')} "
        f"({s['group_members']} group members; {s.get('clients_refused', 0)} refused, "
        f"{s.get('hello_timeouts', 0)} without hello)",
    ]
    drops = s.get("drops") or {}
    dropped = ", ".join(f"{r} {n}" for r, n in drops.items()) if drops else "none"
    lines.append(f"  drops         {dropped}")
    for d in s.get("duplicate_sightings") or []:
        boots, where = d["boots"], d["addresses"]
        lines.append(
            f"  DUPLICATE ID  node {d['node']}: boot {boots[0]} from {where[0]} and boot "
            f"{boots[1]} from {where[1]} (of {s['duplicate_node_id']} seen)"
        )
    lines += format_links(s.get("links"))
    lines.append("  view changes (newest last):")
    for c in s.get("view_changes", [])[-10:]:
        took = "" if c["duration_ms"] is None else f" after {c['duration_ms']:.0f} ms"
        trigger = c.get("trigger") or ""
        trigger = f", started by {trigger}" if trigger and trigger != c["reason"] else ""
        lines.append(
            f"    {c['kind']:<12} {c['ring_id']:<10} members {c['members']} "
            f"({c['reason']}{trigger}){took}"
        )
    if s.get("failure"):
        lines.append(f"  FAILED: {s['failure']}")
    return "\n".join(lines)
