"""The kubelet target kind: what `trace kubelet` traces.

Owns: the calls kube-apiserver makes to each node's kubelet (`kubectl logs`, `exec`,
`port-forward`, `top` through metrics): the node address chosen as the apiserver
chooses it (`--kubelet-preferred-address-types`, from the kube-apiserver static pod
in the objects or from the command line; default Hostname, InternalDNS, InternalIP,
ExternalDNS, ExternalIP: the first address of the first type the Node has,
k8s.io/component-helpers/node/util GetPreferredNodeAddress), its port from the Node's
`status.daemonEndpoints.kubeletEndpoint`, and TLS as the apiserver makes it: the
kubelet's serving certificate is not verified unless `--kubelet-certificate-authority`
is set (then against that file: given on the command line, or the one the static pod
names when netprobe runs where it is readable, on the control-plane node). Must not:
resolve anything or run anything.
"""

from __future__ import annotations

from pathlib import Path

from netprobe.core.model import CallKind, CallTarget, TraceResult
from netprobe.core.packets import ip_version, join_address
from netprobe.trace.discovery import (
    KUBELET_CA_FLAG,
    CallPath,
    EndpointInfo,
    Obj,
    apiserver_flag,
    by_kind,
)

DEFAULT_PREFERRED = ("Hostname", "InternalDNS", "InternalIP", "ExternalDNS", "ExternalIP")
"""kube-apiserver's default `--kubelet-preferred-address-types`."""
FLAG = "--kubelet-preferred-address-types="
KUBELET_PORT = 10250
KUBELET_TIMEOUT = 5.0
"""kube-apiserver's `--kubelet-timeout` default."""
PROBE_PATH = "/healthz"
"""What the replay GETs: served on the kubelet's secure port, behind its authentication
(without the apiserver's client certificate the kubelet answers 401: it was reached)."""


def preferred_types(objects: list[Obj]) -> tuple[str, ...] | None:
    """The `--kubelet-preferred-address-types` of a kube-apiserver static pod in OBJECTS."""
    value = apiserver_flag(objects, FLAG)
    return None if value is None else tuple(t for t in value.split(",") if t)


def apiserver_kubelet_ca(objects: list[Obj]) -> bytes | None:
    """The `--kubelet-certificate-authority` file a kube-apiserver static pod names, when
    it is readable here (netprobe runs on that control-plane node); else None."""
    path = apiserver_flag(objects, KUBELET_CA_FLAG)
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def preferred_address(node: Obj, preferred: tuple[str, ...]) -> str | None:
    """The address kube-apiserver dials for NODE: the first of the first preferred type."""
    addresses = (node.get("status") or {}).get("addresses") or []
    for kind in preferred:
        for address in addresses:
            if address.get("type") == kind and address.get("address"):
                return str(address["address"])
    return None


def _port(node: Obj) -> int:
    endpoint = ((node.get("status") or {}).get("daemonEndpoints") or {}).get(
        "kubeletEndpoint") or {}
    return int(endpoint.get("Port") or KUBELET_PORT)


class Kubelets:
    """Every node's kubelet, as kube-apiserver reaches it."""

    command = "kubelet"
    noun = "kubelet"

    def __init__(self, preferred: tuple[str, ...] | None = None,
                 certificate_authority: bytes | None = None) -> None:
        self.preferred = preferred
        """`--kubelet-preferred-address-types` given on the command line (wins)."""
        self.certificate_authority = certificate_authority
        """`--kubelet-certificate-authority` PEM given on the command line (wins)."""

    def paths(self, objects: list[Obj]) -> list[CallPath]:
        """One call per Node of OBJECTS, to the address and port the apiserver would use."""
        preferred = self.preferred or preferred_types(objects) or DEFAULT_PREFERRED
        authority = self.certificate_authority or apiserver_kubelet_ca(objects) or b""
        found = []
        for node in by_kind(objects, "Node"):
            name = node["metadata"]["name"]
            address = preferred_address(node, preferred) or name
            port = _port(node)
            endpoint = EndpointInfo(ip=address, port=port, ready=True, serving=True,
                                    terminating=False, pod=None, node=name, host_network=True)
            found.append(CallPath(
                configuration=f"node/{name}", name=name, kind=CallKind.KUBELET,
                ca_bundle=authority,
                timeout_seconds=KUBELET_TIMEOUT,
                url=f"https://{join_address(address, port)}{PROBE_PATH}", path=PROBE_PATH,
                service_port=port,
                endpoints=(endpoint,) if ip_version(address) is not None else (),
                configuration_object=node, insecure_skip_verify=not authority))
        return found

    def target(self, path: CallPath) -> CallTarget:
        """A GET on the kubelet's secure port, its certificate verified only against the
        apiserver's --kubelet-certificate-authority."""
        assert path.url is not None
        host, port = path.host, path.service_port  # the URL's host, unbracketed
        resolve = host if ip_version(host) is not None else None
        return CallTarget(url=path.url, host=host, port=port, path=path.path,
                          resolve_ip=resolve, ca_bundle=path.ca_bundle, webhook_name=path.name,
                          timeout_seconds=path.timeout_seconds, kind=CallKind.KUBELET,
                          insecure_skip_verify=path.insecure_skip_verify,
                          endpoints=(join_address(host, port),) if resolve else ())

    def finish(self, path: CallPath, result: TraceResult) -> TraceResult:
        """RESULT as it is: a Node keeps no status of the apiserver's calls to it."""
        return result


KUBELETS = Kubelets()
