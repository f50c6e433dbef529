"""The ``gcs`` command line against daemons in namespaces: one way to call it and read a node's
status, shared by the netns tests that drive ``gcs node`` processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

GCS = [sys.executable, "-m", "gcs"]
WAIT_S = 60.0


def gcs_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``gcs ARGS``; the caller judges the return code."""
    return subprocess.run(
        [*GCS, *args], capture_output=True, text=True, timeout=WAIT_S, check=False
    )


def daemon_status(config: Path) -> dict[str, Any] | None:
    """``gcs status --json`` of the node of ``config``, or None while it does not answer."""
    done = gcs_cli("status", "--config", str(config), "--json")
    return json.loads(done.stdout) if done.returncode == 0 else None  # type: ignore[no-any-return]
