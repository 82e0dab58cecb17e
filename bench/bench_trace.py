"""End-to-end `netprobe trace webhook` per lab scenario, and the fan-out. Needs root.

Usage: sudo .venv/bin/python bench/bench_trace.py [--runs 5] [SCENARIO...]
Goals: every scenario traced in <= 5 s (whole process, median of 5); tracing 10
endpoints (scenario `fanout`) takes <= 1.5x tracing one (scenario `gke-port-443`).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from timing import median_run, scenario_args  # bench/timing.py (the script's folder is on sys.path)

from netprobe.lab import lifecycle

GOAL, FANOUT_GOAL = 5.0, 1.5


def _command(snapshot_path: Path, netns_map: str) -> list[str]:
    return [sys.executable, "-m", "netprobe", "trace", "webhook",
            "validating/cert-manager-webhook", "--snapshot", str(snapshot_path),
            "--netns-map", netns_map, "-o", "json"]


def measure(name: str, runs: int, workdir: Path) -> float:
    state, _ = lifecycle.up(name)
    plan = lifecycle.plan_of(state)
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(lifecycle.snapshot_list(state)))
    command = _command(path, lifecycle.netns_map(plan))
    try:
        return median_run(command, runs, f"{name}: trace")
    finally:
        lifecycle.down()


def main() -> None:
    args = scenario_args(__doc__ or "")
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        print(f"{'scenario':<24} {'trace (s)':>9}   median of {args.runs}, whole process")
        took = {}
        for name in args.scenarios:
            took[name] = measure(name, args.runs, workdir)
            print(f"{name:<24} {took[name]:>9.2f}")
        worst = max(took.values())
        print(f"worst: {worst:.2f} s (goal {GOAL}): goal {'met' if worst <= GOAL else 'MISSED'}")
        one = took.get("gke-port-443") or measure("gke-port-443", args.runs, workdir)
        ten = took.get("fanout") or measure("fanout", args.runs, workdir)
        ratio = ten / one
        print(f"fan-out: 10 endpoints {ten:.2f} s vs 1 endpoint {one:.2f} s = {ratio:.2f}x "
              f"(goal <= {FANOUT_GOAL}x): goal {'met' if ratio <= FANOUT_GOAL else 'MISSED'}")


if __name__ == "__main__":
    main()
