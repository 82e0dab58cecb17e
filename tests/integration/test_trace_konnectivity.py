"""`netprobe trace webhook` through a konnectivity tunnel on the lab (GKE-style: a managed
control plane, one konnectivity-agent pod on worker-2, the webhook on worker-1).

The agent stand-in is a pod namespace with the agent's address, routes and health server
(8134, kubernetes.io's konnectivity-agent.yaml); the netns map names it
`kube-system/POD`, so the replay dials from it as the agent dials for konnectivity-server.
Not emulated: konnectivity's gRPC stream between server and agent (the `tunnel` hop is
unobservable, and says so).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import story
from tests.integration.wire import trace_scenario

pytestmark = pytest.mark.lab

AGENT = "konnectivity-agent-6b8f9c4d7-q8w2n"
AGENT_NODE = "gke-lab-default-pool-3f2a9c1e-m2vd"
WEBHOOK = "validating/cert-manager-webhook"


def _result(done) -> dict:
    (result,) = json.loads(done.stdout)["results"]
    story.check(result)
    return result


@pytest.mark.parametrize("mode", ["iptables", "nftables"])
def test_the_call_starts_in_the_agents_pod(mode: str, tmp_path: Path) -> None:
    done = trace_scenario(tmp_path, "konnectivity-ok", "webhook", WEBHOOK, proxy_mode=mode)
    assert done.returncode == 0, done.stderr
    result = _result(done)
    hops = {hop["id"]: hop for hop in result["hops"]}
    assert [hop["id"] for hop in result["hops"]][:3] == ["apiserver", "tunnel", "service"]
    assert f"replayed in {AGENT} on {AGENT_NODE}" in hops["apiserver"]["label"]
    assert hops["tunnel"]["status"] == "unobservable"
    assert "own network namespace" in hops["tunnel"]["detail"]
    # kube-proxy's NAT is the agent's node's; the pod's address is inside the cluster CIDR,
    # so the call is not masqueraded: the webhook sees the agent's pod IP.
    assert hops["service"]["node"] == AGENT_NODE
    assert "SNAT" not in hops["service"]["detail"]
    assert hops["cp-egress"]["status"] == "ok" and hops["cp-egress"]["node"] == AGENT_NODE
    assert hops["worker-ingress"]["addresses"].startswith("10.244.2.20:")
    assert hops["pod-veth"]["status"] == "ok" and hops["webhook"]["status"] == "ok"


def test_a_networkpolicy_for_the_control_plane_drops_the_tunnels_call(tmp_path: Path) -> None:
    done = trace_scenario(tmp_path, "konnectivity-networkpolicy", "webhook", WEBHOOK)
    assert done.returncode == 1, done.stderr
    result = _result(done)
    verdict = result["verdict"]
    assert (verdict["class"], verdict["cause"]) == ("io-timeout", "dropped-at-pod")
    assert verdict["culprit"]["hop"] == "pod-veth"
    assert "k8s-app=konnectivity-agent" in verdict["fix"]


def test_from_the_control_plane_the_same_path_passes(tmp_path: Path) -> None:
    """Why the replay must start in the agent: from the control plane's own address the
    NetworkPolicy admits the call, and a host-network replay would say all is well."""
    done = trace_scenario(tmp_path, "konnectivity-networkpolicy", "webhook", WEBHOOK,
                          "--apiserver-node", "control-plane")
    assert done.returncode == 0, done.stderr
    result = _result(done)
    tunnel = next(hop for hop in result["hops"] if hop["id"] == "tunnel")
    assert "control-plane's host network" in tunnel["detail"]


def test_no_ready_agent_is_no_agent_available(tmp_path: Path) -> None:
    done = trace_scenario(tmp_path, "konnectivity-no-agent", "webhook", WEBHOOK)
    assert done.returncode == 1, done.stderr
    result = _result(done)
    assert (result["verdict"]["class"], result["verdict"]["cause"]) == (
        "no-tunnel-agent", "konnectivity-no-agent")
    assert result["verdict"]["culprit"]["hop"] == "tunnel"
    assert result["apiserver_error"].endswith(": No agent available")
    assert result["captures"] == [] and result["replay"]["phases"][1]["status"] == "failed"


def test_no_endpoints_is_the_agents_nodes_reject(tmp_path: Path) -> None:
    """Seen from the agent's pod the SYN leaves and an ICMP error comes back, as from any
    REJECT on the way; the agent's node's own capture says its kube-proxy answered."""
    done = trace_scenario(tmp_path, "konnectivity-no-endpoints", "webhook", WEBHOOK)
    assert done.returncode == 1, done.stderr
    result = _result(done)
    verdict = result["verdict"]
    assert (verdict["class"], verdict["cause"]) == ("no-endpoints", "kube-proxy-reject")
    assert verdict["culprit"] == {"hop": "service", "node": AGENT_NODE, "pod": None}
    assert f"not its node, {AGENT_NODE}" in verdict["explanation"]
    assert result["apiserver_error"].endswith("dial tcp 10.96.20.99:443: connect: connection "
                                              "refused")
