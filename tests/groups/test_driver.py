"""The group layer's one driver: every output of ``GroupState`` interpreted, the records sent.

A scripted stand-in for ``GroupState`` returns chosen outputs, so each test checks one duty of the
driver: what goes up to the application, what goes down to the core and in which order, the
last_man_standing window as a deadline (RFC 0008 §3.5), and self-delivery in submission order
(RT-1).
"""

from __future__ import annotations

from typing import Any

import pytest

import gcs
from gcs.groups.driver import GroupDriver
from gcs.groups.records import ANNOUNCE_GROUP
from gcs.groups.state import AnnounceNeeded, Emit, MemberClosed, Output
from gcs.groups.views import Member, Reason, View, ViewId, ViewReason
from gcs.quorum.primary import LmsTimer, PersistQuorum
from gcs.totem.effects import (
    ChangeReason,
    ConfigId,
    Configuration,
    ConfigurationKind,
    Deliver,
    ReasonKind,
)
from gcs.wire.frames import Record, RecordFlags, RingId

# The scripted state stands in for a GroupState; the compiled driver accepts only the real class,
# so in a compiled run these tests run on the pure modules.
pytestmark = pytest.mark.pure_python

JOIN, LEAVE = int(RecordFlags.JOIN), int(RecordFlags.LEAVE)
RING = RingId(seq=8, rep=1)
CONF = Configuration(
    ConfigurationKind.REGULAR, RING, (1, 2), (), (2,), ChangeReason(ReasonKind.MERGE)
)
VIEW = View(ViewId(RING, 0, 0), (Member(1, 7),), (), (), False, Reason(ViewReason.NODE_UP))
ANNOUNCEMENT = Record(ANNOUNCE_GROUP, 0, JOIN, b"announcement")
LMS = Record(ANNOUNCE_GROUP, 0, 0, b"lower expected votes")


class ScriptedState:
    """Just enough of ``GroupState`` for the driver: returns the outputs a test scripts."""

    def __init__(self) -> None:
        self.me = 1
        self.outputs: list[Output] = []
        self.submitted: list[Record] = []
        self.lms_applies = True

    def add_local(self, group: str, handle: int, **modes: bool) -> None:
        pass

    def on_configuration(self, conf: Configuration) -> list[Output]:
        out, self.outputs = self.outputs, []
        return out

    def on_deliver(self, deliver: Deliver) -> list[Output]:
        return self.on_configuration(CONF)

    def note_submitted(self, record: Record) -> None:
        self.submitted.append(record)

    def announcement(self) -> Record:
        return ANNOUNCEMENT

    def lms_record(self, ring: RingId) -> Record | None:
        return LMS if self.lms_applies and ring == RING else None


class Core:
    """A send queue with room for ``room`` records; refuses the rest with SendQueueFull."""

    def __init__(self, room: int = 100) -> None:
        self.room = room
        self.queued: list[Record] = []

    def submit(self, record: Record, safe: bool) -> None:
        if len(self.queued) >= self.room:
            raise gcs.SendQueueFull("full")
        self.queued.append(record)


class App:
    """Records the upcalls; a slow member (``slow``) leaves from inside the upcall."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.driver: GroupDriver[Any] | None = None
        self.slow: tuple[str, int] | None = None

    def on_ring(self, configuration: Configuration) -> None:
        self.calls.append(("configuration", configuration.ring_id))

    def on_event(self, group: str, handles: tuple[int, ...], event: object) -> None:
        self.calls.append(("event", group, handles, event))
        if self.slow is not None and self.driver is not None:
            self.driver.leave(*self.slow)

    def on_member_closed(self, group: str, handle: int) -> None:
        self.calls.append(("closed", group, handle))

    def on_persist_quorum(self, expected_votes: int) -> None:
        self.calls.append(("persist", expected_votes))

    def on_persist_nodes(self, nodes: object) -> None:
        self.calls.append(("persist_nodes", nodes))

    def on_node_list(self, event: object) -> None:
        self.calls.append(("node_list", event))


class Tag:
    def __init__(self) -> None:
        self.log: list[str] = []

    def sent(self) -> None:
        self.log.append("sent")

    def refused(self, error: Exception) -> None:
        self.log.append(f"refused {type(error).__name__}")

    def delivered(self) -> None:
        self.log.append("delivered")


def make(room: int = 100) -> tuple[GroupDriver[Tag], ScriptedState, Core, App]:
    state, core, app = ScriptedState(), Core(room), App()
    driver: GroupDriver[Tag] = GroupDriver(state, core.submit, app)  # type: ignore[arg-type]
    app.driver = driver
    driver.after_effects(0)  # the core's start ran: the driver submits from now on
    return driver, state, core, app


def data(i: int, handle: int = 7) -> Record:
    return Record("g", handle, 0, str(i).encode())


def test_nothing_is_submitted_before_the_core_has_started() -> None:
    """A simulated host makes its layer, and its members' joins, before it starts the core."""
    state, core, app = ScriptedState(), Core(), App()
    driver: GroupDriver[Tag] = GroupDriver(state, core.submit, app)  # type: ignore[arg-type]
    driver.join("g", 7)
    assert not driver.send(data(0), False, Tag())
    assert core.queued == []
    driver.after_effects(0)
    assert core.queued == [Record("g", 7, JOIN, b""), data(0)]


def test_every_output_reaches_the_application_in_order() -> None:
    driver, state, core, app = make()
    state.outputs = [
        Emit("g", (7,), VIEW),
        PersistQuorum(2),
        MemberClosed("g", 7),
        AnnounceNeeded(RING),
    ]
    driver.on_configuration(5, CONF)
    assert app.calls == [
        ("configuration", RING),
        ("event", "g", (7,), VIEW),
        ("persist", 2),
        ("closed", "g", 7),
    ]
    assert core.queued == [], "the announcement waits for the end of the batch"
    driver.after_effects(5)
    assert core.queued == [ANNOUNCEMENT]


def test_records_asked_for_inside_a_step_wait_for_after_effects() -> None:
    """A slow consumer leaves while its events are handed out: the core is not re-entered."""
    driver, state, core, app = make()
    app.slow = ("g", 7)
    state.outputs = [Emit("g", (7,), VIEW)]
    driver.on_configuration(5, CONF)
    assert core.queued == []
    driver.after_effects(5)
    assert core.queued == [Record("g", 7, LEAVE, b"")]


def test_control_goes_first_and_data_waits_for_the_window() -> None:
    driver, _, core, _ = make(room=1)
    assert driver.send(data(0), False, Tag())
    tags = [Tag(), Tag()]
    assert not any(driver.send(data(i), False, t) for i, t in zip((1, 2), tags, strict=True))
    driver.join("h", 5)  # refused too: the queue is full
    core.room = 2
    assert not driver.drain(), "room for one record only: something still waits"
    assert [r.group for r in core.queued] == ["g", "h"], "control before waiting data"
    core.room = 10
    driver.on_send_window(False)
    assert driver.drain() and driver.waiting == 2, "a closed window holds data back"
    driver.on_send_window(True)
    driver.after_effects(6)
    assert [r.data for r in core.queued if r.group == "g"] == [b"0", b"1", b"2"]
    assert all(t.log == ["sent"] for t in tags)


def test_own_deliveries_settle_tags_in_submission_order() -> None:
    driver, _, core, _ = make()
    tags = [Tag(), Tag()]
    for i, tag in enumerate(tags):
        driver.send(data(i), False, tag)
    config = ConfigId(ConfigurationKind.REGULAR, RING)
    driver.on_deliver(6, Deliver(config, RING, 1, 1, False, tuple(core.queued)))
    assert [t.log for t in tags] == [["sent", "delivered"]] * 2
    assert driver.in_flight == 0


def test_own_deliveries_out_of_order_are_an_invariant_violation() -> None:
    driver, _, _, _ = make()
    driver.send(data(0), False, Tag())
    driver.send(data(1), False, Tag())
    config = ConfigId(ConfigurationKind.REGULAR, RING)
    with pytest.raises(gcs.InvariantViolation, match="RT-1"):
        driver.on_deliver(6, Deliver(config, RING, 1, 1, False, (data(1),)))


def test_a_refused_record_is_dropped_and_its_sender_told() -> None:
    driver, _, _, _ = make()

    def too_large(record: Record, safe: bool) -> None:
        raise gcs.MessageTooLarge(10, 5)

    driver._submit = too_large
    tag = Tag()
    assert not driver.send(data(0), False, tag)
    assert tag.log == ["refused MessageTooLarge"] and driver.waiting == 0


def test_a_leaving_member_takes_back_its_waiting_sends_point_to_point_included() -> None:
    driver, _, _, _ = make(room=0)
    mine, directed, theirs = Tag(), Tag(), Tag()
    driver.send(data(0), False, mine)
    driver.send(Record(ANNOUNCE_GROUP, 7, 0, b"to one member"), False, directed)
    driver.send(data(1, handle=9), False, theirs)
    assert driver.leave("g", 7) == [mine, directed]
    assert driver.waiting == 1


def test_the_last_man_standing_window_is_a_deadline() -> None:
    driver, state, core, _ = make()
    state.outputs = [LmsTimer(RING, 1_000)]
    driver.on_configuration(5_000, CONF)
    assert driver.next_deadline_ns == 6_000
    driver.on_timeout(5_999)
    assert core.queued == [] and driver.next_deadline_ns == 6_000, "not due yet"
    driver.on_timeout(6_000)
    assert core.queued == [LMS] and driver.next_deadline_ns is None
    state.outputs = [LmsTimer(RING, 1_000)]
    driver.on_configuration(7_000, CONF)
    state.lms_applies = False  # the ring changed since: nothing to propose
    driver.on_timeout(9_000)
    assert core.queued == [LMS]


def test_a_closed_driver_hands_back_every_tag_and_submits_nothing() -> None:
    driver, state, core, _ = make(room=1)
    sent, waiting = Tag(), Tag()
    driver.send(data(0), False, sent)
    driver.send(data(1), False, waiting)
    state.outputs = [LmsTimer(RING, 10)]
    driver.on_configuration(0, CONF)
    assert set(map(id, driver.close())) == {id(sent), id(waiting)}
    assert driver.next_deadline_ns is None
    core.room = 10
    assert driver.drain() and len(core.queued) == 1
