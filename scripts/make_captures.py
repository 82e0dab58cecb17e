"""Regenerates captures/: one real lab capture per verdict class. Needs root.

Usage: sudo .venv/bin/python scripts/make_captures.py [--out captures]
For each scenario: `lab up`, `trace webhook --pcap-dir`, the trace's JSON beside the
pcaps, `lab down`. Every file is made by the lab's real kernel path and tcpdump.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from netprobe import api
from netprobe.core import wire
from netprobe.lab import lifecycle
from netprobe.trace import pipeline as trace

SCENARIOS = ("ok", "connection-refused", "no-endpoints", "io-timeout", "networkpolicy-drop",
             "rst-middlebox", "no-route", "tls-handshake-timeout", "response-timeout",
             "http-error", "x509-unknown-authority", "x509-expired", "fargate-kubelet",
             "stale-endpoint", "empty-ca-bundle", "pod-on-control-plane",
             "hostnetwork-control-plane")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("captures"))
    parser.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    args = parser.parse_args()
    lifecycle.down()
    for name in args.scenarios:
        directory = args.out / name
        shutil.rmtree(directory, ignore_errors=True)
        try:
            results = api.trace_lab_scenario(name, options=trace.TraceOptions(pcap_dir=directory))
        finally:
            lifecycle.down()
        report = wire.trace_to_json(results)
        for result in report["results"]:
            result["captures"] = [Path(p).name for p in result["captures"]]
            if result["replay"]:
                result["replay"]["capture"] = None
        (directory / "trace.json").write_text(json.dumps(report, indent=2) + "\n")
        for pcap in directory.glob("*.pcap"):
            pcap.chmod(0o644)  # shipped in the repository: readable by everyone
        verdict = report["results"][0]["verdict"]
        print(f"{name:<24} {verdict['class']:<24} {sorted(p.name for p in directory.iterdir())}")


if __name__ == "__main__":
    main()
