"""``gcs.bench.compare``: parsing the corosync anchor's summary and pairing it with gcs figures."""

from __future__ import annotations

from typing import Any

import pytest

from gcs.bench.compare import compare, format_comparison, parse_corosync_summary

# summarize.py's lines, cut short after the fields the parser reads.
SUMMARY = """\
== knet-crypto  [knet-crypto:knet-crypto:default:default:no:tput,conc,ping,failover]
  tput    64 B: 63,242 msg/s  4.05 MB/s at receivers (reps: 63,242, 63,862, 62,808)
  conc 3x64 B: 58,279 msg/s delivered (total order, per node) 3.73 MB/s
  ping-64-b2b: RTT(own delivery) n=2000 min 213.1 med 340.4 p90 434.3 p99 620.7 max 3287.2 us
  ping-64-10ms: RTT(own delivery) n=300 min 99.9 med 533.7 p90 927.9 p99 1201.9 max 1375.5 us

== udpu  [udpu:udpu:default:default:no:tput,conc,ping,failover]  effective token=3650ms
  tput    64 B: 40,476 msg/s  2.59 MB/s at receivers (reps: 40,568, 39,311, 40,476)
  tput 16384 B: 2,350 msg/s  38.49 MB/s at receivers (reps: 2,535, 2,210, 2,350)
  ping-64-b2b: RTT(own delivery) n=2000 min 66.1 med 149.1 p90 215.4 p99 283.6 max 2234.2 us
  failover (SIGKILL node3 under 1 KiB load): kill->CPG confchg first survivor med 8,034 ms, \
last survivor med 8,034 ms (reps: 8,034)

== udpu-token300-coef0  [udpu-token300-coef0:udpu:300:0:no:failover]
  failover (SIGKILL node3 under 1 KiB load): kill->CPG confchg first survivor med 663 ms, \
last survivor med 663 ms (reps: 665, 663, 661)
"""


def test_the_summary_is_parsed_into_gcs_figure_names() -> None:
    parsed = parse_corosync_summary(SUMMARY)
    assert parsed["udpu"]["tput_64_msgs"] == 40_476
    assert parsed["udpu"]["tput_16384_MBps"] == pytest.approx(38.49)
    assert parsed["knet-crypto"]["conc_64_msgs"] == 58_279
    assert parsed["knet-crypto"]["rtt_agreed_b2b_p50_us"] == pytest.approx(340.4)
    assert parsed["knet-crypto"]["rtt_agreed_10ms_p99_us"] == pytest.approx(1201.9)
    assert parsed["udpu-token300-coef0"]["failover_ms"] == 663


def _variant(sealed: bool, timers: str, **figures: float) -> dict[str, Any]:
    return {
        "name": "x",
        "sealed": sealed,
        "accelerated": False,
        "timers": timers,
        "settings": {},
        "figures": figures,
    }


def test_unsealed_pairs_with_udpu_and_sealed_with_knet_crypto() -> None:
    ring = {
        "variants": [
            _variant(False, "default", tput_64_msgs=81_000.0, rtt_agreed_b2b_p50_us=300.0),
            _variant(False, "corosync", failover_corosync_ms=690.0),
            _variant(True, "default", tput_64_msgs=63_242.0, leave_ring_view_ms=12.0),
        ]
    }
    result = compare(parse_corosync_summary(SUMMARY), ring)
    rows = {(r["gcs"], r["key"]): r for r in result["rows"]}
    tput = rows[("unsealed classic", "tput_64_msgs")]
    assert tput["corosync"] == "udpu" and tput["ratio"] == pytest.approx(2.0, rel=1e-3)
    assert tput["met"] is True
    rtt = rows[("unsealed classic", "rtt_agreed_b2b_p50_us")]
    assert rtt["ratio"] == pytest.approx(300 / 149.1) and rtt["met"] is False
    failover = rows[("unsealed classic", "failover_corosync_ms")]
    assert failover["corosync_value"] == 663 and failover["met"] is True  # 690 <= 1.05 * 663
    sealed = rows[("sealed classic", "tput_64_msgs")]
    assert (
        sealed["corosync"] == "knet-crypto" and sealed["target"] == 1.5 and sealed["met"] is False
    )
    assert result["absolute"][0]["figure"] == "clean leave → ring view"
    assert "knet-crypto" in format_comparison(result)
