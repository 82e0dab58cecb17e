"""The admission and conversion webhook target kind: what `trace webhook` traces.

Owns: finding the calls the apiserver makes to webhooks in the API objects
(Validating/MutatingWebhookConfiguration webhooks, CRD conversion webhooks),
and the request it sends for each (`CallTarget`: URL, ServerName,
caBundle, AdmissionReview or ConversionReview, timeoutSeconds).
Must not: resolve Services (`discovery.resolve`) or run anything.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from urllib.parse import urlsplit

from netprobe.core.model import CallKind, CallTarget, TraceResult
from netprobe.core.settings import DEFAULT_TIMEOUT_SECONDS
from netprobe.trace.discovery import CallPath, Obj, by_kind

CONFIGURATION_KINDS = {"ValidatingWebhookConfiguration": "validating",
                       "MutatingWebhookConfiguration": "mutating"}


def decode_bundle(text: str | None) -> bytes:
    if not text:
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return text.encode("utf-8", "replace")  # not base64: kept, so it reads as not PEM


def _service_ref(config: Obj) -> tuple[str | None, str | None, int, str, str | None]:
    client = config.get("clientConfig", {}) or {}
    service = client.get("service")
    if service:
        return (service.get("namespace"), service.get("name"), int(service.get("port") or 443),
                service.get("path") or "/", None)
    return None, None, 443, "/", client.get("url")


def _configuration_paths(objects: list[Obj]) -> list[CallPath]:
    found = []
    for kind, prefix in CONFIGURATION_KINDS.items():
        for config in by_kind(objects, kind):
            name = config["metadata"]["name"]
            for hook in config.get("webhooks", []) or []:
                namespace, svc, port, path, url = _service_ref(hook)
                found.append(CallPath(
                    configuration=f"{prefix}/{name}", name=hook.get("name", name),
                    kind=CallKind.ADMISSION,
                    ca_bundle=decode_bundle((hook.get("clientConfig") or {}).get("caBundle")),
                    timeout_seconds=float(hook.get("timeoutSeconds") or DEFAULT_TIMEOUT_SECONDS),
                    url=url,
                    service_namespace=namespace, service_name=svc, service_port=port, path=path,
                    configuration_object=config))
    return found


def _conversion_paths(objects: list[Obj]) -> list[CallPath]:
    found = []
    for crd in by_kind(objects, "CustomResourceDefinition"):
        conversion = crd.get("spec", {}).get("conversion") or {}
        if conversion.get("strategy") != "Webhook":
            continue
        client = (conversion.get("webhook") or {}).get("clientConfig") or {}
        namespace, svc, port, path, url = _service_ref({"clientConfig": client})
        spec = crd["spec"]
        version = next((v["name"] for v in spec.get("versions", []) if v.get("storage")), "v1")
        found.append(CallPath(
            configuration=f"crd/{crd['metadata']['name']}",
            name=f"conversion_webhook_for_{crd['metadata']['name']}",
            kind=CallKind.CONVERSION, ca_bundle=decode_bundle(client.get("caBundle")),
            timeout_seconds=30.0, url=url, service_namespace=namespace, service_name=svc,
            service_port=port, path=path, configuration_object=crd,
            crd_gvk=f"{spec.get('group')}/{version}, Kind={spec.get('names', {}).get('kind')}"))
    return found






class Webhooks:
    """Admission (validating, mutating) and CRD conversion webhooks."""

    command = "webhook"
    noun = "webhook"

    def paths(self, objects: list[Obj]) -> list[CallPath]:
        """Every webhook of every configuration and CRD in OBJECTS (not yet resolved)."""
        return _configuration_paths(objects) + _conversion_paths(objects)

    def finish(self, path: CallPath, result: TraceResult) -> TraceResult:
        """RESULT as it is: a webhook configuration keeps no status of its calls."""
        return result

    def target(self, path: CallPath) -> CallTarget:
        """The request kube-apiserver sends for PATH (to the ClusterIP, or to the URL)."""
        target = CallTarget(
            url=path.url or f"https://{path.host}:{path.service_port}{path.path}",
            host=path.host, port=path.service_port, path=path.path,
            resolve_ip=path.cluster_ip, ca_bundle=path.ca_bundle, webhook_name=path.name,
            timeout_seconds=path.timeout_seconds, kind=path.kind,
            conversion_gvk=path.crd_gvk or "netprobe.io/v1beta1, Kind=Probe")
        if not path.url:
            return target
        parts = urlsplit(path.url)
        return dataclasses.replace(target, port=parts.port or 443, path=parts.path or "/",
                                   resolve_ip=None)


WEBHOOKS = Webhooks()
