"""End-to-end `netprobe trace webhook` per lab scenario, and the fan-out. Needs root.

Usage: sudo .venv/bin/python bench/bench_trace.py [--runs 5] [--proxy-mode all] [SCENARIO...]
Goals: every scenario traced in <= 3.5 s and every healthy one (verdict ok) in <= 1.5 s
(whole process, median of 5); tracing 10 endpoints (scenario `fanout`) takes <= 1.5x
tracing one (scenario `gke-port-443`).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from timing import median_run, scenario_args  # bench/timing.py (the script's folder is on sys.path)

from netprobe.core.model import ProxyMode
from netprobe.lab import lifecycle, scenarios

GOAL, HEALTHY_GOAL, FANOUT_GOAL = 3.5, 1.5, 1.5


def _command(name: str, snapshot_path: Path, netns_map: str) -> list[str]:
    """`trace webhook validating/...`, or the scenario's own trace command."""
    scenario = scenarios.get(name)
    command = scenario.command
    selected = (["validating/cert-manager-webhook"] if command == "webhook"
                else [scenario.target] if scenario.target else [])
    return [sys.executable, "-m", "netprobe", "trace", command, *selected, "--snapshot",
            str(snapshot_path), "--netns-map", netns_map, "-o", "json"]


def measure(name: str, runs: int, workdir: Path, mode: str = "iptables") -> float:
    state, _ = lifecycle.up(name, ProxyMode(mode))
    plan = lifecycle.plan_of(state)
    path = workdir / f"{name}.json"
    path.write_text(json.dumps(lifecycle.snapshot_list(state)))
    command = _command(name, path, lifecycle.netns_map(plan))
    try:
        return median_run(command, runs, f"{name} ({mode}): trace")
    finally:
        lifecycle.down()


def main() -> None:
    args = scenario_args(__doc__ or "")
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        print(f"{'scenario':<26} {'mode':<9} {'trace (s)':>9}   median of {args.runs}, "
              "whole process")
        took = {}
        for mode in args.modes:
            for name in args.scenarios:
                took[name, mode] = measure(name, args.runs, workdir, mode)
                print(f"{name:<26} {mode:<9} {took[name, mode]:>9.2f}")
        worst = max(took.values())
        print(f"worst: {worst:.2f} s (goal {GOAL}): goal {'met' if worst <= GOAL else 'MISSED'}")
        healthy = {key: value for key, value in took.items()
                   if scenarios.get(key[0]).verdict == "ok"}
        if healthy:
            (name, mode), slowest = max(healthy.items(), key=lambda item: item[1])
            print(f"worst healthy: {slowest:.2f} s ({name}, {mode}; goal {HEALTHY_GOAL}): goal "
                  f"{'met' if slowest <= HEALTHY_GOAL else 'MISSED'}")
        mode = args.modes[0]
        one = took.get(("gke-port-443", mode)) or measure("gke-port-443", args.runs, workdir, mode)
        ten = took.get(("fanout", mode)) or measure("fanout", args.runs, workdir, mode)
        ratio = ten / one
        print(f"fan-out ({mode}): 10 endpoints {ten:.2f} s vs 1 endpoint {one:.2f} s = "
              f"{ratio:.2f}x (goal <= {FANOUT_GOAL}x): goal "
              f"{'met' if ratio <= FANOUT_GOAL else 'MISSED'}")


if __name__ == "__main__":
    main()
