"""``gcs bench wire``: how fast frames go through ``Channel.seal`` and ``Channel.open``.

Four frames that matter on a busy ring — a token carrying a few retransmission requests, a
64-byte mcast, a 1,400-byte mcast and a packed mcast of 20 x 64-byte records — under each suite.
"seal" is encode + seal of one frame; "open" is authenticate + replay check + decode. Each
measurement seals a batch of distinct datagrams, then opens them in order on a receiving channel
(distinct counters, so none is a replay). Repetitions are interleaved across all configurations
and the median is reported, so a slow phase of the machine cannot single out one configuration.
"""

from __future__ import annotations

import logging
import platform
import statistics
from dataclasses import dataclass
from importlib import metadata
from time import perf_counter_ns
from typing import Any

from gcs.build import build_info
from gcs.wire.channel import Channel
from gcs.wire.frames import Frame, Mcast, OrfToken, Record, RingId, RtrEntry
from gcs.wire.seal import Suite

__all__ = ["FRAMES", "SUITES", "format_report", "run"]

_KEY = bytes(range(64))  # a benchmark key, public on purpose
_CLUSTER = "bench"
_RING = RingId(seq=1_000, rep=1)


def _mcast(*sizes: int) -> Mcast:
    records = tuple(Record("bench", 1, 0, bytes(size)) for size in sizes)
    return Mcast(1, _RING, 123_456, False, records)


FRAMES: tuple[tuple[str, Frame], ...] = (
    (
        "token (4 rtr)",
        OrfToken(
            _RING,
            98_765,
            123_456,
            123_400,
            2,
            20,
            5,
            False,
            tuple(RtrEntry(_RING, seq) for seq in range(123_401, 123_405)),
        ),
    ),
    ("mcast 64 B", _mcast(64)),
    ("mcast 1,400 B", _mcast(1350)),
    ("mcast 20 x 64 B", _mcast(*([64] * 20))),
)

SUITES: tuple[tuple[str, Suite], ...] = (
    ("aes-256-gcm", Suite.AES_256_GCM),
    ("chacha20-poly1305", Suite.CHACHA20_POLY1305),
    ("unkeyed", Suite.NONE),
)


@dataclass
class _Config:
    suite_name: str
    frame_name: str
    frame: Frame
    sender: Channel
    receiver: Channel
    seal_ns: list[float]
    open_ns: list[float]

    def measure(self, frames: int, keep: bool = True) -> None:
        seal = self.sender.seal
        frame = self.frame
        start = perf_counter_ns()
        datagrams = [seal(frame) for _ in range(frames)]
        middle = perf_counter_ns()
        open_ = self.receiver.open
        for datagram in datagrams:
            open_(datagram)
        end = perf_counter_ns()
        if keep:
            self.seal_ns.append((middle - start) / frames)
            self.open_ns.append((end - middle) / frames)


def _configs() -> list[_Config]:
    configs = []
    log = logging.getLogger("gcs.wire")
    level = log.level
    log.setLevel(logging.ERROR)  # the unkeyed channels' warning is expected here
    for suite_name, suite in SUITES:
        key = None if suite is Suite.NONE else _KEY
        for frame_name, frame in FRAMES:
            sender = Channel(1, 1, _CLUSTER, key, suite=suite, peers=(2,))
            receiver = Channel(2, 1, _CLUSTER, key, suite=suite, peers=(1,))
            configs.append(_Config(suite_name, frame_name, frame, sender, receiver, [], []))
    log.setLevel(level)
    return configs


def run(repeat: int = 7, frames: int = 2000) -> dict[str, Any]:
    """Measure every (suite, frame) ``repeat`` times, interleaved; return medians as a dict."""
    configs = _configs()
    for config in configs:
        config.measure(max(1, frames // 10), keep=False)  # warm caches and allocators
    for _ in range(repeat):
        for config in configs:
            config.measure(frames)
    results = []
    for config in configs:
        seal_ns = statistics.median(config.seal_ns)
        open_ns = statistics.median(config.open_ns)
        results.append(
            {
                "suite": config.suite_name,
                "frame": config.frame_name,
                "datagram_bytes": len(config.sender.seal(config.frame)),
                "seal_us": round(seal_ns / 1000, 2),
                "seal_per_s": round(1e9 / seal_ns),
                "open_us": round(open_ns / 1000, 2),
                "open_per_s": round(1e9 / open_ns),
            }
        )
    return {
        "benchmark": "wire",
        "repeat": repeat,
        "frames": frames,
        "python": platform.python_version(),
        "build": build_info().describe(),
        "cbor2": metadata.version("cbor2"),
        "cryptography": metadata.version("cryptography"),
        "results": results,
    }


def format_report(report: dict[str, Any]) -> str:
    """The report as a fixed-width table."""
    lines = [
        f"gcs bench wire: median of {report['repeat']} interleaved runs of {report['frames']} "
        f"frames (Python {report['python']}, cbor2 {report['cbor2']}, "
        f"cryptography {report['cryptography']})",
        f"build: {report.get('build', 'unknown')}",
        "seal = encode + seal; open = authenticate + replay check + decode",
        "",
        f"{'suite':<18} {'frame':<16} {'bytes':>6} {'seal µs':>8} {'seal/s':>9} "
        f"{'open µs':>8} {'open/s':>9}",
    ]
    for row in report["results"]:
        lines.append(
            f"{row['suite']:<18} {row['frame']:<16} {row['datagram_bytes']:>6} "
            f"{row['seal_us']:>8.2f} {row['seal_per_s']:>9,} "
            f"{row['open_us']:>8.2f} {row['open_per_s']:>9,}"
        )
    return "\n".join(lines)
