"""``gcs bench ring``: a smoke run with tiny counts, the report's shape, and the verification.

These tests never look at a speed: they check that every requested figure is reported, that
each phase was verified (all receivers delivered the same sequence and the full count), and
that the verification itself catches a lost, reordered or different sequence.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gcs.bench.ring import BenchFailed, format_report, verify_stream
from gcs.bench.ring_worker import sequence_digest
from gcs.cli import main

pytestmark = pytest.mark.processes

_TINY = [
    "--runs",
    "1",
    "--seconds",
    "0.3",
    "--count",
    "300",
    "--quiet",
    "--json",
    "--big-frames",
    "0",
]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["bench", "ring", *_TINY, *args]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def test_smoke_throughput_latency_leave(capsys: pytest.CaptureFixture[str]) -> None:
    report = _run(
        capsys,
        *("--only", "tput,conc,ping,leave", "--sizes", "64,1024"),
        *("--pings", "5", "--gap-pings", "2", "--sealing", "off"),
    )
    assert report["benchmark"] == "ring" and report["mode"] == "loopback"
    assert report["verified"] is True
    assert [v["name"] for v in report["variants"]] == ["unsealed, classic", "unsealed, accelerated"]
    for variant in report["variants"]:
        figures = variant["figures"]
        for key in ("tput_64_msgs", "tput_1024_MBps", "conc_64_msgs", "peak_rss_mb"):
            assert figures[key] > 0
        for key in ("rtt_agreed_b2b_p50_us", "rtt_safe_10ms_p99_us", "leave_ring_view_ms"):
            assert key in figures
        (run,) = variant["runs"]
        phases = {check["phase"]: check for check in run["checks"]}
        assert phases["tput 64 B"]["messages"] == 300
        assert phases["conc 64 B"]["messages"] == 3 * 300
        assert all(check["receivers"] == 3 for check in phases.values())
    table = format_report(report)
    assert "1 sender 64 B" in table and "plain accel" in table


def test_smoke_sealed_failover(capsys: pytest.CaptureFixture[str]) -> None:
    report = _run(
        capsys, "--only", "failover", "--sealing", "on", "--ring", "classic", "--nodes", "3"
    )
    names = [v["name"] for v in report["variants"]]
    assert names == ["sealed, classic", "sealed, classic, corosync timers"]
    default, corosync = (v["figures"] for v in report["variants"])
    assert default["failover_default_ms"] > 0 and corosync["failover_corosync_ms"] > 0
    for variant in report["variants"]:
        (check,) = variant["runs"][0]["checks"]
        assert check["receivers"] == 2  # the survivors, who delivered the same sequence


def _result(seqs: list[tuple[int, int]], ends: dict[int, int]) -> dict[str, Any]:
    return {
        "received": len(seqs),
        "digest": sequence_digest(seqs),
        "ends": {str(k): v for k, v in ends.items()},
        "errors": [],
    }


def test_verification_accepts_identical_sequences() -> None:
    seqs = [(1, 1), (2, 1), (1, 2), (2, 2)]
    results = {n: _result(seqs, {1: 2, 2: 2}) for n in (1, 2, 3)}
    assert verify_stream("t", results, [1, 2])["messages"] == 4


def test_verification_rejects_another_order() -> None:
    results = {
        1: _result([(1, 1), (2, 1)], {1: 1, 2: 1}),
        2: _result([(2, 1), (1, 1)], {1: 1, 2: 1}),
    }
    with pytest.raises(BenchFailed, match="different sequences"):
        verify_stream("t", results, [1, 2])


def test_verification_rejects_a_short_count() -> None:
    results = {1: _result([(1, 1), (1, 2)], {1: 2}), 2: _result([(1, 1)], {1: 2})}
    with pytest.raises(BenchFailed, match="delivered 1 of 2"):
        verify_stream("t", results, [1])


def test_verification_rejects_a_gap_reported_by_a_receiver() -> None:
    results = {1: _result([(1, 1)], {1: 1}), 2: _result([(1, 1)], {1: 1})}
    results[2]["errors"] = ["node 1: seq 3, expected 2"]
    with pytest.raises(BenchFailed, match="out of sequence"):
        verify_stream("t", results, [1])


def test_a_failed_measurement_is_reported_and_the_rest_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A reader cut off as a slow consumer fails its phase; the next phase runs on a fresh
    ring, the command still succeeds, and the report names what failed and why."""
    report = _run(
        capsys,
        *("--only", "tput,ping", "--sizes", "64", "--pings", "3", "--gap-pings", "1"),
        *("--sealing", "off", "--ring", "classic", "--set", "subscriber_queue=20"),
    )
    (error,) = report["errors"]
    assert error["measure"] == "tput" and "slow consumer" in error["error"]
    figures = report["variants"][0]["figures"]
    assert "tput_64_msgs" not in figures and "rtt_agreed_b2b_p50_us" in figures
