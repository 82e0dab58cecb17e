"""The aggregated API target kind: what `trace apiservice` traces.

Owns: finding the calls kube-aggregator makes to aggregated API servers (APIService
objects with a `spec.service`: metrics-server, custom metrics adapters...) and the
request it sends for each: its availability check, a GET of `/apis/GROUP/VERSION`
(`/api/VERSION` for `v1.`) on the Service's resolved address, TLS with ServerName
`SVC.NS.svc` verified against the APIService's caBundle (or not at all with
`insecureSkipTLSVerify`), within its http.Client's 5 s Timeout
(kube-aggregator pkg/controllers/status/available_controller.go). Also what the
APIService's own Available condition says, to set beside the replay's verdict.
Must not: resolve Services (`discovery.resolve`) or run anything.
"""

from __future__ import annotations

import dataclasses

from netprobe.core.model import CallKind, CallTarget, TraceResult
from netprobe.core.packets import join_address
from netprobe.core.verdicts import VerdictClass
from netprobe.trace.discovery import CallPath, Obj, by_kind
from netprobe.trace.targets.webhook import decode_bundle

DISCOVERY_TIMEOUT = 5.0
"""The availability check's http.Client Timeout (available_controller.go)."""


def is_local(apiservice: Obj) -> bool:
    """Served by kube-apiserver itself (no `spec.service`): nothing is dialled."""
    return not (apiservice.get("spec") or {}).get("service")


def _discovery_path(apiservice: Obj) -> str:
    spec = apiservice.get("spec") or {}
    if apiservice["metadata"]["name"] == "v1.":
        return f"/api/{spec.get('version', 'v1')}"
    return f"/apis/{spec.get('group', '')}/{spec.get('version', '')}"


def available(apiservice: Obj) -> tuple[str, str, str] | None:
    """(status, reason, message) of the APIService's Available condition, if it has one."""
    for condition in (apiservice.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Available":
            return (str(condition.get("status", "Unknown")), str(condition.get("reason", "")),
                    str(condition.get("message", "")))
    return None


class APIServices:
    """APIServices served by a Service in the cluster (aggregated API servers)."""

    command = "apiservice"
    noun = "APIService"

    def paths(self, objects: list[Obj]) -> list[CallPath]:
        """Every APIService of OBJECTS that names a Service (local ones have no call)."""
        found = []
        for apiservice in by_kind(objects, "APIService"):
            if is_local(apiservice):
                continue
            spec = apiservice["spec"]
            service = spec["service"]
            name = apiservice["metadata"]["name"]
            found.append(CallPath(
                configuration=f"apiservice/{name}", name=name, kind=CallKind.DISCOVERY,
                ca_bundle=decode_bundle(spec.get("caBundle")),
                timeout_seconds=DISCOVERY_TIMEOUT,
                service_namespace=service.get("namespace"), service_name=service.get("name"),
                service_port=int(service.get("port") or 443), path=_discovery_path(apiservice),
                configuration_object=apiservice,
                insecure_skip_verify=bool(spec.get("insecureSkipTLSVerify"))))
        return found

    def target(self, path: CallPath) -> CallTarget:
        """The availability check for the resolved PATH: a GET on the ClusterIP (the
        aggregator's default service resolver), TLS named after the Service."""
        address = join_address(path.cluster_ip or path.host, path.service_port)
        return CallTarget(
            url=f"https://{address}{path.path}", host=path.host, port=path.service_port,
            path=path.path, resolve_ip=path.cluster_ip, ca_bundle=path.ca_bundle,
            webhook_name=path.name, timeout_seconds=path.timeout_seconds,
            kind=CallKind.DISCOVERY, insecure_skip_verify=path.insecure_skip_verify)

    def finish(self, path: CallPath, result: TraceResult) -> TraceResult:
        """RESULT with the APIService's Available condition beside the verdict, and the
        aggregator's MissingEndpoints text when no endpoint is ready (it checks the
        endpoints before it dials, so it never sends the SYN kube-proxy would reject)."""
        notes = (*result.notes, _condition_note(path, result))
        error = result.apiserver_error
        if result.verdict.cls is VerdictClass.NO_ENDPOINTS and error is not None:
            port_name = _port_name(path)
            missing = (f"endpoints for service/{path.service_name} in "
                       f'"{path.service_namespace}" have no addresses with port name '
                       f'"{port_name}"')
            error = dataclasses.replace(error, message=missing, alternatives=())
        return dataclasses.replace(result, notes=notes, apiserver_error=error)


def _port_name(path: CallPath) -> str:
    for port in (path.service or {}).get("spec", {}).get("ports", []) or []:
        if int(port.get("port", 0)) == path.service_port:
            return str(port.get("name", ""))
    return ""


def _condition_note(path: CallPath, result: TraceResult) -> str:
    """The APIService's own Available condition, and whether the replay agrees."""
    condition = available(path.configuration_object or {})
    if condition is None:
        return f"APIService {path.name} has no Available condition yet"
    status, reason, message = condition
    said = f"Available={status}" + (f" ({reason}: {message})" if reason else "")
    if status not in ("True", "False"):
        return f"APIService {path.name} says {said}"
    agrees = (status == "True") == (result.verdict.cls is VerdictClass.OK)
    return (f"APIService {path.name} says {said}: "
            + ("the replay agrees" if agrees else "the replay disagrees (the condition may be "
               "stale: the aggregator checks again on changes and every few minutes)"))


APISERVICES = APIServices()
