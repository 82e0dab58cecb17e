"""trace across the lab's VXLAN overlay (`lab up --overlay vxlan`, Flannel's backend as
`netprobe/lab/overlay.py` describes it): the provider network carries only node-to-node
UDP 8472, and trace finds the replayed connection inside the tunnel on both nodes and
names the overlay hop."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests import story
from tests.integration.wire import run_cli, tcpdump, trace_scenario

pytestmark = pytest.mark.lab

VXLAN = ("--overlay", "vxlan")
WEBHOOK = "validating/cert-manager-webhook"


def _hops(result: dict) -> dict[str, dict]:
    return {hop["id"]: hop for hop in result["hops"]}


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_the_call_crosses_inside_vxlan_and_the_overlay_hop_is_named(tmp_path: Path,
                                                                     mode: str) -> None:
    run_cli("lab", "up", "ok", "--proxy-mode", mode, *VXLAN)
    try:
        snapshot = tmp_path / "snapshot.yaml"
        snapshot.write_text(run_cli("lab", "snapshot").stdout)
        with tcpdump("np-vpc", tmp_path / "vpc.pcap", bpf="tcp or udp"):
            done = run_cli("trace", "webhook", WEBHOOK, "--snapshot", str(snapshot),
                           "--netns-map", run_cli("lab", "netns-map").stdout.strip(),
                           "-o", "json")
    finally:
        run_cli("lab", "down")
    results = json.loads(done.stdout)["results"]
    assert len(results) == 2  # a replica on each worker
    for result in results:
        story.check(result)
        hops = _hops(result)
        node_ip = {"worker-1": "10.0.1.11", "worker-2": "10.0.2.12"}[result["node"]]
        overlay = hops["overlay"]
        assert overlay["status"] == "ok"
        assert overlay["addresses"] == f"VXLAN VNI 1 10.0.0.10 -> {node_ip}"
        assert "control-plane-1's npeth0" in overlay["detail"]
        assert f"{result['node']}'s npeth0" in overlay["detail"]
        # Host to pod through the overlay: masqueraded to the VTEP's address (flannel.1).
        assert hops["worker-ingress"]["addresses"].startswith("10.244.0.0:")
    # The provider network never sees a pod address: only the nodes' VXLAN datagrams.
    seen = subprocess.run(["tshark", "-r", str(tmp_path / "vpc.pcap"), "-d",
                           "udp.port==8472,vxlan", "-T", "fields", "-e", "ip.src", "-e",
                           "udp.dstport", "-e", "vxlan.vni"], capture_output=True, text=True,
                          timeout=60, check=True).stdout.split("\n")
    rows = [line.split("\t") for line in seen if line]
    assert rows and all(row[1] == "8472" and row[2] == "1" for row in rows)
    assert not any(row[0].split(",")[0].startswith("10.244.") for row in rows)


def test_a_networkpolicy_drop_behind_the_overlay(tmp_path: Path) -> None:
    done = trace_scenario(tmp_path, "networkpolicy-drop", "webhook", WEBHOOK, lab_args=VXLAN)
    assert done.returncode == 1, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    story.check(result)
    assert (result["verdict"]["class"], result["verdict"]["cause"]) == ("io-timeout",
                                                                        "dropped-at-pod")
    hops = _hops(result)
    assert hops["overlay"]["status"] == "ok" and hops["worker-ingress"]["status"] == "ok"
    assert result["verdict"]["culprit"]["hop"] == "pod-veth"


def test_a_node_without_an_overlay_route_sends_the_syn_bare(tmp_path: Path) -> None:
    """no-route: flanneld has no lease for worker-1, so the SYN leaves unencapsulated and
    the provider network answers host unreachable: no overlay hop."""
    done = trace_scenario(tmp_path, "no-route", "webhook", WEBHOOK, lab_args=VXLAN)
    assert done.returncode == 1, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    story.check(result)
    assert result["verdict"]["class"] == "no-route"
    assert "overlay" not in _hops(result)


@pytest.mark.parametrize("family", ["ipv6", "dual"])
def test_the_overlay_of_each_family(tmp_path: Path, family: str) -> None:
    """flannel-v6.1 carries IPv6 pods between the nodes' IPv6 addresses; in dual-stack the
    call takes the Service's primary family, IPv4, through flannel.1."""
    done = trace_scenario(tmp_path, "ok", "webhook", WEBHOOK,
                          lab_args=(*VXLAN, "--ip-family", family))
    assert done.returncode == 0, done.stderr
    for result in json.loads(done.stdout)["results"]:
        story.check(result)
        outer = _hops(result)["overlay"]["addresses"]
        assert outer.startswith("VXLAN VNI 1 " + ("fd00:10::10 -> fd00:10:0:"
                                                  if family == "ipv6" else "10.0.0.10 -> 10.0."))
