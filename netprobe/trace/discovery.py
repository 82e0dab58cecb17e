"""From API objects to the path of a call: Service -> endpoints -> pods -> nodes.

Owns: `CallPath` (what every target kind discovers), resolving a path to
the way the apiserver's call takes (ClusterIP, port, targetPort by name
through the pod's containerPort, EndpointSlices, pods, nodes and provider),
including the IP family: kube-apiserver's service resolver dials
`spec.clusterIP`, the primary family's ClusterIP of a dual-stack Service (its
`ipFamilies[0]`), and kube-proxy sends that call to the EndpointSlices of the same
family (`addressType`), so those alone are its endpoints;
selecting paths by name, and reading Nodes. Which objects configure a call
is the target kind's business (`netprobe.trace.targets`). Must not: fetch
anything (sources give the objects) or run checks (`checks.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from netprobe.core import errors
from netprobe.core.model import CallKind, ProxyMode
from netprobe.core.packets import ip_version

Obj = dict[str, Any]

@dataclass(frozen=True)
class NodeInfo:
    """A node as the trace needs it."""

    name: str
    internal_ip: str | None
    control_plane: bool
    provider: str
    """`aws`, `gce`, `azure`, or the providerID's scheme, or `` when unknown."""
    fargate: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[str, ...] = ()


@dataclass(frozen=True)
class EndpointInfo:
    """One address behind the Service, with its pod and node."""

    ip: str
    port: int
    ready: bool
    serving: bool
    terminating: bool
    pod: str | None
    node: str | None
    host_network: bool = False
    pod_object: Obj | None = None


@dataclass(frozen=True)
class CallPath:
    """One call the apiserver makes to a Service (or URL), and everything on the way to it."""

    configuration: str
    """The object that configures the call: `validating/NAME`, `mutating/NAME`, `crd/NAME`,
    `apiservice/NAME`."""
    name: str
    """The call's own name (a webhook's `name`)."""
    kind: CallKind
    ca_bundle: bytes
    timeout_seconds: float
    url: str | None = None
    """Set for a call by URL (`clientConfig.url`: no Service)."""
    service_namespace: str | None = None
    service_name: str | None = None
    service_port: int = 443
    path: str = "/"
    service: Obj | None = None
    """None when the Service does not exist."""
    cluster_ip: str | None = None
    target_port: int | str | None = None
    endpoints: tuple[EndpointInfo, ...] = ()
    configuration_object: Obj | None = None
    crd_gvk: str | None = None
    insecure_skip_verify: bool = False
    """An APIService's `insecureSkipTLSVerify`: the serving certificate is not verified."""

    @property
    def host(self) -> str:
        if self.url:
            from urllib.parse import urlsplit
            return urlsplit(self.url).hostname or ""
        return f"{self.service_name}.{self.service_namespace}.svc"

    @property
    def key(self) -> tuple[str, ...]:
        """Identity of the endpoint: the same Service port and path is traced once."""
        return (self.url or f"{self.service_namespace}/{self.service_name}:{self.service_port}",
                self.path)


def by_kind(objects: Iterable[Obj], kind: str) -> list[Obj]:
    return [obj for obj in objects if obj.get("kind") == kind]


def node_info(node: Obj) -> NodeInfo:
    labels = node.get("metadata", {}).get("labels", {}) or {}
    provider_id = node.get("spec", {}).get("providerID", "") or ""
    scheme = provider_id.split(":", 1)[0] if ":" in provider_id else ""
    internal = next((a.get("address") for a in node.get("status", {}).get("addresses", []) or []
                     if a.get("type") == "InternalIP"), None)
    taints = tuple(f"{t.get('key')}={t.get('value', '')}:{t.get('effect')}"
                   for t in node.get("spec", {}).get("taints", []) or [])
    return NodeInfo(
        name=node["metadata"]["name"], internal_ip=internal,
        control_plane="node-role.kubernetes.io/control-plane" in labels
        or "node-role.kubernetes.io/master" in labels,
        provider=scheme, fargate=labels.get("eks.amazonaws.com/compute-type") == "fargate",
        labels=dict(labels), taints=taints)


def select(paths: list[CallPath], name: str | None, namespace: str | None, *,
           noun: str = "webhook") -> list[CallPath]:
    """Keeps the paths NAME picks (configuration, call or service name) in NAMESPACE.

    Without NAME, one path per distinct endpoint (Service port and path).

    Raises:
        UsageError: nothing matches (the message lists what exists).
    """
    chosen = [p for p in paths if namespace is None or p.service_namespace == namespace]
    if name:
        chosen = [p for p in chosen if name in (p.configuration.split("/", 1)[1], p.name,
                                                 p.service_name, p.configuration)]
    if not chosen:
        known = sorted({f"{p.configuration} ({noun} {p.name}, service "
                        f"{p.service_namespace}/{p.service_name})" for p in paths})
        article = "an" if noun[:1].lower() in "aeiou" else "a"
        what = f"{noun} {name!r}" if name else f"{article} {noun}"
        where = f" in namespace {namespace}" if namespace else ""
        listing = "; ".join(known) if known else f"no {noun} at all"
        raise errors.UsageError(f"finding {what}{where}: not found; there are: {listing}")
    unique: dict[tuple[str, ...], CallPath] = {}
    for path in chosen:
        unique.setdefault(path.key, path)
    return list(unique.values())


def _find(objects: list[Obj], kind: str, namespace: str | None, name: str | None) -> Obj | None:
    return next((obj for obj in by_kind(objects, kind)
                 if obj["metadata"].get("name") == name
                 and obj["metadata"].get("namespace") == namespace), None)


def _service_port(service: Obj, port: int) -> Obj | None:
    return next((p for p in service.get("spec", {}).get("ports", []) or []
                 if int(p.get("port", 0)) == port), None)


def _container_port(pod: Obj | None, target: int | str) -> int | None:
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    if pod is None:
        return None
    for container in pod.get("spec", {}).get("containers", []) or []:
        for port in container.get("ports", []) or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    return None


def address_type(address: str | None) -> str | None:
    """The EndpointSlice `addressType` of ADDRESS's family (None: not an IP, e.g. `None`)."""
    version = ip_version(address)
    if version is None:
        return None
    return "IPv6" if version == 6 else "IPv4"


def _endpoints(objects: list[Obj], path: CallPath, port_name: str | None,
               target: int | str, family: str | None = None) -> tuple[EndpointInfo, ...]:
    """The endpoints of PATH's Service port in its EndpointSlices of FAMILY (`IPv4`/`IPv6`;
    None: every slice)."""
    slices = [s for s in by_kind(objects, "EndpointSlice")
              if s["metadata"].get("namespace") == path.service_namespace
              and (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name")
              == path.service_name
              and (family is None or s.get("addressType", family) == family)]
    found = []
    for eps in slices:
        ports = eps.get("ports") or []
        slice_port = next((p.get("port") for p in ports if p.get("name") == port_name), None)
        for endpoint in eps.get("endpoints") or []:
            ref = endpoint.get("targetRef") or {}
            pod = _find(objects, "Pod", path.service_namespace, ref.get("name"))
            port = slice_port or _container_port(pod, target)
            conditions = endpoint.get("conditions") or {}
            ready = conditions.get("ready") is not False
            for address in endpoint.get("addresses") or []:
                found.append(EndpointInfo(
                    ip=address, port=int(port) if port else 0, ready=ready,
                    serving=conditions.get("serving", ready) is not False,
                    terminating=bool(conditions.get("terminating")), pod=ref.get("name"),
                    node=endpoint.get("nodeName") or (pod or {}).get("spec", {}).get("nodeName"),
                    host_network=bool((pod or {}).get("spec", {}).get("hostNetwork")),
                    pod_object=pod))
    return tuple(found)


def resolve(objects: list[Obj], path: CallPath) -> CallPath:
    """Fills in the Service, ClusterIP, targetPort and endpoints of PATH (if they exist)."""
    from dataclasses import replace

    if path.url:
        return path
    service = _find(objects, "Service", path.service_namespace, path.service_name)
    if service is None:
        return path
    port = _service_port(service, path.service_port)
    cluster_ip = service.get("spec", {}).get("clusterIP")
    target: int | str | None = None
    endpoints: tuple[EndpointInfo, ...] = ()
    if port is not None:
        target = port.get("targetPort", port.get("port"))
        endpoints = _endpoints(objects, path, port.get("name"), target,  # type: ignore[arg-type]
                               address_type(cluster_ip))
    return replace(path, service=service, cluster_ip=cluster_ip, target_port=target,
                   endpoints=endpoints)


def nodes(objects: list[Obj]) -> dict[str, NodeInfo]:
    return {info.name: info for info in map(node_info, by_kind(objects, "Node"))}


KUBE_PROXY_CONFIGS = (("kube-proxy", "config.conf"), ("kube-proxy-config", "config"))
"""ConfigMaps in kube-system holding kube-proxy's configuration: kubeadm's, then EKS's."""


@dataclass(frozen=True)
class KubeProxy:
    """How kube-proxy implements Services, as its ConfigMap says."""

    mode: ProxyMode | None
    """None when no ConfigMap says (GKE, a kube-proxy replacement, or not readable)."""
    cluster_cidr: str | None = None
    source: str = ""
    """`kube-system/NAME` the mode was read from."""


def kube_proxy(objects: list[Obj]) -> KubeProxy:
    """kube-proxy's mode and clusterCIDR from its ConfigMap in OBJECTS (an empty mode is
    iptables on Linux)."""
    for name, key in KUBE_PROXY_CONFIGS:
        config_map = _find(objects, "ConfigMap", "kube-system", name)
        text = ((config_map or {}).get("data") or {}).get(key)
        if not text:
            continue
        mode = _field(text, "mode")
        try:
            parsed = ProxyMode(mode) if mode else ProxyMode.IPTABLES
        except ValueError:
            parsed = None
        return KubeProxy(parsed, _field(text, "clusterCIDR") or None, f"kube-system/{name}")
    return KubeProxy(None)


EGRESS_SELECTOR_FLAG = "--egress-selector-config-file"
KUBELET_CA_FLAG = "--kubelet-certificate-authority="


def apiserver_flag(objects: list[Obj], flag: str) -> str | None:
    """The value of FLAG (`--name=`) on a kube-apiserver static pod in OBJECTS."""
    for pod in by_kind(objects, "Pod"):
        if not pod.get("metadata", {}).get("name", "").startswith("kube-apiserver"):
            continue
        for container in (pod.get("spec") or {}).get("containers") or []:
            for arg in [*(container.get("command") or []), *(container.get("args") or [])]:
                if str(arg).startswith(flag):
                    return str(arg)[len(flag):]
    return None



@dataclass(frozen=True)
class TunnelAgent:
    """One konnectivity-agent pod: where the apiserver's calls into the cluster start."""

    pod: str
    namespace: str
    node: str | None
    ready: bool
    host_network: bool = False
    ip: str | None = None

    @property
    def key(self) -> str:
        """`NAMESPACE/POD`: how a `--netns-map` names a pod's network namespace."""
        return f"{self.namespace}/{self.pod}"

    def __str__(self) -> str:
        return f"{self.pod} on {self.node or 'an unknown node'}"


@dataclass(frozen=True)
class Konnectivity:
    """The konnectivity tunnel the apiserver's calls into the cluster may take (GKE, AKS,
    some self-managed clusters): its agents run as pods, the calls start in their pods."""

    configured: bool
    """A visible kube-apiserver pod has --egress-selector-config-file."""
    agents: tuple[TunnelAgent, ...] = ()
    """Every konnectivity-agent pod in kube-system, by name."""

    @property
    def in_use(self) -> bool:
        return self.configured or bool(self.agents)

    @property
    def ready(self) -> tuple[TunnelAgent, ...]:
        return tuple(agent for agent in self.agents if agent.ready)

    def choose(self, avoid: Iterable[str | None] = ()) -> TunnelAgent | None:
        """The ready agent a replay starts from: konnectivity-server picks one at random,
        so netprobe takes the first (by name) on a node without an endpoint, where the
        call crosses the network as most calls do; else the first."""
        avoided = set(avoid)
        ready = self.ready
        return next((a for a in ready if a.node not in avoided), ready[0] if ready else None)


def _pod_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _tunnel_agent(pod: Obj) -> TunnelAgent:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    return TunnelAgent(str(meta.get("name", "")), str(meta.get("namespace", "")),
                       spec.get("nodeName"), _pod_ready(pod), bool(spec.get("hostNetwork")),
                       status.get("podIP"))


def konnectivity(objects: list[Obj]) -> Konnectivity:
    """The konnectivity agents in OBJECTS, and whether the apiserver is set to use them."""
    agents, configured = [], False
    for pod in by_kind(objects, "Pod"):
        meta = pod.get("metadata") or {}
        if meta.get("namespace") != "kube-system":
            continue
        labels = meta.get("labels") or {}
        name = str(meta.get("name", ""))
        if labels.get("k8s-app") == "konnectivity-agent" or name.startswith("konnectivity-agent"):
            agents.append(_tunnel_agent(pod))
        if name.startswith("kube-apiserver"):
            args = [str(a) for c in (pod.get("spec") or {}).get("containers") or []
                    for a in [*(c.get("command") or []), *(c.get("args") or [])]]
            configured = configured or any(a.startswith(EGRESS_SELECTOR_FLAG) for a in args)
    return Konnectivity(configured, tuple(sorted(agents, key=lambda a: a.pod)))


def _field(text: str, name: str) -> str:
    """A top-level scalar of kube-proxy's KubeProxyConfiguration (YAML or JSON)."""
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return ""
    value = document.get(name) if isinstance(document, dict) else None
    return str(value) if value is not None else ""
