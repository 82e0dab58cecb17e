"""The lab's plan: which nodes, pods, routes, firewall rules and servers exist.

Owns: the pure description of a lab (frozen dataclasses) and the naming
rules (every name carries the `np-` prefix). Must not: touch the kernel,
files or processes; `lab.netns` and `lab.lifecycle` apply a plan.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field

from netprobe.core.model import ProxyMode

PREFIX = "np-"
"""Every namespace (and so every link and rule) of the lab starts with this."""

NODE_NIC = "npeth0"
"""Name of a node's (or pod's) network interface inside its namespace."""

BRIDGE = "npbr0"
"""Name of the per-node CNI bridge (the lab's `cni0`)."""

VPC_NETNS = PREFIX + "vpc"
"""The provider network: routes pod CIDRs to nodes, holds cloud firewalls."""

TUNNEL_NAMESPACE = "kube-system"
"""The Kubernetes namespace konnectivity-agent pods run in."""
KONNECTIVITY_HEALTH_PORT = 8134
"""konnectivity-agent's --health-server-port in kubernetes.io's konnectivity-agent.yaml."""


class Provider(enum.Enum):
    """Which kind of cluster a scenario imitates (drives names and labels)."""

    KUBEADM = "kubeadm"
    EKS = "eks"
    GKE = "gke"


class Overlay(enum.Enum):
    """How pod traffic crosses between nodes (`lab up --overlay`)."""

    NONE = "none"
    """Routed natively: the provider network routes every node's pod CIDR."""
    VXLAN = "vxlan"
    """Flannel's VXLAN backend: node-to-node UDP 8472 (see `lab.overlay`)."""


class IpFamily(enum.Enum):
    """Which IP families the cluster runs (`lab up --ip-family`)."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"
    """Single-stack IPv6: every node, pod, route and ClusterIP has only an IPv6 address."""
    DUAL = "dual"
    """Dual-stack, IPv4 primary (kubeadm's and kind's order): both families everywhere."""


def is_ipv6(address: str) -> bool:
    """True for an IPv6 address or prefix (`fd00::1`, `fd00:10:244::/48`)."""
    return ":" in address


def host_prefix(address: str) -> str:
    """ADDRESS as a one-host prefix: `/32` for IPv4, `/128` for IPv6."""
    return f"{address}/{128 if is_ipv6(address) else 32}"


class Serve(enum.Enum):
    """What a listener does with a connection."""

    WEBHOOK = "webhook"
    """HTTPS admission/conversion webhook answering AdmissionReview v1."""
    HEALTHZ = "healthz"
    """Plain-HTTP `/healthz` returning 200 ok."""
    KUBELET = "kubelet"
    """HTTPS kubelet stand-in: its own CA, answers 404 like a kubelet."""
    KUBELET_SELF_SIGNED = "kubelet-self-signed"
    """A kubelet without serverTLSBootstrap: it serves the self-signed certificate it made at
    start (client-go's GenerateSelfSignedCertKey: `NODE@TIME` from a `NODE-ca@TIME` CA)."""
    KUBELET_NO_CERT = "kubelet-no-cert"
    """A kubelet whose serving-certificate CSR is pending: Go's TLS server answers the
    ClientHello with an internal_error alert (its GetCertificate fails)."""
    TCP_SINK = "tcp-sink"
    """Accepts TCP, reads, never answers (no TLS server on the port)."""
    TLS_HANG = "tls-hang"
    """Completes TLS, reads the request, never answers (hung webhook)."""
    HTTP_ERROR = "http-error"
    """Completes TLS, answers HTTP 500 (a webhook bug)."""


class ServingCert(enum.Enum):
    """Which certificate the webhook's TLS server presents."""

    VALID = "valid"
    """Signed by the CA in the webhook configuration's caBundle."""
    OTHER_CA = "other-ca"
    """Signed by a newer CA the caBundle does not hold (stale caBundle)."""
    EXPIRED = "expired"
    """Signed by the right CA, but its validity ended yesterday."""


@dataclass(frozen=True)
class Listener:
    """A TCP server socket a lab process owns."""

    port: int
    serve: Serve


@dataclass(frozen=True)
class Node:
    """A Kubernetes node: one network namespace with a NIC on the VPC."""

    name: str
    """Kubernetes node name (provider-style)."""
    netns: str
    ip: str
    """InternalIP of the primary family, on the node's VPC subnet (an IPv4 /24 or an IPv6 /64
    whose first address is the VPC router)."""
    pod_cidr: str
    """Pod CIDR of the primary family behind this node's bridge (the bridge holds its first
    address)."""
    control_plane: bool = False
    fargate: bool = False
    external_ip: str | None = None
    """An ExternalIP in the Node's addresses (never routed inside the lab's provider network)."""
    listeners: tuple[Listener, ...] = ()
    """Host-network servers on the node (the kubelet, hostNetwork pods)."""
    secondary_ip: str | None = None
    """The InternalIP of the other family on a dual-stack node (kubelet --node-ip's second)."""
    secondary_pod_cidr: str | None = None
    """The pod CIDR of the other family on a dual-stack node (the Node's second podCIDR)."""
    secondary_external_ip: str | None = None

    @property
    def ips(self) -> tuple[str, ...]:
        """The node's InternalIPs, the primary family first."""
        return (self.ip, *([self.secondary_ip] if self.secondary_ip else []))

    @property
    def pod_cidrs(self) -> tuple[str, ...]:
        return (self.pod_cidr, *([self.secondary_pod_cidr] if self.secondary_pod_cidr else []))

    @property
    def external_ips(self) -> tuple[str, ...]:
        return tuple(ip for ip in (self.external_ip, self.secondary_external_ip) if ip)

    @property
    def gateway(self) -> str:
        """The VPC router's address on this node's subnet (primary family)."""
        return subnet_gateway(self.ip)

    @property
    def vpc_link(self) -> str:
        """Name of the VPC router's end of this node's link (<= 15 chars)."""
        return PREFIX + self.netns.removeprefix(PREFIX)[:12]


@dataclass(frozen=True)
class Pod:
    """A webhook pod: its own namespace behind its node's bridge, or hostNetwork."""

    name: str
    node: str
    ip: str
    container_port: int
    ready: bool = True
    host_network: bool = False
    listeners: tuple[Listener, ...] = ()
    healthz_port: int = 6080
    """The port the webhook serves /healthz on (its `--healthz-port`)."""
    probe_port: int = 6080
    """The port the readiness probe asks."""
    micro_vm: bool = False
    """A Fargate pod: its own micro-VM, so it shares the node's namespace."""
    gone: bool = False
    """Deleted, yet still in the EndpointSlice (and so in kube-proxy's rules): it has no
    namespace, no servers and no Pod object; nobody answers ARP for its IP."""
    secondary_ip: str | None = None
    """The pod's address of the other family on a dual-stack cluster (its second podIP)."""

    @property
    def ips(self) -> tuple[str, ...]:
        """The pod's podIPs, the primary family first."""
        return (self.ip, *([self.secondary_ip] if self.secondary_ip else []))

    @property
    def in_node_netns(self) -> bool:
        """True when the pod's sockets live in its node's namespace."""
        return self.host_network or self.micro_vm

    @property
    def netns(self) -> str:
        return PREFIX + "pod-" + self.name

    @property
    def host_veth(self) -> str:
        """The node-side end of the pod's veth (<= 15 chars)."""
        return "npv-" + self.name[-11:]


@dataclass(frozen=True)
class FirewallRule:
    """One iptables rule (filter table) in a namespace, kube-proxy style text."""

    netns: str
    chain: str
    rule: str
    """iptables-restore rule body, e.g. '-p tcp --dport 10250 -j DROP'."""
    ipv6: bool = False
    """An ip6tables rule (IPv6 addresses, `/128`, `icmp6-` rejects)."""


@dataclass(frozen=True)
class VpcRoute:
    """A route in the provider network."""

    prefix: str
    via: str | None = None
    kind: str = "unicast"
    """`unicast` (via a node), `unreachable` (ICMP host unreachable)."""


@dataclass(frozen=True)
class Webhook:
    """The webhook configuration's view of the path."""

    service_namespace: str = "cert-manager"
    service_name: str = "cert-manager-webhook"
    configured_service_name: str = "cert-manager-webhook"
    """The service name the webhook configuration names (may be a typo)."""
    service_port: int = 443
    target_port_name: str = "https"
    cluster_ip: str = "10.96.20.99"
    """The Service's `spec.clusterIP`: its primary family's ClusterIP, the one the apiserver
    dials (its service resolver reads `spec.clusterIP`)."""
    secondary_cluster_ip: str | None = None
    """A dual-stack Service's other ClusterIP (`spec.clusterIPs[1]`)."""
    timeout_seconds: int = 10
    serving_cert: ServingCert = ServingCert.VALID
    ca_injected: bool = True
    """False: the CA injector has not run yet, the configurations have no caBundle."""

    @property
    def host(self) -> str:
        """The DNS name the apiserver dials and verifies."""
        return f"{self.configured_service_name}.{self.service_namespace}.svc"

    @property
    def cluster_ips(self) -> tuple[str, ...]:
        """`spec.clusterIPs`: the primary first."""
        return (self.cluster_ip,
                *([self.secondary_cluster_ip] if self.secondary_cluster_ip else []))


@dataclass(frozen=True)
class AggregatedAPI:
    """The plan's Service belongs to an aggregated API server (metrics-server): an APIService
    points at it instead of webhook configurations."""

    group: str = "metrics.k8s.io"
    version: str = "v1beta1"
    insecure_skip_tls_verify: bool = True
    """metrics-server's own manifest (components.yaml) sets it: it serves a self-signed cert."""

    @property
    def name(self) -> str:
        return f"{self.version}.{self.group}"


@dataclass(frozen=True)
class Plan:
    """Everything one scenario builds."""

    scenario: str
    provider: Provider
    nodes: tuple[Node, ...]
    pods: tuple[Pod, ...]
    webhook: Webhook = field(default_factory=Webhook)
    vpc_routes: tuple[VpcRoute, ...] = ()
    firewall: tuple[FirewallRule, ...] = ()
    proxy_mode: ProxyMode = ProxyMode.IPTABLES
    """How kube-proxy implements Services on every node (`lab up --proxy-mode`)."""
    cluster_cidr: str = "10.244.0.0/16"
    """kube-proxy's clusterCIDR (kubeadm's --pod-network-cidr): the node IPs are outside it,
    so the apiserver's calls to a ClusterIP are masqueraded."""
    service_cidr: str = "10.96.0.0/12"
    ip_family: IpFamily = IpFamily.IPV4
    """Which families the cluster runs (set by `lab.families.with_ip_family`)."""
    secondary_cluster_cidr: str | None = None
    """A dual-stack cluster's clusterCIDR of the other family (kube-proxy's second)."""
    secondary_service_cidr: str | None = None
    """A dual-stack cluster's service CIDR of the other family."""
    aggregated: AggregatedAPI | None = None
    """Set when the Service is an aggregated API server's (`trace apiservice`)."""
    kubelet_preferred: str = "InternalIP,ExternalIP,Hostname"
    """kube-apiserver's --kubelet-preferred-address-types (kubeadm's value by default)."""
    kubelet_ca_verified: bool = False
    """kube-apiserver has --kubelet-certificate-authority: it verifies kubelets' serving
    certificates against the cluster CA that signs them (serverTLSBootstrap)."""
    overlay: Overlay = Overlay.NONE
    """How pod traffic crosses between nodes (set by `lab.overlay.with_overlay`)."""
    tunnel_agents: tuple[Pod, ...] = ()
    """konnectivity-agent pods (kube-system, pod network): the apiserver's calls into the
    cluster start in their namespaces (GKE, AKS). A not-ready one is not connected to
    konnectivity-server."""

    @property
    def control_plane(self) -> Node:
        return next(node for node in self.nodes if node.control_plane)

    @property
    def cluster_cidrs(self) -> tuple[str, ...]:
        return (self.cluster_cidr,
                *([self.secondary_cluster_cidr] if self.secondary_cluster_cidr else []))

    @property
    def service_cidrs(self) -> tuple[str, ...]:
        return (self.service_cidr,
                *([self.secondary_service_cidr] if self.secondary_service_cidr else []))

    @property
    def has_ipv4(self) -> bool:
        return self.ip_family is not IpFamily.IPV6

    @property
    def has_ipv6(self) -> bool:
        return self.ip_family is not IpFamily.IPV4

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    @property
    def ready_pods(self) -> tuple[Pod, ...]:
        return tuple(pod for pod in self.pods if pod.ready)

    @property
    def running_pods(self) -> tuple[Pod, ...]:
        """The pods that exist (a gone pod is only an EndpointSlice entry)."""
        return tuple(pod for pod in self.pods if not pod.gone)

    @property
    def network_pods(self) -> tuple[Pod, ...]:
        """Every pod with a place in the network: the running webhook pods and the
        konnectivity agents."""
        return (*self.running_pods, *self.tunnel_agents)

    @property
    def namespaces(self) -> tuple[str, ...]:
        """Every namespace of the plan, the VPC first."""
        pods = tuple(pod.netns for pod in self.network_pods if not pod.in_node_netns)
        return (VPC_NETNS, *(node.netns for node in self.nodes), *pods)


def subnet_prefixlen(address: str) -> int:
    """The length of a node's subnet on the provider network: a /24 (IPv4), a /64 (IPv6)."""
    return 64 if is_ipv6(address) else 24


def subnet_gateway(address: str) -> str:
    """The VPC router's address on ADDRESS's subnet: the subnet's first host."""
    subnet = ipaddress.ip_interface(f"{address}/{subnet_prefixlen(address)}").network
    return str(subnet.network_address + 1)
