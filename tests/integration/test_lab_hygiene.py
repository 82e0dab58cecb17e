"""The lab leaves nothing behind and refuses bad input with one clear line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.wire import run_cli

pytestmark = pytest.mark.lab


def _lab_namespaces() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith("np-")]


def _host_network() -> dict[str, str]:
    """Everything of the host's own namespace a lab could change."""
    def out(*args: str) -> str:
        return subprocess.run(list(args), capture_output=True, text=True).stdout
    addresses = "\n".join(line for line in out("ip", "-o", "addr").splitlines())
    return {"links": out("ip", "-o", "link", "show"), "addresses": addresses,
            "routes": out("ip", "route", "show", "table", "all"),
            "rules": "\n".join(line for line in out("iptables-save").splitlines()
                               if not line.startswith("#"))}


def _servers_running() -> bool:
    found = subprocess.run(["pgrep", "-f", "netprobe.lab.servers"], capture_output=True)
    return found.returncode == 0


def test_up_down_leave_the_host_namespace_unchanged() -> None:
    before = _host_network()
    run_cli("lab", "up", "networkpolicy-drop")
    try:
        assert set(_lab_namespaces()) >= {"np-cp", "np-w1", "np-w2", "np-vpc"}
        assert _host_network() == before
    finally:
        run_cli("lab", "down")
    assert _lab_namespaces() == []
    assert not _servers_running()
    assert _host_network() == before


def test_up_is_idempotent_and_refuses_another_scenario() -> None:
    try:
        first = run_cli("lab", "up", "ok")
        assert "is up" in first.stdout
        again = run_cli("lab", "up", "ok")
        assert "already up" in again.stdout
        other = run_cli("lab", "up", "no-route", check=False)
        assert other.returncode == 2
        assert other.stderr.strip().splitlines() == [
            "netprobe: error: a lab is already up (scenario ok, iptables mode, overlay none, "
            "ipv4); run 'netprobe lab down' first"]
        other_mode = run_cli("lab", "up", "ok", "--proxy-mode", "nftables", check=False)
        assert other_mode.returncode == 2 and "already up" in other_mode.stderr
        other_overlay = run_cli("lab", "up", "ok", "--overlay", "vxlan", check=False)
        assert other_overlay.returncode == 2 and "already up" in other_overlay.stderr
        other_family = run_cli("lab", "up", "ok", "--ip-family", "ipv6", check=False)
        assert other_family.returncode == 2 and "already up" in other_family.stderr
        status = run_cli("lab", "status", "-o", "json")
        assert '"healthy": true' in status.stdout
    finally:
        run_cli("lab", "down")


def test_down_cleans_up_after_up_was_killed() -> None:
    child = subprocess.Popen([sys.executable, "-m", "netprobe", "lab", "up", "ok"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not Path("/run/netns/np-vpc").exists() and child.poll() is None:
        assert time.monotonic() < deadline, "lab up never created a namespace"
        time.sleep(0.001)  # waiting for the condition: the first namespace exists
    child.send_signal(signal.SIGKILL)
    child.wait()
    run_cli("lab", "down")
    assert _lab_namespaces() == []
    assert not _servers_running()


def test_down_after_the_servers_were_killed() -> None:
    run_cli("lab", "up", "ok")
    subprocess.run(["pkill", "-9", "-f", "netprobe.lab.servers"], check=False)
    deadline = time.monotonic() + 10
    while _servers_running():
        assert time.monotonic() < deadline, "the servers outlived SIGKILL"
        time.sleep(0.001)  # waiting for the condition: the process is gone
    status = run_cli("lab", "status")
    assert "BROKEN" in status.stdout
    run_cli("lab", "down")
    assert _lab_namespaces() == []


def test_unknown_scenario_lists_the_valid_ones() -> None:
    done = run_cli("lab", "up", "no-such-thing", check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "valid scenarios: ok, connection-refused" in lines[0]
    assert "Traceback" not in done.stderr


def test_missing_tool_names_the_package(tmp_path: Path) -> None:
    (tmp_path / "ip").symlink_to("/usr/sbin/ip")
    env = dict(os.environ, PATH=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "netprobe", "lab", "up", "ok"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "iptables-restore" in done.stderr and "apt-get install iptables" in done.stderr
    assert "Traceback" not in done.stderr
    assert _lab_namespaces() == []


def test_not_root_is_refused_clearly() -> None:
    from click.testing import CliRunner

    import netprobe.cli.lab  # noqa: F401 - sub-commands load lazily: import it before dropping root
    from netprobe.cli import cli

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to nobody, then run the command in-process
        os.close(read)
        os.setgid(65534)
        os.setuid(65534)
        result = CliRunner().invoke(cli, ["lab", "up", "ok"])
        os.write(write, f"{result.exit_code}\n{result.output}".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        code, _, output = pipe.read().partition("\n")
    os.waitpid(pid, 0)
    assert code == "2"
    assert "needs root" in output and "sudo" in output
    assert _lab_namespaces() == []
