"""The scenario catalogue and the plans it builds (no root, no kernel)."""

from __future__ import annotations

import ipaddress

import pytest

from netprobe.core import errors
from netprobe.core.verdicts import UNDECIDED, Cause, VerdictClass
from netprobe.lab import scenarios
from netprobe.lab.topology import PREFIX, Serve

VERDICTS = {c.value for c in VerdictClass if c not in UNDECIDED}
CAUSES = {c.value for c in Cause}


def test_issue_scenarios_exist() -> None:
    required = {"ok", "connection-refused", "no-endpoints", "io-timeout", "networkpolicy-drop",
                "rst-middlebox", "no-route", "tls-handshake-timeout", "response-timeout",
                "x509-unknown-authority", "x509-expired", "fargate-kubelet", "eks-custom-cni",
                "hostnetwork-10260", "gke-port-443"}
    assert required <= set(scenarios.NAMES)


@pytest.mark.parametrize("scenario", scenarios.SCENARIOS, ids=scenarios.NAMES)
def test_plan_is_consistent(scenario: scenarios.Scenario) -> None:
    plan = scenario.build()
    assert plan.scenario == scenario.name
    assert scenario.verdict in VERDICTS
    assert scenario.cause in CAUSES or scenario.cause.startswith("http-")
    assert all(name.startswith(PREFIX) for name in plan.namespaces)
    assert len(set(plan.namespaces)) == len(plan.namespaces)
    assert sum(node.control_plane for node in plan.nodes) == 1
    for pod in plan.pods:
        node = plan.node(pod.node)
        if pod.in_node_netns:
            assert pod.ip == node.ip
        else:
            assert ipaddress.ip_address(pod.ip) in ipaddress.ip_network(node.pod_cidr)
        assert len(pod.host_veth) <= 15
    for node in plan.nodes:
        assert len(node.vpc_link) <= 15


def test_unknown_scenario_lists_valid_names() -> None:
    with pytest.raises(errors.UsageError, match="valid scenarios: ok, connection-refused"):
        scenarios.get("nope")


def test_connection_refused_has_nothing_on_the_target_port() -> None:
    plan = scenarios.get("connection-refused").build()
    pod = plan.pods[0]
    assert pod.container_port not in {listener.port for listener in pod.listeners}


def test_fargate_pod_shares_the_kubelets_port() -> None:
    plan = scenarios.get("fargate-kubelet").build()
    pod, node = plan.pods[0], plan.node(plan.pods[0].node)
    assert node.fargate and pod.micro_vm and pod.ip == node.ip
    kubelet_ports = {item.port for item in node.listeners if item.serve is Serve.KUBELET}
    assert pod.container_port in kubelet_ports


def test_no_endpoints_pod_is_unready_because_of_the_probe_port() -> None:
    pod = scenarios.get("no-endpoints").build().pods[0]
    assert not pod.ready and pod.probe_port != pod.healthz_port
