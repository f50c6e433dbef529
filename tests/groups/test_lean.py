"""The group layer's receive path makes one object per delivered message (issue 15, lever 2).

Counted with ``sys.getallocatedblocks`` (live small-object blocks), never timed (rule 6): the
objects that exist while a delivery is handed up are the ones the collector has to walk.
"""

from __future__ import annotations

import gc
import sys

from gcs.api.stream import EventStream
from gcs.groups.driver import GroupDriver
from gcs.groups.state import Emit, EmitMessages
from gcs.groups.views import Member, Message
from gcs.wire.frames import Record
from tests.groups.test_groups import DATA, JOIN, R4, deliver, events, settled_state

COUNT = 2000
"""Messages in the measured delivery: large enough that a per-message object shows as COUNT."""


class StreamApp:
    """The node's side, reduced to what it does per event: append to the member's stream."""

    def __init__(self) -> None:
        self.stream: EventStream[object] = EventStream(10 * COUNT)
        self.blocks_at_first: int | None = None

    def on_ring(self, configuration: object) -> None: ...

    def on_event(self, group: str, handles: tuple[int, ...], event: object) -> None:
        if self.blocks_at_first is None:  # every output of the delivery exists by now
            self.blocks_at_first = sys.getallocatedblocks()
        self.stream.put(event)

    def on_member_closed(self, group: str, handle: int) -> None: ...

    def on_persist_quorum(self, expected_votes: int) -> None: ...

    def on_persist_nodes(self, nodes: object) -> None: ...

    def on_node_list(self, event: object) -> None: ...


def _submit(record: Record, safe: bool) -> None: ...


async def test_a_packed_delivery_makes_one_object_per_message() -> None:
    """A delivery of COUNT messages for one local member adds about COUNT live blocks (the
    ``Message`` values) while it is handed up, and keeps about as many once in the stream: no
    ``Member``, ``Emit`` or key object per message."""
    state = settled_state(members=(1, 2))
    state.add_local("g", 7)
    app = StreamApp()
    driver = GroupDriver(state, _submit, app)
    state.on_deliver(deliver(R4, 10, 1, Record("g", 7, JOIN, b"")))  # our own join: a view
    state.on_deliver(deliver(R4, 11, 2, Record("g", 5, JOIN, b"")))  # node 2's member joins
    warm = tuple(Record("g", 5, DATA, b"w%d" % i) for i in range(3))
    driver.on_deliver(0, deliver(R4, 12, 2, *warm))  # caches, free lists, the stream's deque
    records = tuple(Record("g", 5, DATA, b"m%d" % i) for i in range(COUNT))
    burst = deliver(R4, 13, 2, *records)
    app.blocks_at_first = None
    gc.disable()
    try:
        before = sys.getallocatedblocks()
        driver.on_deliver(0, burst)
        after = sys.getallocatedblocks()
    finally:
        gc.enable()
    assert app.blocks_at_first is not None
    peak, kept = app.blocks_at_first - before, after - before
    assert peak <= COUNT + 64, f"{peak} live blocks while handing up {COUNT} messages"
    assert kept <= COUNT + 64, f"{kept} blocks kept for {COUNT} queued messages"
    assert kept >= COUNT, "the messages themselves are live (the count measures something)"
    assert len(app.stream) == COUNT + 3  # the warm-up messages, the burst


def test_consecutive_messages_share_one_output_in_order() -> None:
    """Consecutive messages of one delivery for the same members become one ``EmitMessages``,
    in delivery order; a message of another group splits the run; a lone message stays an
    ``Emit``."""
    state = settled_state()
    state.add_local("a", 7)
    state.add_local("b", 8)
    state.on_deliver(deliver(R4, 10, 1, Record("a", 7, JOIN, b""), Record("b", 8, JOIN, b"")))
    recs = [Record("a", 7, DATA, b"1"), Record("a", 7, DATA, b"2"), Record("b", 8, DATA, b"3")]
    recs.append(Record("a", 7, DATA, b"4"))
    out = state.on_deliver(deliver(R4, 11, 1, *recs))
    assert [type(o) for o in out] == [EmitMessages, Emit, Emit]
    batch = out[0]
    assert isinstance(batch, EmitMessages) and batch.group == "a" and batch.handles == (7,)
    assert [m.data for m in batch.messages] == [b"1", b"2"]
    got = events(out)
    assert [m.data for m in got if isinstance(m, Message)] == [b"1", b"2", b"3", b"4"]
    senders = {m.sender for m in got if isinstance(m, Message)}
    assert senders == {Member(1, 7), Member(1, 8)}
    first, second = (m for m in got[:2] if isinstance(m, Message))
    assert first.sender is second.sender, "one Member value per sender, not one per message"


def test_new_message_is_the_same_value_as_the_dataclass_constructor() -> None:
    """The receive path's constructor makes exactly what ``Message(...)`` makes."""
    from gcs.groups.views import ViewId, new_message

    args = (Member(2, 5), b"data", True, ViewId(R4, 3, 1), R4, 9)
    fast, slow = new_message(*args), Message(*args)
    assert type(fast) is Message
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert (fast.to, fast.uncommitted) == (None, False)
