"""Independent wire checks for the lab tests: tcpdump captures, tshark counts.

Nothing here imports netprobe: the point is to check the lab (and later
netprobe's own captures) from outside netprobe's code.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROBE = Path(__file__).with_name("wire_probe.py")


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs `python -m netprobe ARGS` and returns the finished process."""
    done = subprocess.run([sys.executable, "-m", "netprobe", *args], capture_output=True,
                          text=True, timeout=120)
    if check and done.returncode != 0:
        raise AssertionError(f"netprobe {' '.join(args)} exited {done.returncode}: "
                             f"{done.stderr}")
    return done


def trace_scenario(tmp_path: Path, scenario: str, *trace_args: str,
                   proxy_mode: str = "iptables",
                   lab_args: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    """Brings lab SCENARIO up, runs `netprobe trace TRACE_ARGS -o json` on its snapshot and
    netns map (the exit code is the caller's to judge), and takes the lab down."""
    run_cli("lab", "up", scenario, "--proxy-mode", proxy_mode, *lab_args)
    try:
        snapshot = tmp_path / "snapshot.yaml"
        snapshot.write_text(run_cli("lab", "snapshot").stdout)
        return run_cli("trace", *trace_args, "--snapshot", str(snapshot), "--netns-map",
                       run_cli("lab", "netns-map").stdout.strip(), "-o", "json", check=False)
    finally:
        run_cli("lab", "down")


def probe(netns: str, host: str, ip: str, port: int, ca: Path, timeout: float = 1.5) -> dict:
    """Calls the webhook from NETNS with a stdlib client; returns its JSON report."""
    done = subprocess.run(["ip", "netns", "exec", netns, sys.executable, str(PROBE), host, ip,
                           str(port), str(ca), str(timeout)],
                          capture_output=True, text=True, timeout=timeout + 30, check=True)
    return json.loads(done.stdout)


@contextmanager
def tcpdump(netns: str, path: Path, interface: str = "any",
            bpf: str = "tcp or icmp") -> Iterator[Path]:
    """Captures in NETNS while the body runs; the file is complete on exit."""
    child = subprocess.Popen(
        ["ip", "netns", "exec", netns, "tcpdump", "-i", interface, "-n", "-U",
         "--immediate-mode", "-s", "2048", "-w", str(path), bpf],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert child.stderr is not None
    banner = ""
    for line in child.stderr:  # "tcpdump: listening on ...": the filter is attached
        banner += line
        if "listening on" in line:
            break
    else:
        child.kill()
        raise AssertionError(f"tcpdump did not start in {netns}: {banner}")
    try:
        yield path
    finally:
        child.send_signal(signal.SIGINT)
        child.communicate(timeout=10)


def tshark_rows(path: Path, display_filter: str, fields: list[str],
                decode_as: tuple[str, ...] = ()) -> list[list[str]]:
    """Returns tshark's field values for each packet matching DISPLAY_FILTER."""
    args = ["tshark", "-n", "-r", str(path), "-Y", display_filter, "-T", "fields"]
    for rule in decode_as:
        args += ["-d", rule]
    for field in fields:
        args += ["-e", field]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    return [line.split("\t") for line in done.stdout.splitlines() if line]


def tshark_count(path: Path, display_filter: str, decode_as: tuple[str, ...] = ()) -> int:
    return len(tshark_rows(path, display_filter, ["frame.number"], decode_as))
