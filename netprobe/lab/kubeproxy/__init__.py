"""kube-proxy's rules for the lab's Services, written the way kube-proxy writes them.

Owns: the Services as kube-proxy sees them (`ServicePort`, from a lab plan),
the proxy modes the lab can run (`ProxyMode`: iptables, nftables; IPVS needs
the `ip_vs` module and `dummy` links, which our kernels lack: it is detected
on real clusters, never faked), and dispatching to the mode's generator
(`iptables.py`, `nftables.py`). Each generator follows kube-proxy's own
proxier and is checked against the expected dumps of kube-proxy's proxier
tests (tests/unit/lab/test_kubeproxy_*.py say which file and version).
Must not: run iptables or nft (`lab.netns` applies the text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from netprobe.core.model import ProxyMode

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


@dataclass(frozen=True)
class NodeRules:
    """What one node namespace is given: iptables-restore text and/or an nft script."""

    iptables: str | None
    nft: str | None


def services(plan: Plan) -> list[ServicePort]:
    """The plan's Service ports as kube-proxy sees them (ready endpoints only serve)."""
    hook = plan.webhook
    endpoints = tuple(Endpoint(pod.ip, pod.container_port, pod.ready) for pod in plan.pods)
    return [ServicePort(hook.service_namespace, hook.service_name, hook.target_port_name,
                        hook.cluster_ip, hook.service_port, endpoints)]


def config(plan: Plan) -> ProxyConfig:
    """kube-proxy's configuration on the plan's nodes."""
    return ProxyConfig(cluster_cidr=plan.cluster_cidr, service_cidr=plan.service_cidr,
                       node_ips=tuple(node.ip for node in plan.nodes))


def _firewall(plan: Plan, netns: str) -> list[str]:
    """The scenario's own filter rules in NETNS, as iptables-restore lines."""
    return [f"-A {rule.chain} {rule.rule}" for rule in plan.firewall if rule.netns == netns]


def firewall_rules(plan: Plan, netns: str) -> str | None:
    """iptables-restore input of the scenario's own firewall rules in NETNS, or None."""
    firewall = _firewall(plan, netns)
    if not firewall:
        return None
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    return "\n".join(lines + firewall + ["COMMIT"]) + "\n"


def node_rules(plan: Plan, netns: str) -> NodeRules:
    """kube-proxy's rules in the plan's mode, plus the scenario's firewall, for node NETNS."""
    from netprobe.lab.kubeproxy import iptables, nftables

    if plan.proxy_mode is ProxyMode.NFTABLES:
        return NodeRules(firewall_rules(plan, netns),
                         nftables.script(services(plan), config(plan)))
    return NodeRules(iptables.restore_text(services(plan), config(plan), _firewall(plan, netns)),
                     None)
