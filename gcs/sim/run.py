"""``gcs.sim.run(scenario, seed)``: one deterministic simulated run, judged by every checker.

A run has two phases (VOPR's shape, RFC 0007 §5): during ``duration_s`` the workload sends and the
nemesis injects faults; then every partition heals, frame-type drops stop, and the cluster gets
``quiet_s`` of virtual time to settle, after which liveness is judged: every live node must be in
one common regular configuration and every submitted message delivered by all of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gcs.history import events as h
from gcs.links.health import LinkMode
from gcs.sim.checkers import CheckParams, Verdict, check_all, overall
from gcs.sim.nemesis import heal_all, install_nemesis, restore_all_links
from gcs.sim.report.metrics import Metrics, compute_metrics
from gcs.sim.scenario import Scenario
from gcs.sim.transport import ChannelTransport
from gcs.sim.workloads.groups import GroupWorkload, install_groups
from gcs.sim.workloads.kv import KvWorkload, install_kv
from gcs.sim.workloads.messages import install_workload
from gcs.sim.world import Transport, World

__all__ = ["Probe", "Result", "build_world", "run"]

S = 1_000_000_000
MS = 1_000_000


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one run: verdicts, metrics, and the history they were computed from."""

    scenario: Scenario
    seed: int
    verdicts: tuple[Verdict, ...]
    metrics: Metrics
    history: h.History
    events: int
    virtual_s: float

    @property
    def valid(self) -> bool | None:
        """True if every checker passed, False if any failed, None if one could not judge."""
        return overall(self.verdicts)

    @property
    def exit_code(self) -> int:
        return {True: 0, False: 1, None: 3}[self.valid]

    def digest(self) -> str:
        """SHA-256 of the whole history: equal digests mean identical runs."""
        sha = hashlib.sha256()
        for line in self.history.to_jsonl():
            sha.update(line.encode())
            sha.update(b"\n")
        return sha.hexdigest()


def build_world(scenario: Scenario, seed: int) -> World:
    def transport(node: int, boot: int) -> Transport:
        if scenario.wire == "objects":
            return Transport()
        config = scenario.totem_config(node)
        sealed = scenario.wire == "sealed"
        return ChannelTransport(config, boot, sealed=sealed, links=scenario.links.count)

    links = scenario.links
    return World(
        seed=seed,
        nodes=scenario.node_ids,
        totem_config=scenario.totem_config,
        link=scenario.link,
        transport_factory=transport,
        persist_delay_ns=int(scenario.persist_delay_ms * MS),
        links=links.count,
        link_mode=LinkMode(links.mode),
        link_timings=links.timings(scenario.totem_config(1).token_timeout_ns),
    )


Probe = Callable[[World], None]


def run(
    scenario: Scenario, seed: int, *, trace: Any = None, probes: Sequence[Probe] = ()
) -> Result:
    """Run ``scenario`` with ``seed`` and judge it. Same inputs, same result, in any process.

    ``probes`` are called with the built world before it runs; they may schedule read-only
    sampling events (``gcs.sim.report.figures.CounterProbe``). Sampling events take heap sequence
    numbers but never reorder the run's own events, so the history (and its digest) is the
    same with or without probes.
    """
    world = build_world(scenario, seed)
    world.trace_sink = trace
    for probe in probes:
        probe(world)
    spread = world.seeds.rng("start")
    for node in scenario.node_ids:
        offset = int(spread.random() * scenario.start_spread_ms * MS)
        world.at(offset, world.start, node)
    kv: KvWorkload | None = None
    groups: GroupWorkload | None = None
    match scenario.workload.kind:
        case "kv":
            kv = install_kv(world, scenario)
        case "groups":
            groups = install_groups(world, scenario)
        case _:
            install_workload(world, scenario)
    install_nemesis(world, scenario)
    end_ns = int(scenario.duration_s * S)
    quiet_ns = _quiet_from(scenario, end_ns)
    world.at(end_ns, _quiet, world)
    world.run_until(quiet_ns)
    while world.fault_horizon_ns > quiet_ns:  # a triggered fault fired late: its undo is later
        quiet_ns = world.fault_horizon_ns
        world.run_until(quiet_ns)
    bound = scenario.liveness_bound_ns() + _pending_penalty(world)
    quiet_end = quiet_ns + max(int(scenario.quiet_s * S), bound)
    world.run_until(quiet_end)
    _settle(world, quiet_end + bound)
    verdicts = check_all(world.history, params=_params(world, scenario, quiet_ns, bound, end_ns))
    if kv is not None:
        verdicts += kv.verdicts()
    if groups is not None:
        verdicts += groups.verdicts()  # the group-level checkers (RFC 0007 SIM-6-3)
    workload_s = max(scenario.duration_s - scenario.workload.start_s, 1e-9)
    return Result(
        scenario=scenario,
        seed=seed,
        verdicts=tuple(verdicts),
        metrics=compute_metrics(world, workload_s),
        history=world.history,
        events=world.events_run,
        virtual_s=world.now / S,
    )


def _settle(world: World, limit_ns: int) -> None:
    """RFC 0007 SIM-5.4-3: a run does not stop in the middle of a reformation. While the live
    cores are not all OPERATIONAL in one configuration of exactly the live nodes, the run goes
    on in 10 ms steps of virtual time, for at most one more liveness bound."""
    while world.now < limit_ns and not world.converged():
        world.run_until(min(world.now + 10 * MS, limit_ns))


def _quiet(world: World) -> None:
    world.faults_over = True
    world.drop_rules.clear()
    heal_all(world, "quiet")
    restore_all_links(world)


def _quiet_from(scenario: Scenario, end_ns: int) -> int:
    last = end_ns
    for step in scenario.faults:
        last = max(last, int((step.at_s + step.duration_s) * S))
    return last


def _pending_penalty(world: World) -> int:
    longest = 0
    for host in world.hosts.values():
        if host.core is not None:
            for penalty in host.core.penalties.values():
                longest = max(longest, penalty.until_ns - host.clock.local(world.now))
    return longest


def _params(
    world: World, scenario: Scenario, quiet_ns: int, bound: int, end_ns: int
) -> CheckParams:
    wiped = set()
    for event in world.history.events:
        if isinstance(event, h.Fault) and event.kind == "restart" and event.detail.get("wipe"):
            wiped.add((event.node, event.incarnation + 1))
    live = frozenset((host.node_id, host.incarnation) for host in world.expected_live())
    expect = scenario.expect
    failover = (expect.no_view_change, int(expect.cut_latency_ms * MS)) if expect.active else None
    return CheckParams(
        quiet_from_ns=quiet_ns,
        liveness_bound_ns=bound,
        expected_live=live,
        wiped=frozenset(wiped),
        submit_cutoff_ns=end_ns,
        gather_bound=None,
        quiet_loss=world.network.max_loss(),
        link_failover=failover,
    )
