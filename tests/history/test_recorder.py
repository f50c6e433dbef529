"""The flight recorder: a live node's dump replays into a fresh core with the same effects;
an invariant violation is fail-stop and dumps the recorder automatically."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import cbor2
import pytest

import gcs
from gcs.history import recorder as rec
from gcs.runtime.driver import Driver
from gcs.totem.effects import Effect
from gcs.wire.frames import OrfToken
from tests.runtime.cluster import (
    configs,
    make_key,
    next_event,
    running,
    view_where,
    wait_until,
)


@pytest.fixture
def live_effects(monkeypatch: pytest.MonkeyPatch) -> list[list[Effect]]:
    """Every effect list node 1's driver executes, one entry per core call."""
    calls: list[list[Effect]] = []
    original = Driver._execute

    def execute(self: Driver, effects: list[Effect]) -> None:
        if self._core.me == 1:
            calls.append(list(effects))
        original(self, effects)

    monkeypatch.setattr(Driver, "_execute", execute)
    return calls


async def _traffic(nodes: list[gcs.Node]) -> None:
    groups = await asyncio.gather(*(n.join("rec") for n in nodes))
    tickets = [await g.send(f"m{i}".encode(), safe=i % 2 == 0) for i, g in enumerate(groups * 5)]
    await asyncio.gather(*(t.delivered() for t in tickets))
    await groups[2].leave()


@pytest.mark.parametrize("keyed", [False, True], ids=["unkeyed", "keyed"])
async def test_replay_reproduces_the_live_effects(
    tmp_path: Path, live_effects: list[list[Effect]], keyed: bool
) -> None:
    """Received frames are recorded as datagrams; the dump decrypts them with the key."""
    key = make_key(tmp_path) if keyed else None
    async with running(configs(3, key_file=key)) as nodes:
        await _traffic(nodes)
        path = await nodes[0].dump_flight_recorder(tmp_path / "node1.cbor")
    dump = rec.load_dump(path)
    assert dump.origin is None and dump.complete, "short run: the dump starts at the start"
    assert dump.inputs[0].kind is rec.InputKind.START
    assert {i.kind for i in dump.inputs} >= {
        rec.InputKind.RECEIVE,
        rec.InputKind.SUBMIT,
        rec.InputKind.PERSISTED,
    }
    replayed = rec.replay(path)
    expected = [e for call in live_effects[: len(dump.inputs)] for e in call]
    assert replayed == expected


async def test_replay_from_a_snapshot_when_the_recorder_wrapped(
    tmp_path: Path, live_effects: list[list[Effect]]
) -> None:
    async with running(configs(3, recorder_inputs=10)) as nodes:
        await _traffic(nodes)
        assert nodes[0].statistics().runtime.recorder_snapshots >= 2
        calls = len(live_effects)  # the export below happens before the dump's first await
        path = await nodes[0].dump_flight_recorder(tmp_path / "wrapped.cbor")
    dump = rec.load_dump(path)
    assert isinstance(dump.origin, bytes), "the dump starts at a core snapshot"
    assert 10 <= len(dump.inputs) <= 20
    replayed = [list(step.effects) for step in rec.replay_steps(dump)]
    assert replayed == live_effects[calls - len(dump.inputs) : calls]


async def test_a_tampered_dump_is_detected(tmp_path: Path) -> None:
    async with running(configs(2)) as nodes:
        path = await nodes[0].dump_flight_recorder(tmp_path / "d.cbor")
    dump = rec.load_dump(path)
    index = next(i for i, item in enumerate(dump.inputs) if item.effects > 0)
    bad = list(dump.inputs)
    item = bad[index]
    bad[index] = rec.Input(item.kind, item.now_ns, item.arg1, item.arg2, item.effects + 1)
    tampered = rec.Dump(**{**_fields(dump), "inputs": tuple(bad)})
    with pytest.raises(gcs.ReplayError, match=f"input {index}"):
        rec.replay(tampered)
    with pytest.raises(gcs.ReplayError):
        rec.decode_dump(b"not a dump")


def _fields(dump: rec.Dump) -> dict[str, Any]:
    return {name: getattr(dump, name) for name in rec.Dump.__dataclass_fields__}


@pytest.mark.pure_python
async def test_invariant_violation_is_fail_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfgs = configs(3, state_root=tmp_path)
    async with running(cfgs) as nodes:
        target = nodes[0]
        groups = await asyncio.gather(*(n.join("fs") for n in nodes))
        for g in groups:
            await view_where(g, lambda v: len(v.members) == 3)
        core: Any = target._core
        real_receive = core.receive

        def broken(now_ns: int, src: int, frame: Any) -> Any:
            if isinstance(frame, OrfToken):
                raise gcs.InvariantViolation("TEST-1: injected")
            return real_receive(now_ns, src, frame)

        monkeypatch.setattr(core, "receive", broken)
        # Queued in the core, so it waits for the token, whose arrival breaks the node.
        pending = await groups[0].send(b"never delivered here")
        await groups[1].send(b"delivered by the others")
        await wait_until(lambda: target.closed)

        with pytest.raises(gcs.InvariantViolation, match="TEST-1"):
            await pending.delivered()
        with pytest.raises(gcs.InvariantViolation):
            await groups[0].__anext__()
        with pytest.raises(gcs.InvariantViolation):
            await groups[0].send(b"x")
        with pytest.raises(gcs.InvariantViolation):
            await target.join("again")
        for g in groups[1:]:  # the failed node sent a leave: the others see it go at once
            view = await view_where(g, lambda v: groups[0].member in v.left)
            assert view.reason.kind is gcs.ViewReason.LEAVE
        await target.close()  # closing a failed node is quiet

    (dump_path,) = (tmp_path / "node1").glob("gcs-flight-1-*.cbor")
    dump = rec.load_dump(dump_path)
    assert "TEST-1" in dump.reason
    failed = [i for i, item in enumerate(dump.inputs) if item.effects == rec.RAISED]
    assert failed and dump.inputs[failed[0]].kind is rec.InputKind.RECEIVE
    # The injected failure is not in the core, so the replay diverges exactly there.
    with pytest.raises(gcs.ReplayError, match=f"input {failed[0]} "):
        rec.replay(dump)


async def test_flight_recorder_can_be_disabled() -> None:
    async with running(configs(1, recorder_inputs=0)) as nodes:
        with pytest.raises(gcs.GcsError, match="disabled"):
            await nodes[0].dump_flight_recorder()
        group = await nodes[0].join("solo")
        assert isinstance(await next_event(group), gcs.View)


async def test_replay_node_command_reproduces_a_dump_and_reports_divergence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``gcs simulate replay-node FILE``: exit 0 on an exact replay, 4 on a divergence, 1 on a
    file that is not a dump."""
    from gcs.cli import main

    async with running(configs(3)) as nodes:
        await _traffic(nodes)
        path = await nodes[1].dump_flight_recorder(tmp_path / "node2.cbor")
    assert main(["simulate", "replay-node", str(path)]) == 0
    out = capsys.readouterr().out
    assert "reproduced exactly" in out and "node 2" in out
    raw = cbor2.loads(path.read_bytes())
    index = next(i for i, item in enumerate(raw["inputs"]) if item[4] > 0)
    raw["inputs"][index][4] += 1  # the live node "had" one more effect at this input
    tampered = tmp_path / "tampered.cbor"
    tampered.write_bytes(cbor2.dumps(raw))
    assert main(["simulate", "replay-node", str(tampered)]) == 4
    assert f"input {index}" in capsys.readouterr().out
    junk = tmp_path / "junk.cbor"
    junk.write_bytes(b"not a dump")
    assert main(["simulate", "replay-node", str(junk)]) == 1


def test_segments_are_bounded_in_bytes_as_well_as_inputs() -> None:
    """Large datagrams and messages start a new segment before ``capacity`` inputs, so the
    recorder's memory stays near two segments' bytes whatever the message size."""
    from gcs.totem.config import TotemConfig
    from gcs.wire.frames import Record

    recorder = rec.FlightRecorder(
        TotemConfig(node_id=1, nodes=(1, 2)),
        seed=1,
        boot_id=1,
        cluster_name="t",
        key=None,
        capacity=1000,
        segment_bytes=1000,
    )
    for i in range(10):
        recorder.record_receive(i, 2, bytes(300))
        recorder.record_submit(i, Record("g", 1, 0, bytes(300)), False)
    assert recorder.snapshots == 4  # 4 inputs hold 1,200 bytes: the 5th starts a new segment
    exported = recorder.export("test")
    assert len(exported["entries"]) == len(exported["effects"]) <= 8
    held = sum(
        len(e[3]) if e[0] is rec.InputKind.RECEIVE else len(e[2][3]) for e in exported["entries"]
    )
    assert held <= 2 * (1000 + 300)
