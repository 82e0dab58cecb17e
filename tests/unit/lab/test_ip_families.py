"""`lab up --ip-family`: the plan, the kernel commands and the objects of IPv6 and dual-stack."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import kubernetes_validate
import pytest

from netprobe.lab import families, netns, objects, overlay, pki, scenarios, servers
from netprobe.lab.lifecycle import build_plan
from netprobe.lab.topology import IpFamily, Overlay, Plan

K8S_VERSION = "1.31.0"


def _version(address: str) -> int:
    return ipaddress.ip_interface(address).version


def _every_address(plan: Plan) -> list[str]:
    addresses = [plan.webhook.cluster_ip, plan.cluster_cidr, plan.service_cidr]
    for node in plan.nodes:
        addresses += [node.ip, node.pod_cidr, *node.external_ips]
    addresses += [pod.ip for pod in (*plan.pods, *plan.tunnel_agents)]
    addresses += [route.prefix for route in plan.vpc_routes]
    addresses += [route.via for route in plan.vpc_routes if route.via]
    return addresses


def test_twins_read_like_their_ipv4_addresses() -> None:
    assert families.ipv6_twin("10.0.1.11") == "fd00:10:0:1::11"
    assert families.ipv6_prefix("10.244.1.0/24") == "fd00:10:244:1::/64"
    assert families.ipv6_prefix("10.244.0.0/16") == "fd00:10:244::/48"
    assert families.ipv6_prefix("10.0.3.33/32") == "fd00:10:0:3::33/128"
    assert families.service_ip6("10.96.20.99", "10.96.0.0/12") == "fd00:10:96::1463"
    assert ipaddress.ip_address("fd00:10:96::1463") in ipaddress.ip_network(
        families.SERVICE_CIDR6)


@pytest.mark.parametrize("name", scenarios.NAMES)
def test_single_stack_ipv6_leaves_no_ipv4_address(name: str) -> None:
    plan = build_plan(name, ip_family=IpFamily.IPV6)
    assert {_version(address) for address in _every_address(plan)} == {6}
    assert all(rule.ipv6 and "/32" not in rule.rule for rule in plan.firewall)
    for pod in plan.pods:  # every pod sits in its node's pod CIDR, or is the node
        node = plan.node(pod.node)
        assert (ipaddress.ip_address(pod.ip) in ipaddress.ip_network(node.pod_cidr)
                or pod.ip == node.ip)


def test_dual_stack_keeps_ipv4_primary_and_adds_the_twins() -> None:
    ipv4, dual = build_plan("networkpolicy-drop"), build_plan("networkpolicy-drop",
                                                              ip_family=IpFamily.DUAL)
    assert dual.webhook.cluster_ips == ("10.96.20.99", "fd00:10:96::1463")
    assert [node.ips for node in dual.nodes][1] == ("10.0.1.11", "fd00:10:0:1::11")
    assert dual.pods[0].ips == ("10.244.1.5", "fd00:10:244:1::5")
    assert dual.cluster_cidrs == ("10.244.0.0/16", "fd00:10:244::/48")
    assert dual.firewall[0] == ipv4.firewall[0]
    assert dual.firewall[1].ipv6 and "-d fd00:10:244:1::5/128 -o npbr0" in dual.firewall[1].rule
    assert len(dual.vpc_routes) == 2 * len(ipv4.vpc_routes)


def test_firewall_rejects_become_icmpv6() -> None:
    rule = families._rule(build_plan("rst-middlebox").firewall[0])
    assert "--reject-with tcp-reset" in rule.rule
    other = families._rule(rule.__class__("np-vpc", "FORWARD", "-s 10.0.0.10/32 -j REJECT "
                                          "--reject-with icmp-host-prohibited"))
    assert other.rule == "-s fd00:10::10/128 -j REJECT --reject-with icmp6-adm-prohibited"


def test_the_vxlan_overlay_carries_each_family_in_its_own_device() -> None:
    """flanneld with EnableIPv6: flannel.1 over IPv4 for IPv4 pods, flannel-v6.1 over the
    node's IPv6 address for IPv6 pods (MTU 1500 - 70), ND entries and routes like ARP's."""
    plan = build_plan("ok", pod_overlay=Overlay.VXLAN, ip_family=IpFamily.DUAL)
    cp, w1 = plan.nodes[0], plan.nodes[1]
    assert [v.device for v in overlay.vteps(plan, cp)] == ["flannel.1", "flannel-v6.1"]
    commands = overlay.node_commands(plan, cp)
    assert ("link add flannel-v6.1 type vxlan id 1 local fd00:10::10 dev npeth0 dstport 8472 "
            "nolearning") in commands
    assert "addr add fd00:10:244::/128 dev flannel-v6.1 nodad" in commands
    v6 = overlay.vteps(plan, w1)[1]
    assert "route replace fd00:10:244:1::/64 via fd00:10:244:1:: dev flannel-v6.1 onlink" \
        in commands
    assert (f"fdb append {v6.mac} dev flannel-v6.1 dst fd00:10:0:1::11 self permanent"
            in overlay.fdb_commands(plan, cp))
    assert overlay.pod_mtu(plan, cp) == 1430
    assert plan.vpc_routes == ()  # neither family's pod CIDRs are routed by the provider
    only6 = build_plan("ok", pod_overlay=Overlay.VXLAN, ip_family=IpFamily.IPV6)
    assert [v.device for v in overlay.vteps(only6, only6.nodes[0])] == ["flannel-v6.1"]


def test_node_and_pod_commands_carry_both_families_without_dad() -> None:
    plan = build_plan("ok", ip_family=IpFamily.DUAL)
    worker = plan.nodes[1]
    commands = netns._node_commands(plan, worker)
    assert "addr add 10.0.1.11/24 dev npeth0" in commands
    assert "addr add fd00:10:0:1::11/64 dev npeth0 nodad" in commands
    assert {"route add default via 10.0.1.1", "route add default via fd00:10:0:1::1"} <= set(
        commands)
    assert "addr add fd00:10:244:1::1/64 dev npbr0 nodad" in commands
    assert "link add npbr0 type bridge mcast_snooping 0" in commands
    pod = netns._pod_commands(plan, plan.pods[0])
    assert "addr add fd00:10:244:1::5/64 dev npeth0 nodad" in pod
    assert "route add default via fd00:10:244:1::1" in pod


def test_the_provider_network_answers_no_route_in_ipv6_too() -> None:
    commands = netns._vpc_commands(build_plan("no-route", ip_family=IpFamily.IPV6))
    assert "route add blackhole ::/0" in commands
    assert "route add blackhole default" not in commands  # no IPv4 family at all
    assert "route replace unreachable fd00:10:244:1::/64" in commands
    assert "route replace fd00:10:244:2::/64 via fd00:10:0:2::12" in commands
    assert "addr add fd00:10:0:1::1/64 dev np-w1 nodad" in commands


def test_ipv4_commands_are_unchanged() -> None:
    plan = build_plan("ok")
    assert "link add npbr0 type bridge" in netns._node_commands(plan, plan.nodes[1])
    assert not any("nodad" in line for line in netns._vpc_commands(plan))
    assert netns.tools(plan.proxy_mode) == ("ip", "iptables-restore", "bridge")


def test_servers_listen_on_both_families_when_the_plan_has_ipv6(tmp_path: Path) -> None:
    assert all(spec.ipv6 for spec in servers.listener_specs(
        build_plan("ok", ip_family=IpFamily.IPV6), tmp_path))
    assert not any(spec.ipv6 for spec in servers.listener_specs(build_plan("ok"), tmp_path))


def test_kubelet_certificates_name_every_internal_ip(tmp_path: Path) -> None:
    from cryptography import x509

    plan = build_plan("kubelet-ok", ip_family=IpFamily.DUAL)
    pki.write_pki(plan, tmp_path)
    cert = x509.load_pem_x509_certificate(pki.kubelet_cert_path(tmp_path, plan.nodes[1])[0]
                                          .read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {
        "10.0.1.11", "fd00:10:0:1::11"}


def _listing(plan: Plan, tmp_path: Path) -> list[dict]:
    pki.write_pki(plan, tmp_path)
    return objects.build_list(plan, (tmp_path / pki.CA_BUNDLE).read_bytes(),
                              (tmp_path / pki.SIGNER_CA).read_bytes(), 1_790_000_000.0)["items"]


@pytest.mark.parametrize("family", [IpFamily.IPV6, IpFamily.DUAL])
@pytest.mark.parametrize("name", ["ok", "fargate-kubelet", "konnectivity-ok",
                                  "hostnetwork-control-plane", "kubelet-external-ip"])
def test_objects_validate_in_every_family(name: str, family: IpFamily, tmp_path: Path) -> None:
    for item in _listing(build_plan(name, ip_family=family), tmp_path):
        kubernetes_validate.validate(item, K8S_VERSION, strict=True)


def test_dual_stack_objects_say_both_families(tmp_path: Path) -> None:
    items = _listing(build_plan("ok", ip_family=IpFamily.DUAL), tmp_path)
    [service] = [i for i in items if i["kind"] == "Service"]
    assert service["spec"]["ipFamilies"] == ["IPv4", "IPv6"]
    assert service["spec"]["ipFamilyPolicy"] == "PreferDualStack"
    assert service["spec"]["clusterIPs"] == ["10.96.20.99", "fd00:10:96::1463"]
    assert service["spec"]["clusterIP"] == "10.96.20.99"
    slices = {s["addressType"]: s for s in items if s["kind"] == "EndpointSlice"}
    assert set(slices) == {"IPv4", "IPv6"}
    assert [e["addresses"] for e in slices["IPv6"]["endpoints"]] == [["fd00:10:244:1::5"],
                                                                      ["fd00:10:244:2::6"]]
    assert slices["IPv4"]["metadata"]["name"] != slices["IPv6"]["metadata"]["name"]
    node = next(i for i in items if i["kind"] == "Node" and i["metadata"]["name"] == "worker-1")
    assert [a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"] \
        == ["10.0.1.11", "fd00:10:0:1::11"]
    assert node["spec"]["podCIDRs"] == ["10.244.1.0/24", "fd00:10:244:1::/64"]
    pod = next(i for i in items if i["kind"] == "Pod" and i["metadata"]["namespace"]
               == "cert-manager")
    assert [p["ip"] for p in pod["status"]["podIPs"]] == ["10.244.1.5", "fd00:10:244:1::5"]
    proxy = next(i for i in items if i["kind"] == "ConfigMap")
    assert "clusterCIDR: 10.244.0.0/16,fd00:10:244::/48" in proxy["data"]["config.conf"]


def test_single_stack_ipv6_objects(tmp_path: Path) -> None:
    items = _listing(build_plan("ok", ip_family=IpFamily.IPV6), tmp_path)
    [service] = [i for i in items if i["kind"] == "Service"]
    assert (service["spec"]["ipFamilies"], service["spec"]["ipFamilyPolicy"],
            service["spec"]["clusterIP"]) == (["IPv6"], "SingleStack", "fd00:10:96::1463")
    assert [s["addressType"] for s in items if s["kind"] == "EndpointSlice"] == ["IPv6"]
