"""The lab's scenario catalogue: one plan per failure of FAILURES.md.

Owns: the scenario names (a contract: tests, docs and users call them), the
one-line summary `netprobe lab list` shows, the verdict each reproduces, and
the plan that makes it happen. Must not: touch the kernel; it only builds
`topology.Plan` values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from netprobe.core import errors
from netprobe.lab.topology import (
    BRIDGE,
    KONNECTIVITY_HEALTH_PORT,
    PREFIX,
    VPC_NETNS,
    AggregatedAPI,
    FirewallRule,
    Listener,
    Node,
    Plan,
    Pod,
    Provider,
    Serve,
    ServingCert,
    VpcRoute,
    Webhook,
)

WEBHOOK_PORT = 10250
"""cert-manager's default containerPort (binding 443 needs NET_BIND_SERVICE)."""

KUBELET_PORT = 10250
HEALTHZ_PORT = 6080


@dataclass(frozen=True)
class Scenario:
    """A named, reproducible state of the lab."""

    name: str
    summary: str
    """One line: what it reproduces (shown by `netprobe lab list`)."""
    verdict: str
    """The verdict class (FAILURES.md contract name) it must produce."""
    cause: str
    """The cause id netprobe should name."""
    build: Callable[[], Plan]
    command: str = "webhook"
    """The `netprobe trace` sub-command that traces it (`webhook`, `apiservice`, `kubelet`)."""
    target: str | None = None
    """What that command selects (a node for `kubelet`; None: all, or the webhook)."""


def _kubelet() -> tuple[Listener, ...]:
    return (Listener(KUBELET_PORT, Serve.KUBELET),)


def _webhook_listeners(port: int = WEBHOOK_PORT, serve: Serve = Serve.WEBHOOK,
                       healthz: int = HEALTHZ_PORT) -> tuple[Listener, ...]:
    return (Listener(port, serve), Listener(healthz, Serve.HEALTHZ))


def _nodes(provider: Provider) -> tuple[Node, ...]:
    names = {
        Provider.KUBEADM: ("control-plane-1", "worker-1", "worker-2"),
        Provider.EKS: (
            "control-plane",
            "ip-10-0-1-11.eu-west-1.compute.internal",
            "ip-10-0-2-12.eu-west-1.compute.internal",
        ),
        Provider.GKE: (
            "control-plane",
            "gke-lab-default-pool-3f2a9c1e-k7xq",
            "gke-lab-default-pool-3f2a9c1e-m2vd",
        ),
    }[provider]
    cp, w1, w2 = names
    return (
        Node(cp, PREFIX + "cp", "10.0.0.10", "10.244.0.0/24", control_plane=True,
             listeners=_kubelet()),
        Node(w1, PREFIX + "w1", "10.0.1.11", "10.244.1.0/24", listeners=_kubelet()),
        Node(w2, PREFIX + "w2", "10.0.2.12", "10.244.2.0/24", listeners=_kubelet()),
    )


def _webhook_pod(node: Node, *, ip: str = "10.244.1.5", suffix: str = "x2x4q",
                 **changes: object) -> Pod:
    pod = Pod(
        name=f"cert-manager-webhook-6c9f8d7b5-{suffix}",
        node=node.name,
        ip=ip,
        container_port=WEBHOOK_PORT,
        listeners=_webhook_listeners(),
    )
    return replace(pod, **changes)  # type: ignore[arg-type]


def _pod_routes(nodes: tuple[Node, ...]) -> tuple[VpcRoute, ...]:
    return tuple(VpcRoute(node.pod_cidr, via=node.ip) for node in nodes)


def base_plan(scenario: str, provider: Provider = Provider.KUBEADM) -> Plan:
    """A healthy cluster: one webhook pod on the first worker."""
    nodes = _nodes(provider)
    return Plan(scenario, provider, nodes, (_webhook_pod(nodes[1]),),
                vpc_routes=_pod_routes(nodes))


def _with_pod(plan: Plan, **changes: object) -> Plan:
    return replace(plan, pods=(replace(plan.pods[0], **changes),))  # type: ignore[arg-type]


def _ok() -> Plan:
    plan = base_plan("ok")
    second = _webhook_pod(plan.nodes[2], ip="10.244.2.6", suffix="p8wzn")
    return replace(plan, pods=(*plan.pods, second))


def _fanout() -> Plan:
    plan = base_plan("fanout")
    suffixes = ("a1b2c", "d3e4f", "g5h6i", "j7k8l", "m9n0p")
    pods = tuple(_webhook_pod(node, ip=f"10.244.{n}.{10 + i}", suffix=f"{suffixes[i]}{n}"[-5:])
                 for n, node in ((1, plan.nodes[1]), (2, plan.nodes[2]))
                 for i in range(len(suffixes)))
    return replace(plan, pods=pods)


def _connection_refused() -> Plan:
    # The webhook still waits for its serving certificate: /healthz answers,
    # nothing listens on the targetPort yet.
    return _with_pod(base_plan("connection-refused"),
                     listeners=(Listener(HEALTHZ_PORT, Serve.HEALTHZ),))


def _no_endpoints() -> Plan:
    # --healthz-port=6081 while the readiness probe asks 6080: never Ready.
    return _with_pod(base_plan("no-endpoints"), ready=False, healthz_port=6081,
                     listeners=_webhook_listeners(healthz=6081))


def _gke_firewall(plan: Plan) -> Plan:
    # GKE private clusters: control plane -> nodes allowed on 443/10250 only.
    rule = FirewallRule(
        VPC_NETNS, "FORWARD",
        f"-s {plan.control_plane.ip}/32 -p tcp -m multiport ! --dports 443,10250 "
        "-m conntrack --ctstate NEW -m comment --comment "
        '"np-lab: GKE firewall: master to nodes on 443,10250 only" -j DROP',
    )
    return replace(plan, firewall=(rule,))


def _io_timeout() -> Plan:
    plan = base_plan("io-timeout", Provider.GKE)
    return _gke_firewall(_with_pod(plan, container_port=8443,
                                   listeners=_webhook_listeners(port=8443)))


def _gke_port_443() -> Plan:
    plan = base_plan("gke-port-443", Provider.GKE)
    return _gke_firewall(_with_pod(plan, container_port=443,
                                   listeners=_webhook_listeners(port=443)))


def _pod_ingress_drop(plan: Plan, comment: str, sources: str = "") -> Plan:
    """PLAN with a NetworkPolicy enforced on the webhook pod's node as policy agents do
    (kube-router, Calico): by the pod's IP on the way into the pod network, so the node's
    NIC sees the SYN and the pod's veth never does. SOURCES: the match of what it drops."""
    pod = plan.pods[0]
    rule = FirewallRule(
        plan.node(pod.node).netns, "FORWARD",
        f"-d {pod.ip}/32 {sources}-o {BRIDGE} -m conntrack --ctstate NEW -m comment "
        f'--comment "np-lab: {comment}" -j DROP',
    )
    return replace(plan, firewall=(rule,))


def _networkpolicy_drop() -> Plan:
    return _pod_ingress_drop(base_plan("networkpolicy-drop"),
                             "NetworkPolicy default-deny ingress, no allow from the control plane")


def _rst_middlebox() -> Plan:
    plan = base_plan("rst-middlebox")
    pod = plan.pods[0]
    rule = FirewallRule(
        VPC_NETNS, "FORWARD",
        f"-d {pod.ip}/32 -p tcp --dport {pod.container_port} -m comment --comment "
        '"np-lab: firewall rejects with a forged TCP reset" '
        "-j REJECT --reject-with tcp-reset",
    )
    return replace(plan, firewall=(rule,))


def _no_route() -> Plan:
    plan = base_plan("no-route")
    worker = plan.nodes[1]
    routes = tuple(
        VpcRoute(route.prefix, kind="unreachable") if route.prefix == worker.pod_cidr else route
        for route in plan.vpc_routes
    )
    return replace(plan, vpc_routes=routes)


def _serving(scenario: str, serve: Serve) -> Callable[[], Plan]:
    return lambda: _with_pod(base_plan(scenario),
                             listeners=_webhook_listeners(serve=serve))


def _cert(scenario: str, cert: ServingCert) -> Callable[[], Plan]:
    return lambda: replace(base_plan(scenario), webhook=Webhook(serving_cert=cert))


def _empty_ca_bundle() -> Plan:
    # Right after `helm install cert-manager`: the configurations carry the
    # inject-ca-from annotation but cainjector has not filled caBundle yet.
    return replace(base_plan("empty-ca-bundle"), webhook=Webhook(ca_injected=False))


def _fargate_kubelet() -> Plan:
    plan = base_plan("fargate-kubelet", Provider.EKS)
    cp = plan.control_plane
    fargate = Node("fargate-ip-10-0-3-33.eu-west-1.compute.internal", PREFIX + "fg",
                   "10.0.3.33", "10.0.3.33/32", fargate=True,
                   listeners=(*_kubelet(), Listener(HEALTHZ_PORT, Serve.HEALTHZ)))
    # A Fargate pod is a micro-VM: pod IP == node IP and its kubelet owns 10250,
    # so the webhook (also on 10250) never gets the port.
    pod = _webhook_pod(fargate, ip=fargate.ip, listeners=(), micro_vm=True)
    nodes = (cp, fargate)
    return replace(plan, nodes=nodes, pods=(pod,),
                   vpc_routes=(VpcRoute("10.0.3.0/24", via=fargate.ip),))


def _eks_overlay(scenario: str) -> Plan:
    plan = base_plan(scenario, Provider.EKS)
    # Calico/Weave overlay: pod IPs the VPC has never heard of.
    nodes = tuple(
        node if node.control_plane else replace(node, pod_cidr=f"192.168.{131 + i}.0/26")
        for i, node in enumerate(plan.nodes)
    )
    return replace(plan, nodes=nodes, vpc_routes=())


def _eks_custom_cni() -> Plan:
    plan = _eks_overlay("eks-custom-cni")
    return replace(plan, pods=(_webhook_pod(plan.nodes[1], ip="192.168.132.5"),))


def _hostnetwork_10260() -> Plan:
    plan = _eks_overlay("hostnetwork-10260")
    worker = plan.nodes[1]
    pod = _webhook_pod(worker, ip=worker.ip, host_network=True, container_port=10260,
                       listeners=_webhook_listeners(port=10260))
    return replace(plan, pods=(pod,))


def _pod_on_control_plane() -> Plan:
    # Single-node and small clusters (kind, kubeadm with the taint tolerated): the
    # apiserver's call never leaves the node, it goes through the node's bridge.
    plan = base_plan("pod-on-control-plane")
    return replace(plan, pods=(_webhook_pod(plan.control_plane, ip="10.244.0.5"),))


def _hostnetwork_control_plane() -> Plan:
    # A hostNetwork webhook on the control-plane node: DNAT to the node's own
    # address, so the call is delivered locally, over `lo`.
    plan = base_plan("hostnetwork-control-plane")
    cp = plan.control_plane
    pod = _webhook_pod(cp, ip=cp.ip, host_network=True, container_port=10260,
                       listeners=_webhook_listeners(port=10260))
    return replace(plan, pods=(pod,))


def _split_endpoints() -> Plan:
    # Two replicas, one on the control-plane node and one on a worker: one call stays
    # on the node, the other crosses the provider network.
    plan = base_plan("split-endpoints")
    local = _webhook_pod(plan.control_plane, ip="10.244.0.7", suffix="c4v8d")
    return replace(plan, pods=(local, *plan.pods))


def _stale_endpoint() -> Plan:
    # The pod was deleted (or its node died) and the EndpointSlice still lists it as
    # ready: kube-proxy DNATs to an address nobody answers ARP for on the worker's bridge.
    return _with_pod(base_plan("stale-endpoint"), gone=True)


METRICS_SERVER = Webhook(service_namespace="kube-system", service_name="metrics-server",
                         configured_service_name="metrics-server", cluster_ip="10.96.140.21",
                         timeout_seconds=5)
"""metrics-server's Service (components.yaml: port 443, targetPort https)."""


def _metrics_server(scenario: str, provider: Provider = Provider.KUBEADM, port: int = 10250,
                    **changes: object) -> Plan:
    """metrics-server behind APIService v1beta1.metrics.k8s.io, one replica on a worker."""
    plan = base_plan(scenario, provider)
    pod = Pod(name="metrics-server-5d9c8f7b6-q4x7m", node=plan.nodes[1].name, ip="10.244.1.7",
              container_port=port, listeners=(Listener(port, Serve.WEBHOOK),),
              healthz_port=port, probe_port=port)
    plan = replace(plan, pods=(replace(pod, **changes),),  # type: ignore[arg-type]
                   webhook=METRICS_SERVER, aggregated=AggregatedAPI())
    return plan


def _apiservice_firewalled() -> Plan:
    # metrics-server before v0.5 served on 4443: a GKE private cluster's firewall only lets
    # the control plane reach nodes on 443 and 10250.
    return _gke_firewall(_metrics_server("apiservice-firewalled", Provider.GKE, port=4443))


def _apiservice_ca_mismatch() -> Plan:
    plan = _metrics_server("apiservice-ca-mismatch")
    return replace(plan, aggregated=AggregatedAPI(insecure_skip_tls_verify=False),
                   webhook=replace(plan.webhook, serving_cert=ServingCert.OTHER_CA))


def _kubelet_firewalled() -> Plan:
    # A security group / host firewall that does not open 10250 from the control plane:
    # kubectl logs and exec fail with "dial tcp NODE_IP:10250: i/o timeout".
    plan = base_plan("kubelet-firewalled")
    worker = plan.nodes[1]
    rule = FirewallRule(
        VPC_NETNS, "FORWARD",
        f"-d {worker.ip}/32 -p tcp --dport {KUBELET_PORT} -m conntrack --ctstate NEW "
        '-m comment --comment "np-lab: no rule opens 10250 from the control plane" -j DROP')
    return replace(plan, firewall=(rule,))


def _kubelet_no_serving_cert() -> Plan:
    # serverTLSBootstrap: true and nobody approves kubelet-serving CSRs (kubeadm's default
    # leaves them pending): the kubelet has no certificate to serve on 10250.
    return _first_worker_kubelet(base_plan("kubelet-no-serving-cert"),
                                 (Listener(KUBELET_PORT, Serve.KUBELET_NO_CERT),))


def _kubelet_self_signed() -> Plan:
    # kube-apiserver verifies kubelets (--kubelet-certificate-authority, as CIS benchmarks
    # ask) while worker-1's kubelet runs without serverTLSBootstrap: it serves its own
    # self-signed certificate, which the cluster CA never signed.
    plan = replace(base_plan("kubelet-self-signed"), kubelet_ca_verified=True)
    return _first_worker_kubelet(plan, (Listener(KUBELET_PORT, Serve.KUBELET_SELF_SIGNED),))


def _kubelet_external_ip() -> Plan:
    # kube-apiserver told to prefer ExternalIP (copied from a public-cloud guide) on nodes
    # whose external addresses the control plane cannot reach (TEST-NET-3, never routed).
    plan = base_plan("kubelet-external-ip")
    nodes = tuple(node if node.control_plane else
                  replace(node, external_ip=f"203.0.113.{node.ip.rsplit('.', 1)[1]}")
                  for node in plan.nodes)
    return replace(plan, nodes=nodes, kubelet_preferred="ExternalIP,InternalIP,Hostname")


def _kubelet_down() -> Plan:
    # The kubelet on worker-1 is stopped (crash loop, OOM): nothing listens on 10250.
    return _first_worker_kubelet(base_plan("kubelet-down"), ())


def _first_worker_kubelet(plan: Plan, listeners: tuple[Listener, ...]) -> Plan:
    """PLAN with worker-1's host-network servers (its kubelet) replaced by LISTENERS."""
    worker = plan.nodes[1]
    return replace(plan, nodes=tuple(replace(node, listeners=listeners) if node is worker
                                     else node for node in plan.nodes))


def _tunnel_agent(node: Node, ready: bool = True) -> Pod:
    """A konnectivity-agent pod: its health server in its own pod namespace; the replay
    dials from that namespace, as the agent dials for konnectivity-server."""
    return Pod(name="konnectivity-agent-6b8f9c4d7-q8w2n", node=node.name, ip="10.244.2.20",
               container_port=KONNECTIVITY_HEALTH_PORT, ready=ready,
               listeners=(Listener(KONNECTIVITY_HEALTH_PORT, Serve.HEALTHZ),))


def _konnectivity(scenario: str, ready: bool = True) -> Plan:
    # GKE: the apiserver reaches nodes through konnectivity; the agent runs on worker-2,
    # the webhook on worker-1, so the call crosses the provider network from a pod.
    plan = base_plan(scenario, Provider.GKE)
    return replace(plan, tunnel_agents=(_tunnel_agent(plan.nodes[2], ready),))


def _konnectivity_no_endpoints() -> Plan:
    # --healthz-port=6081 while the readiness probe asks 6080, as in no-endpoints.
    return _with_pod(_konnectivity("konnectivity-no-endpoints"), ready=False, healthz_port=6081,
                     listeners=_webhook_listeners(healthz=6081))


def _konnectivity_networkpolicy() -> Plan:
    # The NetworkPolicy GKE's docs gave for webhooks before konnectivity: ingress allowed
    # from the control plane's range only. Through the tunnel the SYN comes from the
    # agent's pod IP and is dropped on the way into the webhook's pod.
    plan = _konnectivity("konnectivity-networkpolicy")
    return _pod_ingress_drop(plan, "NetworkPolicy allows ingress from the control plane range "
                             "only", sources=f"! -s {plan.control_plane.ip}/32 ")


def _service_not_found() -> Plan:
    return replace(base_plan("service-not-found"),
                   webhook=Webhook(configured_service_name="cert-manager-webhooks"))


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("ok", "healthy webhook, two replicas on two workers: the call succeeds",
             "ok", "ok", _ok),
    Scenario("connection-refused",
             "nothing listens on the targetPort in the pod: the pod answers SYN with RST",
             "connection-refused", "nothing-listening", _connection_refused),
    Scenario("no-endpoints",
             "pod never Ready (healthz port != probe port): kube-proxy REJECTs on the node",
             "no-endpoints", "kube-proxy-reject", _no_endpoints),
    Scenario("io-timeout",
             "GKE private-cluster firewall drops SYNs to containerPort 8443 (not 443/10250)",
             "io-timeout", "gke-private-firewall", _io_timeout),
    Scenario("networkpolicy-drop",
             "a default-deny NetworkPolicy drops SYNs at the pod's veth on the worker",
             "io-timeout", "dropped-at-pod", _networkpolicy_drop),
    Scenario("rst-middlebox",
             "a firewall on the path rejects with a forged TCP reset, not the pod",
             "connection-refused", "rst-from-middlebox", _rst_middlebox),
    Scenario("no-route",
             "the provider network has no route to the worker: ICMP host unreachable",
             "no-route", "icmp-unreachable", _no_route),
    Scenario("stale-endpoint",
             "the pod is gone, its EndpointSlice entry stays: nobody answers ARP on the worker",
             "no-route", "stale-endpoint", _stale_endpoint),
    Scenario("tls-handshake-timeout",
             "TCP accepted on the targetPort but no TLS server answers the ClientHello",
             "tls-handshake-timeout", "no-tls-server", _serving("tls-handshake-timeout",
                                                                 Serve.TCP_SINK)),
    Scenario("response-timeout",
             "TLS completes, the webhook reads the AdmissionReview and never answers",
             "response-timeout", "webhook-hung", _serving("response-timeout",
                                                          Serve.TLS_HANG)),
    Scenario("http-error",
             "the webhook answers HTTP 500 instead of an AdmissionReview",
             "http-error", "http-500", _serving("http-error", Serve.HTTP_ERROR)),
    Scenario("x509-unknown-authority",
             "stale caBundle: the serving certificate comes from a newer CA",
             "x509-unknown-authority", "stale-ca-bundle",
             _cert("x509-unknown-authority", ServingCert.OTHER_CA)),
    Scenario("empty-ca-bundle",
             "cert-manager just installed: no caBundle yet, the apiserver tries its system roots",
             "x509-unknown-authority", "empty-ca-bundle", _empty_ca_bundle),
    Scenario("x509-expired",
             "the webhook's serving certificate expired yesterday",
             "x509-expired", "expired-serving-cert",
             _cert("x509-expired", ServingCert.EXPIRED)),
    Scenario("fargate-kubelet",
             "AWS Fargate: pod IP == node IP and the kubelet owns 10250 and answers",
             "x509-hostname-mismatch", "fargate-kubelet", _fargate_kubelet),
    Scenario("eks-custom-cni",
             "EKS with an overlay CNI: the control plane has no route to pod IPs",
             "io-timeout", "eks-custom-cni", _eks_custom_cni),
    Scenario("service-not-found",
             "the webhook configuration names a Service that does not exist",
             "service-not-found", "service-not-found", _service_not_found),
    Scenario("fanout",
             "healthy webhook with 10 replicas on two workers (fan-out of the trace)",
             "ok", "ok", _fanout),
    Scenario("hostnetwork-10260",
             "fix for eks-custom-cni: hostNetwork webhook on securePort 10260",
             "ok", "ok", _hostnetwork_10260),
    Scenario("pod-on-control-plane",
             "healthy webhook on the control-plane node: the call stays on the node's bridge",
             "ok", "ok", _pod_on_control_plane),
    Scenario("hostnetwork-control-plane",
             "healthy hostNetwork webhook on the control-plane node: DNAT to itself, over lo",
             "ok", "ok", _hostnetwork_control_plane),
    Scenario("split-endpoints",
             "healthy webhook, one replica on the control-plane node and one on a worker",
             "ok", "ok", _split_endpoints),
    Scenario("apiservice-ok",
             "metrics-server behind APIService v1beta1.metrics.k8s.io: discovery answers",
             "ok", "ok", lambda: _metrics_server("apiservice-ok"), command="apiservice"),
    Scenario("apiservice-no-endpoints",
             "metrics-server never Ready (it cannot scrape kubelets): kube-proxy REJECTs",
             "no-endpoints", "kube-proxy-reject",
             lambda: _metrics_server("apiservice-no-endpoints", ready=False),
             command="apiservice"),
    Scenario("apiservice-firewalled",
             "GKE private cluster: metrics-server on 4443, the firewall opens 443/10250 only",
             "io-timeout", "gke-private-firewall", _apiservice_firewalled, command="apiservice"),
    Scenario("apiservice-ca-mismatch",
             "APIService with a caBundle (no insecureSkipTLSVerify) from another CA",
             "x509-unknown-authority", "stale-ca-bundle", _apiservice_ca_mismatch,
             command="apiservice"),
    Scenario("kubelet-ok",
             "kubectl logs path: the apiserver reaches worker-1's kubelet on 10250",
             "ok", "ok", lambda: base_plan("kubelet-ok"), command="kubelet", target="worker-1"),
    Scenario("kubelet-firewalled",
             "nothing opens 10250 from the control plane to worker-1: SYNs dropped",
             "io-timeout", "dropped-in-network", _kubelet_firewalled, command="kubelet",
             target="worker-1"),
    Scenario("kubelet-no-serving-cert",
             "worker-1's kubelet-serving CSR is pending: it answers TLS with internal_error",
             "tls-internal-error", "no-serving-cert", _kubelet_no_serving_cert,
             command="kubelet", target="worker-1"),
    Scenario("kubelet-self-signed",
             "the apiserver verifies kubelets; worker-1's serves its own self-signed cert",
             "x509-unknown-authority", "unknown-issuer", _kubelet_self_signed,
             command="kubelet", target="worker-1"),
    Scenario("kubelet-external-ip",
             "the apiserver prefers ExternalIP, which the control plane cannot reach",
             "io-timeout", "dropped-in-network", _kubelet_external_ip, command="kubelet",
             target="worker-1"),
    Scenario("kubelet-down",
             "the kubelet on worker-1 is down: the node answers SYN with RST",
             "connection-refused", "nothing-listening", _kubelet_down, command="kubelet",
             target="worker-1"),
    Scenario("konnectivity-ok",
             "GKE with konnectivity: the call starts in an agent pod on worker-2 and passes",
             "ok", "ok", lambda: _konnectivity("konnectivity-ok")),
    Scenario("konnectivity-no-agent",
             "konnectivity in use, its only agent not Ready: 'No agent available'",
             "no-tunnel-agent", "konnectivity-no-agent",
             lambda: _konnectivity("konnectivity-no-agent", ready=False)),
    Scenario("konnectivity-no-endpoints",
             "GKE with konnectivity, the webhook pod never Ready: kube-proxy on the agent's "
             "node rejects the agent pod's SYN",
             "no-endpoints", "kube-proxy-reject", _konnectivity_no_endpoints),
    Scenario("konnectivity-networkpolicy",
             "a NetworkPolicy allows the control plane only; through konnectivity the agent "
             "pod's SYN is dropped at the webhook pod",
             "io-timeout", "dropped-at-pod", _konnectivity_networkpolicy),
    Scenario("gke-port-443",
             "fix for io-timeout: containerPort 443 passes the GKE firewall",
             "ok", "ok", _gke_port_443),
)

NAMES: tuple[str, ...] = tuple(scenario.name for scenario in SCENARIOS)


def get(name: str) -> Scenario:
    """Returns the scenario called NAME.

    Raises:
        UsageError: no such scenario (the message lists the valid ones).
    """
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise errors.UsageError(
        f"unknown scenario {name!r}; valid scenarios: {', '.join(NAMES)}"
    )
