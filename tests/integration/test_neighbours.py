"""The node agent's view of the neighbour table, read inside a lab namespace (needs root)."""

from __future__ import annotations

import subprocess

import pytest

from netprobe.host import neighbours
from tests.integration.wire import run_cli

pytestmark = pytest.mark.lab


def test_states_are_read_in_the_namespace_asked_for() -> None:
    run_cli("lab", "up", "stale-endpoint")
    try:
        subprocess.run(["ip", "-n", "np-w1", "neigh", "replace", "10.244.1.77", "dev", "npbr0",
                        "lladdr", "02:00:00:00:01:77", "nud", "permanent"], check=True)
        # The SYN to the gone pod makes worker-1 ask ARP for 10.244.1.5 (and nobody answers).
        subprocess.run(["ip", "netns", "exec", "np-cp", "python3", "-c",
                        "import socket; s = socket.socket(); s.settimeout(0.3)\n"
                        "try: s.connect(('10.244.1.5', 10250))\nexcept OSError: pass"],
                       check=True, timeout=10)
        found = neighbours.states(["10.244.1.77", "10.244.1.5", "10.244.1.99"], "np-w1")
    finally:
        run_cli("lab", "down")
    assert found["10.244.1.77"] == "permanent"
    assert found["10.244.1.5"] in neighbours.UNRESOLVED
    assert "10.244.1.99" not in found  # no entry: unknown, not unresolved
    assert neighbours.states(["10.244.1.77"], None) == {}  # not the host's own table
