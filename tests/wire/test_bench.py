"""``gcs bench wire`` runs, reports every configuration, and its numbers are sane."""

from __future__ import annotations

import json

import pytest

from gcs.bench import wire
from gcs.cli import main


def test_bench_wire_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "wire", "--json", "--repeat", "1", "--frames", "20"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["results"]
    assert len(rows) == len(wire.SUITES) * len(wire.FRAMES) == 12
    for row in rows:
        assert row["seal_per_s"] > 0 and row["open_per_s"] > 0
        assert row["seal_us"] > 0 and row["open_us"] > 0
        assert 48 <= row["datagram_bytes"] <= 1600 or row["suite"] == "unkeyed"
    sizes = {row["frame"]: row["datagram_bytes"] for row in rows if row["suite"] == "aes-256-gcm"}
    assert sizes["mcast 1,400 B"] > 1400 > sizes["mcast 64 B"]


def test_bench_wire_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "wire", "--repeat", "1", "--frames", "5"]) == 0
    out = capsys.readouterr().out
    assert "chacha20-poly1305" in out and "mcast 20 x 64 B" in out
    assert len(out.splitlines()) == 5 + 12
    assert out.splitlines()[1].startswith("build: ")  # compiled (mypyc ...) or pure Python


def test_bench_needs_a_benchmark_name() -> None:
    with pytest.raises(SystemExit) as info:
        main(["bench"])
    assert info.value.code == 2
