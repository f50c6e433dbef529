"""Group-level checks on what real members received (``node_proc --member-log``).

The simulator judges group members with ``gcs.sim.checkers.groups``; a real process cannot log
the ring positions those checks use, so this reads the member logs and judges the two
properties a real run can show without them: sender-in-view (RFC 0006 API-3.7-1, with API-3.3-2's
exception for old-ring messages of departed senders in transitional views) and virtual
synchrony (API-3.6-3: members that go from view V to V' received the same messages in V).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Stream = tuple[int, int]  # node, incarnation


@dataclass
class MemberReport:
    """What the member logs show: counts, and the first problems of each kind."""

    messages: int = 0
    views: int = 0
    merges: int = 0
    """Views that added members of other nodes (a partition healed, a node came back)."""
    outside: list[str] = field(default_factory=list)
    unsynchronised: list[str] = field(default_factory=list)


def read_streams(paths: list[Path]) -> dict[Stream, list[dict[str, Any]]]:
    """Each member's events, per incarnation; a torn last line (SIGKILL) is skipped."""
    streams: dict[Stream, list[dict[str, Any]]] = {}
    for path in paths:
        current: list[dict[str, Any]] = []
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row["k"] == "start":
                current = streams.setdefault((row["node"], row["incarnation"]), [])
            else:
                current.append(row)
    return streams


def _node(member: str) -> int:
    return int(member.split("/", maxsplit=1)[0])


def judge_members(paths: list[Path]) -> MemberReport:
    report = MemberReport()
    segments: dict[tuple[str, str], tuple[frozenset[str], Stream]] = {}
    for stream, rows in read_streams(paths).items():
        view: dict[str, Any] | None = None
        departed: set[str] = set()
        got: set[str] = set()
        for row in rows:
            if row["k"] == "view":
                report.views += 1
                if view is not None:
                    key = (view["id"], row["id"])
                    first = segments.setdefault(key, (frozenset(got), stream))
                    if first[0] != got and len(report.unsynchronised) < 5:
                        report.unsynchronised.append(
                            f"{stream} and {first[1]} went from {key[0]} to {key[1]} with "
                            f"{len(got ^ first[0])} messages not in both"
                        )
                    old = {_node(m) for m in view["members"]}
                    if {_node(m) for m in row["members"]} - old:
                        report.merges += 1
                departed = departed | set(row["left"]) if row["transitional"] else set()
                view, got = row, set()
            else:
                report.messages += 1
                got.add(json.dumps(row["id"]))
                sender = row["from"]
                listed = view is not None and sender in view["members"]
                excused = view is not None and view["transitional"] and sender in departed
                if not (listed or excused):
                    where = None if view is None else (view["id"], view["members"])
                    report.outside.append(f"{stream} got {row['id']} of {sender} in {where}")
    return report
