"""The example application runs and its participants agree on the conversation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "chat.py"


@pytest.mark.processes
def test_chat_demo_participants_see_one_conversation() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "all participants saw the same conversation"
    assert len(lines) == 3 * 5 + 1
    assert {line.split("> ", 1)[1].split(":")[0] for line in lines[:-1]} == {
        "alice",
        "bob",
        "carol",
    }
