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
    NodeListRefused,
    NotMember,
    NotSupported,
    ReplayError,
    SendQueueFull,
    SlowConsumer,
    StateTransferFailed,
)

if TYPE_CHECKING:
    from gcs.api.group import Group
    from gcs.api.node import Node, NodeStatistics, RingView
    from gcs.api.outbox import Ticket
    from gcs.config import Config
    from gcs.daemon.client import Client, connect
    from gcs.groups.views import Member, Message, Reason, View, ViewId, ViewReason
    from gcs.quorum.nodelist import NodeEntry, NodeList
    from gcs.quorum.rules import Quorum, QuorumOptions, QuorumReason
    from gcs.runtime.loop import run
    from gcs.transfer.group import StateGroup, StateHandler, join_with_state

_build.select()  # before any hot-path module loads: compiled or pure (GCS_PURE=1), see gcs.build

__version__ = "0.1.0"

_LAZY = {
    "Client": "gcs.daemon.client",
    "Config": "gcs.config",
    "Group": "gcs.api.group",
    "Member": "gcs.groups.views",
    "Message": "gcs.groups.views",
    "Node": "gcs.api.node",
    "NodeEntry": "gcs.quorum.nodelist",
    "NodeList": "gcs.quorum.nodelist",
    "NodeStatistics": "gcs.api.node",
    "Quorum": "gcs.quorum.rules",
    "QuorumOptions": "gcs.quorum.rules",
    "QuorumReason": "gcs.quorum.rules",
    "Reason": "gcs.groups.views",
    "RingView": "gcs.api.node",
    "StateGroup": "gcs.transfer.group",
    "StateHandler": "gcs.transfer.group",
    "Ticket": "gcs.api.outbox",
    "View": "gcs.groups.views",
    "ViewId": "gcs.groups.views",
    "ViewReason": "gcs.groups.views",
    "connect": "gcs.daemon.client",
    "join_with_state": "gcs.transfer.group",
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
    "NodeEntry",
    "NodeFailed",
    "NodeList",
    "NodeListRefused",
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
