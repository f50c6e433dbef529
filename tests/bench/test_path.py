"""``gcs bench path`` runs the real receive path to the end: every mcast is delivered (the
benchmark raises otherwise) and every stage is reported. Figures are not asserted (rule 6)."""

from __future__ import annotations

import json

import pytest

from gcs.bench import path
from gcs.cli import main


def test_every_stage_of_both_suites_is_measured() -> None:
    report = path.run(repeat=1, count=40, size=1024)
    assert [row["suite"] for row in report["results"]] == ["aes-256-gcm", "unkeyed"]
    for row in report["results"]:
        assert all(row[stage] > 0 for stage in ("open", "order", "group", "whole path")), row
    assert "whole path" in path.format_report(report)


def test_the_cli_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "path", "--json", "--repeat", "1", "--count", "20"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["benchmark"] == "path" and report["count"] == 20
    assert main(["bench", "path", "--count", "0"]) == 2
