"""The lab's pod overlay: Flannel's VXLAN backend, as flanneld programs each node.

Owns: which nodes take part (a kubeadm cluster's, Fargate excepted: managed
providers route pods natively), each node's VTEP `flannel.1` (VNI 1, the
kernel's VXLAN port 8472, no learning, the NIC's MTU minus 50), and for every
other node the three entries flanneld writes when it learns that node's lease
(flannel v0.26 pkg/backend/vxlan/device.go and vxlan_network.go
handleSubnetEvents): an ARP entry for the remote subnet's `.0` with the remote
VTEP's MAC, an FDB entry sending that MAC to the remote node's IP, and an
onlink route to the remote pod CIDR via its `.0`. What the provider network
then sees: node-to-node UDP only, so it no longer routes pod CIDRs, and a
firewall rule that matched a pod address there can only act where the packet
is decapsulated, on the pod's node. Must not: touch the kernel (`lab.netns`
applies the plan and these commands).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from dataclasses import replace

from netprobe.lab.topology import (
    NODE_NIC,
    VPC_NETNS,
    FirewallRule,
    Node,
    Overlay,
    Plan,
    Provider,
)

DEVICE = "flannel.1"
"""flanneld's VXLAN device: `flannel.VNI`."""
VNI = 1
PORT = 8472
"""The Linux kernel's VXLAN port (flannel's default: it leaves the port to the kernel)."""
ENCAP_OVERHEAD = 50
"""flannel's vxlan backend: outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8."""
MTU = 1500 - ENCAP_OVERHEAD


def applies(plan: Plan) -> bool:
    """A kubeadm cluster runs the CNI on every node; managed providers route pods natively
    (GKE VPC-native, EKS's VPC CNI), so `--overlay` leaves their scenarios as they are."""
    return plan.provider is Provider.KUBEADM


def members(plan: Plan) -> tuple[Node, ...]:
    """The nodes whose pods the overlay carries."""
    if plan.overlay is not Overlay.VXLAN:
        return ()
    return tuple(node for node in plan.nodes if not node.fargate)


def vtep_mac(node: Node) -> str:
    """The node's VTEP MAC: flanneld picks a random one and publishes it in the Node's
    annotation; the lab derives a stable, locally administered one from the node's name."""
    digest = hashlib.sha256(node.name.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x0a, 0x58, *digest[:4]))


def vtep_address(node: Node) -> str:
    """The address flanneld gives flannel.1: the pod CIDR's network address, as a /32."""
    return str(ipaddress.ip_network(node.pod_cidr).network_address)


def _unreachable(plan: Plan) -> set[str]:
    """Pod CIDRs the provider network answers host unreachable for (their node's lease is
    unknown to flanneld: no route through the overlay, the packet leaves unencapsulated)."""
    return {route.prefix for route in plan.vpc_routes if route.kind == "unreachable"}


def with_overlay(plan: Plan, overlay: Overlay) -> Plan:
    """PLAN with pod traffic between nodes carried by OVERLAY (unchanged where it does not
    apply): the provider network keeps only the routes it still needs, and its firewall
    rules on pod addresses move to the pod's node."""
    if overlay is Overlay.NONE or not applies(plan):
        return plan
    carried = {node.pod_cidr for node in plan.nodes if not node.fargate}
    routes = tuple(route for route in plan.vpc_routes
                   if route.kind != "unicast" or route.prefix not in carried)
    return replace(plan, overlay=overlay, vpc_routes=routes,
                   firewall=tuple(_relocated(plan, rule) for rule in plan.firewall))


def _relocated(plan: Plan, rule: FirewallRule) -> FirewallRule:
    """A provider-network rule matching a pod's address, moved to that pod's node (the only
    place its packets are seen decapsulated); other rules as they are."""
    if rule.netns != VPC_NETNS:
        return rule
    for pod in plan.pods:
        if re.search(rf"-d {re.escape(pod.ip)}(/32)?\b", rule.rule):
            return replace(rule, netns=plan.node(pod.node).netns)
    return rule


def node_commands(plan: Plan, node: Node) -> list[str]:
    """`ip -batch` lines making NODE's VTEP and its ARP entries and routes to the others."""
    if node not in members(plan):
        return []
    commands = [f"link add {DEVICE} type vxlan id {VNI} local {node.ip} dev {NODE_NIC} "
                f"dstport {PORT} nolearning",
                f"link set {DEVICE} address {vtep_mac(node)} mtu {MTU}",
                f"addr add {vtep_address(node)}/32 dev {DEVICE}",
                f"link set {DEVICE} up"]
    for remote in _remotes(plan, node):
        gateway = vtep_address(remote)
        commands += [f"neigh replace {gateway} lladdr {vtep_mac(remote)} dev {DEVICE} "
                     "nud permanent",
                     f"route replace {remote.pod_cidr} via {gateway} dev {DEVICE} onlink"]
    return commands


def fdb_commands(plan: Plan, node: Node) -> list[str]:
    """`bridge -batch` lines: each remote VTEP's MAC is behind that node's IP."""
    return [f"fdb append {vtep_mac(remote)} dev {DEVICE} dst {remote.ip} self permanent"
            for remote in _remotes(plan, node)] if node in members(plan) else []


def _remotes(plan: Plan, node: Node) -> list[Node]:
    unreachable = _unreachable(plan)
    return [other for other in members(plan)
            if other != node and other.pod_cidr not in unreachable]


def node_annotations(plan: Plan, node: Node) -> dict[str, str]:
    """The annotations flanneld (kube subnet manager) writes on its Node."""
    if node not in members(plan):
        return {}
    return {"flannel.alpha.coreos.com/backend-type": "vxlan",
            "flannel.alpha.coreos.com/backend-data": json.dumps(
                {"VNI": VNI, "VtepMAC": vtep_mac(node)}, separators=(",", ":")),
            "flannel.alpha.coreos.com/kube-subnet-manager": "true",
            "flannel.alpha.coreos.com/public-ip": node.ip}
