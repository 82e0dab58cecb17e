"""Endpoints on the replaying node itself, in each kube-proxy mode the lab builds.

Real clusters schedule webhooks on the control-plane node (kind, single-node
kubeadm, a Deployment that tolerates the control-plane taint) and run hostNetwork
webhooks there. Then the apiserver's call never leaves the node: after kube-proxy's
DNAT (and its masquerade, since the node IP is outside the cluster CIDR) the SYN
goes out the node's CNI bridge to the pod's veth, or, to a hostNetwork pod, over
`lo` (the kernel reroutes a locally generated packet whose new destination is one
of the node's own addresses). There is no cp-egress, network or worker-ingress hop.
The captures are checked with tshark, outside netprobe.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.wire import run_cli, trace_scenario, tshark_rows

pytestmark = pytest.mark.lab

MODES = ("iptables", "nftables")
NODE_IP = "10.0.0.10"
SYN = "tcp.flags.syn==1 && tcp.flags.ack==0"


def _trace(scenario: str, mode: str, tmp_path: Path) -> list[dict]:
    done = trace_scenario(tmp_path, scenario, "webhook", "validating/cert-manager-webhook",
                          "--pcap-dir", str(tmp_path / "pcaps"), proxy_mode=mode)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)["results"]


def _hops(result: dict) -> dict[str, dict]:
    return {hop["id"]: hop for hop in result["hops"]}


def _replay_pcap(result: dict) -> Path:
    return next(Path(p) for p in result["captures"] if "-replay-" in p)


@pytest.mark.parametrize("mode", MODES)
def test_a_pod_on_the_control_plane_is_reached_through_the_bridge(mode, tmp_path) -> None:
    (result,) = _trace("pod-on-control-plane", mode, tmp_path)
    assert [hop["id"] for hop in result["hops"]] == ["apiserver", "service", "pod-veth",
                                                     "webhook"]
    assert all(hop["status"] == "ok" for hop in result["hops"]), result["hops"]
    veth = _hops(result)["pod-veth"]
    assert veth["interface"].startswith("npv-") and "npbr0" in veth["detail"]
    # Masqueraded to the bridge's address, the way kube-proxy's off-cluster rule does it.
    assert veth["addresses"].startswith("10.244.0.1:")
    rows = tshark_rows(_replay_pcap(result), SYN, ["ip.src", "ip.dst"])
    assert ("10.244.0.1", "10.244.0.5") in {tuple(row) for row in rows}


@pytest.mark.parametrize("mode", MODES)
def test_a_hostnetwork_pod_on_the_control_plane_is_reached_over_lo(mode, tmp_path) -> None:
    (result,) = _trace("hostnetwork-control-plane", mode, tmp_path)
    assert [hop["id"] for hop in result["hops"]] == ["apiserver", "service", "host-socket",
                                                     "webhook"]
    assert all(hop["status"] == "ok" for hop in result["hops"]), result["hops"]
    socket = _hops(result)["host-socket"]
    assert socket["interface"] == "lo"
    local_port = result["replay"]["local_address"][1]
    wire_source = result["replay"]["wire"]["source"]
    assert wire_source.startswith(f"{NODE_IP}:") and not wire_source.endswith(f":{local_port}")
    rows = tshark_rows(_replay_pcap(result), SYN, ["ip.dst", "tcp.dstport", "tcp.srcport"])
    assert [NODE_IP, "10260", wire_source.rsplit(":", 1)[1]] in [list(r) for r in rows]


@pytest.mark.parametrize("mode", MODES)
def test_split_endpoints_are_one_local_and_one_remote_path(mode, tmp_path) -> None:
    results = _trace("split-endpoints", mode, tmp_path)
    paths = {result["node"]: [hop["id"] for hop in result["hops"]] for result in results}
    assert paths == {
        "control-plane-1": ["apiserver", "service", "pod-veth", "webhook"],
        "worker-1": ["apiserver", "service", "cp-egress", "network", "worker-ingress",
                     "pod-veth", "webhook"]}
    for result in results:
        assert result["verdict"]["class"] == "ok"
        assert all(hop["status"] == "ok" for hop in result["hops"]), result["hops"]


def test_a_refused_local_hostnetwork_port_is_the_socket_not_kube_proxy(tmp_path) -> None:
    """Nothing listens on the node's port: the SYN goes over lo and the node's own stack
    answers RST (TTL 64, zero hops). Not kube-proxy's REJECT (no SYN at all) and not a
    forged reset (the destination is this host)."""
    run_cli("lab", "up", "hostnetwork-control-plane")
    try:
        ca = tmp_path / "ca.crt"
        ca.write_bytes(Path("/run/netprobe-lab/pki/ca.crt").read_bytes())
        done = run_cli("replay", "https://cert-manager-webhook.cert-manager.svc:10261/validate",
                       "--resolve", f"cert-manager-webhook.cert-manager.svc:{NODE_IP}",
                       "--netns", "np-cp", "--ca-bundle", str(ca), "-o", "json", check=False)
    finally:
        run_cli("lab", "down")
    assert done.returncode == 1, done.stderr
    verdict = json.loads(done.stdout)["verdict"]
    assert (verdict["class"], verdict["cause"]) == ("connection-refused", "nothing-listening")

