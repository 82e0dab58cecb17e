"""Shared by the benchmarks: their command line, and the median wall time of a whole
netprobe process."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time


def scenario_args(doc: str) -> argparse.Namespace:
    """`--runs N`, `--proxy-mode` and the lab scenarios to measure (default: all), after
    resetting the lab. `args.modes` holds the proxy modes to measure."""
    from netprobe.lab import lifecycle, scenarios

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--proxy-mode", choices=["iptables", "nftables", "all"],
                        default="iptables", help="kube-proxy's mode in the lab (all: each)")
    parser.add_argument("scenarios", nargs="*", default=list(scenarios.NAMES))
    args = parser.parse_args()
    args.modes = (["iptables", "nftables"] if args.proxy_mode == "all" else [args.proxy_mode])
    lifecycle.down()
    return args


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
