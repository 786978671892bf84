"""Benchmarks: ``make bench`` (``python -m benchmarks``) runs every ``bench_*.py`` module here.

Each module defines ``main() -> int`` (0: within its budget) and prints what it measured.
Timings belong here, never in the unit tests.
"""
