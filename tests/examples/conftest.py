"""Example services in network namespaces: skip with the reason unless GCS_REQUIRE_NETNS=1.

The check is the netns suite's own (``tests/netns/conftest.py``), imported so both suites skip
and fail for the same reasons.
"""

from __future__ import annotations

from tests.netns.conftest import netns_required

__all__ = ["netns_required"]
