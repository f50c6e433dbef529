"""The driver's contract, checked against a scripted stand-in for the core.

Drain before token, exactly one timer at the earlier of the core's and the listener's deadlines,
effects executed in order with the listener's submissions only after them (never re-entering the
core from inside an effect), and fail-stop on an exception from the core.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

import gcs
from gcs.history.recorder import FlightRecorder
from gcs.runtime.driver import DELIVERY_SLICE, Driver
from gcs.runtime.persist import StateStore
from gcs.totem.config import TotemConfig
from gcs.totem.effects import (
    ChangeReason,
    ConfigId,
    Configuration,
    ConfigurationKind,
    Deliver,
    Effect,
    ReasonKind,
    Send,
)
from gcs.wire.channel import Channel
from gcs.wire.frames import Frame, Mcast, OrfToken, Record, RingId
from tests.runtime.cluster import wait_until

RING = RingId(seq=8, rep=1)
TOKEN = OrfToken(RING, 1, 0, 0, 0, 0, 0, False, ())
MCAST = Mcast(2, RING, 1, False, (Record("g", 1, 0, b"x"),))
DELIVER = Deliver(ConfigId(ConfigurationKind.REGULAR, RING), RING, 1, 2, False, ())
CONF = Configuration(
    ConfigurationKind.REGULAR, RING, (1, 2), (), (2,), ChangeReason(ReasonKind.MERGE)
)


class ScriptedCore:
    """Just enough of ``gcs.totem.Node`` for the driver; records every call."""

    def __init__(self) -> None:
        self.config = TotemConfig(node_id=1, nodes=(1, 2), token_timeout_ns=400_000_000)
        self.me = 1
        self.next_deadline_ns: int | None = None
        self.calls: list[tuple[str, Any]] = []
        self.in_call = False
        self.on_receive: list[Effect] = []
        self.on_submit: list[Effect] = []
        self.fail_with: BaseException | None = None

    def _call(self, name: str, arg: Any, result: list[Effect]) -> list[Effect]:
        assert not self.in_call, "the driver re-entered the core"
        self.calls.append((name, arg))
        if self.fail_with is not None and name == "receive":
            raise self.fail_with
        return list(result)

    def start(self, now_ns: int, stored: int | None) -> list[Effect]:
        return self._call("start", stored, [])

    def receive(self, now_ns: int, src: int, frame: Frame) -> list[Effect]:
        return self._call("receive", frame, self.on_receive)

    def on_timeout(self, now_ns: int) -> list[Effect]:
        self.next_deadline_ns = None  # a fired timer is spent (nothing else is scripted)
        return self._call("timeout", now_ns, [])

    def submit(self, now_ns: int, record: Record, *, safe: bool = False) -> list[Effect]:
        return self._call("submit", record, self.on_submit)

    def leave(self, now_ns: int) -> list[Effect]:
        return self._call("leave", None, [])

    def on_persisted(self, now_ns: int, seq: int) -> list[Effect]:
        return self._call("persisted", seq, [])


class Listener:
    """A stand-in for the group layer's driver: logs its calls, may submit, has a deadline."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.delivered: list[tuple[int, int]] = []  # (seq, records) of each Deliver
        self.driver: Driver | None = None
        self.submit_after = False
        self.failures: list[BaseException] = []
        self.next_deadline_ns: int | None = None
        self.timeouts: list[int] = []

    def on_deliver(self, now_ns: int, deliver: Deliver) -> None:
        self.log.append("deliver")
        self.delivered.append((deliver.seq, len(deliver.records)))

    def on_configuration(self, now_ns: int, configuration: Configuration) -> None:
        self.log.append("configuration")

    def on_send_window(self, is_open: bool) -> None:
        self.log.append(f"window {is_open}")

    def after_effects(self, now_ns: int) -> None:
        self.log.append("after")
        if self.submit_after and self.driver is not None:
            self.submit_after = False
            self.driver.submit(Record("g", 1, 0, b"y"), False)

    def on_timeout(self, now_ns: int) -> None:
        self.timeouts.append(now_ns)
        self.next_deadline_ns = None

    def on_failure(self, exc: BaseException) -> None:
        self.failures.append(exc)


def make_driver(
    *, delivery_slice: int = DELIVERY_SLICE, sent: list[bytes] | None = None
) -> tuple[Driver, ScriptedCore, Listener, Channel]:
    """A driver around a scripted core, and node 2's channel to send it datagrams (``sent``
    collects the datagrams the driver sends)."""
    core = ScriptedCore()
    listener = Listener()
    channel = Channel(1, 1, "t", None, peers=(1, 2))
    recorder = FlightRecorder(
        core.config, seed=0, boot_id=1, cluster_name="t", key=None, capacity=0
    )
    driver = Driver(
        asyncio.get_running_loop(),
        core,  # type: ignore[arg-type]
        channel,
        recorder,
        StateStore(None, 1),
        listener,
        {2: ("127.0.0.1", 9)},
        on_failure=listener.on_failure,
        delivery_slice=delivery_slice,
    )
    outbox = [] if sent is None else sent
    transport = SimpleNamespace(sendto=lambda data, addr: outbox.append(data))
    endpoint: Any = SimpleNamespace(
        transport=transport,
        multicast=None,
        close=lambda: None,
        errors=0,
        rcvbuf_bytes=0,
        sndbuf_bytes=0,
    )
    driver.attach(endpoint)
    driver.start(None)
    core.calls.clear()  # the tests script what follows the start
    listener.driver = driver
    return driver, core, listener, Channel(2, 1, "t", None, peers=(1, 2))


async def test_data_of_a_read_batch_goes_before_the_token() -> None:
    driver, core, _, peer = make_driver()
    token_1, mcast, token_2 = (peer.seal(f) for f in (TOKEN, MCAST, TOKEN))
    for datagram in (token_1, mcast, token_2):  # one read batch: no yield in between
        driver.datagram_received(datagram)
    assert [arg for _, arg in core.calls] == [MCAST]
    await asyncio.sleep(0)
    assert [arg for _, arg in core.calls] == [MCAST, TOKEN, TOKEN], "tokens keep their order"
    assert driver.statistics().tokens_deferred == 2
    await driver.close()


async def test_one_timer_at_the_core_deadline() -> None:
    driver, core, _, peer = make_driver()
    far = time.monotonic_ns() + 60_000_000_000
    core.next_deadline_ns = far
    driver.start(None)
    assert driver.timer_deadline_ns == far
    core.next_deadline_ns = None
    driver.datagram_received(peer.seal(MCAST))
    assert driver.timer_deadline_ns is None, "no deadline, no timer"
    soon = time.monotonic_ns() + 5_000_000
    core.next_deadline_ns = soon
    driver.datagram_received(peer.seal(MCAST))
    assert driver.timer_deadline_ns == soon
    await wait_until(lambda: any(name == "timeout" for name, _ in core.calls))
    fired = next(now for name, now in core.calls if name == "timeout")
    assert fired >= soon, "the timeout is never fed a time before its deadline"
    assert driver.timer_deadline_ns is None
    await driver.close()


async def test_one_timer_for_the_core_and_the_group_layer() -> None:
    """The group layer's deadline shares the one timer: the earlier one is armed, and a firing
    for the listener's deadline does not feed the core a timeout it did not ask for."""
    driver, core, listener, peer = make_driver()
    late = time.monotonic_ns() + 60_000_000_000
    core.next_deadline_ns = late
    soon = time.monotonic_ns() + 5_000_000
    listener.next_deadline_ns = soon
    driver.datagram_received(peer.seal(MCAST))
    assert driver.timer_deadline_ns == soon
    await wait_until(lambda: bool(listener.timeouts))
    assert listener.timeouts[0] >= soon
    assert not any(name == "timeout" for name, _ in core.calls), "the core was not due"
    assert driver.timer_deadline_ns == late, "re-armed at the core's deadline"
    await driver.close()


async def test_effects_in_order_then_submissions() -> None:
    driver, core, listener, peer = make_driver()
    core.on_receive = [DELIVER, CONF]
    core.on_submit = [DELIVER]
    listener.submit_after = True
    driver.datagram_received(peer.seal(MCAST))
    assert listener.log == ["deliver", "configuration", "after", "deliver"]
    assert [name for name, _ in core.calls] == ["receive", "submit"]
    assert driver.configuration == CONF
    await driver.close()


async def test_an_exception_from_the_core_is_fail_stop() -> None:
    driver, core, listener, peer = make_driver()
    core.fail_with = gcs.InvariantViolation("TEST-2: broken")
    driver.datagram_received(peer.seal(MCAST))
    assert listener.failures == [core.fail_with]
    assert [name for name, _ in core.calls] == ["receive", "leave"], "a leave is attempted"
    driver.datagram_received(peer.seal(MCAST))
    assert len(core.calls) == 2, "a failed core is not fed again"
    try:
        driver.submit(Record("g", 1, 0, b"z"), False)
    except gcs.NodeClosed:
        pass
    else:
        raise AssertionError("submit after fail-stop must raise")
    await driver.close()


async def test_datagrams_before_the_core_started_are_dropped_and_counted() -> None:
    """The socket opens before the core starts (the bind can fail first); a peer's datagram in
    between must not reach a core that has not started — its first input is always start."""
    core = ScriptedCore()
    channel = Channel(1, 1, "t", None, peers=(1, 2))
    recorder = FlightRecorder(
        core.config, seed=0, boot_id=1, cluster_name="t", key=None, capacity=0
    )
    driver = Driver(
        asyncio.get_running_loop(),
        core,  # type: ignore[arg-type]
        channel,
        recorder,
        StateStore(None, 1),
        Listener(),
        {2: ("127.0.0.1", 9)},
        on_failure=lambda exc: None,
    )
    peer = Channel(2, 1, "t", None, peers=(1, 2))
    driver.datagram_received(peer.seal(MCAST))
    assert core.calls == [] and driver.statistics().before_start == 1


def burst(first_seq: int, mcasts: int, records: int) -> list[Effect]:
    """The Deliver effects of ``mcasts`` consecutive mcasts of ``records`` records each."""
    config = ConfigId(ConfigurationKind.REGULAR, RING)
    record = Record("g", 1, 0, b"x")
    return [
        Deliver(config, RING, seq, 2, False, (record,) * records)
        for seq in range(first_seq, first_seq + mcasts)
    ]


def loop_turns(log: list[str]) -> asyncio.Handle:
    """Append "turn" to ``log`` on every pass of the event loop until cancelled."""
    loop = asyncio.get_running_loop()
    handle: asyncio.Handle

    def turn() -> None:
        nonlocal handle
        log.append("turn")
        handle = loop.call_soon(turn)

    handle = loop.call_soon(turn)
    return handle


def slices(log: list[str]) -> list[int]:
    """How many deliveries the listener got between consecutive loop turns (empty runs left out)."""
    runs = "".join("d" if entry == "deliver" else "|" if entry == "turn" else "" for entry in log)
    return [len(run) for run in runs.split("|") if run]


@pytest.mark.req("API-5-3")
async def test_a_burst_of_deliveries_is_handed_over_in_slices() -> None:
    """API-5-3: one input that makes 3,000 records deliverable is handed to the listener at most
    one slice (1,000 records here, ending after the mcast that reaches it) per loop callback,
    in order, with the loop running in between; the token it forwards goes after the burst,
    and the listener may submit only once the whole burst is handed over."""
    sent: list[bytes] = []
    driver, core, listener, peer = make_driver(delivery_slice=1_000, sent=sent)
    core.on_receive = [*burst(1, 12, 250), Send(2, TOKEN)]  # 3,000 records, then the token
    ticker = loop_turns(listener.log)
    await asyncio.sleep(0)  # the ticker is now part of every loop pass
    driver.datagram_received(peer.seal(MCAST))
    assert listener.delivered == [(seq, 250) for seq in range(1, 5)], "one slice, synchronously"
    assert sent == [], "the token waits behind the deliveries"
    await wait_until(lambda: "after" in listener.log)
    ticker.cancel()
    assert listener.delivered == [(seq, 250) for seq in range(1, 13)], "all of it, in order"
    assert slices(listener.log) == [4, 4, 4], "at most 1,000 records between two loop turns"
    assert len(sent) == 1 and listener.log.count("after") == 1
    assert listener.log.index("after") > max(
        i for i, entry in enumerate(listener.log) if entry == "deliver"
    )
    assert driver.statistics().delivery_slices == 3, "after 1,000, 2,000 and 3,000 records"
    await driver.close()


@pytest.mark.req("API-5-3")
async def test_inputs_during_a_burst_wait_behind_it() -> None:
    """API-5-3: a datagram that arrives while a burst is being handed over reaches the core, but
    its effects run after the burst's; a submit in between is refused with SendQueueFull (the
    group layer submits it after the batch), so the core never runs ahead of the listener."""
    driver, core, listener, peer = make_driver(delivery_slice=100)
    core.on_receive = burst(1, 5, 50)
    driver.datagram_received(peer.seal(MCAST))
    assert [seq for seq, _ in listener.delivered] == [1, 2]
    core.on_receive = burst(99, 1, 1)
    driver.datagram_received(peer.seal(MCAST))
    assert [name for name, _ in core.calls] == ["receive", "receive"]
    try:
        driver.submit(Record("g", 1, 0, b"late"), False)
    except gcs.SendQueueFull:
        pass
    else:
        raise AssertionError("a submit during a burst must wait for it")
    await wait_until(lambda: "after" in listener.log)
    assert [seq for seq, _ in listener.delivered] == [1, 2, 3, 4, 5, 99]
    driver.submit(Record("g", 1, 0, b"late"), False)  # accepted once the burst is over
    assert [name for name, _ in core.calls][-1] == "submit"
    await driver.close()


@pytest.mark.req("API-5-3")
async def test_closing_during_a_burst_executes_what_waits() -> None:
    """A leave's multicast can sit behind a burst: closing executes the rest at once."""
    sent: list[bytes] = []
    driver, core, listener, peer = make_driver(delivery_slice=10, sent=sent)
    core.on_receive = [*burst(1, 4, 10), Send(2, TOKEN)]
    driver.datagram_received(peer.seal(MCAST))
    assert len(listener.delivered) == 1 and sent == []
    await driver.close()
    assert len(listener.delivered) == 4 and len(sent) == 1


async def test_multicasts_follow_the_peers_when_they_change() -> None:
    """A multicast goes to every destination with an address, once each, and nowhere else; the
    addresses it uses follow ``set_peers`` (the per-destination-tuple routes are not kept past
    a change of the node list)."""
    driver, _, _, _ = make_driver()
    sent: list[tuple[bytes, object]] = []
    endpoint: Any = SimpleNamespace(
        transport=SimpleNamespace(sendto=lambda data, addr: sent.append((data, addr))),
        multicast=None,
        close=lambda: None,
        errors=0,
        rcvbuf_bytes=0,
        sndbuf_bytes=0,
    )
    driver.attach(endpoint)
    driver._multicast(MCAST, (2, 3))
    assert [addr for _, addr in sent] == [("127.0.0.1", 9)]
    assert driver.statistics().unknown_destination == 1
    sent.clear()
    driver.set_peers({2: ("127.0.0.1", 9), 3: ("127.0.0.1", 10)})
    driver._multicast(MCAST, (2, 3))
    assert [addr for _, addr in sent] == [("127.0.0.1", 9), ("127.0.0.1", 10)]
    assert len({data for data, _ in sent}) == 1, "sealed once, sent to each"
    assert driver.statistics().unknown_destination == 1
    await driver.close()
