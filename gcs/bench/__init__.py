"""Benchmarks behind ``gcs bench``: importable measuring code, one module per benchmark.

Every benchmark interleaves its repetitions across configurations and reports medians, because
the machines we measure on drift in speed for seconds at a time (the noise warning in the
python-limits anchor measurements); a configuration measured only during a slow phase would
otherwise look worse than it is.
"""
