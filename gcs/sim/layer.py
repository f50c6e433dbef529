"""The group layer on a simulated host: the runtime's ``GroupDriver``, in virtual time.

``GroupLayer`` is what a ``Host`` (``gcs.sim.world``) runs above its core, one per incarnation,
when the workload uses groups: a ``GroupState`` and the one driver of the group layer
(``gcs.groups.driver``). The host calls it as the asyncio runtime calls its listener — while
executing the core's effects, then ``after_effects``, and ``on_timeout`` at its deadline — and it
submits through ``Host.submit_record``, so the simulator runs exactly the group layer the
embedded node and the daemon run. A record the core cannot take yet (its queue is full, or the
host is paused) is tried again after the next batch of effects and, in case none comes, a
millisecond later.

Workloads subclass it and implement the driver's ``Application`` upcalls (``on_event`` at least);
the defaults ignore the ring and store nothing.
"""

from __future__ import annotations

from gcs.errors import NodeListRefused
from gcs.groups.driver import GroupDriver, SendTag
from gcs.groups.state import GroupState, NodeListEvent
from gcs.groups.views import Message, View
from gcs.quorum.nodelist import ChangeOp, NodeEntry, NodeList
from gcs.quorum.rules import Quorum, QuorumRules
from gcs.sim.world import Host
from gcs.totem.effects import Configuration, Deliver

__all__ = ["GroupLayer"]

RETRY_NS = 1_000_000


class GroupLayer:
    """One incarnation's group layer (see the module docstring); a ``gcs.sim.world.Layer``."""

    def __init__(
        self, host: Host, rules: QuorumRules | None = None, stored_votes: int | None = None
    ) -> None:
        self.host = host
        self.incarnation = host.incarnation
        self.state = GroupState(host.node_id, rules, stored_votes, host.store.nodes)
        self.driver: GroupDriver[SendTag] = GroupDriver(self.state, host.submit_record, self)
        self._retry_armed = False

    # ------------------------------------------------------------------ the host's calls (Layer)

    def on_deliver(self, now_ns: int, deliver: Deliver) -> None:
        self.driver.on_deliver(now_ns, deliver)

    def on_configuration(self, now_ns: int, configuration: Configuration) -> None:
        self.driver.on_configuration(now_ns, configuration)

    def on_send_window(self, is_open: bool) -> None:
        self.driver.on_send_window(is_open)

    def after_effects(self, now_ns: int) -> None:
        self.driver.after_effects(now_ns)
        self._retry_if_blocked()

    @property
    def next_deadline_ns(self) -> int | None:
        return self.driver.next_deadline_ns

    def on_timeout(self, now_ns: int) -> None:
        self.driver.on_timeout(now_ns)
        self._retry_if_blocked()

    def down(self) -> None:
        """The incarnation ended (crash or leave): what the application keeps, it keeps now."""

    # ------------------------------------------------------------------ the driver's calls

    def on_ring(self, configuration: Configuration) -> None:
        pass

    def on_event(
        self, group: str, handles: tuple[int, ...], event: View | Message | Quorum
    ) -> None:
        pass

    def on_member_closed(self, group: str, handle: int) -> None:
        pass

    def on_persist_quorum(self, expected_votes: int) -> None:
        pass

    def on_persist_nodes(self, nodes: NodeList) -> None:
        """Stored with the ring seq (wiped with it): the next incarnation starts from it."""
        self.host.store.nodes = nodes

    def on_node_list(self, event: NodeListEvent) -> None:
        """The core follows the list (RFC 0004 MEM-3.2-4); a node removed while it runs stops
        (RFC 0006 API-3.8-3): its operator starts it again only with a fresh list."""
        if event.refused is not None:
            return
        host = self.host
        if host.node_id not in event.nodes.ids:
            host.store.nodes = None  # the operator's empty state_dir for the node list
            w = host.world
            w.at(w.now, w.crash, host.node_id)  # a fresh event: never inside the core's effects
            return
        if host.core is not None:
            host.core.set_nodes(event.nodes.ids)

    def change_nodes(self, op: ChangeOp, node: int, votes: int = 1) -> str | None:
        """Propose a node-list change (the nemesis's hand); None if submitted, else why not."""
        try:
            self.driver.change_nodes(op, NodeEntry(node, votes if op is ChangeOp.ADD else 0))
        except NodeListRefused as exc:
            return exc.reason
        self._retry_if_blocked()
        return None

    # ------------------------------------------------------------------ retries

    def drain(self) -> None:
        """Submit what may go now (after a local request made outside a batch of effects)."""
        self.driver.drain()
        self._retry_if_blocked()

    def _retry_if_blocked(self) -> None:
        if self.driver.blocked and not self._retry_armed:
            self._retry_armed = True
            w = self.host.world
            w.at(w.now + RETRY_NS, self._retry)

    def _retry(self) -> None:
        host = self.host
        if host.upper is not self or host.core is None:
            return  # this incarnation ended
        self._retry_armed = False
        self.drain()
