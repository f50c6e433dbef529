"""gcs: totally ordered, reliable multicast and extended virtual synchrony for asyncio.

The public surface is re-exported here; see README.md and RFCs/0006-api-semantics.md. Only the
exception classes are imported eagerly: everything else loads on first use (module
``__getattr__``), so ``import gcs.totem`` or ``import gcs.wire`` — the sans-I/O layers — never
pulls in asyncio, sockets or uvloop.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gcs import build as _build
from gcs.errors import (
    ConfigError,
    DaemonUnavailable,
    GcsError,
    GroupClosed,
    InvalidArgument,
    InvariantViolation,
    MessageTooLarge,
    NodeClosed,
    NodeFailed,
    NotMember,
    NotSupported,
    ReplayError,
    SendQueueFull,
    SlowConsumer,
    StateTransferFailed,
)

if TYPE_CHECKING:
    from gcs.api import Group, Node, NodeStatistics, RingView
    from gcs.client import Client, connect
    from gcs.config import Config
    from gcs.groups import Member, Message, Reason, View, ViewId, ViewReason
    from gcs.quorum import Quorum, QuorumOptions, QuorumReason
    from gcs.runtime.loop import run
    from gcs.runtime.outbox import Ticket
    from gcs.statetransfer import StateGroup, StateHandler, join_with_state

_build.select()  # before any hot-path module loads: compiled or pure (GCS_PURE=1), see gcs.build

__version__ = "0.1.0"

_LAZY = {
    "Client": "gcs.client",
    "Config": "gcs.config",
    "Group": "gcs.api",
    "Member": "gcs.groups",
    "Message": "gcs.groups",
    "Node": "gcs.api",
    "NodeStatistics": "gcs.api",
    "Quorum": "gcs.quorum",
    "QuorumOptions": "gcs.quorum",
    "QuorumReason": "gcs.quorum",
    "Reason": "gcs.groups",
    "RingView": "gcs.api",
    "StateGroup": "gcs.statetransfer",
    "StateHandler": "gcs.statetransfer",
    "Ticket": "gcs.runtime.outbox",
    "View": "gcs.groups",
    "ViewId": "gcs.groups",
    "ViewReason": "gcs.groups",
    "connect": "gcs.client",
    "join_with_state": "gcs.statetransfer",
    "run": "gcs.runtime.loop",
}

__all__ = [
    "Client",
    "Config",
    "ConfigError",
    "DaemonUnavailable",
    "GcsError",
    "Group",
    "GroupClosed",
    "InvalidArgument",
    "InvariantViolation",
    "Member",
    "Message",
    "MessageTooLarge",
    "Node",
    "NodeClosed",
    "NodeFailed",
    "NodeStatistics",
    "NotMember",
    "NotSupported",
    "Quorum",
    "QuorumOptions",
    "QuorumReason",
    "Reason",
    "ReplayError",
    "RingView",
    "SendQueueFull",
    "SlowConsumer",
    "StateGroup",
    "StateHandler",
    "StateTransferFailed",
    "Ticket",
    "View",
    "ViewId",
    "ViewReason",
    "__version__",
    "connect",
    "join_with_state",
    "run",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gcs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
