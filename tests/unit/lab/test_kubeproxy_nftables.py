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
