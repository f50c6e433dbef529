"""Totem single-ring protocol core (sans-I/O)."""
