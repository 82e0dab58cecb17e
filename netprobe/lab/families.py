"""The lab's IP families: a scenario's IPv4 plan made single-stack IPv6 or dual-stack.

Owns: the address plan of the other family and the transform `with_ip_family` (a plan in,
a plan out, like `overlay.with_overlay`). Every IPv4 address `a.b.c.d` of a scenario has
one IPv6 twin, `fd00:a:b:c::d` (the octets written as they read, so `10.0.1.11` is
`fd00:10:0:1::11`): nodes sit on `fd00:10:0:N::/64` (the VPC router is `::1`), pods on
`fd00:10:244:N::/64` inside the clusterCIDR `fd00:10:244::/48`, as kind and kubeadm's
dual-stack guides lay them out. ClusterIPs come from `fd00:10:96::/112` (kind's service
subnet; kube-apiserver accepts no IPv6 service range wider than /108), at the IPv4
ClusterIP's offset in its own range. Scenarios' firewall rules are rewritten for ip6tables:
addresses and their `/32` become IPv6 and `/128`, ICMP rejects their ICMPv6 namesakes.
In `dual` the IPv4 family stays primary (what the Service's `ipFamilies` lists first and
`spec.clusterIP` holds) and every IPv6 twin is its secondary. Must not: touch the kernel.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace

from netprobe.lab.topology import FirewallRule, IpFamily, Node, Plan, Pod, VpcRoute, Webhook

ULA = "fd00"
"""The unique-local prefix every IPv6 twin starts with."""
SERVICE_CIDR6 = "fd00:10:96::/112"
CLUSTER_CIDR6 = "fd00:10:244::/48"
IPV4_ADDRESS = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(/\d{1,2})?(?![\d.])")
REJECTS = {"icmp-port-unreachable": "icmp6-port-unreachable",
           "icmp-host-unreachable": "icmp6-addr-unreachable",
           "icmp-net-unreachable": "icmp6-no-route",
           "icmp-host-prohibited": "icmp6-adm-prohibited",
           "icmp-net-prohibited": "icmp6-adm-prohibited",
           "icmp-admin-prohibited": "icmp6-adm-prohibited"}
"""iptables' REJECT types and ip6tables' (`tcp-reset` is the same in both)."""


def ipv6_twin(address: str) -> str:
    """The IPv6 twin of an IPv4 address: `a.b.c.d` -> `fd00:a:b:c::d`."""
    a, b, c, d = address.split(".")
    return str(ipaddress.IPv6Address(f"{ULA}:{a}:{b}:{c}::{d}"))


def ipv6_prefix(prefix: str) -> str:
    """The IPv6 twin of an IPv4 prefix: a /24 (a subnet) and anything longer up to /31 become
    the /64 of their third octet, a /32 a /128, a /16 a /48, a /8 a /32."""
    network = ipaddress.IPv4Network(prefix, strict=False)
    length = network.prefixlen
    if length == 32:
        return f"{ipv6_twin(str(network.network_address))}/128"
    kept = 3 if length >= 24 else 2 if length >= 16 else 1
    octets = str(network.network_address).split(".")[:kept]
    return str(ipaddress.IPv6Network(f"{ULA}:{':'.join(octets)}::/{16 + 16 * kept}"))


def service_ip6(cluster_ip: str, service_cidr: str) -> str:
    """The IPv6 ClusterIP at CLUSTER_IP's offset in SERVICE_CIDR, inside SERVICE_CIDR6."""
    offset = int(ipaddress.IPv4Address(cluster_ip)) - int(
        ipaddress.IPv4Network(service_cidr).network_address)
    network = ipaddress.IPv6Network(SERVICE_CIDR6)
    if offset >= network.num_addresses:
        raise ValueError(f"ClusterIP {cluster_ip} does not fit in {SERVICE_CIDR6}")
    return str(network.network_address + offset)


def with_ip_family(plan: Plan, family: IpFamily) -> Plan:
    """PLAN (an IPv4 scenario) run in FAMILY: IPv6 only, or both with IPv4 primary."""
    if family is IpFamily.IPV4:
        return plan
    dual = family is IpFamily.DUAL
    nodes = tuple(_node(node, dual) for node in plan.nodes)
    pods = tuple(_pod(pod, dual) for pod in plan.pods)
    agents = tuple(_pod(pod, dual) for pod in plan.tunnel_agents)
    routes = tuple(_route(route) for route in plan.vpc_routes)
    rules = tuple(_rule(rule) for rule in plan.firewall)
    webhook = _webhook(plan.webhook, plan.service_cidr, dual)
    if dual:
        return replace(plan, ip_family=family, nodes=nodes, pods=pods, tunnel_agents=agents,
                       vpc_routes=(*plan.vpc_routes, *routes),
                       firewall=(*plan.firewall, *rules), webhook=webhook,
                       secondary_cluster_cidr=CLUSTER_CIDR6,
                       secondary_service_cidr=SERVICE_CIDR6)
    return replace(plan, ip_family=family, nodes=nodes, pods=pods, tunnel_agents=agents,
                   vpc_routes=routes, firewall=rules, webhook=webhook,
                   cluster_cidr=CLUSTER_CIDR6, service_cidr=SERVICE_CIDR6)


def _node(node: Node, dual: bool) -> Node:
    ip, cidr = ipv6_twin(node.ip), ipv6_prefix(node.pod_cidr)
    external = ipv6_twin(node.external_ip) if node.external_ip else None
    if dual:
        return replace(node, secondary_ip=ip, secondary_pod_cidr=cidr,
                       secondary_external_ip=external)
    return replace(node, ip=ip, pod_cidr=cidr, external_ip=external)


def _pod(pod: Pod, dual: bool) -> Pod:
    ip = ipv6_twin(pod.ip)
    return replace(pod, secondary_ip=ip) if dual else replace(pod, ip=ip)


def _webhook(webhook: Webhook, service_cidr: str, dual: bool) -> Webhook:
    ip = service_ip6(webhook.cluster_ip, service_cidr)
    return (replace(webhook, secondary_cluster_ip=ip) if dual
            else replace(webhook, cluster_ip=ip))


def _route(route: VpcRoute) -> VpcRoute:
    return replace(route, prefix=ipv6_prefix(route.prefix),
                   via=ipv6_twin(route.via) if route.via else None)


def _rule(rule: FirewallRule) -> FirewallRule:
    """RULE for ip6tables: its IPv4 addresses (and `/32`s) as their twins, ICMP rejects as
    ICMPv6's."""
    def twin(match: re.Match[str]) -> str:
        address, length = match.group(1), match.group(2)
        if length is None:
            return ipv6_twin(address)
        return ipv6_prefix(address + length)

    text = IPV4_ADDRESS.sub(twin, rule.rule)
    for ipv4, ipv6 in REJECTS.items():
        text = re.sub(rf"--reject-with {ipv4}\b", f"--reject-with {ipv6}", text)
    return replace(rule, rule=text, ipv6=True)
