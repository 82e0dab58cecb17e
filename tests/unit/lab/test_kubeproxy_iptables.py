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

import os
import re
import shlex
import shutil
import subprocess
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest

from netprobe.lab import kubeproxy
from netprobe.lab.kubeproxy import Endpoint, ProxyConfig, ServicePort, iptables
from netprobe.lab.lifecycle import build_plan
from netprobe.lab.topology import IpFamily

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


# --- IPv6 -------------------------------------------------------------------------------
# Compared against: kubernetes `pkg/proxy/iptables/proxier_test.go`,
# `TestEnableLocalhostNodePortsIPv6` (a stored copy of the v1.27-era file: `iptablestest.
# NewIPv6Fake`, `pointer.String`; the library names no repository for it): service ns1/svc1
# (ClusterIP fd00:ab34::20, port p80 80/TCP, endpoints ff06::c1:80 and ff06::c2:80, a NodePort
# with externalTrafficPolicy Local and the no-op local detector), expected dump in
# kube-proxy/iptables-TestEnableLocalhostNodePortsIPv6.txt. The ClusterIP parts are compared
# (KUBE-SERVICES' jump, KUBE-SVC's endpoint jumps, KUBE-SEP); the NodePort chains are not
# generated by the lab, and the no-op detector leaves out the off-cluster masquerade rule,
# which is checked on its own. The IPv6 filter table has no "block incoming localnet
# connections" rule (kube-proxy writes it for IPv4 only).

UPSTREAM6 = (Path(__file__).parent / "kube-proxy"
             / "iptables-TestEnableLocalhostNodePortsIPv6.txt").read_text()
SVC6 = ServicePort("ns1", "svc1", "p80", "fd00:ab34::20", 80,
                   (Endpoint("ff06::c1", 80), Endpoint("ff06::c2", 80)))
CONFIG6 = ProxyConfig(cluster_cidr="fd00:10::/64", service_cidr="fd00:10:96::/112")


def _clusterip_parts(rules: Rules) -> dict[str, list[tuple[str, ...]]]:
    nat = rules["nat"]
    svc = iptables.svc_chain(SVC6)
    parts = {"services": [r for r in nat["KUBE-SERVICES"] if "cluster IP" in r],
             "svc": [r for r in nat[svc] if "KUBE-MARK-MASQ" not in r]}
    for chain, lines in nat.items():
        if chain.startswith("KUBE-SEP-"):
            parts[chain] = lines
    return parts


def test_ipv6_rules_equal_kube_proxys_for_the_same_service() -> None:
    ours = iptables.restore_text([SVC6], CONFIG6)
    assert (_clusterip_parts(_normalised(parse(ours)))
            == _clusterip_parts(_normalised(parse(UPSTREAM6))))


def test_ipv6_chain_names_hash_the_bracketed_endpoint() -> None:
    assert iptables.sep_chain(SVC6, "ff06::c1", 80) == "KUBE-SEP-LIGRYQQLSZN4UWQ5"
    assert iptables.svc_chain(SVC6) == "KUBE-SVC-XPGD46QRK7WJZT7O"


def test_ipv6_masquerades_off_cluster_calls_and_has_no_localnet_rule() -> None:
    rules = parse(iptables.restore_text([SVC6], CONFIG6))
    masq = [r for r in rules["nat"][iptables.svc_chain(SVC6)] if r[-1] == "KUBE-MARK-MASQ"]
    assert masq and masq[0][-5:] == ("!", "-s", "fd00:10::/64", "-j", "KUBE-MARK-MASQ")
    assert rules["filter"]["KUBE-FIREWALL"] == []
    assert "127.0.0.0/8" in iptables.restore_text([SVC6], replace(CONFIG6,
                                                                   cluster_cidr="10.0.0.0/8"))


def test_a_dual_stack_node_gets_both_proxiers_and_both_firewalls() -> None:
    plan = build_plan("rst-middlebox", ip_family=IpFamily.DUAL)
    node = kubeproxy.node_rules(plan, "np-cp")
    assert node.iptables and "-d 10.96.20.99 " in node.iptables
    assert node.ip6tables and "-d fd00:10:96::1463 " in node.ip6tables
    assert "fd00" not in node.iptables and "10.96.20.99" not in node.ip6tables
    assert "tcp-reset" in (kubeproxy.firewall_rules(plan, "np-vpc", ipv6=True) or "")
    assert "-d fd00:10:244:1::5/128 " in (kubeproxy.firewall_rules(plan, "np-vpc", True) or "")
    assert "-d 10.244.1.5/32 " in (kubeproxy.firewall_rules(plan, "np-vpc") or "")


def test_a_single_stack_ipv6_node_has_no_ipv4_proxier() -> None:
    node = kubeproxy.node_rules(build_plan("ok", ip_family=IpFamily.IPV6), "np-cp")
    assert node.iptables is None and node.ip6tables is not None
    assert "! -s fd00:10:244::/48 -j KUBE-MARK-MASQ" in node.ip6tables


def _restore_test(program: str, text: str) -> subprocess.CompletedProcess[str]:
    """PROGRAM --test in a throwaway network namespace of its own (unshare -n): nothing of
    the host's is read or changed."""
    return subprocess.run(["unshare", "--net", program, "--test"], input=text, text=True,
                          capture_output=True, timeout=30)


@pytest.mark.skipif(os.geteuid() != 0 or not all(shutil.which(tool) for tool in (
    "unshare", "iptables-restore", "ip6tables-restore")),
    reason="needs root, unshare, iptables-restore and ip6tables-restore")
@pytest.mark.parametrize("family", [IpFamily.IPV6, IpFamily.DUAL])
def test_ip6tables_restore_accepts_every_scenario(family: IpFamily) -> None:
    from netprobe.lab import scenarios

    for name in scenarios.NAMES:
        plan = build_plan(name, ip_family=family)
        for netns in ("np-vpc", *(node.netns for node in plan.nodes)):
            rules = kubeproxy.node_rules(plan, netns) if netns != "np-vpc" else \
                kubeproxy.NodeRules(kubeproxy.firewall_rules(plan, netns), None,
                                    kubeproxy.firewall_rules(plan, netns, ipv6=True))
            for program, text in (("iptables-restore", rules.iptables),
                                  ("ip6tables-restore", rules.ip6tables)):
                if text:
                    done = _restore_test(program, text)
                    assert done.returncode == 0, (name, family, netns, program, done.stderr)
