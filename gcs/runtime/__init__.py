"""The asyncio runtime: drives the sans-I/O core over real UDP sockets (RFC 0001 §4).

One module per idea: ``driver`` (Channel + core + effects + the one timer, with the group layer's
driver as its listener), ``endpoint`` (the UDP socket), ``persist`` (the state directory),
``loop`` (uvloop and ``gcs.run``), ``lag`` (event-loop lag), ``tap`` (read-only observers of the
driver). The flight recorder it feeds is ``gcs.history.recorder``; the group layer above it is
``gcs.groups`` and the public API ``gcs.api``, neither of which it imports.
"""
