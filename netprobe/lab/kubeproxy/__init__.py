"""kube-proxy's rules for the lab's Services, written the way kube-proxy writes them.

Owns: the Services as kube-proxy sees them (`ServicePort`, from a lab plan),
the proxy modes the lab can run (`ProxyMode`: iptables, nftables; IPVS needs
the `ip_vs` module and `dummy` links, which our kernels lack: it is detected
on real clusters, never faked), and dispatching to the mode's generator
(`iptables.py`, `nftables.py`). Each generator follows kube-proxy's own
proxier and is checked against the expected dumps of kube-proxy's proxier
tests (tests/unit/lab/test_kubeproxy_*.py say which file and version).
A dual-stack kube-proxy runs one proxier per family, each with that family's
ClusterIPs, EndpointSlices, clusterCIDR and node IPs (ip6tables-restore text, or the
`ip6 kube-proxy` table): `services` and `config` take the family.
Must not: run iptables or nft (`lab.netns` applies the text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from netprobe.core.model import ProxyMode
from netprobe.lab.topology import is_ipv6

if TYPE_CHECKING:
    from netprobe.lab.topology import Plan

MASQUERADE_MARK = "0x4000"
"""kube-proxy's default --masquerade-bit 14."""


LAB_MODES = (ProxyMode.IPTABLES, ProxyMode.NFTABLES)
"""The modes the lab builds (IPVS is detected on real clusters only)."""


@dataclass(frozen=True)
class Endpoint:
    """One EndpointSlice address of a Service port."""

    ip: str
    port: int
    ready: bool = True


@dataclass(frozen=True)
class ServicePort:
    """One port of a ClusterIP Service, with its endpoints."""

    namespace: str
    name: str
    port_name: str
    cluster_ip: str
    port: int
    endpoints: tuple[Endpoint, ...] = ()
    protocol: str = "tcp"

    @property
    def port_id(self) -> str:
        """`ns/name:port` (kube-proxy's ServicePortName.String(); `ns/name` if unnamed)."""
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port_name}" if self.port_name else base

    @property
    def ready(self) -> tuple[Endpoint, ...]:
        return tuple(e for e in self.endpoints if e.ready)


@dataclass(frozen=True)
class ProxyConfig:
    """What kube-proxy is configured with that the rules depend on."""

    cluster_cidr: str
    """`clusterCIDR`: traffic from outside it to a ClusterIP is masqueraded."""
    service_cidr: str = "10.96.0.0/12"
    node_ips: tuple[str, ...] = ()
    random_fully: bool = True
    """The kernel and iptables support `MASQUERADE --random-fully` (every kernel since 5.0)."""

    @property
    def ipv6(self) -> bool:
        """The IPv6 proxier's configuration (its clusterCIDR is IPv6)."""
        return is_ipv6(self.cluster_cidr)


@dataclass(frozen=True)
class NodeRules:
    """What one node namespace is given: iptables-restore and ip6tables-restore texts and/or
    an nft script (both families' tables)."""

    iptables: str | None
    nft: str | None
    ip6tables: str | None = None


def _of_family(addresses: tuple[str, ...], ipv6: bool) -> str | None:
    return next((address for address in addresses if is_ipv6(address) == ipv6), None)


def families(plan: Plan) -> tuple[bool, ...]:
    """The families kube-proxy runs a proxier for, as `ipv6` flags (IPv4 first)."""
    return tuple(ipv6 for ipv6, present in ((False, plan.has_ipv4), (True, plan.has_ipv6))
                 if present)


def services(plan: Plan, ipv6: bool = False) -> list[ServicePort]:
    """The plan's Service ports as kube-proxy's IPV6 (or IPv4) proxier sees them: the
    ClusterIP and EndpointSlice addresses of that family; none when the Service has no
    ClusterIP of it (ready endpoints only serve)."""
    hook = plan.webhook
    cluster_ip = _of_family(hook.cluster_ips, ipv6)
    if cluster_ip is None:
        return []
    endpoints = tuple(Endpoint(ip, pod.container_port, pod.ready) for pod in plan.pods
                      if (ip := _of_family(pod.ips, ipv6)) is not None)
    return [ServicePort(hook.service_namespace, hook.service_name, hook.target_port_name,
                        cluster_ip, hook.service_port, endpoints)]


def config(plan: Plan, ipv6: bool = False) -> ProxyConfig:
    """kube-proxy's configuration on the plan's nodes, for its IPV6 (or IPv4) proxier."""
    cluster_cidr = _of_family(plan.cluster_cidrs, ipv6)
    service_cidr = _of_family(plan.service_cidrs, ipv6)
    if cluster_cidr is None or service_cidr is None:
        raise ValueError(f"the plan has no {'IPv6' if ipv6 else 'IPv4'} family")
    return ProxyConfig(cluster_cidr=cluster_cidr, service_cidr=service_cidr,
                       node_ips=tuple(ip for node in plan.nodes
                                      if (ip := _of_family(node.ips, ipv6)) is not None))


def _firewall(plan: Plan, netns: str, ipv6: bool = False) -> list[str]:
    """The scenario's own filter rules of a family in NETNS, as iptables-restore lines."""
    return [f"-A {rule.chain} {rule.rule}" for rule in plan.firewall
            if rule.netns == netns and rule.ipv6 == ipv6]


def firewall_rules(plan: Plan, netns: str, ipv6: bool = False) -> str | None:
    """iptables-restore (IPV6: ip6tables-restore) input of the scenario's own firewall rules
    in NETNS, or None."""
    firewall = _firewall(plan, netns, ipv6)
    if not firewall:
        return None
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    return "\n".join(lines + firewall + ["COMMIT"]) + "\n"


def node_rules(plan: Plan, netns: str) -> NodeRules:
    """kube-proxy's rules in the plan's mode and families, plus the scenario's firewall, for
    node NETNS."""
    from netprobe.lab.kubeproxy import iptables, nftables

    running = families(plan)
    if plan.proxy_mode is ProxyMode.NFTABLES:
        script = "\n".join(nftables.script(services(plan, ipv6), config(plan, ipv6))
                           for ipv6 in running)
        return NodeRules(firewall_rules(plan, netns), script, firewall_rules(plan, netns, True))
    texts = {ipv6: iptables.restore_text(services(plan, ipv6), config(plan, ipv6),
                                         _firewall(plan, netns, ipv6)) for ipv6 in running}
    return NodeRules(texts.get(False), None, texts.get(True))
