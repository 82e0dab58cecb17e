"""trace on the lab in IPv6 and dual-stack (`lab up --ip-family`, `netprobe/lab/families.py`):
IPv6 ClusterIPs and pod addresses, kube-proxy's ip6tables/nftables ip6 rules, ICMPv6
errors and neighbour-discovery failures, and Go's bracketed address form in the
apiserver's words."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from tests import story
from tests.integration.wire import trace_scenario

pytestmark = pytest.mark.lab

WEBHOOK = "validating/cert-manager-webhook"
CLUSTER_IP_V6 = "fd00:10:96::1463"
URL = "https://cert-manager-webhook.cert-manager.svc:443/validate?timeout=10s"
# scenario: (class, cause, the apiserver's message, or None)
EXPECTED = {
    "ok": ("ok", "ok", None),
    "no-endpoints": ("no-endpoints", "kube-proxy-reject",
                     f'failed calling webhook "webhook.cert-manager.io": failed to call webhook: '
                     f'Post "{URL}": dial tcp [{CLUSTER_IP_V6}]:443: connect: connection refused'),
    "no-route": ("no-route", "icmp-unreachable",
                 f'failed calling webhook "webhook.cert-manager.io": failed to call webhook: '
                 f'Post "{URL}": dial tcp [{CLUSTER_IP_V6}]:443: connect: network is unreachable'),
    "stale-endpoint": ("no-route", "stale-endpoint",
                       f'failed calling webhook "webhook.cert-manager.io": failed to call webhook: '
                       f'Post "{URL}": dial tcp [{CLUSTER_IP_V6}]:443: connect: no route to host'),
    "rst-middlebox": ("connection-refused", "rst-from-middlebox", None),
    "hostnetwork-control-plane": ("ok", "ok", None),
}


def _family(address: str) -> int:
    host = address.rsplit(":", 1)[0].strip("[]")
    return ipaddress.ip_address(host).version


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_ipv6_paths_are_diagnosed(scenario: str, tmp_path: Path) -> None:
    done = trace_scenario(tmp_path, scenario, "webhook", WEBHOOK,
                          lab_args=("--ip-family", "ipv6"))
    cls, cause, message = EXPECTED[scenario]
    assert done.returncode == (0 if cls == "ok" else 1), done.stderr
    for result in json.loads(done.stdout)["results"]:
        story.check(result)
        assert (result["verdict"]["class"], result["verdict"]["cause"]) == (cls, cause)
        if message:
            assert result["apiserver_error"] == message
        if result["endpoint"]:
            assert _family(result["endpoint"]) == 6
        dialled = result["replay"]["dialed"]
        assert dialled is None or ipaddress.ip_address(dialled[0]).version == 6


def test_dual_stack_dials_the_primary_cluster_ip(tmp_path: Path) -> None:
    """An IPv4-primary dual-stack Service: the apiserver's resolver dials spec.clusterIP
    (IPv4), and only the IPv4 EndpointSlice's endpoints are the call's."""
    done = trace_scenario(tmp_path, "ok", "webhook", WEBHOOK, lab_args=("--ip-family", "dual"))
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    assert len(results) == 2
    for result in results:
        story.check(result)
        assert _family(result["endpoint"]) == 4
        assert result["replay"]["dialed"][0] in ("10.244.1.5", "10.244.2.6", "10.96.20.99")
