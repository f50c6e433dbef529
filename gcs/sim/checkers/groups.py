"""Group-level checkers: what group members received, judged against RFC 0006's promises.

The ring-level checkers judge the core's history; these judge the layer above it, from the
events every group member received (``MemberEvent``: its views, its messages and the end of its
stream, in the order it received them). The ``groups`` workload keeps them
(``gcs.sim.workloads.groups``); a test of real processes can log the same rows. Each property
is one verdict (RFC 0007 SIM-6-3):

- ``group_sender_in_view``: RFC 0006 API-3.7-1, API-3.7-2 (sender-in-view, with API-3.3-2's
  exception), API-3.6-1, API-3.6-4;
- ``group_view_ids``: API-3.5-1, same view id, same members and transitional flag;
- ``group_synchrony``: API-3.6-3, members that go from V to V' delivered the same messages in V;
- ``group_order``: API-3.6-2, §4.1, each member's messages in the ring's total order, once each;
- ``group_view_positions``: API-3.4-3, API-3.7-1, a view sits at the same point of the stream
  everywhere;
- ``group_views_in_configuration``: API-3.3-1, API-3.3-2, no view of a regular configuration lists a
  member of a node outside it;
- ``group_self_delivery``: API-3.6-2, a member that stays receives its own messages;
- ``group_final_views``: API-3.6-5, once the ring is stable and settled, every live member's last
  view lists exactly the live members.

Messages are named by their *position* in the ring's total order (origin ring seq and rep, the
mcast's seq, the record's index in it): unique per record, and increasing along every member's
stream, so positions order messages across members without any clock.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from gcs.groups.views import Member, Message, View, ViewId
from gcs.sim.checkers.judges import judges
from gcs.sim.checkers.verdict import Problems, Stat, Verdict, fmt_t

__all__ = [
    "GroupRun",
    "MemberEvent",
    "Position",
    "check_group_final_views",
    "check_group_order",
    "check_group_synchrony",
    "check_groups",
    "check_group_self_delivery",
    "check_group_sender_in_view",
    "check_group_view_ids",
    "check_group_view_positions",
    "check_group_views_in_configuration",
    "held_delays_ns",
]

Position = tuple[int, int, int, int]
"""(origin ring seq, origin ring rep, seq, index in the mcast): a record's place in the order."""


@dataclass(frozen=True, slots=True)
class MemberEvent:
    """One event a group member received, in the order it received it.

    ``event`` None: the member's stream ended there (its leave was delivered). For a message,
    ``position`` names it (above); ``config`` is the members of the configuration the ring
    delivered it in, ``transitional`` whether that configuration was transitional; ``ring_ns``
    is when the ring delivered it at this node (``time_ns`` is later by the time the barrier,
    API-3.7-1, held it).
    """

    time_ns: int
    node: int
    incarnation: int
    group: str
    member: Member
    event: View | Message | None
    position: Position | None = None
    config: tuple[int, ...] | None = None
    transitional: bool = False
    ring_ns: int | None = None


@dataclass(frozen=True, slots=True)
class GroupRun:
    """What the group checkers judge: the member events, and what only the workload knows.

    ``sent``: per (group, member), the payloads of its multicasts that reached the core;
    ``ring_delivered``: per (node, incarnation), every payload its ring delivered;
    ``live``: the (group, member) pairs open at the end of the run, with their incarnation alive
    (None: final views are not judged).
    """

    events: Sequence[MemberEvent]
    sent: Mapping[tuple[str, Member], Sequence[bytes]] = field(default_factory=dict)
    ring_delivered: Mapping[tuple[int, int], frozenset[bytes]] = field(default_factory=dict)
    live: frozenset[tuple[str, Member]] | None = None


_Key = tuple[int, int, str, Member]  # node, incarnation, group, member: one member's stream


def _streams(events: Iterable[MemberEvent]) -> dict[_Key, list[MemberEvent]]:
    streams: dict[_Key, list[MemberEvent]] = {}
    for e in events:
        streams.setdefault((e.node, e.incarnation, e.group, e.member), []).append(e)
    return streams


def _who(key: _Key) -> str:
    return f"member {key[3]} of {key[2]!r} (incarnation {key[0]}/{key[1]})"


def _lists(view: View, sender: Member, e: MemberEvent) -> bool:
    """Whether ``e``'s message of ``sender`` may be delivered in ``view``: the view lists the
    sender, or it is an old-ring message of a departed sender (its node is outside the
    transitional configuration the ring delivered it in) in a transitional view (API-3.3-2). The
    second covers a member that joined in the transitional configuration, whose views never
    listed the departed, and a view made by a leave delivered there."""
    if sender in view.members:
        return True
    return view.transitional and e.transitional and sender.node not in (e.config or ())


# ---------------------------------------------------------------------- sender in view


@judges("API-3.7-1", "API-3.7-2", "API-3.3-2", "API-3.6-1", "API-3.6-4")
def check_group_sender_in_view(run: GroupRun) -> Verdict:
    """API-3.7-1, API-3.7-2: every message in a view listing its sender (or, in a transitional
    view, one it
    departed from, API-3.3-2); API-3.6-1: a stream starts with a view listing its member;
    API-3.6-4: a
    message carries the id of the last view its member received; nothing after a stream's end."""
    problems = Problems("group_sender_in_view")
    messages = outside = 0
    for key, stream in _streams(run.events).items():
        current: View | None = None
        ended = False
        for e in stream:
            event = e.event
            if ended:
                problems.add(f"{_who(key)} received {event!r} after its stream ended")
                break
            if event is None:
                ended = True
            elif isinstance(event, View):
                if current is None and key[3] not in event.members:
                    problems.add(f"{_who(key)}: its first view {event.view_id} does not list it")
                current = event
            else:
                messages += 1
                if current is None:
                    problems.add(
                        f"{_who(key)} received a message before any view ({fmt_t(e.time_ns)})"
                    )
                elif not _lists(current, event.sender, e):
                    outside += 1
                    problems.add(
                        f"{_who(key)} received a message of {event.sender} at {e.position} in "
                        f"view {current.view_id} (members {_members(current)}), "
                        f"at {fmt_t(e.time_ns)}"
                    )
                elif event.view_id != current.view_id:
                    problems.add(
                        f"{_who(key)}: message at {e.position} carries view {event.view_id}, "
                        f"delivered in {current.view_id}"
                    )
    stats: dict[str, Stat] = {"messages": messages, "outside_view": outside}
    delays = sorted(held_delays_ns(run.events))
    stats["held"] = len(delays)
    if delays:
        stats["held_p50_ms"] = round(delays[len(delays) // 2] / 1e6, 3)
        stats["held_p99_ms"] = round(delays[min(len(delays) - 1, len(delays) * 99 // 100)] / 1e6, 3)
    return problems.verdict(stats)


def _members(view: View) -> str:
    return "[" + ", ".join(map(str, view.members)) + "]"


def held_delays_ns(events: Iterable[MemberEvent]) -> list[int]:
    """How long the group layer held each message it did not deliver when the ring did: the
    barrier's cost (API-3.7-1), one figure per (member, message)."""
    return [
        e.time_ns - e.ring_ns
        for e in events
        if e.ring_ns is not None and e.time_ns > e.ring_ns and isinstance(e.event, Message)
    ]


# ---------------------------------------------------------------------- views


@judges("API-3.5-1", "API-3.5-2")
def check_group_view_ids(run: GroupRun) -> Verdict:
    """API-3.5-1: within a group, one view id names one membership (and one transitional flag)."""
    problems = Problems("group_view_ids")
    seen: dict[tuple[str, ViewId], tuple[View, _Key]] = {}
    for e in run.events:
        view = e.event
        if not isinstance(view, View):
            continue
        key = (e.node, e.incarnation, e.group, e.member)
        first = seen.setdefault((e.group, view.view_id), (view, key))
        known = first[0]
        if (known.members, known.transitional) != (view.members, view.transitional):
            problems.add(
                f"view {view.view_id} of {e.group!r}: {_members(known)} "
                f"(transitional={known.transitional}) at {_who(first[1])}, {_members(view)} "
                f"(transitional={view.transitional}) at {_who(key)}"
            )
    return problems.verdict({"views": len(seen)})


def _segments(stream: list[MemberEvent]) -> Iterable[tuple[ViewId, ViewId, tuple[Position, ...]]]:
    """(view, next view, the multicast messages delivered between them) along one stream."""
    current: ViewId | None = None
    got: list[Position] = []
    for e in stream:
        event = e.event
        if isinstance(event, View):
            if current is not None:
                yield current, event.view_id, tuple(got)
            current, got = event.view_id, []
        elif isinstance(event, Message) and event.to is None and e.position is not None:
            got.append(e.position)


@judges("API-3.6-3")
def check_group_synchrony(run: GroupRun) -> Verdict:
    """API-3.6-3: members that both go from view V to view V' delivered the same messages in V
    (point-to-point messages excluded: they are for one member)."""
    problems = Problems("group_synchrony")
    seen: dict[tuple[str, ViewId, ViewId], tuple[tuple[Position, ...], _Key]] = {}
    for key, stream in _streams(run.events).items():
        for view, after, got in _segments(stream):
            first = seen.setdefault((key[2], view, after), (got, key))
            if first[0] != got:
                mine, theirs = set(got), set(first[0])
                problems.add(
                    f"{_who(key)} and {_who(first[1])} went from {view} to {after} having "
                    f"delivered different messages in it: only the first "
                    f"{sorted(mine - theirs)[:3]}, only the second {sorted(theirs - mine)[:3]}"
                )
    return problems.verdict({"transitions": len(seen)})


def _regular(e: MemberEvent) -> bool:
    return e.config is not None and not e.transitional


@judges("API-3.3-1", "API-3.3-2")
def check_group_views_in_configuration(run: GroupRun) -> Verdict:
    """API-3.3-1, API-3.3-2: a message the ring delivered in a regular configuration is delivered
    in a view
    whose members are all of nodes of that configuration (a view that still lists a departed
    node's member means a transitional view was skipped)."""
    problems = Problems("group_views_in_configuration")
    for key, stream in _streams(run.events).items():
        current: View | None = None
        for e in stream:
            event = e.event
            if isinstance(event, View):
                current = event
            elif isinstance(event, Message) and current is not None and _regular(e):
                config = e.config or ()
                stray = [m for m in current.members if m.node not in config]
                if stray:
                    problems.add(
                        f"{_who(key)} received a message at {e.position}, delivered in regular "
                        f"configuration {list(config)}, in view {current.view_id} that lists "
                        f"{', '.join(map(str, stray))} ({fmt_t(e.time_ns)})"
                    )
                    break
    return problems.verdict()


# ---------------------------------------------------------------------- order and positions


def _positions(stream: list[MemberEvent]) -> list[Position]:
    return [e.position for e in stream if isinstance(e.event, Message) and e.position is not None]


@judges("API-3.6-2")
def check_group_order(run: GroupRun) -> Verdict:
    """API-3.6-2 and §4.1: each member receives its messages in the ring's total order, each
    once."""
    problems = Problems("group_order")
    for key, stream in _streams(run.events).items():
        positions = _positions(stream)
        for before, after in pairwise(positions):
            if after <= before:
                problems.add(
                    f"{_who(key)} received the message at {after} after the one at {before}"
                )
                break
    return problems.verdict()


@dataclass(slots=True)
class _Cut:
    """Where one member installed one view: the last message before it and the first after."""

    key: _Key
    before: Position | None
    after: Position | None


@judges("API-3.4-3", "API-3.7-1")
def check_group_view_positions(run: GroupRun) -> Verdict:
    """API-3.4-3, API-3.7-1: a view is installed at the same point of the stream at every member: no
    message two members both deliver is before the view at one and after it at the other."""
    problems = Problems("group_view_positions")
    streams = _streams(run.events)
    cuts: dict[tuple[str, ViewId], list[_Cut]] = {}
    for key, stream in streams.items():
        pending: list[_Cut] = []
        last: Position | None = None
        for e in stream:
            if isinstance(e.event, View):
                cut = _Cut(key, last, None)
                pending.append(cut)
                cuts.setdefault((key[2], e.event.view_id), []).append(cut)
            elif isinstance(e.event, Message) and e.position is not None:
                for cut in pending:
                    cut.after = e.position
                pending = []
                last = e.position
    ordered = {key: _positions(stream) for key, stream in streams.items()}
    sets: dict[_Key, set[Position]] = {}
    for (group, view_id), members in cuts.items():
        for x in members:
            for y in members:
                if x is y or x.before is None or y.after is None or y.after > x.before:
                    continue
                mine = ordered[x.key]
                theirs = sets.setdefault(y.key, set(ordered[y.key]))
                lo, hi = bisect_left(mine, y.after), bisect_right(mine, x.before)
                common = next((p for p in mine[lo:hi] if p in theirs), None)
                if common is not None:
                    problems.add(
                        f"view {view_id} of {group!r}: the message at {common} is before it at "
                        f"{_who(x.key)} and after it at {_who(y.key)}"
                    )
    return problems.verdict({"views": len(cuts)})


# ---------------------------------------------------------------------- completeness


@judges("API-3.6-2")
def check_group_self_delivery(run: GroupRun) -> Verdict:
    """API-3.6-2: a member whose stream ended with its leave, or that is open at the end, received
    every multicast of its own that its node's ring delivered."""
    problems = Problems("group_self_delivery")
    ended = {(e.group, e.member) for e in run.events if e.event is None}
    open_ = run.live if run.live is not None else frozenset()
    got: dict[tuple[str, Member], set[bytes]] = {}
    where: dict[tuple[str, Member], tuple[int, int]] = {}
    for e in run.events:
        if isinstance(e.event, Message) and e.event.sender == e.member and e.event.to is None:
            got.setdefault((e.group, e.member), set()).add(e.event.data)
        where.setdefault((e.group, e.member), (e.node, e.incarnation))
    checked = 0
    for who, payloads in run.sent.items():
        if (who not in ended and who not in open_) or who not in where:
            continue
        ring = run.ring_delivered.get(where[who], frozenset())
        mine = got.get(who, set())
        missing = [p for p in payloads if p in ring and p not in mine]
        checked += len(payloads)
        if missing:
            problems.add(
                f"member {who[1]} of {who[0]!r} did not receive {len(missing)} of its own "
                f"messages its ring delivered (first: {missing[0][:16].hex()})"
            )
    return problems.verdict({"own_messages": checked})


@judges("API-3.6-5")
def check_group_final_views(run: GroupRun) -> Verdict:
    """API-3.6-5: at the end, every open member of a group has the same last view, regular, listing
    exactly the group's open members."""
    problems = Problems("group_final_views")
    if run.live is None:
        return problems.unknown("the open members at the end were not given")
    last: dict[tuple[str, Member], View] = {}
    for e in run.events:
        if isinstance(e.event, View):
            last[(e.group, e.member)] = e.event
    groups: dict[str, set[Member]] = {}
    for group, member in run.live:
        groups.setdefault(group, set()).add(member)
    for group, members in sorted(groups.items()):
        views = {m: last.get((group, m)) for m in sorted(members)}
        for member, view in views.items():
            if view is None:
                problems.add(f"member {member} of {group!r} is open at the end without a view")
            elif view.transitional or set(view.members) != members:
                problems.add(
                    f"member {member} of {group!r} ends in view {view.view_id} "
                    f"{_members(view)} (transitional={view.transitional}); open members: "
                    f"{', '.join(map(str, sorted(members)))}"
                )
        if len({v.view_id for v in views.values() if v is not None}) > 1:
            problems.add(f"the open members of {group!r} end in different views")
    return problems.verdict({"open_members": len(run.live)})


# ---------------------------------------------------------------------- all


@judges()
def check_groups(run: GroupRun) -> list[Verdict]:
    """Every group-level verdict of one run (a checker that raises is reported, not hidden)."""
    checkers = (
        check_group_sender_in_view,
        check_group_view_ids,
        check_group_synchrony,
        check_group_order,
        check_group_view_positions,
        check_group_views_in_configuration,
        check_group_self_delivery,
        check_group_final_views,
    )
    verdicts = []
    for checker in checkers:
        try:
            verdicts.append(checker(run))
        except Exception as exc:  # a checker bug must not hide the other verdicts
            name = "group_" + checker.__name__.removeprefix("check_").removeprefix("group_")
            note = f"checker raised {type(exc).__name__}: {exc}"
            verdicts.append(Verdict(name=name, valid=None, note=note))
    return verdicts
