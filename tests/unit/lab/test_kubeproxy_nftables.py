"""The lab's nftables-mode rules against kube-proxy's own expected rules.

Compared against: kubernetes/kubernetes `pkg/proxy/nftables/proxier_test.go` at
030880a5dc5449403c6d1f0aa146a7dc21d6c6dc, `TestOverallNFTablesRules`: its
`baseRules` and the parts of the expected dump for services ns1/svc1 (ClusterIP
172.30.0.41, port p80 80/TCP, one endpoint 10.180.0.1:80) and ns6/svc6 (ClusterIP
172.30.0.46, no endpoints), with the test's pod CIDR 10.0.0.0/8, service CIDR
172.30.0.0/16 and node IP 192.168.0.2
(kube-proxy/nftables-TestOverallNFTablesRules-svc1-svc6.nft). The dump is knftables'
sorted transaction, so statements are compared as a set; the lab's script also
declares every chain before the first rule that names it, as nft requires.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from netprobe.core.model import ProxyMode
from netprobe.lab import kubeproxy
from netprobe.lab.kubeproxy import Endpoint, ProxyConfig, ServicePort, nftables
from netprobe.lab.lifecycle import build_plan
from netprobe.lab.topology import IpFamily

UPSTREAM = (Path(__file__).parent / "kube-proxy"
            / "nftables-TestOverallNFTablesRules-svc1-svc6.nft").read_text()
CONFIG = ProxyConfig(cluster_cidr="10.0.0.0/8", service_cidr="172.30.0.0/16",
                     node_ips=("192.168.0.2",))


def statements(text: str) -> set[str]:
    return {re.sub(r"\s+", " ", line.strip()) for line in text.splitlines()
            if line.strip() and not line.startswith("#")}


def _services() -> list[ServicePort]:
    return [ServicePort("ns1", "svc1", "p80", "172.30.0.41", 80, (Endpoint("10.180.0.1", 80),)),
            ServicePort("ns6", "svc6", "p80", "172.30.0.46", 80)]


def test_script_equals_kube_proxys_for_the_same_services() -> None:
    assert statements(nftables.script(_services(), CONFIG)) == statements(UPSTREAM)


def test_chain_names_are_kube_proxys_hashes() -> None:
    svc1 = _services()[0]
    assert nftables.service_chain(svc1) == "service-ULMVA6XW-ns1/svc1/tcp/p80"
    assert (nftables.endpoint_chain(svc1, "10.180.0.1", 80)
            == "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80")


def test_chains_are_declared_before_use() -> None:
    declared: set[str] = set()
    for line in nftables.script(kubeproxy.services(build_plan("fanout")),
                                kubeproxy.config(build_plan("fanout"))).splitlines():
        if line.startswith("add chain"):
            declared.add(line.split()[4])
        for name in re.findall(r"goto (\S+?)(?:,| }|$)", line):
            assert name in declared | {"reject-chain"}, line


@pytest.mark.skipif(shutil.which("nft") is None or os.geteuid() != 0,
                    reason="needs nft and root (nft --check opens a netlink socket)")
def test_nft_parses_every_scenario_in_nftables_mode() -> None:
    """`nft --check` (no kernel change): the syntax is what nft accepts."""
    from netprobe.lab import scenarios

    for name in scenarios.NAMES:
        rules = kubeproxy.node_rules(build_plan(name, ProxyMode.NFTABLES), "np-cp")
        assert rules.nft is not None
        done = subprocess.run(["nft", "--check", "-f", "-"], input=rules.nft, text=True,
                              capture_output=True, timeout=30)
        assert done.returncode == 0, (name, done.stderr)


# --- IPv6 -------------------------------------------------------------------------------
# Compared against: the IPv6 proxier's dump in kubernetes-sigs/knftables `fake_test.go` at
# 53ae89be4ecff18869b799427719b5041bb72982 (`TestFakeParseDump`, kube-proxy's own output for
# service ns1/svc1, ClusterIP fd00:172:30::41, endpoints fd00:10:180::1 and fd00:10:180::2:1,
# with NewFakeProxier(IPv6)'s pod CIDR fd00:10::/64 and service CIDR fd00:10:96::/112, the
# same as kubernetes pkg/proxy/nftables/proxier_test.go at 030880a5 sets for IPv6). The
# table's family-specific lines and the Service's endpoint chains are compared
# (kube-proxy/nftables-knftables-TestFakeParseDump-IPv6-svc1.nft); that dump comes from a
# later kube-proxy whose hook chains and service-chain match differ from 030880a5's, so
# those lines are left out of the fixture. knftables writes ` , ` between vmap elements.

UPSTREAM6 = (Path(__file__).parent / "kube-proxy"
             / "nftables-knftables-TestFakeParseDump-IPv6-svc1.nft").read_text()
SVC6 = ServicePort("ns1", "svc1", "p80", "fd00:172:30::41", 80,
                   (Endpoint("fd00:10:180::1", 80), Endpoint("fd00:10:180::2:1", 80)))
CONFIG6 = ProxyConfig(cluster_cidr="fd00:10::/64", service_cidr="fd00:10:96::/112",
                      node_ips=("2001:db8::1",))


def test_ipv6_script_has_kube_proxys_ipv6_lines() -> None:
    ours = {line.replace(" , ", ", ") for line in statements(nftables.script([SVC6], CONFIG6))}
    expected = {line.replace(" , ", ", ") for line in statements(UPSTREAM6)}
    assert expected <= ours


def test_ipv6_script_names_no_ipv4_family() -> None:
    ours = nftables.script([SVC6], CONFIG6)
    assert " ip kube-proxy" not in ours and "ipv4_addr" not in ours
    assert re.search(r"\bip (daddr|saddr)\b", ours) is None
    assert ("add rule ip6 kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip6 daddr "
            "fd00:172:30::41 ip6 saddr != fd00:10::/64 jump mark-for-masquerade") in ours


@pytest.mark.skipif(shutil.which("nft") is None or os.geteuid() != 0,
                    reason="needs nft and root (nft --check opens a netlink socket)")
@pytest.mark.parametrize("family", [IpFamily.IPV6, IpFamily.DUAL])
def test_nft_parses_every_scenario_in_ipv6_and_dual_stack(family: IpFamily) -> None:
    """`nft --check` (no kernel change) on both tables of a dual-stack node."""
    from netprobe.lab import scenarios

    for name in scenarios.NAMES:
        rules = kubeproxy.node_rules(build_plan(name, ProxyMode.NFTABLES, ip_family=family),
                                     "np-cp")
        assert rules.nft is not None and "table ip6 kube-proxy" in rules.nft
        assert ("table ip kube-proxy" in rules.nft) is (family is IpFamily.DUAL)
        done = subprocess.run(["nft", "--check", "-f", "-"], input=rules.nft, text=True,
                              capture_output=True, timeout=30)
        assert done.returncode == 0, (name, family, done.stderr)
