"""`--pcapng` and `--graph` for every kind of traced call (issue: hop graph, pcapng and
graph work for every kind): the files are written, tshark reads the pcapng and finds
the call's SYN in it, and the graph names every hop of the JSON result."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.wire import trace_scenario

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("scenario, args", [
    ("konnectivity-ok", ("webhook", "validating/cert-manager-webhook")),
    ("apiservice-ok", ("apiservice",)),
    ("kubelet-ok", ("kubelet", "worker-1")),
])
def test_every_kind_writes_its_pcapng_and_graph(tmp_path: Path, scenario: str,
                                                args: tuple[str, ...]) -> None:
    pcapng, graph = tmp_path / "call.pcapng", tmp_path / "hops.svg"
    done = trace_scenario(tmp_path, scenario, *args, "--pcapng", str(pcapng),
                          "--graph", str(graph))
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    syns = subprocess.run(["tshark", "-r", str(pcapng), "-Y",
                           "tcp.flags.syn==1 && tcp.flags.ack==0", "-T", "fields",
                           "-e", "frame.number"], capture_output=True, text=True, timeout=60,
                          check=True).stdout.split()
    assert syns, "the replayed call's SYN is in the pcapng"
    svg = graph.read_text()  # matplotlib keeps each drawn text as an SVG comment
    hops = [hop for result in results for hop in result["hops"]]
    statuses = [line for line in svg.splitlines() if line.strip().startswith("<!-- [")]
    assert sorted(s.strip()[6:-5] for s in statuses) == sorted(h["status"] for h in hops)
    assert "<!-- apiserver -->" in svg
