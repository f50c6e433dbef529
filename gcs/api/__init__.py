"""The public asyncio surface: ``Node``, ``Group``, tickets and the event stream (RFC 0006).

``node`` (this process as a ring member), ``group`` (a member's handle on one group), ``outbox``
(sends waiting on flow control, and their tickets), ``stream`` (bounded per-member queues).
The names applications use are re-exported by ``gcs`` itself; nothing is imported here.
"""
