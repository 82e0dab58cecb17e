"""The webhook path as the API server describes it, read live.

Owns: `LiveSource`, which lists the objects a trace needs and returns them as
kubectl-style dicts (`apiVersion` and `kind` on every item, fields as the
server sent them, `caBundle` still base64). Must not: interpret the objects
(that is the core's job) or keep private keys: of a Secret only its type,
metadata and public certificates (`tls.crt`, `ca.crt`) are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netprobe.core import errors
from netprobe.k8s.client import Api, translated

PUBLIC_SECRET_KEYS = frozenset({"tls.crt", "ca.crt"})


@dataclass(frozen=True)
class Kind:
    """One kind of object to read, and how to list it."""

    api_version: str
    kind: str
    plural: str
    cluster: Callable[[Api], Any]
    """The list-everything call (cluster-scoped, or all namespaces)."""
    namespaced: Callable[[Api], Any] | None = None
    """The per-namespace list call; None for cluster-scoped kinds."""


KINDS = (
    Kind("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration",
         "validatingwebhookconfigurations",
         lambda api: api.admission.list_validating_webhook_configuration),
    Kind("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration",
         "mutatingwebhookconfigurations",
         lambda api: api.admission.list_mutating_webhook_configuration),
    Kind("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions",
         lambda api: api.extensions.list_custom_resource_definition),
    Kind("v1", "Service", "services", lambda api: api.core.list_service_for_all_namespaces,
         lambda api: api.core.list_namespaced_service),
    Kind("discovery.k8s.io/v1", "EndpointSlice", "endpointslices",
         lambda api: api.discovery.list_endpoint_slice_for_all_namespaces,
         lambda api: api.discovery.list_namespaced_endpoint_slice),
    Kind("v1", "Pod", "pods", lambda api: api.core.list_pod_for_all_namespaces,
         lambda api: api.core.list_namespaced_pod),
    Kind("v1", "Node", "nodes", lambda api: api.core.list_node),
)
KUBE_PROXY_CONFIG_MAPS = ("kube-proxy", "kube-proxy-config")
"""kube-proxy's configuration in kube-system: kubeadm's name, then EKS's."""
APISERVICES = Kind("apiregistration.k8s.io/v1", "APIService", "apiservices",
                   lambda api: api.registration.list_api_service)
"""Read when allowed: only `trace apiservice` needs them."""
SECRETS = Kind("v1", "Secret", "secrets", lambda api: api.core.list_secret_for_all_namespaces,
               lambda api: api.core.list_namespaced_secret)


def _is_conversion_webhook(crd: dict[str, Any]) -> bool:
    return bool(crd.get("spec", {}).get("conversion", {}).get("strategy") == "Webhook")


def _public_secret(secret: dict[str, Any]) -> dict[str, Any]:
    data = {key: value for key, value in (secret.get("data") or {}).items()
            if key in PUBLIC_SECRET_KEYS}
    return {key: value for key, value in dict(secret, data=data).items() if key != "stringData"}


class LiveSource:
    """Reads the webhook path from a live API server."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.notes: list[str] = []
        """What could not be read but did not stop the reading (e.g. Secrets, 403)."""

    def _list(self, kind: Kind, namespace: str | None) -> list[dict[str, Any]]:
        where = f"in namespace {namespace}" if namespace else \
            "in all namespaces" if kind.namespaced else "(cluster-wide)"
        with translated(f"listing {kind.plural} {where}", self.api.host):
            if namespace is None:
                body = self.api.raw(kind.cluster(self.api))
            else:
                assert kind.namespaced is not None
                body = self.api.raw(kind.namespaced(self.api), namespace)
        items = (body or {}).get("items") or []
        return [dict(item, apiVersion=kind.api_version, kind=kind.kind) for item in items]

    def _each(self, kind: Kind, namespaces: set[str] | None) -> list[dict[str, Any]]:
        if kind.namespaced is None or namespaces is None:
            return self._list(kind, None)
        return [item for namespace in sorted(namespaces) for item in self._list(kind, namespace)]

    def _secrets(self, namespaces: set[str] | None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for namespace in [None] if namespaces is None else sorted(namespaces):
            try:
                found += [_public_secret(item) for item in self._list(SECRETS, namespace)]
            except errors.K8sForbidden as exc:
                where = f"in namespace {namespace}" if namespace else "in all namespaces"
                self.notes.append(f"skipped Secrets {where}: not readable ({exc})")
        return found

    def objects(self, namespaces: set[str] | None = None) -> list[dict[str, Any]]:
        """Every object a trace needs, kubectl-style, in a stable order.

        NAMESPACES limits the namespaced kinds (Services, EndpointSlices, Pods,
        Secrets); None reads all namespaces. Cluster-scoped kinds are always read
        whole. CRDs are kept only when they convert through a webhook. Secrets that
        RBAC hides are skipped and noted in `notes`.

        Raises:
            K8sForbidden: reading anything but Secrets was denied (401/403).
            K8sNotFound: a kind is not served (404).
            K8sError: the server failed or could not be reached.
        """
        found: list[dict[str, Any]] = []
        for kind in KINDS:
            items = self._each(kind, namespaces)
            if kind.kind == "CustomResourceDefinition":
                items = [item for item in items if _is_conversion_webhook(item)]
            found += items
        return found + self._apiservices() + self._secrets(namespaces) + self._kube_proxy()

    def _apiservices(self) -> list[dict[str, Any]]:
        """APIServices, where they may be read (a webhook trace does without them)."""
        try:
            return self._list(APISERVICES, None)
        except (errors.K8sForbidden, errors.K8sNotFound) as exc:
            self.notes.append(f"skipped APIServices: not readable ({exc})")
            return []

    def _kube_proxy(self) -> list[dict[str, Any]]:
        """kube-proxy's ConfigMap (its mode), where there is one and it may be read."""
        for name in KUBE_PROXY_CONFIG_MAPS:
            try:
                with translated(f"reading ConfigMap kube-system/{name}", self.api.host):
                    body = self.api.raw(self.api.core.read_namespaced_config_map, name,
                                        "kube-system")
            except errors.K8sNotFound:
                continue
            except errors.K8sForbidden as exc:
                self.notes.append(f"skipped ConfigMap kube-system/{name}: not readable ({exc}); "
                                  "kube-proxy's mode is unknown")
                return []
            return [dict(body, apiVersion="v1", kind="ConfigMap")]
        return []
