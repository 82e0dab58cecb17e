"""Stage 2 of a trace: which agents run where, and what each one does.

Owns: the probes of one resolved path (one per ready endpoint, each called
directly the way kube-proxy would have sent it, or one to the ClusterIP),
the vantage point of the replay (the control-plane node, a managed control
plane the backend can stand in for, or a worker's host network), and the
agent specs: one replay agent, one capture agent per other endpoint node.
Through a konnectivity tunnel the call starts in an agent's network namespace:
the replay runs there when the backend can enter it (a `NS/POD` in the netns
map), else in the agent's node's host network; a capture agent then watches
that node too when the replay runs in the agent's pod.
Must not: start anything (`run.py`) or know which backend runs agents
beyond asking it which nodes it has.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from netprobe.agents.backend import MANAGED_CONTROL_PLANE, AgentBackend
from netprobe.agents.spec import AgentSpec
from netprobe.capture import filters
from netprobe.core import errors
from netprobe.core.model import CallTarget
from netprobe.core.packets import join_address
from netprobe.core.settings import Timeouts
from netprobe.trace.discovery import (
    CallPath,
    EndpointInfo,
    Konnectivity,
    NodeInfo,
    TunnelAgent,
)

CAPTURE_SLACK = 4.0
"""Seconds a capture agent outlives the call it watches (late resets and ICMP errors)."""
EARLY_VERDICT_WINDOW = 6.0
"""Seconds a replay takes at most to reach an early verdict (without --full)."""


@dataclass(frozen=True)
class Probe:
    """One call to make: to one endpoint directly, or to the ClusterIP (or URL)."""

    endpoint: EndpointInfo | None
    target: CallTarget


@dataclass(frozen=True)
class AgentPlan:
    """Every agent of one traced path."""

    run_id: str
    vantage: str
    """The node the call is replayed from."""
    managed: bool
    """True when the vantage stands in for a control plane netprobe cannot enter."""
    probes: tuple[Probe, ...]
    replay: AgentSpec
    captures: tuple[AgentSpec, ...]
    tunnel_agent: TunnelAgent | None = None
    """The konnectivity agent whose dial the replay stands for."""
    in_tunnel_agent: bool = False
    """The replay runs in that agent's own network namespace."""

    @property
    def vantage_captured(self) -> bool:
        """A capture agent watches the vantage node (the replay runs in a pod there)."""
        return any(spec.node == self.vantage for spec in self.captures)


def probes(path: CallPath, base: CallTarget) -> list[Probe]:
    """The calls to make for PATH, whose apiserver request is BASE."""
    if path.url:  # a kubelet's address is its node's: that node's agent captures
        return [Probe(path.endpoints[0] if path.endpoints else None, base)]
    ready = [e for e in path.endpoints if e.ready and e.port]
    if len(ready) <= 1:  # through the ClusterIP: the node's NAT picks among the ready ones
        endpoints = tuple(join_address(e.ip, e.port) for e in ready)
        return [Probe(ready[0] if ready else None,
                      dataclasses.replace(base, endpoints=endpoints))]
    # Several endpoints: call each directly, the way kube-proxy would have sent it.
    return [Probe(e, dataclasses.replace(base, resolve_ip=e.ip, connect_port=e.port,
                                         apiserver_ip=path.cluster_ip,
                                         endpoints=(join_address(e.ip, e.port),))) for e in ready]



def vantage(path: CallPath, nodes: dict[str, NodeInfo], backend: AgentBackend,
            forced: str | None) -> tuple[str, bool]:
    """(node to replay from, whether it stands in for a managed control plane).

    Raises:
        UsageError: the cluster lists no node to replay from.
    """
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


def tunnel_vantage(tunnel: Konnectivity | None, path: CallPath, backend: AgentBackend,
                   forced: str | None) -> tuple[TunnelAgent | None, str | None, bool]:
    """(agent, where its replay runs, whether that is the agent's own namespace): the
    agent's pod if the backend can enter it, its node's host network if the agent runs
    there (hostNetwork) or the pod cannot be entered; (None, None, False) without a tunnel
    or with --apiserver-node."""
    agent = tunnel.choose(e.node for e in path.endpoints) if tunnel and not forced else None
    if agent is None or agent.node is None:
        return None, None, False
    if agent.host_network and backend.has_node(agent.node):
        return agent, agent.node, True
    if backend.has_node(agent.key):
        return agent, agent.key, True
    if backend.has_node(agent.node):
        return agent, agent.node, False
    return None, None, False


def _service_address(path: CallPath) -> list[tuple[str, int]]:
    """The ClusterIP:port a pod's call is sent to before its node's NAT (what the node's
    capture watches when there is no endpoint to watch)."""
    return [(path.cluster_ip, path.service_port)] if path.cluster_ip else []


def target_json(target: CallTarget) -> dict[str, Any]:
    """TARGET as an agent spec carries it (caBundle as PEM text)."""
    fields = dataclasses.asdict(target)
    fields["ca_bundle"] = target.ca_bundle.decode("ascii", "replace")
    fields["kind"] = target.kind.value
    return fields


def plan(path: CallPath, base: CallTarget, nodes: dict[str, NodeInfo], backend: AgentBackend,
         timeouts: Timeouts, forced_vantage: str | None = None,
         tunnel: Konnectivity | None = None) -> AgentPlan:
    """The agents that trace PATH. Raises: as `vantage`."""
    calls = probes(path, base)
    agent, replay_at, in_agent = tunnel_vantage(tunnel, path, backend, forced_vantage)
    if agent is not None and agent.node is not None and replay_at is not None:
        node, managed = agent.node, False
    else:
        node, managed = vantage(path, nodes, backend, forced_vantage)
        replay_at = node
    run_id = uuid.uuid4().hex[:10]
    in_pod = replay_at != node  # then the node's own capture watches its NAT and its pods
    endpoint_nodes: dict[str, list[EndpointInfo]] = {}
    if in_pod:
        endpoint_nodes[node] = [c.endpoint for c in calls if c.endpoint]
    watched_service = _service_address(path) if in_pod and not endpoint_nodes[node] else []
    for call in calls:
        if call.endpoint and call.endpoint.node and call.endpoint.node != node:
            endpoint_nodes.setdefault(call.endpoint.node, []).append(call.endpoint)
    timers = dataclasses.asdict(timeouts)
    if calls and all(c.endpoint and c.endpoint.node in endpoint_nodes for c in calls):
        # Each endpoint's node agent reports its ARP/ND state: the replay need not wait
        # for a last hop to give up before calling a silent drop.
        timers.update(neighbour_give_up=0.0, neighbour_grace=0.0)
    duration = (path.timeout_seconds if timeouts.full else EARLY_VERDICT_WINDOW) + CAPTURE_SLACK
    replay = AgentSpec(run_id, replay_at, "replay",
                       targets=[target_json(c.target) for c in calls], timeouts=timers)
    captures = tuple(
        AgentSpec(run_id, worker, "capture",
                  bpf=filters.endpoints_filter([(e.ip, e.port) for e in endpoints]
                                               or watched_service),
                  watch=sorted({e.ip for e in endpoints}),
                  timeouts=timers, duration=duration)
        for worker, endpoints in endpoint_nodes.items())
    return AgentPlan(run_id, node, managed, tuple(calls), replay, captures, agent, in_agent)
