"""What a run did, in one schema: ``events`` (the history every checker reads), ``writer`` (a real
node's history in that schema) and ``recorder`` (the flight recorder, and its replay).

Nothing is imported here: the simulator and the runtime each take only what they need."""
