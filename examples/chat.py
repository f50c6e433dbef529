"""A chat room on gcs: every participant sees the same messages in the same order.

Run one process per node, each with its own config file (see RFC 0006 appendix A)::

    python examples/chat.py cluster-1.toml alice
    python examples/chat.py cluster-2.toml bob

Lines typed on stdin are sent to the room; messages and membership changes are printed as they
are delivered. ``python examples/chat.py --demo`` runs three participants in one process on
127.0.0.1 and checks that they all saw the same conversation.
"""

from __future__ import annotations

import asyncio
import socket
import sys

import gcs

ROOM = "chat"


def show(event: gcs.Message | gcs.View) -> str:
    match event:
        case gcs.Message(sender=sender, data=data):
            return f"<{sender}> {data.decode(errors='replace')}"
        case gcs.View(members=members, joined=joined, left=left, reason=reason):
            change = [f"+{m}" for m in joined] + [f"-{m}" for m in left]
            return f"*** {len(members)} in the room ({' '.join(change)}; {reason.kind})"


async def chat(config: gcs.Config, name: str) -> None:
    """Interactive: stdin lines go to the room, the room goes to stdout."""
    async with gcs.Node(config) as node:
        room = await node.join(ROOM)

        async def type_lines() -> None:
            while line := await asyncio.to_thread(sys.stdin.readline):
                await room.send(f"{name}: {line.rstrip()}".encode())
            await room.leave()

        typing = asyncio.create_task(type_lines())
        async for event in room:
            print(show(event), flush=True)
        await typing


async def demo(lines_each: int = 5) -> bool:
    """Three participants on loopback chat at once; True if their transcripts are identical."""
    ports = []
    for _ in range(3):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    nodes = {i + 1: f"127.0.0.1:{port}" for i, port in enumerate(ports)}
    configs = [
        gcs.Config(cluster_name="chat-demo", node_id=n, nodes=nodes, token_timeout_ms=300)
        for n in nodes
    ]
    names = ["alice", "bob", "carol"]
    async with (
        gcs.Node(configs[0]) as a,
        gcs.Node(configs[1]) as b,
        gcs.Node(configs[2]) as c,
    ):
        rooms = [await node.join(ROOM) for node in (a, b, c)]

        async def everyone_here(room: gcs.Group) -> None:
            # The nodes may still be merging their rings: wait for the view with all three.
            async for event in room:
                if isinstance(event, gcs.View) and len(event.members) == len(names):
                    return

        await asyncio.wait_for(asyncio.gather(*(everyone_here(room) for room in rooms)), 30)

        async def talk(room: gcs.Group, name: str) -> None:
            for i in range(lines_each):
                await room.send(f"{name}: line {i}".encode())

        async def listen(room: gcs.Group) -> list[str]:
            seen: list[str] = []
            async for event in room:
                if isinstance(event, gcs.Message):
                    seen.append(show(event))
                    if len(seen) == 3 * lines_each:
                        return seen
            return seen

        listening = [asyncio.create_task(listen(room)) for room in rooms]
        await asyncio.gather(*(talk(room, name) for room, name in zip(rooms, names, strict=True)))
        transcripts = await asyncio.wait_for(asyncio.gather(*listening), 30)
    for line in transcripts[0]:
        print(line)
    same = all(t == transcripts[0] for t in transcripts)
    print("all participants saw the same conversation" if same else "TRANSCRIPTS DIFFER")
    return same


def main(argv: list[str]) -> int:
    if argv[1:] == ["--demo"]:
        return 0 if gcs.run(demo()) else 1
    if len(argv) != 3:
        print(__doc__)
        return 2
    gcs.run(chat(gcs.Config.load(argv[1]), argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
