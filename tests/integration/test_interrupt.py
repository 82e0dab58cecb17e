"""Ctrl-C in the middle of a trace or a replay leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.integration.wire import run_cli

pytestmark = pytest.mark.lab


def _lab_netns() -> set[int]:
    """Inode numbers of the lab's network namespaces (`/run/netns/np-*`)."""
    return {path.stat().st_ino for path in Path("/run/netns").glob("np-*")}


def _ours(pattern: str) -> list[str]:
    """Processes matching PATTERN in the lab's namespaces (not another user's tcpdump)."""
    found = subprocess.run(["pgrep", "-af", pattern], capture_output=True, text=True).stdout
    lab = _lab_netns()
    return [line for line in found.splitlines() if "pgrep" not in line
            and _netns_inode(int(line.split()[0])) in lab]


def _netns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:  # gone meanwhile
        return None


def _netprobe_temp() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("netprobe-")}


def _wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.02)  # polling a condition with a deadline


@pytest.mark.parametrize("command", ["trace", "replay"])
def test_ctrl_c_leaves_nothing_behind(command: str, tmp_path: Path) -> None:
    run_cli("lab", "up", "io-timeout")
    try:
        before = _netprobe_temp()
        if command == "trace":
            snapshot = tmp_path / "s.yaml"
            snapshot.write_text(run_cli("lab", "snapshot").stdout)
            args = ["trace", "webhook", "validating/cert-manager-webhook", "--snapshot",
                    str(snapshot), "--netns-map", run_cli("lab", "netns-map").stdout.strip(),
                    "--full"]
        else:
            args = ["replay", "https://cert-manager-webhook.cert-manager.svc/validate",
                    "--resolve", "cert-manager-webhook.cert-manager.svc:10.96.20.99",
                    "--ca-bundle", "/run/netprobe-lab/pki/ca.crt", "--netns", "np-cp", "--full"]
        child = subprocess.Popen([sys.executable, "-m", "netprobe", *args],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        expected = 2 if command == "trace" else 1  # capture agent + replay, or the replay's own
        _wait_for(lambda: len(_ours("tcpdump -i any")) >= expected, "captures running")
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
        assert child.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        _wait_for(lambda: not _ours("tcpdump -i any") and not _ours("netprobe.agents"),
                  "agents and captures gone", timeout=10)
        assert _netprobe_temp() == before
    finally:
        run_cli("lab", "down")
