"""What a run produced, for people: ``figures`` (one row of numbers), ``metrics``, ``timeline``,
``plots`` (the ``plot`` extra) and ``rundir`` (a run directory on disk)."""
