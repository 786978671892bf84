"""One module per measure, each with ``run(ctx) -> Result`` and a docstring saying how.

The runner (`benchmarks.__main__`) runs them in `ORDER`: the engine before the hand-off
latency, which runs at half the engine's measured rate.
"""

ORDER = (
    "core",
    "cost",
    "bytes",
    "ceiling",
    "faust",
    "engine",
    "skeleton",
    "latency",
    "recovery",
    "live_journey",
    "kpis",
    "hygiene",
)
