"""State transfer (RFC 0008 §5): ``machine`` (the protocol as a pure machine over a group's
stream, also run by the simulator) and ``group`` (``join_with_state``, its asyncio API over the
public ``gcs.Group``). Nothing is imported here: the simulator imports the machine alone."""
