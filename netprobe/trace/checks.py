"""Static checks: what the API objects alone say is wrong, before any packet.

Owns: every finding about a webhook path that needs no packets (timeouts that
mask errors, GKE firewall ports, Fargate and hostNetwork on the kubelet's
port, empty or unready endpoints, probe vs healthz ports, caBundle vs the CA
Secret, missing Service or port). Must not: do I/O. Finding codes are a
contract (README).
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable, Iterator

from netprobe.core.model import CallKind, Finding, ProxyMode, Severity
from netprobe.replay import certs
from netprobe.replay.probe import ca_bundle_problem
from netprobe.trace.discovery import (
    KUBELET_CA_FLAG,
    CallPath,
    NodeInfo,
    Obj,
    apiserver_flag,
    konnectivity,
    kube_proxy,
)

KUBELET_PORT = 10250
GKE_OPEN_PORTS = (443, 10250)

Check = Callable[[CallPath, dict[str, NodeInfo], list[Obj]], Iterator[Finding]]


def _svc(path: CallPath) -> str:
    return f"Service {path.service_namespace}/{path.service_name}"


def timeout_masks(path: CallPath, nodes: dict[str, NodeInfo],
                  objects: list[Obj]) -> Iterator[Finding]:
    if path.kind in (CallKind.DISCOVERY, CallKind.KUBELET):  # fixed client timeouts
        return
    if path.timeout_seconds < 30:
        yield Finding(
            "timeout-masks-errors", Severity.INFO,
            f"timeoutSeconds is {path.timeout_seconds:g}: the apiserver's request deadline fires "
            "before its 30 s dialer and with its 10 s TLS timer, so stalls all read "
            "'context deadline exceeded'.",
            "Raise timeoutSeconds to 30 while debugging to see the real error.",
            f"webhook {path.name}")


def missing_service(path: CallPath, nodes: dict[str, NodeInfo],
                    objects: list[Obj]) -> Iterator[Finding]:
    if path.url or path.service is not None:
        return
    yield Finding("service-not-found", Severity.ERROR,
                  f"{path.configuration} calls {_svc(path)}, which does not exist.",
                  "Fix clientConfig.service (name, namespace) or create the Service.", _svc(path))


def missing_port(path: CallPath, nodes: dict[str, NodeInfo],
                 objects: list[Obj]) -> Iterator[Finding]:
    if path.service is not None and path.target_port is None:
        yield Finding("service-port-not-found", Severity.ERROR,
                      f'no service port {path.service_port} found for service '
                      f'"{path.service_name}"',
                      "Make clientConfig.service.port match a port of the Service.", _svc(path))


def unresolved_target(path: CallPath, nodes: dict[str, NodeInfo],
                      objects: list[Obj]) -> Iterator[Finding]:
    for endpoint in path.endpoints:
        if endpoint.port == 0:
            yield Finding("target-port-unresolved", Severity.ERROR,
                          f"targetPort {path.target_port!r} matches no containerPort of pod "
                          f"{endpoint.pod}.",
                          "Name the container port like the Service's targetPort, or use a number.",
                          _svc(path))


def endpoints_ready(path: CallPath, nodes: dict[str, NodeInfo],
                    objects: list[Obj]) -> Iterator[Finding]:
    if path.service is None or path.url or path.target_port is None:
        return
    if not path.endpoints:
        yield Finding("no-endpoints", Severity.ERROR,
                      f"{_svc(path)} has no endpoints: no pod matches its selector.",
                      "Check the Service's selector and that the webhook's pods exist.", _svc(path))
        return
    unready = [e for e in path.endpoints if not e.ready]
    if len(unready) == len(path.endpoints):
        pods = ", ".join(sorted({e.pod or e.ip for e in unready}))
        yield Finding("endpoints-not-ready", Severity.ERROR,
                      f"No endpoint of {_svc(path)} is ready ({pods}): kube-proxy rejects "
                      "connections to the ClusterIP.",
                      "Make the pod Ready: check its readiness probe and logs.", _svc(path))
    elif unready:
        yield Finding("some-endpoints-not-ready", Severity.WARNING,
                      f"{len(unready)} of {len(path.endpoints)} endpoints of {_svc(path)} are not "
                      "ready.", "Check the unready pods.", _svc(path))


def _healthz_arg(container: Obj) -> int | None:
    for arg in [*(container.get("args") or []), *(container.get("command") or [])]:
        match = re.fullmatch(r"--(?:healthz-port|health-probe-port|healthz-bind-address=[^:]*:)"
                             r"=?(\d+)", str(arg))
        if match:
            return int(match.group(1))
    return None


def _probe_port(container: Obj) -> int | str | None:
    probe = container.get("readinessProbe") or {}
    action = probe.get("httpGet") or probe.get("tcpSocket") or {}
    return action.get("port")


def probe_vs_healthz(path: CallPath, nodes: dict[str, NodeInfo],
                     objects: list[Obj]) -> Iterator[Finding]:
    seen = set()
    for endpoint in path.endpoints:
        pod = endpoint.pod_object or {}
        for container in pod.get("spec", {}).get("containers", []) or []:
            healthz, probe = _healthz_arg(container), _probe_port(container)
            pod_name = pod.get("metadata", {}).get("name")
            if healthz is None or probe is None or (pod_name, healthz) in seen:
                continue
            seen.add((pod_name, healthz))
            probe_number = probe if isinstance(probe, int) else _named_port(container, probe)
            if probe_number is not None and probe_number != healthz:
                yield Finding(
                    "probe-port-mismatch", Severity.ERROR,
                    f"Pod {endpoint.pod}: the readiness probe asks port {probe_number} but the "
                    f"webhook serves healthz on {healthz} (its args): it never becomes Ready.",
                    "Make the readiness probe's port and the --healthz-port argument agree.",
                    f"Pod {path.service_namespace}/{endpoint.pod}")


def _named_port(container: Obj, name: str) -> int | None:
    if str(name).isdigit():
        return int(name)
    return next((int(p["containerPort"]) for p in container.get("ports", []) or []
                 if p.get("name") == name), None)


def provider_ports(path: CallPath, nodes: dict[str, NodeInfo],
                   objects: list[Obj]) -> Iterator[Finding]:
    if path.kind is CallKind.KUBELET:  # the kubelet's own port is no conflict with itself
        return
    for endpoint in path.endpoints:
        node = nodes.get(endpoint.node or "")
        if node is None:
            continue
        if node.provider == "gce" and endpoint.port not in GKE_OPEN_PORTS:
            yield Finding(
                "gke-firewall-port", Severity.WARNING,
                f"The webhook listens on {endpoint.port} on GKE node {node.name}: private "
                "clusters only allow the control plane to reach nodes on 443 and 10250.",
                "Add a firewall rule from the control plane's CIDR to the nodes on this port, or "
                "serve the webhook on 443 or 10250.", f"Pod {endpoint.pod}")
        if node.fargate and endpoint.port == KUBELET_PORT:
            yield Finding(
                "fargate-port-10250", Severity.ERROR,
                f"Pod {endpoint.pod} runs on Fargate node {node.name} and the webhook uses 10250: "
                "Fargate's own kubelet owns 10250 on the pod's IP and will answer instead.",
                "Set the webhook's securePort to another port (e.g. 10260).", f"Pod {endpoint.pod}")
        if endpoint.host_network and endpoint.port == KUBELET_PORT:
            yield Finding(
                "hostnetwork-kubelet-port", Severity.ERROR,
                f"Pod {endpoint.pod} uses hostNetwork and port 10250, the kubelet's port.",
                "Use another port (e.g. 10260) with hostNetwork.", f"Pod {endpoint.pod}")
        if node.provider == "aws" and not endpoint.host_network and not node.fargate \
                and node.internal_ip and _same_vpc(endpoint.ip, node.internal_ip) is False:
            yield Finding(
                "eks-overlay-pod-ip", Severity.WARNING,
                f"Pod {endpoint.pod} has IP {endpoint.ip}, outside its node's network "
                f"({node.internal_ip}): an overlay CNI the EKS control plane cannot reach.",
                "Run the webhook with hostNetwork: true on a free port such as 10260, or use "
                "the VPC CNI.", f"Pod {endpoint.pod}")


VPC_PREFIX = {4: 16, 6: 56}
"""The widest network an EKS VPC gives its nodes and VPC-CNI pods: an IPv4 /16, and for an
IPv6 cluster the VPC's /56 (each node's pods get a /80 of its subnet's /64)."""


def _same_vpc(a: str, b: str) -> bool | None:
    """Whether A and B share the VPC's network (None: not two addresses of one family)."""
    try:
        first, second = ipaddress.ip_address(a), ipaddress.ip_address(b)
    except ValueError:
        return None
    if first.version != second.version:
        return None
    length = VPC_PREFIX[first.version]
    return (ipaddress.ip_network(f"{first}/{length}", strict=False)
            == ipaddress.ip_network(f"{second}/{length}", strict=False))


def ca_bundle(path: CallPath, nodes: dict[str, NodeInfo],
              objects: list[Obj]) -> Iterator[Finding]:
    subject = path.configuration
    if path.insecure_skip_verify:  # an APIService that asks for no verification
        return
    if certs.is_empty_bundle(path.ca_bundle):
        yield Finding("empty-ca-bundle", Severity.ERROR,
                      f"{path.configuration}: webhook {path.name} has an empty caBundle: the "
                      "apiserver verifies the webhook with its system trust store, which does "
                      "not hold a private CA.",
                      "Check the CA injector (cert-manager cainjector, annotation "
                      "cert-manager.io/inject-ca-from) and its logs.", subject)
        return
    problem = ca_bundle_problem(path.ca_bundle)
    if problem is not None:
        yield Finding("invalid-ca-bundle", Severity.ERROR,
                      f"{path.configuration}: webhook {path.name}'s caBundle is not PEM "
                      f"certificates ({problem}): the apiserver cannot call it.",
                      "Put the CA certificate (PEM, base64-encoded) in clientConfig.caBundle.",
                      subject)
        return
    secret = _ca_secret(path, objects)
    if secret is None:
        return
    data = (secret.get("data") or {}).get("ca.crt")
    if data and base64.b64decode(data) != path.ca_bundle:
        name = f"{secret['metadata'].get('namespace')}/{secret['metadata']['name']}"
        yield Finding("ca-bundle-mismatch", Severity.ERROR,
                      f"{path.configuration}: the caBundle differs from ca.crt in Secret {name}: "
                      "it is stale (the CA was rotated and not injected).",
                      "Check the cainjector's logs and leader election; re-inject the CA.", subject)


def _ca_secret(path: CallPath, objects: list[Obj]) -> Obj | None:
    config = path.configuration_object or {}
    annotation = (config.get("metadata", {}).get("annotations") or {}).get(
        "cert-manager.io/inject-ca-from-secret", "")
    namespace, _, name = annotation.partition("/")
    if not name:
        namespace, name = path.service_namespace or "", f"{path.service_name}-ca"
    return next((obj for obj in objects if obj.get("kind") == "Secret"
                 and obj["metadata"].get("name") == name
                 and obj["metadata"].get("namespace") == namespace), None)


def managed_control_plane(path: CallPath, nodes: dict[str, NodeInfo],
                          objects: list[Obj]) -> Iterator[Finding]:
    if nodes and not any(node.control_plane for node in nodes.values()):
        providers = sorted({node.provider for node in nodes.values() if node.provider})
        where = ("a konnectivity agent's network namespace" if konnectivity(objects).ready
                 else "a worker's host network")
        yield Finding(
            "managed-control-plane", Severity.INFO,
            "No control-plane node is visible (a managed control plane"
            + (f": {', '.join(providers)}" if providers else "") + "): the apiserver -> node hop "
            f"cannot be observed; the call is replayed from {where}.",
            "Compare with the provider's firewall / security group rules for the control plane.",
            "cluster")


def kube_proxy_ipvs(path: CallPath, nodes: dict[str, NodeInfo],
                    objects: list[Obj]) -> Iterator[Finding]:
    proxy = kube_proxy(objects)
    if proxy.mode is ProxyMode.IPVS and not path.url:
        yield Finding(
            "kube-proxy-ipvs", Severity.INFO,
            f"kube-proxy runs in IPVS mode ({proxy.source}): the ClusterIP is a virtual server "
            "on the kube-ipvs0 dummy link of every node, balanced by the kernel's ip_vs, and the "
            "masquerade still comes from iptables (KUBE-POSTROUTING). netprobe names that NAT "
            "hop but its lab cannot reproduce IPVS (no ip_vs module on its machines).",
            "On the control-plane node, `ipvsadm -Ln -t CLUSTER_IP:PORT` lists the real servers "
            "IPVS balances to; a virtual server without real servers refuses the call.",
            f"Service {path.service_namespace}/{path.service_name}")


def konnectivity_agents(path: CallPath, nodes: dict[str, NodeInfo],
                        objects: list[Obj]) -> Iterator[Finding]:
    """The apiserver's calls go through konnectivity: none can pass without a ready agent."""
    tunnel = konnectivity(objects)
    if not tunnel.in_use:
        return
    if not tunnel.ready:
        yield Finding(
            "konnectivity-no-agent", Severity.ERROR,
            "the apiserver reaches the cluster through konnectivity, and no konnectivity-agent "
            f"pod is ready ({len(tunnel.agents)} found): every call into the cluster fails with "
            "'No agent available'.",
            "Check the konnectivity-agent DaemonSet/Deployment in kube-system (its logs: it "
            "must reach konnectivity-server on the control plane, port 8132 by default).",
            "cluster")
        return
    where = ", ".join(str(agent) for agent in tunnel.ready)
    yield Finding(
        "konnectivity-tunnel", Severity.INFO,
        f"the apiserver reaches the cluster through konnectivity agents ({where}): its calls "
        "start in an agent's network namespace, not on the control plane, so a firewall or "
        "NetworkPolicy must allow the agents, not the control plane. netprobe replays the call "
        "from an agent's namespace (else from its node's host network); the apiserver -> "
        "tunnel hop (konnectivity-server's gRPC) is unobservable.",
        "If the replay succeeds and the apiserver still fails, check konnectivity-server and "
        "the agents' logs.", "cluster")


def kubelet_ca_unread(path: CallPath, nodes: dict[str, NodeInfo],
                      objects: list[Obj]) -> Iterator[Finding]:
    """kube-apiserver verifies kubelets with a CA file netprobe could not read here."""
    if path.kind is not CallKind.KUBELET or not path.insecure_skip_verify:
        return
    named = apiserver_flag(objects, KUBELET_CA_FLAG)
    if named:
        yield Finding(
            "kubelet-ca-unread", Severity.WARNING,
            f"kube-apiserver verifies the kubelets' serving certificates against {named} "
            "(--kubelet-certificate-authority), which netprobe cannot read here: the replay "
            "does not verify them, so an x509 failure of the apiserver's goes unseen.",
            "Run netprobe on the control-plane node, or copy the file and pass "
            "--kubelet-certificate-authority FILE.", f"node {path.name}")


def kubelet_external_address(path: CallPath, nodes: dict[str, NodeInfo],
                             objects: list[Obj]) -> Iterator[Finding]:
    """kube-apiserver dials a node's ExternalIP/ExternalDNS while it has an internal one."""
    if path.kind is not CallKind.KUBELET or not path.configuration_object:
        return
    addresses = (path.configuration_object.get("status") or {}).get("addresses") or []
    dialled = path.host
    kinds = {a.get("address"): a.get("type") for a in addresses}
    internal = [a.get("address") for a in addresses if a.get("type") == "InternalIP"]
    if kinds.get(dialled, "").startswith("External") and internal:
        yield Finding(
            "kubelet-external-address", Severity.WARNING,
            f"the apiserver dials node {path.name}'s {kinds[dialled]} {dialled} (its "
            "--kubelet-preferred-address-types puts External first) although the node has "
            f"InternalIP {internal[0]}: private control planes rarely reach external addresses.",
            "Put InternalIP first in kube-apiserver's --kubelet-preferred-address-types "
            "(kubeadm: InternalIP,ExternalIP,Hostname).", f"node {path.name}")


CHECKS: tuple[Check, ...] = (missing_service, missing_port, unresolved_target, endpoints_ready,
                             probe_vs_healthz, provider_ports, ca_bundle, timeout_masks,
                             managed_control_plane, kube_proxy_ipvs, kubelet_external_address,
                             kubelet_ca_unread, konnectivity_agents)


def run_checks(path: CallPath, nodes: dict[str, NodeInfo], objects: list[Obj]) -> list[Finding]:
    """Every finding of every check for PATH, errors first."""
    findings = [finding for check in CHECKS for finding in check(path, nodes, objects)]
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda f: order[f.severity.value])
