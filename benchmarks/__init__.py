"""Benchmarks of issue 9: ``make bench`` (``python -m benchmarks``), see docs/performance.md.

`benchmarks.measures` holds one module per measure (``run(ctx) -> Result``, its docstring
says how the number is taken); the runner (`__main__`) runs them in order, merges their
metrics into ``bench-results.json`` and prints them against the targets (`report`). The other
modules are what the measures share: the run's context and workload (`context`), throwaway
deployments on the real broker and Redis (`deployment`), child processes (`processes`,
`worker`, `worker_probe`, `faust_passthrough`), the definition of "drained" (`drain`),
reading hand-offs back (`signals`), single journeys (`journeys`) and the journey encoding
(`codec`). Timings belong here, never in the unit tests.
"""
