"""Link health and routes (RFC 0010 §4, §5) on the pure state machine: time is an argument.

A small harness drives ``Links`` for node 1 with one peer (node 2) and two links: ``run`` calls
``on_timeout`` at every deadline the machine asks for, and lets the peer "send" on the links
given in ``talking`` every 10 ms and answer every probe on a link in ``answering``. Nothing
here reads a clock, so every figure is exact and every run identical.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest

from gcs.links import LinkChange, LinkMode, Links, LinkTimings, Output, ProbeOut
from gcs.wire.frames import LinkProbe

MS = 1_000_000
DOWN = 300 * MS
TIMINGS = LinkTimings(DOWN, DOWN)
TICK = 10 * MS


@dataclass
class Harness:
    links: Links
    now: int = 0
    talking: set[int] = field(default_factory=lambda: {0, 1})
    """Links on which the peer's traffic arrives (every TICK)."""
    probes: list[ProbeOut] = field(default_factory=list)
    changes: list[LinkChange] = field(default_factory=list)
    routes: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)

    def take(self, out: Output | None) -> None:
        if out is None:
            return
        self.probes += out.probes
        self.changes += out.changes
        self.routes += [(self.now, r.new) for r in out.reroutes]
        for probe in out.probes:  # the peer answers on a link that carries its traffic
            if not probe.frame.reply and probe.link in self.talking:
                answer = LinkProbe(probe.link, probe.frame.seq, True, True)
                self.take(self.links.on_probe(self.now + MS, 2, probe.link, answer))

    def run(self, until_ns: int) -> None:
        next_tick = self.now + TICK
        while self.now < until_ns:
            due = min(self.links.next_deadline_ns, next_tick, until_ns)
            self.now = max(self.now, due)
            if self.now >= next_tick:
                for link in sorted(self.talking):
                    self.take(self.links.heard(self.now, 2, link))
                next_tick += TICK
            if self.now >= self.links.next_deadline_ns:
                self.take(self.links.on_timeout(self.now))

    @property
    def route(self) -> tuple[int, ...]:
        return self.links.routes[2]

    def status(self, link: int) -> bool:
        return next(s.up for s in self.links.statuses() if s.link == link)


def harness(mode: LinkMode = LinkMode.PASSIVE) -> Harness:
    return Harness(Links(1, [1, 2], 2, mode, TIMINGS, 0))


@pytest.mark.req("LNK-4-1", "LNK-4-3")
def test_a_link_that_carries_traffic_stays_up_a_silent_one_goes_down_after_the_down_time() -> None:
    h = harness()
    h.run(2_000 * MS)
    assert h.changes == [] and h.status(0) and h.status(1)
    h.talking = {0}
    cut = h.now
    h.run(cut + 2_000 * MS)
    [change] = h.changes
    assert (change.link, change.up) == (1, False)
    assert DOWN <= change.at_ns - cut <= DOWN + TICK, change
    # LNK-4-3: the node tells the peer at once, on that link, that it no longer hears it
    told = [p for p in h.probes if p.link == 1 and p.frame.hears is False]
    assert told and told[0].frame.link == 1


@pytest.mark.req("LNK-4-1")
def test_datagrams_from_strangers_or_on_unknown_links_are_no_evidence() -> None:
    h = harness()
    assert h.links.heard(5 * MS, 7, 0) is None  # not a peer
    assert h.links.heard(5 * MS, 2, 5) is None  # not a link of this node
    assert all(s.heard == 0 for s in h.links.statuses())


@pytest.mark.req("LNK-4-2")
def test_an_idle_link_gets_a_heartbeat_every_quarter_of_the_down_time() -> None:
    h = harness()
    h.run(3_000 * MS)
    on_link_1 = [p for p in h.probes if p.link == 1 and not p.frame.reply]
    # nothing is sent on link 1 (passive: link 0 carries everything), so link 1 is idle
    assert len(on_link_1) >= 3_000 * MS // (DOWN // 4) - 1
    gaps = [b.frame.seq - a.frame.seq for a, b in itertools.pairwise(on_link_1)]
    assert set(gaps) == {1}
    rtt = next(s.rtt_ns for s in h.links.statuses() if s.link == 1)
    assert rtt == MS  # the harness answers 1 ms later


@pytest.mark.req("LNK-4-2")
def test_a_busy_link_still_gets_a_heartbeat_every_down_time() -> None:
    h = harness()
    for t in range(0, 3_000 * MS, 5 * MS):  # node 1 sends to node 2 on link 0 every 5 ms
        h.links.note_sent(t, 2, 0)
        h.run(t)
    pings = [p for p in h.probes if p.link == 0 and not p.frame.reply]
    assert len(pings) >= 3_000 * MS // DOWN - 1


@pytest.mark.req("LNK-4-2")
def test_a_probe_is_answered_at_once_on_its_link_with_its_seq() -> None:
    h = harness()
    out = h.links.on_probe(7 * MS, 2, 1, LinkProbe(1, 41, False, True))
    assert out is not None
    [answer] = out.probes
    assert (answer.peer, answer.link) == (2, 1)
    assert answer.frame == LinkProbe(1, 41, True, True)


@pytest.mark.req("LNK-4-4")
def test_a_link_comes_back_only_after_answering_steadily_for_the_up_time() -> None:
    h = harness()
    h.talking = {0}
    h.run(1_000 * MS)
    assert not h.status(1)
    # flapping: heard for 100 ms, then silent for 200 ms (a gap over D / 2), four times
    for _ in range(4):
        h.talking = {0, 1}
        h.run(h.now + 100 * MS)
        h.talking = {0}
        h.run(h.now + 200 * MS)
        assert not h.status(1), "a flapping link must not come back"
    healed = h.now
    h.talking = {0, 1}
    h.run(healed + 2_000 * MS)
    back = [c for c in h.changes if c.link == 1 and c.up]
    assert len(back) == 1
    assert DOWN <= back[0].at_ns - healed <= DOWN + 2 * TICK, back


@pytest.mark.req("LNK-4-5")
def test_a_link_the_peer_does_not_hear_is_down_at_both_ends() -> None:
    h = harness(LinkMode.ACTIVE)
    h.run(100 * MS)
    out = h.links.on_probe(h.now, 2, 1, LinkProbe(1, 1, False, False))
    assert out is not None
    assert [(c.link, c.up) for c in out.changes] == [(1, False)]
    assert h.links.routes[2] == (0,)
    status = next(s for s in h.links.statuses() if s.link == 1)
    assert status.hears and not status.peer_hears and not status.up
    out = h.links.on_probe(h.now + MS, 2, 1, LinkProbe(1, 2, False, True))
    assert out is not None and [(c.link, c.up) for c in out.changes] == [(1, True)]
    assert h.links.routes[2] == (0, 1)


@pytest.mark.req("LNK-4-6")
def test_a_probe_for_another_link_changes_nothing_and_is_counted() -> None:
    h = harness()
    before = h.links.statuses()
    out = h.links.on_probe(5 * MS, 2, 0, LinkProbe(1, 9, False, False))
    assert out is None or (not out.changes and not out.probes and not out.reroutes)
    after = h.links.statuses()
    assert [s.misrouted for s in after] == [1, 0]
    assert [(s.up, s.peer_hears) for s in after] == [(s.up, s.peer_hears) for s in before]


@pytest.mark.req("LNK-5-1")
def test_passive_moves_traffic_after_half_the_down_time_and_takes_it_back_when_healed() -> None:
    h = harness()
    h.run(500 * MS)
    assert h.route == (0,)
    h.talking = {1}
    cut = h.now
    h.run(cut + 2_000 * MS)
    first, second = h.routes[0], h.routes[1]
    assert first[1] == (0, 1) and DOWN // 2 <= first[0] - cut <= DOWN // 2 + TICK, h.routes
    assert second[1] == (1,) and DOWN <= second[0] - cut <= DOWN + TICK, h.routes
    healed = h.now
    h.talking = {0, 1}
    h.run(healed + 2_000 * MS)
    assert h.route == (0,)
    assert DOWN <= h.routes[-1][0] - healed <= DOWN + 2 * TICK, h.routes


@pytest.mark.req("LNK-5-2")
def test_active_sends_on_every_up_link() -> None:
    h = harness(LinkMode.ACTIVE)
    h.run(500 * MS)
    assert h.route == (0, 1)
    h.talking = {1}
    h.run(h.now + 1_000 * MS)
    assert h.route == (1,)


@pytest.mark.req("LNK-5-3")
@pytest.mark.parametrize("mode", list(LinkMode))
def test_with_no_link_up_frames_go_on_every_link(mode: LinkMode) -> None:
    h = harness(mode)
    h.talking = set()
    h.run(2_000 * MS)
    assert not h.status(0) and not h.status(1)
    assert h.route == (0, 1)


def test_the_machine_is_deterministic() -> None:
    """Same calls, same times: same probes, changes and routes (the simulator relies on it)."""

    def trace() -> tuple[object, ...]:
        h = harness()
        h.run(700 * MS)
        h.talking = {1}
        h.run(2_000 * MS)
        h.talking = {0, 1}
        h.run(4_000 * MS)
        return tuple(h.probes), tuple(h.changes), tuple(h.routes)

    assert trace() == trace()
