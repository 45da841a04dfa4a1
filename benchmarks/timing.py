"""Timing shared by the benchmark scripts (each run as `python benchmarks/<name>.py`, which puts
this folder on the import path)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_seconds(run: Callable[[], object], repeats: int) -> tuple[float, object]:
    """The shortest of `repeats` runs (this VM's speed swings) and the last run's result."""
    fastest, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        fastest = min(fastest, time.perf_counter() - start)
    return fastest, result
