"""The ``groups`` workload: the ring-level workload, sent by group members through the group layer.

Each host incarnation runs one member of group ``sim`` on its ``GroupLayer``
(``gcs.sim.layer``: the group layer's one driver, the one the embedded node and the daemon run).
Messages arrive as in the ``messages`` workload, from the same seed streams
(``gcs.sim.workloads.messages``), but each is a data record of that member, queued by the group
driver under flow control as ``group.send`` queues it, and only once the member is in a view (as
``join`` returns at the first view). So every run of this workload exercises joins,
announcements, group views across partitions and merges, and sends that wait for the window,
while the ring-level checkers judge the ring as usual: the group layer's own records (joins,
announcements) are not workload messages (``gcs.history.events.application_record``).

Every event a member receives is kept in ``GroupWorkload.events``, in order, for group-level
checkers. Quorum rules apply when the scenario has a ``[quorum]`` table or ``votes``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gcs.groups.views import Member, Message, View
from gcs.history import events as h
from gcs.quorum.rules import Quorum
from gcs.sim.layer import GroupLayer
from gcs.sim.scenario import Scenario
from gcs.sim.workloads.messages import install_workload
from gcs.sim.world import Host, World
from gcs.wire.frames import Record, RecordFlags

__all__ = ["GROUP", "GroupEvent", "GroupWorkload", "MemberNode", "install_groups"]

GROUP = "sim"
_DATA = int(RecordFlags.DATA)


@dataclass(frozen=True, slots=True)
class GroupEvent:
    """One event a local member received, when, and at which incarnation."""

    time_ns: int
    node: int
    incarnation: int
    member: Member
    event: View | Message | Quorum


class GroupWorkload:
    """The members of every host incarnation, and what they received."""

    def __init__(self, world: World, scenario: Scenario) -> None:
        self.world = world
        self.rules = scenario.quorum_rules() if scenario.quorum or scenario.votes else None
        self.events: list[GroupEvent] = []
        self.stored_votes: dict[int, int] = {}

    def send(self, world: World, node: int, size: int, safe: bool) -> bool:
        """A ``messages.Sender``: the node's member sends, if it is in a view."""
        member = world.hosts[node].upper
        return isinstance(member, MemberNode) and member.send(size, safe)


def install_groups(world: World, scenario: Scenario) -> GroupWorkload:
    """The groups workload of ``scenario`` in ``world`` (before it starts)."""
    workload = GroupWorkload(world, scenario)
    world.workload_filter = h.application_record
    world.layer_factory = lambda host: MemberNode(host, workload)
    install_workload(world, scenario, workload.send)
    return workload


class MemberNode(GroupLayer):
    """One incarnation's member of group ``sim`` (see the module docstring)."""

    def __init__(self, host: Host, workload: GroupWorkload) -> None:
        super().__init__(host, workload.rules, workload.stored_votes.get(host.node_id))
        self.workload = workload
        handle = ((host.store.boots & ((1 << 44) - 1)) << 20) | 1
        self.member = Member(host.node_id, handle)
        self.active = False
        """The member has seen its first view: it may send."""
        self.sent = 0
        self.driver.join(GROUP, handle)

    def on_event(
        self, group: str, handles: tuple[int, ...], event: View | Message | Quorum
    ) -> None:
        if group != GROUP or self.member.handle not in handles:
            return
        self.active = self.active or isinstance(event, View)
        w = self.host.world
        self.workload.events.append(
            GroupEvent(w.now, self.host.node_id, self.incarnation, self.member, event)
        )

    def on_persist_quorum(self, expected_votes: int) -> None:
        self.workload.stored_votes[self.host.node_id] = expected_votes

    def send(self, size: int, safe: bool) -> bool:
        """One workload message from this member; True if it reached the core at once."""
        host = self.host
        if not self.active or host.world.now < host.paused_until:
            return False
        self.sent += 1
        msg_id = h.MsgId(host.node_id, host.incarnation, self.sent)
        data = h.encode_payload(msg_id, size)
        host.world.payload_ids[data] = msg_id
        sent = self.driver.send(Record(GROUP, self.member.handle, _DATA, data), safe)
        self._retry_if_blocked()
        return sent
