"""The exception hierarchy of gcs, in one place.

Why one module: applications catch ``gcs.GcsError`` for anything this library raises on purpose,
and the sans-I/O core raises the same classes the asyncio API re-raises, so nothing is wrapped
twice. Frames that fail to decode or authenticate are *not* here: they raise
``gcs.wire.FrameError`` inside the wire layer and are dropped and counted before they reach any
caller (RFC 0002 §8, RFC 0005 §6).
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DaemonUnavailable",
    "GcsError",
    "GroupClosed",
    "InvalidArgument",
    "InvariantViolation",
    "MessageTooLarge",
    "NodeClosed",
    "NodeFailed",
    "NodeListRefused",
    "NotMember",
    "NotSupported",
    "ReplayError",
    "SendQueueFull",
    "SlowConsumer",
    "StateTransferFailed",
]


class GcsError(Exception):
    """Base class of every error gcs raises on purpose."""


class ConfigError(GcsError, ValueError):
    """A configuration value is missing, malformed or out of range.

    The message always names the field (``nodes[2].port: ...``), so an operator can fix the file
    without reading code.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.field, self.problem))


class MessageTooLarge(GcsError, ValueError):
    """A message is larger than the configured ``max_message_bytes``."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of {size} bytes exceeds max_message_bytes={limit}")
        self.size = size
        self.limit = limit

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.size, self.limit))


class SendQueueFull(GcsError):
    """The bounded send queue has no room; wait for ``SendWindow(open=True)`` and retry.

    The asyncio API never lets this escape: ``group.send`` waits on the window instead.
    """


class GroupClosed(GcsError):
    """The group handle was left or closed; no more sends or events."""


class NodeClosed(GcsError):
    """The node (or the daemon connection) is closed."""


class DaemonUnavailable(NodeClosed):
    """No ``gcs node`` daemon answers on the control socket (not started, or it went away).

    A ``NodeClosed``: to a daemon client, a daemon that is gone is a node that is closed.
    """

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"no gcs node daemon at {path}: {problem}")
        self.path = path
        self.problem = problem

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.path, self.problem))


class NodeFailed(NodeClosed):
    """The node stopped on its own because continuing was unsafe (fail-stop, RFC 0006 API-7-1).

    ``__cause__`` holds the original error (a ring seq that could not be written, a bug in the
    runtime). An ``InvariantViolation`` is raised as itself, not wrapped in this class.
    """


class InvalidArgument(GcsError, ValueError):
    """An API argument has the right type but an unusable value (an empty group name, ...)."""


class ReplayError(GcsError):
    """A flight-recorder dump cannot be read or replayed, or the replay diverged from it."""


class NotMember(GcsError):
    """The operation needs membership of the group, and this handle is not (or no longer) one."""


class SlowConsumer(GcsError):
    """A subscriber fell further behind than its queue bound and was closed (RFC 0006 API-5-2).

    The ring never waits for an application; a reader that cannot keep up is cut off instead of
    stalling everyone. It may join again (and take a state transfer where the group offers one).
    """


class InvariantViolation(GcsError, AssertionError):
    """An always-on protocol invariant failed: the node stops rather than risk the guarantees.

    Subclasses AssertionError so test tooling treats it as a failed check, but unlike ``assert``
    it is never stripped by ``python -O``.
    """


class NotSupported(GcsError):
    """The operation exists, but not on this kind of node or connection (e.g. ``send_to`` over
    a daemon that does not offer it)."""


class StateTransferFailed(GcsError):
    """A state transfer could not complete: the joiner's buffer limit was reached, or a
    snapshot could not be taken or installed (``gcs.transfer.group``; RFC 0008 §5)."""


class NodeListRefused(GcsError):
    """A node-list change was refused (RFC 0008 §3.7): ``reason`` says why, in one word.

    ``not_quorate`` (only a quorate configuration may change the list), ``disabled``
    (``quorum.node_changes`` is off or there are no quorum rules), ``listed``, ``not_listed``,
    ``no_votes_left``, ``too_many_nodes``, ``unsafe_votes``; ``superseded`` when the record was
    delivered but did not apply (the configuration changed, or another change came first):
    the caller may read the list and try again.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
