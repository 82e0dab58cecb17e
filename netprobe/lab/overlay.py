"""The lab's pod overlay: Flannel's VXLAN backend, as flanneld programs each node.

Owns: which nodes take part (a kubeadm cluster's, Fargate excepted: managed
providers route pods natively), each node's VTEP per IP family, `flannel.1` for
IPv4 and `flannel-v6.1` for IPv6 over the node's IPv6 address (VNI 1, the
kernel's VXLAN port 8472, no learning, the NIC's MTU minus 50, or 70 over
IPv6), and for every
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
from dataclasses import dataclass, replace

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
"""flanneld's IPv4 VXLAN device: `flannel.VNI`."""
DEVICE6 = "flannel-v6.1"
"""flanneld's IPv6 VXLAN device (EnableIPv6): `flannel-v6.VNI`."""
VNI = 1
PORT = 8472
"""The Linux kernel's VXLAN port (flannel's default: it leaves the port to the kernel)."""
ENCAP_OVERHEAD = 50
"""flannel's vxlan backend: outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8."""
ENCAP_OVERHEAD6 = 70
"""The same over IPv6 (a 40-byte outer header)."""


@dataclass(frozen=True)
class Vtep:
    """One node's VXLAN endpoint for one IP family."""

    device: str
    local: str
    """The node's address of that family (the outer packets' source)."""
    pod_cidr: str
    mtu: int
    mac: str


def vteps(plan: Plan, node: Node) -> tuple[Vtep, ...]:
    """NODE's VTEPs: one per family it has an address and a pod CIDR of."""
    if node not in members(plan):
        return ()
    found = []
    for local, cidr in zip(node.ips, node.pod_cidrs, strict=False):
        ipv6 = ipaddress.ip_address(local).version == 6
        device = DEVICE6 if ipv6 else DEVICE
        found.append(Vtep(device, local, cidr, 1500 - (ENCAP_OVERHEAD6 if ipv6 else
                                                        ENCAP_OVERHEAD),
                          vtep_mac(node, device)))
    return tuple(found)


def pod_mtu(plan: Plan, node: Node) -> int | None:
    """The MTU flannel's CNI gives NODE's pods (the smallest of its VTEPs'), or None."""
    mtus = [vtep.mtu for vtep in vteps(plan, node)]
    return min(mtus) if mtus else None


def applies(plan: Plan) -> bool:
    """A kubeadm cluster runs the CNI on every node; managed providers route pods natively
    (GKE VPC-native, EKS's VPC CNI), so `--overlay` leaves their scenarios as they are."""
    return plan.provider is Provider.KUBEADM


def members(plan: Plan) -> tuple[Node, ...]:
    """The nodes whose pods the overlay carries."""
    if plan.overlay is not Overlay.VXLAN:
        return ()
    return tuple(node for node in plan.nodes if not node.fargate)


def vtep_mac(node: Node, device: str = DEVICE) -> str:
    """A VTEP's MAC: flanneld picks a random one and publishes it in the Node's
    annotation; the lab derives a stable, locally administered one from the node's name."""
    name = node.name if device == DEVICE else f"{node.name}/{device}"
    digest = hashlib.sha256(name.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x0a, 0x58, *digest[:4]))


def vtep_address(pod_cidr: str) -> str:
    """The address flanneld gives its VXLAN device: the pod CIDR's network address."""
    return str(ipaddress.ip_network(pod_cidr).network_address)


def _host_length(pod_cidr: str) -> int:
    return ipaddress.ip_network(pod_cidr).max_prefixlen


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
    carried = {cidr for node in plan.nodes if not node.fargate for cidr in node.pod_cidrs}
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
        for ip in pod.ips:
            if re.search(rf"-d {re.escape(ip)}(/32|/128)?(?![\w:.])", rule.rule):
                return replace(rule, netns=plan.node(pod.node).netns)
    return rule


def node_commands(plan: Plan, node: Node) -> list[str]:
    """`ip -batch` lines making NODE's VTEPs and their ARP/ND entries and routes to the
    other nodes' pod CIDRs."""
    commands = []
    for vtep in vteps(plan, node):
        commands += [f"link add {vtep.device} type vxlan id {VNI} local {vtep.local} "
                     f"dev {NODE_NIC} dstport {PORT} nolearning",
                     f"link set {vtep.device} address {vtep.mac} mtu {vtep.mtu}",
                     f"addr add {vtep_address(vtep.pod_cidr)}/{_host_length(vtep.pod_cidr)} "
                     f"dev {vtep.device}" + (" nodad" if ":" in vtep.local else ""),
                     f"link set {vtep.device} up"]
        for remote in _remotes(plan, node, vtep.device):
            gateway = vtep_address(remote.pod_cidr)
            commands += [f"neigh replace {gateway} lladdr {remote.mac} dev {vtep.device} "
                         "nud permanent",
                         f"route replace {remote.pod_cidr} via {gateway} dev {vtep.device} "
                         "onlink"]
    return commands


def fdb_commands(plan: Plan, node: Node) -> list[str]:
    """`bridge -batch` lines: each remote VTEP's MAC is behind that node's address."""
    return [f"fdb append {remote.mac} dev {vtep.device} dst {remote.local} self permanent"
            for vtep in vteps(plan, node) for remote in _remotes(plan, node, vtep.device)]


def _remotes(plan: Plan, node: Node, device: str) -> list[Vtep]:
    """The other nodes' VTEPs of DEVICE's family whose lease flanneld knows."""
    unreachable = _unreachable(plan)
    return [vtep for other in members(plan) if other != node
            for vtep in vteps(plan, other)
            if vtep.device == device and vtep.pod_cidr not in unreachable]


def node_annotations(plan: Plan, node: Node) -> dict[str, str]:
    """The annotations flanneld (kube subnet manager) writes on its Node."""
    notes = {}
    for vtep in vteps(plan, node):
        v6 = "-v6" if vtep.device == DEVICE6 else ""
        notes.update({
            "flannel.alpha.coreos.com/backend-type": "vxlan",
            f"flannel.alpha.coreos.com/backend{v6}-data": json.dumps(
                {"VNI": VNI, "VtepMAC": vtep.mac}, separators=(",", ":")),
            "flannel.alpha.coreos.com/kube-subnet-manager": "true",
            f"flannel.alpha.coreos.com/public-ip{v6 and 'v6'}": vtep.local})
    return notes
