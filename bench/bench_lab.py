"""Lab up and down times per scenario (median of N runs). Needs root.

Usage: sudo .venv/bin/python bench/bench_lab.py [--runs 5] [--proxy-mode all] [SCENARIO...]
Goal: up <= 1.5 s, down <= 1 s for every scenario.
"""

from __future__ import annotations

import statistics
import time

from timing import scenario_args  # bench/timing.py (the script's folder is on sys.path)

from netprobe.core.model import ProxyMode
from netprobe.lab import lifecycle

UP_GOAL, DOWN_GOAL = 1.5, 1.0


def measure(name: str, runs: int, mode: str) -> tuple[float, float]:
    ups, downs = [], []
    for _ in range(runs):
        start = time.perf_counter()
        lifecycle.up(name, ProxyMode(mode))
        ups.append(time.perf_counter() - start)
        start = time.perf_counter()
        lifecycle.down()
        downs.append(time.perf_counter() - start)
    return statistics.median(ups), statistics.median(downs)


def main() -> None:
    args = scenario_args(__doc__ or "")
    print(f"{'scenario':<26} {'mode':<9} {'up (s)':>8} {'down (s)':>9}   median of {args.runs}")
    worst_up = worst_down = 0.0
    for mode in args.modes:
        for name in args.scenarios:
            up, down = measure(name, args.runs, mode)
            worst_up, worst_down = max(worst_up, up), max(worst_down, down)
            print(f"{name:<26} {mode:<9} {up:>8.3f} {down:>9.3f}")
    verdict = "met" if worst_up <= UP_GOAL and worst_down <= DOWN_GOAL else "MISSED"
    print(f"worst: up {worst_up:.3f} s (goal {UP_GOAL}), down {worst_down:.3f} s "
          f"(goal {DOWN_GOAL}): goal {verdict}")


if __name__ == "__main__":
    main()
