"""The lab's plan: which nodes, pods, routes, firewall rules and servers exist.

Owns: the pure description of a lab (frozen dataclasses) and the naming
rules (every name carries the `np-` prefix). Must not: touch the kernel,
files or processes; `lab.netns` and `lab.lifecycle` apply a plan.
"""

from __future__ import annotations

import enum
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
    """InternalIP, on the node's VPC subnet (a /24 whose .1 is the VPC router)."""
    pod_cidr: str
    """Pod CIDR behind this node's bridge (the bridge holds its .1)."""
    control_plane: bool = False
    fargate: bool = False
    external_ip: str | None = None
    """An ExternalIP in the Node's addresses (never routed inside the lab's provider network)."""
    listeners: tuple[Listener, ...] = ()
    """Host-network servers on the node (the kubelet, hostNetwork pods)."""

    @property
    def gateway(self) -> str:
        """The VPC router's address on this node's subnet."""
        return _with_last_octet(self.ip, 1)

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
    timeout_seconds: int = 10
    serving_cert: ServingCert = ServingCert.VALID
    ca_injected: bool = True
    """False: the CA injector has not run yet, the configurations have no caBundle."""

    @property
    def host(self) -> str:
        """The DNS name the apiserver dials and verifies."""
        return f"{self.configured_service_name}.{self.service_namespace}.svc"


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


def _with_last_octet(ip: str, octet: int) -> str:
    return ".".join([*ip.split(".")[:3], str(octet)])
