"""Shared by the benchmarks: the median wall time of a whole netprobe process."""

from __future__ import annotations

import statistics
import subprocess
import time


def median_run(command: list[str], runs: int, what: str) -> float:
    """Runs COMMAND RUNS times; returns the median wall time in seconds.

    Exit codes 0 and 1 (success, diagnosed failure) are normal; any other stops the benchmark.
    """
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode not in (0, 1):
            raise SystemExit(f"{what} failed: {done.stderr}")
    return statistics.median(times)
