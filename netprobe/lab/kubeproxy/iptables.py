"""kube-proxy's iptables mode: the iptables-restore text it writes for ClusterIP Services.

Follows kubernetes/kubernetes `pkg/proxy/iptables/proxier.go` (v1.29 and later:
the off-cluster masquerade rule in the KUBE-SVC chain, `MARK --or-mark` and
`--xor-mark`, `MASQUERADE --random-fully`, the no-endpoints REJECT in the
filter table's KUBE-SERVICES) and its `iptablesJumpChains` (the jumps from
the built-in chains, which kube-proxy inserts with `iptables -I`; here they
are in the same restore text). Left out, as kube-proxy leaves them out when
the kernel lacks them: the `nfacct` matches. NodePort, LoadBalancer and
external IPs are not generated: the lab's Services are ClusterIPs.
The IPv6 proxier writes the same chains through ip6tables-restore, with IPv6
addresses (`! -s <IPv6 clusterCIDR>`, `DNAT --to-destination [ip]:port`), and
without KUBE-FIREWALL's "block incoming localnet connections" rule, which it
writes for IPv4 only (`route_localnet` has no IPv6 counterpart); ip6tables'
`REJECT` answers ICMPv6 port unreachable.
Must not: run iptables.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from netprobe.core.packets import join_address
from netprobe.lab.kubeproxy import MASQUERADE_MARK, ProxyConfig, ServicePort

JUMPS = {
    "filter": (
        ("INPUT", '-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer '
                  'firewall" -j KUBE-PROXY-FIREWALL'),
        ("INPUT", '-m comment --comment "kubernetes health check service ports" '
                  "-j KUBE-NODEPORTS"),
        ("INPUT", '-m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible '
                  'service portals" -j KUBE-EXTERNAL-SERVICES'),
        ("INPUT", "-j KUBE-FIREWALL"),
        ("FORWARD", '-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer '
                    'firewall" -j KUBE-PROXY-FIREWALL'),
        ("FORWARD", '-m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD'),
        ("FORWARD", '-m conntrack --ctstate NEW -m comment --comment "kubernetes service '
                    'portals" -j KUBE-SERVICES'),
        ("FORWARD", '-m conntrack --ctstate NEW -m comment --comment "kubernetes '
                    'externally-visible service portals" -j KUBE-EXTERNAL-SERVICES'),
        ("OUTPUT", '-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer '
                   'firewall" -j KUBE-PROXY-FIREWALL'),
        ("OUTPUT", '-m conntrack --ctstate NEW -m comment --comment "kubernetes service '
                   'portals" -j KUBE-SERVICES'),
        ("OUTPUT", "-j KUBE-FIREWALL"),
    ),
    "nat": (
        ("PREROUTING", '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
        ("OUTPUT", '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
        ("POSTROUTING", '-m comment --comment "kubernetes postrouting rules" '
                        "-j KUBE-POSTROUTING"),
    ),
}
"""(built-in chain, rule) per table: kube-proxy's iptablesJumpChains."""
BUILTIN = {"filter": ("INPUT", "FORWARD", "OUTPUT"),
           "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")}
FILTER_CHAINS = ("KUBE-NODEPORTS", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FIREWALL",
                 "KUBE-FORWARD", "KUBE-PROXY-FIREWALL")


def _hash(text: str) -> str:
    """kube-proxy's portProtoHash: base32(sha256(text))[:16]."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def svc_chain(service: ServicePort) -> str:
    """servicePortPolicyClusterChain: KUBE-SVC- + hash of `ns/name:port` + protocol."""
    return "KUBE-SVC-" + _hash(service.port_id + service.protocol)


def sep_chain(service: ServicePort, ip: str, port: int) -> str:
    """servicePortEndpointChainName: KUBE-SEP- + hash of port id, protocol and the endpoint's
    `ip:port` (`[ip]:port` for IPv6, net.JoinHostPort's form)."""
    return "KUBE-SEP-" + _hash(f"{service.port_id}{service.protocol}{join_address(ip, port)}")


def _match(service: ServicePort) -> str:
    return (f"-m {service.protocol} -p {service.protocol} -d {service.cluster_ip} "
            f"--dport {service.port}")


def _filter(services: list[ServicePort], ipv6: bool = False) -> list[str]:
    lines = [f"-A KUBE-SERVICES -m comment --comment \"{s.port_id} has no endpoints\" "
             f"{_match(s)} -j REJECT" for s in services if not s.ready]
    if not ipv6:
        lines.append('-A KUBE-FIREWALL -m comment --comment "block incoming localnet '
                     'connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate '
                     "RELATED,ESTABLISHED,DNAT -j DROP")
    lines += [
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" '
        f"-m mark --mark {MASQUERADE_MARK}/{MASQUERADE_MARK} -j ACCEPT",
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" '
        "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    ]
    return lines


def _service(service: ServicePort, config: ProxyConfig) -> list[str]:
    """KUBE-SERVICES jump, KUBE-SVC (masquerade off-cluster, balance) and KUBE-SEP chains."""
    svc, ready = svc_chain(service), service.ready
    comment = f'-m comment --comment "{service.port_id} cluster IP"'
    lines = [f"-A KUBE-SERVICES {comment} {_match(service)} -j {svc}",
             f"-A {svc} {comment} {_match(service)} ! -s {config.cluster_cidr} -j KUBE-MARK-MASQ"]
    for index, endpoint in enumerate(ready):
        left = len(ready) - index
        balance = (f" -m statistic --mode random --probability {1 / left:.10f}"
                   if left > 1 else "")
        lines.append(f'-A {svc} -m comment --comment "{service.port_id} -> '
                     f'{join_address(endpoint.ip, endpoint.port)}"{balance} '
                     f"-j {sep_chain(service, endpoint.ip, endpoint.port)}")
    for endpoint in ready:
        sep = sep_chain(service, endpoint.ip, endpoint.port)
        lines += [f"-A {sep} -m comment --comment {service.port_id} -s {endpoint.ip} "
                  "-j KUBE-MARK-MASQ",
                  f"-A {sep} -m comment --comment {service.port_id} -m {service.protocol} "
                  f"-p {service.protocol} -j DNAT --to-destination "
                  f"{join_address(endpoint.ip, endpoint.port)}"]
    return lines


def _nat(services: list[ServicePort], config: ProxyConfig) -> tuple[list[str], list[str]]:
    """(chains, rules) of the nat table."""
    served = [s for s in services if s.ready]
    chains = ["KUBE-NODEPORTS", "KUBE-SERVICES", "KUBE-MARK-MASQ", "KUBE-POSTROUTING"]
    for service in served:
        chains.append(svc_chain(service))
        chains += [sep_chain(service, e.ip, e.port) for e in service.ready]
    masquerade = "-j MASQUERADE" + (" --random-fully" if config.random_fully else "")
    rules = [line for service in served for line in _service(service, config)]
    rules += [
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must '
        'be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS',
        f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQUERADE_MARK}",
        f"-A KUBE-POSTROUTING -m mark ! --mark {MASQUERADE_MARK}/{MASQUERADE_MARK} -j RETURN",
        f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQUERADE_MARK}",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        + masquerade,
    ]
    return chains, rules


def _table(name: str, chains: list[str] | tuple[str, ...], rules: list[str],
           extra: list[str]) -> list[str]:
    lines = [f"*{name}", *(f":{chain} ACCEPT [0:0]" for chain in BUILTIN[name]),
             *(f":{chain} - [0:0]" for chain in chains)]
    lines += [f"-A {chain} {rule}" for chain, rule in JUMPS[name]]
    return lines + rules + extra + ["COMMIT"]


def restore_text(services: list[ServicePort], config: ProxyConfig,
                 filter_extra: Sequence[str] = ()) -> str:
    """iptables-restore input for a node: kube-proxy's tables, then FILTER_EXTRA rules."""
    nat_chains, nat_rules = _nat(services, config)
    lines = _table("filter", FILTER_CHAINS, _filter(services, config.ipv6), list(filter_extra))
    lines += _table("nat", nat_chains, nat_rules, [])
    return "\n".join(lines) + "\n"
