"""Lab snapshots are realistic and valid against the Kubernetes OpenAPI schemas."""

from __future__ import annotations

import base64
from pathlib import Path

import kubernetes_validate
import pytest

from netprobe.lab import lifecycle, objects, pki, scenarios
from netprobe.trace import discovery

K8S_VERSION = "1.31.0"


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[bytes, bytes]]:
    made = {}
    for scenario in scenarios.SCENARIOS:
        directory: Path = tmp_path_factory.mktemp(scenario.name)
        pki.write_pki(scenario.build(), directory)
        made[scenario.name] = ((directory / pki.CA_BUNDLE).read_bytes(),
                               (directory / pki.SIGNER_CA).read_bytes())
    return made


@pytest.mark.parametrize("scenario", scenarios.SCENARIOS, ids=scenarios.NAMES)
def test_every_object_validates(scenario: scenarios.Scenario, pems) -> None:
    ca, signer = pems[scenario.name]
    listing = objects.build_list(scenario.build(), ca, signer, 1_790_000_000.0)
    kinds = {item["kind"] for item in listing["items"]}
    plan = scenario.build()
    calls = ({"APIService"} if plan.aggregated else
             {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "Secret"})
    expected = {"Service", "EndpointSlice", "Deployment", "Node"} | calls
    if plan.running_pods:  # a gone pod is only an EndpointSlice entry
        expected.add("Pod")
    assert expected <= kinds
    for item in listing["items"]:
        kubernetes_validate.validate(item, K8S_VERSION, strict=True)


def test_ca_bundle_is_the_pem_ca(pems) -> None:
    ca, signer = pems["ok"]
    listing = objects.build_list(scenarios.get("ok").build(), ca, signer, 1_790_000_000.0)
    hook = listing["items"][0]["webhooks"][0]
    assert base64.b64decode(hook["clientConfig"]["caBundle"]) == ca
    assert hook["timeoutSeconds"] == 10


def test_managed_clusters_have_no_control_plane_node(pems) -> None:
    ca, signer = pems["fargate-kubelet"]
    listing = objects.build_list(scenarios.get("fargate-kubelet").build(), ca, signer, 0.0)
    nodes = [item for item in listing["items"] if item["kind"] == "Node"]
    assert [node["metadata"]["name"] for node in nodes] == [
        "fargate-ip-10-0-3-33.eu-west-1.compute.internal"]
    assert nodes[0]["spec"]["providerID"].startswith("aws:///")
    assert nodes[0]["spec"]["taints"][0]["key"] == "eks.amazonaws.com/compute-type"


def test_stale_bundle_differs_from_the_ca_secret(pems) -> None:
    ca, signer = pems["x509-unknown-authority"]
    assert ca != signer
    ok_ca, ok_signer = pems["ok"]
    assert ok_ca == ok_signer


@pytest.mark.parametrize("name", ["pod-on-control-plane", "hostnetwork-control-plane",
                                  "split-endpoints"])
def test_a_pod_on_the_control_plane_tolerates_its_taint(pems, name: str) -> None:
    """The scheduler puts a pod on a node tainted node-role.kubernetes.io/control-plane only
    if the pod tolerates it; the workers' pods carry no toleration."""
    ca, signer = pems[name]
    listing = objects.build_list(scenarios.get(name).build(), ca, signer, 0.0)
    pods = [item for item in listing["items"] if item["kind"] == "Pod"]
    on_cp = [pod for pod in pods if pod["spec"]["nodeName"] == "control-plane-1"
             and pod["metadata"]["namespace"] != "kube-system"]
    assert len(on_cp) == 1
    assert on_cp[0]["spec"]["tolerations"] == [
        {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
         "effect": "NoSchedule"}]
    assert all("tolerations" not in pod["spec"] for pod in pods
               if pod not in on_cp and pod["metadata"]["namespace"] != "kube-system")


@pytest.mark.parametrize("name,ready", [("konnectivity-ok", True),
                                        ("konnectivity-no-agent", False)])
def test_the_konnectivity_agent_is_found_as_trace_finds_one(pems, name: str, ready: bool) -> None:
    ca, signer = pems[name]
    plan = scenarios.get(name).build()
    listing = objects.build_list(plan, ca, signer, 0.0)
    tunnel = discovery.konnectivity(listing["items"])
    [agent] = tunnel.agents
    assert (agent.pod, agent.ready, agent.host_network) == (plan.tunnel_agents[0].name, ready,
                                                           False)
    assert agent.ip == "10.244.2.20" and agent.node == plan.nodes[2].name
    # The netns map names the agent's namespace the way the planner asks for it.
    assert f"{agent.key}={plan.tunnel_agents[0].netns}" in lifecycle.netns_map(plan).split(",")
