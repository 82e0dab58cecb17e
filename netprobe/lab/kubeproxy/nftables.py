"""kube-proxy's nftables mode: the `nft -f` transaction it writes for ClusterIP Services.

Follows kubernetes/kubernetes `pkg/proxy/nftables/proxier.go` (GA in v1.33): table
`ip kube-proxy`, the `service-ips` and `no-endpoint-services` verdict maps, the
`cluster-ips` set, one `service-HASH-ns/name/proto/port` chain per Service port
(off-cluster masquerade, then `numgen random` over the endpoints) and one
`endpoint-HASH-...__ip/port` chain per endpoint (hairpin masquerade, DNAT),
`masquerading` with `masquerade fully-random`, and `reject-chain` for Services
without endpoints. The text is knftables' transaction form, as the proxier
test's expected dumps are (tests/unit/lab/test_kubeproxy_nftables.py).
NodePorts are not generated (the lab's Services are ClusterIPs), so the
`nodeport-ips` set stays empty. The IPv6 proxier writes the same transaction in
table `ip6 kube-proxy` (`ipv6_addr` sets and maps, `ip6 daddr`/`ip6 saddr` matches,
`dnat to [ip]:port`), as its IPv6 expected dumps show; a dual-stack node has both
tables. Must not: run nft.
"""

from __future__ import annotations

import base64
import hashlib
import re

from netprobe.core.packets import join_address
from netprobe.lab.kubeproxy import MASQUERADE_MARK, ProxyConfig, ServicePort

TABLE = "ip kube-proxy"
TABLE6 = "ip6 kube-proxy"
CHAIN_NAME_MAX = 128 - 16
"""chainNameBaseLengthMax: nftablesChainNameLengthMax (128) - chainNamePrefixLengthMax (16), as
in proxier.go before knftables (newer releases allow longer names; the lab's fit in either)."""
BASE = """\
add table ip kube-proxy {{ comment "rules for kube-proxy" ; }}

add set ip kube-proxy cluster-ips {{ type ipv4_addr ; comment "Active ClusterIPs" ; }}
add set ip kube-proxy nodeport-ips {{ type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }}

add map ip kube-proxy firewall-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }}
add map ip kube-proxy no-endpoint-nodeports {{ type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }}
add map ip kube-proxy no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }}
add map ip kube-proxy service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }}
add map ip kube-proxy service-nodeports {{ type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }}

add chain ip kube-proxy cluster-ips-check
add chain ip kube-proxy filter-prerouting-pre-dnat {{ type filter hook prerouting priority -110 ; }}
add chain ip kube-proxy filter-output-pre-dnat {{ type filter hook output priority -110 ; }}
add chain ip kube-proxy filter-forward {{ type filter hook forward priority 0 ; }}
add chain ip kube-proxy filter-input {{ type filter hook input priority 0 ; }}
add chain ip kube-proxy filter-output {{ type filter hook output priority 0 ; }}
add chain ip kube-proxy firewall-check
add chain ip kube-proxy mark-for-masquerade
add chain ip kube-proxy masquerading
add chain ip kube-proxy nat-output {{ type nat hook output priority -100 ; }}
add chain ip kube-proxy nat-postrouting {{ type nat hook postrouting priority 100 ; }}
add chain ip kube-proxy nat-prerouting {{ type nat hook prerouting priority -100 ; }}
add chain ip kube-proxy nodeport-endpoints-check
add chain ip kube-proxy reject-chain {{ comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }}
add chain ip kube-proxy services
add chain ip kube-proxy service-endpoints-check

add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
add rule ip kube-proxy cluster-ips-check ip daddr {{ {service_cidr} }} drop comment "Drop traffic to unallocated ClusterIPs"
add rule ip kube-proxy filter-prerouting-pre-dnat ct state new jump firewall-check
add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output-pre-dnat ct state new jump firewall-check
add rule ip kube-proxy filter-output ct state new jump cluster-ips-check
add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
add rule ip kube-proxy mark-for-masquerade mark set mark or {mark}
add rule ip kube-proxy masquerading mark and {mark} == 0 return
add rule ip kube-proxy masquerading mark set mark xor {mark}
add rule ip kube-proxy masquerading masquerade{fully_random}
add rule ip kube-proxy nat-output jump services
add rule ip kube-proxy nat-postrouting jump masquerading
add rule ip kube-proxy nat-prerouting jump services
add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
add rule ip kube-proxy reject-chain reject
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
"""
ENDPOINTS_CHECK = ("add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . "
                   "th dport vmap @no-endpoint-services")


def _hash_and_truncate(name: str) -> str:
    """kube-proxy's hashAndTruncate: base32(sha256(name))[:8] + "-" + name, cut to CHAIN_NAME_MAX."""
    hashed = base64.b32encode(hashlib.sha256(name.encode()).digest()).decode()[:8] + "-" + name
    return hashed if len(hashed) <= CHAIN_NAME_MAX else hashed[:CHAIN_NAME_MAX - 3] + "..."


def service_chain(service: ServicePort) -> str:
    """`service-HASH-ns/name/proto/port`."""
    return "service-" + _hash_and_truncate(
        f"{service.namespace}/{service.name}/{service.protocol}/{service.port_name}")


def endpoint_chain(service: ServicePort, ip: str, port: int) -> str:
    """`endpoint-HASH-ns/name/proto/port__ip/port`."""
    return "endpoint-" + _hash_and_truncate(
        f"{service.namespace}/{service.name}/{service.protocol}/{service.port_name}"
        f"__{ip.replace(':', '.')}/{port}")


def _service(service: ServicePort, config: ProxyConfig) -> list[str]:
    """The Service port's chains (all declared first: a vmap may only name existing chains,
    which kube-proxy ensures by adding every chain at the start of its transaction)."""
    chain, ready = service_chain(service), service.ready
    endpoints = [endpoint_chain(service, e.ip, e.port) for e in ready]
    targets = ", ".join(f"{i} : goto {name}" for i, name in enumerate(endpoints))
    lines = [f"add chain {TABLE} {name}" for name in (chain, *endpoints)]
    lines += [f"add rule {TABLE} {chain} ip daddr {service.cluster_ip} ip saddr != "
              f"{config.cluster_cidr} jump mark-for-masquerade",
              f"add rule {TABLE} {chain} numgen random mod {len(ready)} vmap {{ {targets} }}"]
    for endpoint, name in zip(ready, endpoints, strict=True):
        lines += [f"add rule {TABLE} {name} ip saddr {endpoint.ip} jump mark-for-masquerade",
                  f"add rule {TABLE} {name} meta l4proto {service.protocol} "
                  f"dnat to {join_address(endpoint.ip, endpoint.port)}"]
    lines += [f"add element {TABLE} cluster-ips {{ {service.cluster_ip} }}",
              f"add element {TABLE} service-ips {{ {service.cluster_ip} . {service.protocol} . "
              f"{service.port} : goto {chain} }}"]
    return lines


def _no_endpoints(service: ServicePort) -> list[str]:
    return [f"add element {TABLE} cluster-ips {{ {service.cluster_ip} }}",
            f"add element {TABLE} no-endpoint-services {{ {service.cluster_ip} . "
            f"{service.protocol} . {service.port} comment \"{service.port_id}\" : "
            "goto reject-chain }"]


FAMILY_WORDS = ((re.compile(r"\bip kube-proxy\b"), TABLE6), (re.compile(r"\bipv4_addr\b"), "ipv6_addr"),
                (re.compile(r"\bip (daddr|saddr)\b"), r"ip6 \1"))
"""What the IPv6 proxier writes differently: its table's family, address type and matches."""


def _in_family(line: str, ipv6: bool) -> str:
    if not ipv6:
        return line
    for pattern, replacement in FAMILY_WORDS:
        line = pattern.sub(replacement, line)
    return line


def script(services: list[ServicePort], config: ProxyConfig) -> str:
    """The `nft -f` input for a node: the base table, then each Service port (in `ip6
    kube-proxy` for the IPv6 proxier)."""
    lines = BASE.format(service_cidr=config.service_cidr, mark=MASQUERADE_MARK,
                        fully_random=" fully-random" if config.random_fully else "").splitlines()
    lines += ["", *(f"add element {TABLE} nodeport-ips {{ {ip} }}" for ip in config.node_ips),
              ENDPOINTS_CHECK]
    for service in services:
        lines += ["", f"# {service.port_id}"]
        lines += _service(service, config) if service.ready else _no_endpoints(service)
    return "\n".join(_in_family(line, config.ipv6) for line in lines) + "\n"
