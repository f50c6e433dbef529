"""What a run produced, for people: ``figures`` (one row of numbers), ``metrics``, ``timeline``,
``oneway`` (what each one-way link fault cost), ``plots`` (the ``plot`` extra) and ``rundir``
(a run directory on disk)."""
