"""The state directory: atomic writes, increasing boot ids, serialised ring-seq writes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import gcs
from gcs.runtime.persist import RingSeqWriter, StateStore


def test_boot_ids_increase_without_a_state_dir() -> None:
    first = StateStore(None, 77).open().boot_id
    second = StateStore(None, 77).open().boot_id
    assert second > first


def test_ring_seq_and_boot_id_survive_in_the_directory(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s", 1)
    state = store.open()
    assert state.ring_seq is None
    store.write_ring_seq(12)
    store.close()
    (tmp_path / "s" / "boot_id").write_text("99999999999999\n")  # a clock far ahead
    again = StateStore(tmp_path / "s", 1)
    state = again.open()
    again.close()
    assert state.ring_seq == 12
    assert state.boot_id == 100000000000000, "stored + 1 wins over a clock that is behind"
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["boot_id", "lock", "ring_seq"]


@pytest.mark.req("SEC-7-1")
def test_boot_id_is_the_larger_of_stored_plus_one_and_the_clock(tmp_path: Path) -> None:
    """RFC 0005 §7: a persisted counter that never falls behind the wall clock, written before
    the node seals anything: it survives a clock stepped back and a wiped directory."""
    before_ms = time.time_ns() // 1_000_000
    (tmp_path / "boot_id").write_text("5\n")  # an old boot id, far behind the clock
    store = StateStore(tmp_path, 1)
    first = store.open().boot_id
    store.close()
    assert first >= before_ms, "the clock wins over a stored id it is ahead of"
    assert int((tmp_path / "boot_id").read_text()) == first, "persisted at once"
    again = StateStore(tmp_path, 1)
    assert again.open().boot_id > first
    again.close()
    (tmp_path / "boot_id").unlink()  # a wiped directory: the clock still moves it forward
    wiped = StateStore(tmp_path, 1)
    assert wiped.open().boot_id > first
    wiped.close()


def test_a_corrupt_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "ring_seq").write_text("twelve")
    with pytest.raises(gcs.ConfigError, match="ring_seq"):
        StateStore(tmp_path, 1).open()


async def test_writes_are_serialised_and_confirmed_later(tmp_path: Path) -> None:
    store = StateStore(tmp_path, 1)
    store.open()
    done: list[int] = []
    errors: list[BaseException] = []
    writer = RingSeqWriter(asyncio.get_running_loop(), store, done.append, errors.append)
    writer.persist(4)
    writer.persist(8)
    writer.persist(12)
    assert done == [], "never confirmed from inside the call that asked"
    while not done or done[-1] != 12:
        await writer.wait_idle()
        await asyncio.sleep(0)
    assert done == [4, 12], "requests made during a write collapse into one write"
    assert (tmp_path / "ring_seq").read_text() == "12\n"
    assert errors == []
    store.close()


async def test_without_a_directory_confirmation_still_comes_from_the_loop() -> None:
    done: list[int] = []
    writer = RingSeqWriter(asyncio.get_running_loop(), StateStore(None, 1), done.append, print)
    writer.persist(4)
    assert done == []
    await writer.wait_idle()
    await asyncio.sleep(0)
    assert done == [4]
