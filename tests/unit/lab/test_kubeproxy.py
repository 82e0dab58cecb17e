"""kube-proxy rule text: chain names and balancing as kube-proxy writes them."""

from __future__ import annotations

from netprobe.lab import kubeproxy, scenarios


def test_chain_hash_matches_kube_proxy() -> None:
    # Values from kube-proxy's own iptables proxier tests.
    assert kubeproxy._hash("ns1/svc1:p80" + "tcp") == "XPGD46QRK7WJZT7O"
    assert kubeproxy._hash("ns1/svc1:p80" + "tcp" + "10.180.0.1:80") == "SXIVWICOYRO3J4NJ"


def test_two_endpoints_are_balanced_at_random() -> None:
    plan = scenarios.get("ok").build()
    rules = kubeproxy.node_rules(plan, "np-cp")
    svc = kubeproxy.svc_chain(plan)
    assert f"--dport 443 -j {svc}" in rules
    assert "-m statistic --mode random --probability 0.50000000000" in rules
    assert rules.count("-j DNAT --to-destination") == 2
    assert "--to-destination 10.244.1.5:10250" in rules
    assert "REJECT" not in rules


def test_service_without_ready_endpoints_gets_reject() -> None:
    plan = scenarios.get("no-endpoints").build()
    rules = kubeproxy.node_rules(plan, "np-cp")
    assert "has no endpoints" in rules
    assert "-j REJECT --reject-with icmp-port-unreachable" in rules
    assert "DNAT" not in rules


def test_firewall_rules_land_in_their_namespace_only() -> None:
    plan = scenarios.get("rst-middlebox").build()
    assert "tcp-reset" in (kubeproxy.firewall_rules(plan, "np-vpc") or "")
    assert "tcp-reset" not in kubeproxy.node_rules(plan, "np-w1")
    assert kubeproxy.firewall_rules(plan, "np-w2") is None
