"""Run the benchmarks: ``python -m benchmarks [NAME ...]`` (default: all ``bench_*`` modules)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def _names() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(here)])
        if m.name.startswith("bench_")
    )


def main(argv: list[str]) -> int:
    available = _names()
    wanted = argv or available
    unknown = sorted(set(wanted) - set(available))
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}")
        return 2
    failures = 0
    for name in wanted:
        print(f"== benchmark {name} ==", flush=True)
        started = time.perf_counter()
        module = importlib.import_module(f"benchmarks.bench_{name}")
        code = int(module.main())
        failures += code != 0
        print(
            f"== {name}: {'ok' if code == 0 else 'FAILED'} ({time.perf_counter() - started:.1f} s)"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
