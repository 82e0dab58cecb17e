"""A trace, stage by stage: discover, plan agents, run, decode once, correlate, hops, verdict.

Owns: the order of the stages for any target kind (`netprobe.trace.targets`):
1. discover: the kind's calls in the API objects, selected by name, each
   resolved to its Service, endpoints, pods and nodes (`discovery`), with the
   static checks (`checks`);
2. plan agents: the probes, the replay's vantage point and the agent specs
   (`plan`);
3. run: capture agents ready before the replay's first SYN, then the replay,
   then the captures collected (`run`);
4. decode once: each capture saved and decoded one time (`frames`);
5. correlate: the replayed connection found in every capture by its ISN,
   which NAT leaves alone (`correlate`);
6. hops: what each hop did, and the culprit (`hops`);
7. verdict: the replay's verdict refined with the path (`netprobe.core.rules`);
8. outputs are the caller's (`netprobe.present`), from the `TraceResult`s and
   the same `Frames`.
Must not: print, or know which backend runs the agents.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netprobe.agents.backend import AgentBackend
from netprobe.agents.spec import AgentResult
from netprobe.core import rules, wire
from netprobe.core.model import CallTarget, Finding, ProxyMode, ReplayResult, TraceResult
from netprobe.core.settings import Timeouts
from netprobe.core.verdicts import VerdictClass
from netprobe.host import neighbours
from netprobe.replay.probe import (
    bad_ca_bundle,
    ca_bundle_problem,
    no_tunnel_agent,
    service_missing,
    with_neighbour,
    with_node_rejection,
)
from netprobe.trace import checks, correlate, discovery, hops, plan, run
from netprobe.trace.discovery import CallPath, EndpointInfo, NodeInfo, Obj
from netprobe.trace.frames import Frames
from netprobe.trace.targets import TargetKind
from netprobe.trace.targets.webhook import WEBHOOKS

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TraceOptions:
    timeouts: Timeouts = dataclasses.field(default_factory=Timeouts)
    pcap_dir: Path | None = None
    """Keep every capture here (else a scratch folder, removed at the end)."""
    agent_start_timeout: float = 30.0
    apiserver_node: str | None = None
    """Force the replay's vantage node."""


# --- stage 1: discover --------------------------------------------------------------------


def discover(kind: TargetKind, objects: list[Obj], name: str | None,
             namespace: str | None) -> list[CallPath]:
    """The calls of KIND that NAME selects (all without NAME), resolved.

    Raises:
        UsageError: nothing matches (the message lists what exists).
    """
    chosen = discovery.select(kind.paths(objects), name, namespace, noun=kind.noun)
    return [discovery.resolve(objects, path) for path in chosen]


# --- stage 4: decode once -----------------------------------------------------------------


@dataclass(frozen=True)
class Saved:
    """The agents' captures as files, and where they are."""

    directory: Path
    replays: tuple[Path, ...]
    """One per probe, in probe order."""
    nodes: dict[str, Path]
    """Endpoint node -> its capture agent's file."""


def _write(data: bytes, directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-." else "-" for c in name)


def save(agents: run.AgentRun, directory: Path) -> Saved:
    """Writes every capture the agents sent (mode 0600), named by vantage point."""
    vantage = _safe(agents.replay.node)
    replays = tuple(_write(data, directory, f"{vantage}-replay-{index}.pcap")
                    for index, data in enumerate(agents.replay.captures))
    nodes = {node: _write(result.captures[0], directory, f"{_safe(node)}-capture.pcap")
             for node, result in agents.captures.items()}
    return Saved(directory, replays, nodes)


# --- stage 5: correlate -------------------------------------------------------------------


@dataclass(frozen=True)
class Sightings:
    """The replayed connection as the control plane and the endpoint's node saw it."""

    control_plane: correlate.Sighting
    worker: correlate.Sighting


def correlate_probe(agents: run.AgentRun, saved: Saved, frames: Frames, index: int,
                    replay: ReplayResult, node: str | None,
                    agent_plan: plan.AgentPlan) -> Sightings:
    """Finds probe INDEX's connection in the replay's capture and in NODE's.

    The replay's capture gives the connection's key; the vantage node's view is that
    capture, or the node's own capture agent's when the replay ran in a pod there (a
    konnectivity agent's), whose capture holds only the pod's side of the node's NAT.
    """
    replayed = agents.replay
    pcap = saved.replays[index]
    key = None
    if replayed.captures[index] and replay.local_address:
        key = correlate.flow_key(frames.get(pcap), replay.client_ports)
    local = node == agent_plan.vantage
    vantage = agent_plan.vantage
    if agent_plan.vantage_captured:
        cp = _sighting(agents.captures[vantage], saved.nodes.get(vantage), key, frames)
    else:  # on the replaying node a call to a hostNetwork endpoint is delivered over `lo`
        cp = _sighting(replayed, pcap, key, frames, ignore_loopback=not local)
    worker_result = None if local else agents.captures.get(node or "")
    if worker_result is not None:
        worker = _sighting(worker_result, saved.nodes.get(node or ""), key, frames)
    else:
        worker = cp if local else correlate.UNOBSERVED
    return Sightings(cp, worker)


def _sighting(result: AgentResult, pcap: Path | None, key: correlate.FlowKey | None,
              frames: Frames, ignore_loopback: bool = True) -> correlate.Sighting:
    if pcap is None or key is None or not any(result.captures):
        return correlate.Sighting()
    return correlate.sight(frames.get(pcap), result.interfaces, key,
                           ignore_loopback=ignore_loopback)


# --- stages 6 and 7: hops and verdict ---------------------------------------------------


def _node_ip(endpoint: EndpointInfo) -> str | None:
    pod = endpoint.pod_object or {}
    address = pod.get("status", {}).get("hostIP")
    return str(address) if address else None


def path_facts(path: CallPath, endpoint: EndpointInfo | None, vantage: str | None,
               managed: bool, proxy_mode: ProxyMode | None = None,
               tunnel: discovery.Konnectivity | None = None,
               agent_plan: plan.AgentPlan | None = None) -> hops.PathFacts:
    """What the hops need to know about PATH to ENDPOINT, replayed from VANTAGE."""
    return hops.PathFacts(
        apiserver_node=vantage, managed=managed,
        service=f"{path.service_namespace}/{path.service_name}" if not path.url else path.host,
        cluster_ip=path.cluster_ip, service_port=path.service_port,
        endpoint_ip=endpoint.ip if endpoint else None,
        endpoint_port=endpoint.port if endpoint else None,
        endpoint_node=endpoint.node if endpoint else None,
        pod=endpoint.pod if endpoint else None,
        pod_in_node_netns=bool(endpoint and (endpoint.host_network
                                             or endpoint.ip == _node_ip(endpoint))),
        service_exists=bool(path.url) or path.service is not None, proxy_mode=proxy_mode,
        tunnel=", ".join(str(agent) for agent in tunnel.ready)
        if tunnel and tunnel.in_use else None,
        tunnel_agent=str(agent_plan.tunnel_agent) if agent_plan and agent_plan.tunnel_agent
        else None,
        in_tunnel_agent=bool(agent_plan and agent_plan.in_tunnel_agent))


def _judged_with_neighbours(replay: ReplayResult, endpoint: EndpointInfo | None,
                            node_result: AgentResult | None) -> ReplayResult:
    """An early io-timeout whose endpoint's node still asks ARP/ND for the pod IP is a
    stale endpoint (the node agent's neighbour table says so before the kernel gives up)."""
    if endpoint is None or node_result is None or \
            replay.verdict.cls is not VerdictClass.IO_TIMEOUT:
        return replay
    state = node_result.neighbours.get(endpoint.ip)
    if state not in neighbours.UNRESOLVED:
        return replay
    return with_neighbour(replay, node_result.node, state)


def _judged_on_the_node(replay: ReplayResult, endpoint: EndpointInfo | None,
                        agent_plan: plan.AgentPlan, node_view: correlate.Sighting) -> ReplayResult:
    """A refused call to a Service without endpoints, made from a pod (a konnectivity
    agent's) whose node's capture saw an ICMP error answer its SYN: the node's kube-proxy
    REJECT, although, seen from the pod, the SYN left."""
    if endpoint is not None or not agent_plan.vantage_captured or not node_view.icmp or \
            replay.verdict.cls is not VerdictClass.CONNECTION_REFUSED:
        return replay
    return with_node_rejection(replay, agent_plan.vantage)


IPVS_INTERFACE = "kube-ipvs0"
"""The dummy link kube-proxy's IPVS mode holds every ClusterIP on."""


def _proxy_mode(proxy: discovery.KubeProxy, replayed: AgentResult) -> ProxyMode | None:
    """kube-proxy's mode on the replaying node: kube-ipvs0 there means IPVS, whatever the
    ConfigMap says; else the ConfigMap's mode."""
    if IPVS_INTERFACE in replayed.interfaces.values():
        return ProxyMode.IPVS
    return proxy.mode


def _endpoint_result(path: CallPath, agents: run.AgentRun, agent_plan: plan.AgentPlan,
                     index: int, saved: Saved, frames: Frames, findings: tuple[Finding, ...],
                     keep: bool, proxy: discovery.KubeProxy,
                     tunnel: discovery.Konnectivity | None = None) -> TraceResult:
    probe = agent_plan.probes[index]
    endpoint = probe.endpoint
    node = endpoint.node if endpoint else None
    replay = _judged_with_neighbours(wire.replay_from_json(agents.replay.replays[index]),
                                     endpoint, agents.captures.get(node or ""))
    seen = correlate_probe(agents, saved, frames, index, replay, node, agent_plan)       # 5
    replay = _judged_on_the_node(replay, endpoint, agent_plan, seen.control_plane)
    facts = path_facts(path, endpoint, agent_plan.vantage, agent_plan.managed,
                       _proxy_mode(proxy, agents.replay), tunnel, agent_plan)
    path_hops = hops.build_hops(facts, replay, seen.control_plane, seen.worker)          # 6
    blame = hops.culprit(path_hops, facts, replay)
    verdict = rules.refine(replay.verdict, blame.hop if blame else None,                 # 7
                           {finding.code for finding in findings})
    watched = [n for n in dict.fromkeys([agent_plan.vantage, node]) if n in agents.captures]
    captures = (str(saved.replays[index]), *(str(saved.nodes[n]) for n in watched)
                ) if keep else ()
    interfaces = {agents.replay.node: dict(agents.replay.interfaces)}
    interfaces.update({n: dict(agents.captures[n].interfaces) for n in watched})
    notes = dict.fromkeys([*agents.replay.warnings,
                           *(w for n in watched for w in agents.captures[n].warnings),
                           *hops.disagreements(path_hops)])
    return TraceResult(
        target=replay.target.url, configuration=path.configuration, webhook=path.name,
        endpoint=f"{endpoint.ip}:{endpoint.port}" if endpoint else None, verdict=verdict,
        culprit=blame, apiserver_error=replay.apiserver_error, hops=tuple(path_hops),
        findings=findings, captures=captures, replay=replay,
        pod=endpoint.pod if endpoint else None, node=node, interfaces=interfaces,
        notes=tuple(notes))


def _service_missing(path: CallPath, target: CallTarget,
                     findings: tuple[Finding, ...]) -> TraceResult:
    replay = service_missing(target, path.service_name or "", path.service_namespace or "")
    return _unsent(path, target, findings, replay)


def _unsent(path: CallPath, target: CallTarget, findings: tuple[Finding, ...],
            replay: ReplayResult, tunnel: discovery.Konnectivity | None = None) -> TraceResult:
    """The result of a call the apiserver never sends (its Service is missing, its caBundle
    unreadable, no konnectivity agent carries it): no agent runs."""
    facts = path_facts(path, None, None, False, tunnel=tunnel)
    path_hops = hops.build_hops(facts, replay, correlate.UNOBSERVED, correlate.UNOBSERVED)
    return TraceResult(target=target.url, configuration=path.configuration, webhook=path.name,
                       endpoint=None, verdict=replay.verdict,
                       culprit=hops.culprit(path_hops, facts, replay),
                       apiserver_error=replay.apiserver_error, hops=tuple(path_hops),
                       findings=findings, replay=replay)


# --- the whole pipeline ---------------------------------------------------------------------


def trace_path(kind: TargetKind, path: CallPath, objects: list[Obj], backend: AgentBackend,
               options: TraceOptions, progress: Progress, frames: Frames) -> list[TraceResult]:
    """Traces one resolved path; one result per probed endpoint, with the kind's remarks."""
    results = _trace_path(kind, path, objects, backend, options, progress, frames)
    return [kind.finish(path, dataclasses.replace(result, target_kind=kind.command))
            for result in results]


def _trace_path(kind: TargetKind, path: CallPath, objects: list[Obj], backend: AgentBackend,
                options: TraceOptions, progress: Progress, frames: Frames) -> list[TraceResult]:
    nodes: dict[str, NodeInfo] = discovery.nodes(objects)
    findings = tuple(checks.run_checks(path, nodes, objects))
    target = kind.target(path)
    if not path.url and path.service is None:
        return [_service_missing(path, target, findings)]
    problem = ca_bundle_problem(target.ca_bundle)
    if problem is not None:
        return [_unsent(path, target, findings, bad_ca_bundle(target, problem))]
    proxy, tunnel = discovery.kube_proxy(objects), discovery.konnectivity(objects)
    if tunnel.in_use and not tunnel.ready:
        found = f"{len(tunnel.agents)} konnectivity-agent pods, none ready"
        return [_unsent(path, target, findings, no_tunnel_agent(target, found), tunnel)]
    agent_plan = plan.plan(path, target, nodes, backend, options.timeouts,                # 2
                           options.apiserver_node, tunnel)
    Frames.warm_up()  # stage 4's libraries load while the agents run
    agents = run.run(backend, agent_plan, options.agent_start_timeout, progress)          # 3
    with tempfile.TemporaryDirectory(prefix="netprobe-trace-") as scratch:
        saved = save(agents, options.pcap_dir or Path(scratch))                          # 4
        return [_endpoint_result(path, agents, agent_plan, index, saved, frames, findings,
                                 keep=options.pcap_dir is not None, proxy=proxy, tunnel=tunnel)
                for index in range(len(agent_plan.probes))]


def trace(kind: TargetKind, objects: list[Obj], backend: AgentBackend, *,
          name: str | None = None, namespace: str | None = None,
          options: TraceOptions | None = None, progress: Progress | None = None,
          frames: Frames | None = None) -> list[TraceResult]:
    """Traces every call of KIND that NAME selects (all of them without NAME).

    FRAMES keeps the decoded captures for the caller's outputs (`--pcapng`).

    Raises:
        UsageError: nothing matches, or a node has no agent (e.g. not in --netns-map).
        AgentError: an agent failed.
    """
    options = options or TraceOptions()
    progress = progress or (lambda message: None)
    frames = frames if frames is not None else Frames()
    results: list[TraceResult] = []
    paths = discover(kind, objects, name, namespace)                                       # 1
    for path in paths:
        progress(f"tracing {path.configuration} {kind.noun} {path.name}")
        results += trace_path(kind, path, objects, backend, _path_options(options, path, paths),
                              progress, frames)
    return results


def _path_options(options: TraceOptions, path: CallPath, paths: list[CallPath]) -> TraceOptions:
    """OPTIONS for one of PATHS: with several, each keeps its captures in its own folder
    (`--pcap-dir DIR/CONFIGURATION--NAME`), so one call's files never overwrite another's."""
    if options.pcap_dir is None or len(paths) == 1:
        return options
    folder = _safe(f"{path.configuration}--{path.name}")
    return dataclasses.replace(options, pcap_dir=options.pcap_dir / folder)


def trace_webhooks(objects: list[Obj], backend: AgentBackend, *, name: str | None = None,
                   namespace: str | None = None, options: TraceOptions | None = None,
                   progress: Progress | None = None,
                   frames: Frames | None = None) -> list[TraceResult]:
    """`trace` of the admission and conversion webhooks. Raises: as `trace`."""
    return trace(WEBHOOKS, objects, backend, name=name, namespace=namespace, options=options,
                 progress=progress, frames=frames)


@dataclass(frozen=True)
class StaticReport:
    """The static checks of one path, without agents or packets."""

    configuration: str
    webhook: str
    target: str
    findings: tuple[Finding, ...]
    noun: str = "webhook"
    """What the call is (`webhook`, `APIService`), for people."""


def static_checks(objects: list[dict[str, Any]], *, name: str | None = None,
                  namespace: str | None = None,
                  kind: TargetKind = WEBHOOKS) -> list[StaticReport]:
    """The findings of every selected path (a support bundle, offline).

    Raises:
        UsageError: nothing matches.
    """
    nodes = discovery.nodes(objects)
    return [StaticReport(path.configuration, path.name, kind.target(path).url,
                         tuple(checks.run_checks(path, nodes, objects)), kind.noun)
            for path in discover(kind, objects, name, namespace)]
