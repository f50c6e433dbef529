"""Deterministic discrete-event simulator of a gcs cluster."""
