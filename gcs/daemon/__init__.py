"""The ``gcs node`` daemon: one ring member shared by local clients (RFC 0006 §10).

``runner`` runs it (node, control socket, status, metrics, signals); ``server`` speaks the
control protocol to clients; ``protocol`` is that protocol's pure codec, shared with
``gcs.daemon.client``; ``status`` and ``metrics`` are what operators see.
"""
