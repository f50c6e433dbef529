"""gcs: totally ordered, reliable multicast and extended virtual synchrony for asyncio.

The public surface is re-exported here; see README.md and RFCs/0006-api-semantics.md.
"""

from __future__ import annotations

from gcs.errors import (
    ConfigError,
    GcsError,
    GroupClosed,
    InvariantViolation,
    MessageTooLarge,
    NodeClosed,
    NotMember,
    SendQueueFull,
    SlowConsumer,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "GcsError",
    "GroupClosed",
    "InvariantViolation",
    "MessageTooLarge",
    "NodeClosed",
    "NotMember",
    "SendQueueFull",
    "SlowConsumer",
    "__version__",
]
