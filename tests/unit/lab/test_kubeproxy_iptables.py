"""The lab's iptables-mode rules against kube-proxy's own expected rules.

Compared against: kubernetes `pkg/proxy/iptables/proxier_test.go`,
`TestOverallIPTablesRules` (the stored copy of kairosci/kubernetes at
235e48943bb6ddc80e073456e5916a05f69f0be6, a recent fork (about v1.33) whose text of
this test equals another stored copy without the fork's own options), services
ns1/svc1 (ClusterIP 172.30.0.41, port p80 80/TCP, one endpoint 10.180.0.1:80) and
ns6/svc6 (ClusterIP 172.30.0.46, no endpoints),
with the test's pod CIDR 10.0.0.0/8 as the local detector. Below are the lines of
the expected dump that belong to those two services and to the chains every
service shares (kube-proxy/iptables-TestOverallIPTablesRules-svc1-svc6.txt).
Two differences are expected and normalised: the test's fake
iptables has no `--random-fully` and its kernel has `nfacct`; a real node has the
first, and kube-proxy leaves the second out where the kernel lacks it.
"""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from pathlib import Path

from netprobe.lab import kubeproxy
from netprobe.lab.kubeproxy import Endpoint, ProxyConfig, ServicePort, iptables
from netprobe.lab.lifecycle import build_plan

UPSTREAM = (Path(__file__).parent / "kube-proxy"
            / "iptables-TestOverallIPTablesRules-svc1-svc6.txt").read_text()
BUILTIN = {"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"}

Rules = dict[str, dict[str, list[tuple[str, ...]]]]


def parse(text: str, *, builtin: bool = False) -> Rules:
    """table -> chain -> rules (token tuples), in order; kube-proxy's own chains only."""
    tables: Rules = defaultdict(lambda: defaultdict(list))
    table = ""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            chain = line[1:].split()[0]
            if builtin or chain not in BUILTIN:
                tables[table].setdefault(chain, [])
        elif line.startswith("-A "):
            tokens = shlex.split(line)
            if builtin or tokens[1] not in BUILTIN:
                tables[table][tokens[1]].append(tuple(tokens[2:]))
    return tables


def _normalised(rules: Rules) -> Rules:
    out: Rules = defaultdict(lambda: defaultdict(list))
    for table, chains in rules.items():
        for chain, lines in chains.items():
            out[table][chain] = [_drop(line) for line in lines]
    return out


def _drop(rule: tuple[str, ...]) -> tuple[str, ...]:
    """Without the two kernel-dependent parts (see the module docstring)."""
    text = " ".join(rule).replace(" --random-fully", "")
    text = re.sub(r" -m nfacct --nfacct-name \S+", "", text)
    return tuple(text.split(" "))


def _upstream_services() -> list[ServicePort]:
    return [ServicePort("ns1", "svc1", "p80", "172.30.0.41", 80, (Endpoint("10.180.0.1", 80),)),
            ServicePort("ns6", "svc6", "p80", "172.30.0.46", 80)]


def test_rules_equal_kube_proxys_for_the_same_services() -> None:
    ours = iptables.restore_text(_upstream_services(), ProxyConfig(cluster_cidr="10.0.0.0/8"))
    assert _normalised(parse(ours)) == _normalised(parse(UPSTREAM))


def test_postrouting_masquerades_fully_random_on_a_real_node() -> None:
    ours = iptables.restore_text(_upstream_services(), ProxyConfig(cluster_cidr="10.0.0.0/8"))
    assert parse(ours)["nat"]["KUBE-POSTROUTING"][-1][-2:] == ("MASQUERADE", "--random-fully")


def test_chain_names_are_kube_proxys_hashes() -> None:
    svc1 = _upstream_services()[0]
    assert iptables.svc_chain(svc1) == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert iptables.sep_chain(svc1, "10.180.0.1", 80) == "KUBE-SEP-SXIVWICOYRO3J4NJ"


def _shape(rules: Rules, names: dict[str, str]) -> Rules:
    """RULES with addresses, ports, names and hashes replaced by what they stand for."""
    text_rules: Rules = defaultdict(lambda: defaultdict(list))
    for table, chains in rules.items():
        for chain, lines in chains.items():
            text = [" ".join(line) for line in lines]
            for real, role in names.items():
                chain = chain.replace(real, role)
                text = [line.replace(real, role) for line in text]
            text_rules[table][chain] = [tuple(line.split(" ")) for line in text]
    return text_rules


def test_the_lab_service_has_the_shape_of_kube_proxys() -> None:
    """The lab's webhook Service, addresses substituted, is written as ns1/svc1 is."""
    plan = build_plan("no-endpoints")
    lab_svc = kubeproxy.services(build_plan("connection-refused"))[0]
    upstream = _shape(_normalised(parse(UPSTREAM)), {
        "KUBE-SVC-XPGD46QRK7WJZT7O": "SVC", "KUBE-SEP-SXIVWICOYRO3J4NJ": "SEP",
        "ns1/svc1:p80": "PORTNAME", "ns6/svc6:p80": "EMPTYNAME", "172.30.0.41": "CIP",
        "172.30.0.46": "EMPTYCIP", "10.180.0.1:80": "EP", "10.180.0.1": "EPIP",
        "10.0.0.0/8": "CLUSTER", "--dport 80": "--dport PORT"})
    with_endpoint = kubeproxy.iptables.restore_text(
        [lab_svc, ServicePort("ns6", "svc6", "p80", "172.30.0.46", 80)],
        kubeproxy.config(plan))
    endpoint = lab_svc.endpoints[0]
    ours = _shape(_normalised(parse(with_endpoint)), {
        iptables.svc_chain(lab_svc): "SVC",
        iptables.sep_chain(lab_svc, endpoint.ip, endpoint.port): "SEP",
        lab_svc.port_id: "PORTNAME", "ns6/svc6:p80": "EMPTYNAME", lab_svc.cluster_ip: "CIP",
        "172.30.0.46": "EMPTYCIP", f"{endpoint.ip}:{endpoint.port}": "EP", endpoint.ip: "EPIP",
        plan.cluster_cidr: "CLUSTER", f"--dport {lab_svc.port}": "--dport PORT",
        "--dport 80": "--dport PORT"})
    assert ours == upstream


def test_every_node_namespace_jumps_into_kube_proxys_chains() -> None:
    rules = parse(kubeproxy.node_rules(build_plan("ok"), "np-cp").iptables or "", builtin=True)
    assert ("-m", "comment", "--comment", "kubernetes service portals", "-j",
            "KUBE-SERVICES") in rules["nat"]["OUTPUT"]
    assert rules["nat"]["POSTROUTING"][0][-1] == "KUBE-POSTROUTING"
    assert any(rule[-1] == "KUBE-FORWARD" for rule in rules["filter"]["FORWARD"])


def test_scenario_firewall_rules_follow_kube_proxys_in_their_namespace_only() -> None:
    plan = build_plan("networkpolicy-drop")
    [rule] = plan.firewall
    assert rule.netns == "np-w1"
    line = f"-A {rule.chain} {rule.rule}"
    node = kubeproxy.node_rules(plan, "np-w1").iptables or ""
    assert line in node and node.index(line) > node.index("-j KUBE-FORWARD")
    assert line not in (kubeproxy.node_rules(plan, "np-w2").iptables or "")
    vpc = build_plan("rst-middlebox")
    assert "tcp-reset" in (kubeproxy.firewall_rules(vpc, "np-vpc") or "")
    assert kubeproxy.firewall_rules(vpc, "np-w2") is None
