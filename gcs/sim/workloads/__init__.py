"""Simulated applications: ``messages`` (the ring-level workload), ``kv`` (a replicated store on
the group layer with quorum and state transfer) and its log ``kvlog``."""
