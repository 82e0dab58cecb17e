"""`trace webhook`: discover the path, run agents at every hop, correlate, name the culprit.

Owns: the order of a trace (static checks; capture agents on every endpoint's
node, ready before the first SYN; replay agents on the apiserver's node, one
per endpoint, concurrently; collect; correlate by ISN; hops and culprit;
refine the verdict with the path) and the choice of vantage points
(control-plane node, or a worker's host network for managed control planes).
Must not: print, or know which backend runs the agents.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netprobe.agents.backend import MANAGED_CONTROL_PLANE, AgentBackend, AgentHandle
from netprobe.agents.spec import AgentResult, AgentSpec
from netprobe.capture import filters
from netprobe.core import errors, rules, wire
from netprobe.core.model import TraceResult, WebhookTarget
from netprobe.core.settings import Timeouts
from netprobe.replay.probe import service_missing
from netprobe.trace import checks, correlate, discovery, hops
from netprobe.trace.discovery import EndpointInfo, NodeInfo, WebhookPath

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TraceOptions:
    timeouts: Timeouts = dataclasses.field(default_factory=Timeouts)
    pcap_dir: Path | None = None
    agent_start_timeout: float = 30.0
    apiserver_node: str | None = None
    """Force the replay's vantage node."""


@dataclass(frozen=True)
class _Probe:
    """One endpoint to call and where."""

    endpoint: EndpointInfo | None
    target: WebhookTarget


def _pem_text(path: WebhookPath) -> str:
    return path.ca_bundle.decode("ascii", "replace")


def _vantage(path: WebhookPath, nodes: dict[str, NodeInfo], backend: AgentBackend,
             forced: str | None) -> tuple[str, bool]:
    """(node to replay from, whether it stands in for a managed control plane)."""
    if forced:
        return forced, False
    control = sorted(name for name, node in nodes.items() if node.control_plane)
    if control:
        return control[0], False
    if backend.has_node(MANAGED_CONTROL_PLANE):
        return MANAGED_CONTROL_PLANE, False
    endpoint_nodes = {e.node for e in path.endpoints}
    workers = sorted(nodes)
    if not workers:
        raise errors.UsageError("choosing where to replay from: the cluster lists no nodes")
    other = [name for name in workers if name not in endpoint_nodes]
    return (other or workers)[0], True


def _probes(path: WebhookPath) -> list[_Probe]:
    base = WebhookTarget(
        url=f"https://{path.host}:{path.service_port}{path.path}" if not path.url else path.url,
        host=path.host, port=path.service_port, path=path.path, resolve_ip=path.cluster_ip,
        ca_bundle=path.ca_bundle, webhook_name=path.webhook,
        timeout_seconds=path.timeout_seconds, kind=path.kind,
        conversion_gvk=path.crd_gvk or "netprobe.io/v1beta1, Kind=Probe")
    if path.url:
        from urllib.parse import urlsplit
        parts = urlsplit(path.url)
        return [_Probe(None, dataclasses.replace(base, port=parts.port or 443,
                                                 path=parts.path or "/", resolve_ip=None))]
    ready = [e for e in path.endpoints if e.ready and e.port]
    if len(ready) <= 1:
        return [_Probe(ready[0] if ready else None, base)]
    # Several endpoints: call each directly, the way kube-proxy would have sent it.
    return [_Probe(e, dataclasses.replace(base, resolve_ip=e.ip, connect_port=e.port,
                                          apiserver_ip=path.cluster_ip)) for e in ready]


def _target_json(target: WebhookTarget) -> dict[str, Any]:
    fields = dataclasses.asdict(target)
    fields["ca_bundle"] = target.ca_bundle.decode("ascii", "replace")
    fields["kind"] = target.kind.value
    return fields


def _stop_all(handles: list[AgentHandle]) -> None:
    for handle in handles:
        handle.abort()


def _run_agents(backend: AgentBackend, replays: list[AgentSpec], captures: list[AgentSpec],
                options: TraceOptions,
                progress: Progress) -> tuple[list[AgentResult], list[AgentResult]]:
    started: list[AgentHandle] = []
    try:
        capture_handles = []
        for spec in captures:
            progress(f"starting capture agent on {spec.node}")
            handle = backend.start(spec)
            started.append(handle)
            capture_handles.append(handle)
        for handle in capture_handles:
            handle.wait_ready(options.agent_start_timeout)
        progress(f"replaying the apiserver's call from {replays[0].node}")
        replay_handles = [backend.start(spec) for spec in replays]
        started += replay_handles
        budget = options.agent_start_timeout + max(t["timeout_seconds"] for s in replays
                                                   for t in s.targets)
        replay_results = [handle.finish(budget) for handle in replay_handles]
        progress("collecting captures")
        capture_results = [handle.finish(options.agent_start_timeout + 30) for handle in
                           capture_handles]
        return replay_results, capture_results
    finally:
        _stop_all(started)
        if replays:  # agents left by a crash (the pod backend deletes by run-id label)
            backend.cleanup(replays[0].run_id)


def _check_result(result: AgentResult) -> AgentResult:
    if not result.ok:
        raise errors.AgentError(f"agent on {result.node} ({result.role}) failed: {result.error}")
    return result


def _save(data: bytes, directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "-" for c in name)


def _sighting(result: AgentResult | None, pcap: Path | None, key: correlate.FlowKey | None,
              ignore_loopback: bool = True) -> correlate.Sighting:
    if result is None or pcap is None or key is None or not any(result.captures):
        return correlate.UNOBSERVED if result is None else correlate.Sighting()
    from netprobe import analysis

    frame = analysis.read(pcap)
    return correlate.sight(frame, result.interfaces, key, ignore_loopback=ignore_loopback)


def trace_path(path: WebhookPath, objects: list[dict[str, Any]], backend: AgentBackend,
               options: TraceOptions, progress: Progress) -> list[TraceResult]:
    """Traces one webhook path; one result per probed endpoint."""
    nodes = discovery.nodes(objects)
    findings = tuple(checks.run_checks(path, nodes, objects))
    probes = _probes(path)
    if not path.url and path.service is None:
        return [_service_missing(path, probes[0].target, findings)]
    vantage, managed = _vantage(path, nodes, backend, options.apiserver_node)
    run_id = uuid.uuid4().hex[:10]
    endpoint_nodes: dict[str, list[EndpointInfo]] = {}
    for probe in probes:
        if probe.endpoint and probe.endpoint.node and probe.endpoint.node != vantage:
            endpoint_nodes.setdefault(probe.endpoint.node, []).append(probe.endpoint)
    timeouts = dataclasses.asdict(options.timeouts)
    duration = (path.timeout_seconds if options.timeouts.full else 6.0) + 4.0
    replays = [AgentSpec(run_id, vantage, "replay", targets=[_target_json(p.target)
                                                             for p in probes],
                         timeouts=timeouts)]
    captures = [AgentSpec(run_id, node, "capture",
                          bpf=filters.endpoints_filter([(e.ip, e.port) for e in eps]),
                          timeouts=timeouts, duration=duration)
                for node, eps in endpoint_nodes.items()]
    replay_results, capture_results = _run_agents(backend, replays, captures, options, progress)
    by_node = {r.node: _check_result(r) for r in capture_results}
    with tempfile.TemporaryDirectory(prefix="netprobe-trace-") as scratch:
        directory = options.pcap_dir or Path(scratch)
        saved_nodes = {node: _save(result.captures[0], directory, f"{_safe(node)}-capture.pcap")
                       for node, result in by_node.items()}
        replayed = _check_result(replay_results[0])
        return [_endpoint_result(path, probe, replayed, index, vantage, managed, findings,
                                 by_node, saved_nodes, directory,
                                 keep=options.pcap_dir is not None)
                for index, probe in enumerate(probes)]


def _endpoint_result(path: WebhookPath, probe: _Probe, result: AgentResult, index: int,
                     vantage: str, managed: bool, findings: tuple,
                     by_node: dict[str, AgentResult], saved: dict[str, Path], directory: Path,
                     keep: bool) -> TraceResult:
    replay = wire.replay_from_json(result.replays[index])
    replay_pcap = _save(result.captures[index], directory, f"{_safe(vantage)}-replay-{index}.pcap")
    key = None
    if result.captures[index] and replay.local_address:
        from netprobe import analysis
        key = correlate.flow_key(analysis.read(replay_pcap), int(replay.local_address[1]))
    cp = _sighting(result, replay_pcap, key)
    endpoint = probe.endpoint
    node = endpoint.node if endpoint else None
    worker_result = by_node.get(node or "")
    worker = (_sighting(worker_result, saved.get(node or ""), key) if worker_result
              else (cp if node == vantage else correlate.UNOBSERVED))
    facts = hops.PathFacts(
        apiserver_node=vantage, managed=managed,
        service=f"{path.service_namespace}/{path.service_name}" if not path.url else path.host,
        cluster_ip=path.cluster_ip, service_port=path.service_port,
        endpoint_ip=endpoint.ip if endpoint else None,
        endpoint_port=endpoint.port if endpoint else None, endpoint_node=node,
        pod=endpoint.pod if endpoint else None,
        pod_in_node_netns=bool(endpoint and (endpoint.host_network
                                             or endpoint.ip == _node_ip(endpoint))))
    path_hops = hops.build_hops(facts, replay, cp, worker)
    blame = hops.culprit(path_hops, facts)
    verdict = rules.refine(replay.verdict, blame.hop if blame else None,
                              {finding.code for finding in findings})
    captures = (str(replay_pcap), *([str(saved[node])] if node in saved else [])) if keep else ()
    return TraceResult(
        target=replay.target.url, configuration=path.configuration, webhook=path.webhook,
        endpoint=f"{endpoint.ip}:{endpoint.port}" if endpoint else None, verdict=verdict,
        culprit=blame, apiserver_error=replay.apiserver_error, hops=tuple(path_hops),
        findings=findings, captures=captures, replay=replay,
        pod=endpoint.pod if endpoint else None, node=node,
        interfaces={vantage: dict(result.interfaces),
                    **({node: dict(worker_result.interfaces)} if node and worker_result else {})},
        notes=tuple(dict.fromkeys([*result.warnings,
                                   *(worker_result.warnings if worker_result else [])])))


def _node_ip(endpoint: EndpointInfo) -> str | None:
    pod = endpoint.pod_object or {}
    return pod.get("status", {}).get("hostIP")


def _service_missing(path: WebhookPath, target: WebhookTarget, findings: tuple) -> TraceResult:
    replay = service_missing(target, path.service_name or "", path.service_namespace or "")
    facts = hops.PathFacts(None, False, f"{path.service_namespace}/{path.service_name}", None,
                           path.service_port, None, None, None, None, False,
                           service_exists=False)
    path_hops = hops.build_hops(facts, replay, correlate.UNOBSERVED, correlate.UNOBSERVED)
    return TraceResult(target=target.url, configuration=path.configuration, webhook=path.webhook,
                       endpoint=None, verdict=replay.verdict,
                       culprit=hops.culprit(path_hops, facts),
                       apiserver_error=replay.apiserver_error, hops=tuple(path_hops),
                       findings=findings, replay=replay)


def trace_webhooks(objects: list[dict[str, Any]], backend: AgentBackend, *,
                   name: str | None = None, namespace: str | None = None,
                   options: TraceOptions | None = None,
                   progress: Progress | None = None) -> list[TraceResult]:
    """Traces every webhook endpoint NAME selects (all of them without NAME).

    Raises:
        UsageError: nothing matches, or a node has no agent (e.g. not in --netns-map).
        AgentError: an agent failed.
    """
    options = options or TraceOptions()
    progress = progress or (lambda message: None)
    paths = discovery.select(discovery.webhook_paths(objects), name, namespace)
    results: list[TraceResult] = []
    for path in paths:
        progress(f"tracing {path.configuration} webhook {path.webhook}")
        results += trace_path(discovery.resolve(objects, path), objects, backend, options,
                              progress)
    return results


@dataclass(frozen=True)
class StaticReport:
    """The static checks of one webhook path, without agents or packets."""

    configuration: str
    webhook: str
    target: str
    findings: tuple


def static_checks(objects: list[dict[str, Any]], *, name: str | None = None,
                  namespace: str | None = None) -> list[StaticReport]:
    """The findings of every selected webhook path (a support bundle, offline).

    Raises:
        UsageError: nothing matches.
    """
    nodes = discovery.nodes(objects)
    reports = []
    for path in discovery.select(discovery.webhook_paths(objects), name, namespace):
        path = discovery.resolve(objects, path)
        target = path.url or f"https://{path.host}:{path.service_port}{path.path}"
        reports.append(StaticReport(path.configuration, path.webhook, target,
                                    tuple(checks.run_checks(path, nodes, objects))))
    return reports
