"""Replay verdict wall time per lab scenario, default (early) mode, median of N. Needs root.

Usage: sudo .venv/bin/python bench/bench_replay.py [--runs 5] [--proxy-mode all] [SCENARIO...]
Goal: every scenario's verdict in <= 3.5 s wall time (the whole `netprobe replay`
process, interpreter start included), median of 5.
"""

from __future__ import annotations

import sys

from timing import median_run, scenario_args  # bench/timing.py (the script's folder is on sys.path)

from netprobe.core.model import ProxyMode
from netprobe.lab import lifecycle, scenarios

GOAL = 3.5


def _command(plan, ca_bundle: str) -> list[str]:
    hook = plan.webhook
    args = [sys.executable, "-m", "netprobe", "replay", f"https://{hook.host}/validate",
            "--ca-bundle", ca_bundle, "--netns", plan.control_plane.netns, "-o", "json"]
    if hook.configured_service_name == hook.service_name:
        args += ["--resolve", f"{hook.host}:{hook.cluster_ip}"]
    return args


def measure(name: str, runs: int, mode: str) -> float:
    state, _ = lifecycle.up(name, ProxyMode(mode))
    command = _command(lifecycle.plan_of(state), str(state.ca_bundle))
    try:
        return median_run(command, runs, f"{name} ({mode}): replay")
    finally:
        lifecycle.down()


def main() -> None:
    args = scenario_args(__doc__ or "")
    print(f"{'scenario':<26} {'mode':<9} {'verdict (s)':>11}   median of {args.runs}, "
          "whole process")
    worst = 0.0
    webhooks = [name for name in args.scenarios if scenarios.get(name).command == "webhook"]
    for mode in args.modes:
        for name in webhooks:  # the replay of a webhook call (trace covers the other kinds)
            took = measure(name, args.runs, mode)
            worst = max(worst, took)
            print(f"{name:<26} {mode:<9} {took:>11.2f}")
    print(f"worst: {worst:.2f} s (goal {GOAL}): goal {'met' if worst <= GOAL else 'MISSED'}")


if __name__ == "__main__":
    main()
