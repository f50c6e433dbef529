"""The asyncio runtime: drives the sans-I/O core over real UDP sockets (ARCHITECTURE.md).

One module per idea: ``driver`` (Channel + core + effects + the one timer), ``endpoint`` (the UDP
socket), ``persist`` (the state directory), ``loop`` (uvloop and ``gcs.run``), ``lag`` (event-loop
lag), ``recorder`` (the flight recorder and ``replay``), ``outbox`` (sends waiting on flow
control and their tickets), ``stream`` (bounded per-subscriber event queues).

Nothing is imported here on purpose: ``gcs.history.recorder`` must stay importable without
asyncio (the simulator's ``replay-node`` command uses it).
"""
