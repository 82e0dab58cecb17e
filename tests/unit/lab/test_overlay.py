"""The lab's VXLAN overlay, checked against what flanneld writes (flannel v0.26,
pkg/backend/vxlan/device.go newVXLANDevice: VNI 1, port 0 = the kernel's 8472, learning
off, MTU = NIC MTU - 50, the VTEP holding SUBNET.0/32; vxlan_network.go
handleSubnetEvents: per remote lease an ARP entry SUBNET.0 -> VtepMAC, an FDB entry
VtepMAC -> PublicIP, a route SUBNET via SUBNET.0 onlink)."""

from __future__ import annotations

import pytest

from netprobe.lab import objects, overlay, scenarios
from netprobe.lab.topology import VPC_NETNS, Overlay


def _plan(name: str):
    return overlay.with_overlay(scenarios.get(name).build(), Overlay.VXLAN)


def test_the_provider_network_no_longer_routes_pod_cidrs() -> None:
    native, carried = scenarios.get("ok").build(), _plan("ok")
    assert carried.overlay is Overlay.VXLAN
    assert {r.prefix for r in native.vpc_routes} == {n.pod_cidr for n in native.nodes}
    assert carried.vpc_routes == ()


def test_managed_providers_keep_their_native_pod_network() -> None:
    for name in ("io-timeout", "eks-custom-cni", "konnectivity-ok", "fargate-kubelet"):
        assert _plan(name) == scenarios.get(name).build(), name


def test_each_node_gets_flannels_vtep_arp_fdb_and_routes() -> None:
    plan = _plan("ok")
    cp, w1, w2 = plan.nodes
    commands = overlay.node_commands(plan, cp)
    assert commands[0] == ("link add flannel.1 type vxlan id 1 local 10.0.0.10 dev npeth0 "
                           "dstport 8472 nolearning")
    assert f"link set flannel.1 address {overlay.vtep_mac(cp)} mtu 1450" in commands
    assert "addr add 10.244.0.0/32 dev flannel.1" in commands
    for remote in (w1, w2):
        gateway = remote.pod_cidr.split("/")[0]
        assert (f"neigh replace {gateway} lladdr {overlay.vtep_mac(remote)} dev flannel.1 "
                "nud permanent") in commands
        assert f"route replace {remote.pod_cidr} via {gateway} dev flannel.1 onlink" in commands
    assert overlay.fdb_commands(plan, cp) == [
        f"fdb append {overlay.vtep_mac(r)} dev flannel.1 dst {r.ip} self permanent"
        for r in (w1, w2)]
    assert len({overlay.vtep_mac(n) for n in plan.nodes}) == 3


def test_a_node_flannel_has_no_lease_for_gets_no_route() -> None:
    """no-route: the provider answers host unreachable for worker-1's pods; flanneld knows
    no lease for it, so no node routes its CIDR into the tunnel and the SYN leaves bare."""
    plan = _plan("no-route")
    worker = plan.nodes[1]
    assert [r.prefix for r in plan.vpc_routes] == [worker.pod_cidr]
    for node in plan.nodes:
        assert not any(worker.pod_cidr in c for c in overlay.node_commands(plan, node))


def test_a_firewall_on_pod_addresses_acts_where_they_are_decapsulated() -> None:
    native, carried = scenarios.get("rst-middlebox").build(), _plan("rst-middlebox")
    assert native.firewall[0].netns == VPC_NETNS
    assert carried.firewall[0].netns == carried.node(carried.pods[0].node).netns
    assert carried.firewall[0].rule == native.firewall[0].rule
    gke = _plan("io-timeout")  # matches the control plane's address: stays in the VPC
    assert gke.firewall[0].netns == VPC_NETNS


@pytest.mark.parametrize("name", ["ok", "no-route", "pod-on-control-plane"])
def test_nodes_carry_flannels_annotations(name: str) -> None:
    plan = _plan(name)
    listing = objects.build_list(plan, b"", b"", 0.0)
    nodes = [item for item in listing["items"] if item["kind"] == "Node"]
    for node in nodes:
        notes = node["metadata"]["annotations"]
        assert notes["flannel.alpha.coreos.com/backend-type"] == "vxlan"
        assert notes["flannel.alpha.coreos.com/public-ip"] == plan.node(
            node["metadata"]["name"]).ip
