"""The konnectivity tunnel: detected from its agent pods and kube-apiserver's egress selector
flag, named as a hop, and 'No agent available' said before any packet."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from netprobe.agents.fake import FakeBackend
from netprobe.agents.pod import PodBackend
from netprobe.agents.spec import AgentResult, AgentSpec
from netprobe.api import trace_webhooks
from netprobe.core import wire
from netprobe.core.model import CallKind, CallTarget, Failure, HopStatus
from netprobe.core.settings import Timeouts
from netprobe.core.verdicts import Cause, VerdictClass
from netprobe.replay import apiserver
from netprobe.trace import discovery, plan
from netprobe.trace.pipeline import TraceOptions, discover, static_checks
from netprobe.trace.targets.webhook import WEBHOOKS
from tests import story
from tests.unit.trace.test_pipeline_saved import CAPTURES, _objects, _recorded


def _agent(name: str, node: str, ready: bool) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "kube-system",
                         "labels": {"k8s-app": "konnectivity-agent"}},
            "spec": {"nodeName": node, "containers": [{"name": "konnectivity-agent"}]},
            "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}}


def _with_tunnel(items: list[dict], *agents: dict) -> list[dict]:
    items = copy.deepcopy(items)
    for item in items:
        if item["kind"] == "Pod" and item["metadata"]["name"].startswith("kube-apiserver"):
            item["spec"]["containers"][0]["command"].append(
                "--egress-selector-config-file=/etc/kubernetes/egress-selector-configuration.yaml")
    return [*items, *agents]


@pytest.fixture
def ok(tmp_path: Path) -> tuple[dict, list[dict]]:
    saved = json.loads((CAPTURES / "ok" / "trace.json").read_text())
    return saved, _objects("ok", saved, tmp_path / "pki")


def test_no_ready_agent_is_no_agent_available(ok) -> None:
    _, items = ok
    items = _with_tunnel(items, _agent("konnectivity-agent-7x2lq", "worker-1", False))
    tunnel = discovery.konnectivity(items)
    assert tunnel.configured and tunnel.agents and not tunnel.ready
    codes = {f.code for report in static_checks(items) for f in report.findings}
    assert "konnectivity-no-agent" in codes and "konnectivity-tunnel" not in codes


def test_without_konnectivity_nothing_is_said(ok) -> None:
    _, items = ok
    assert not discovery.konnectivity(items).in_use
    codes = {f.code for report in static_checks(items) for f in report.findings}
    assert not codes & {"konnectivity-no-agent", "konnectivity-tunnel"}


def test_the_tunnel_is_a_hop_netprobe_cannot_see(ok) -> None:
    saved, items = ok
    items = _with_tunnel(items, _agent("konnectivity-agent-7x2lq", "worker-1", True),
                         _agent("konnectivity-agent-p4m9c", "worker-2", True))
    # Recorded on the control plane: forced there, the tunnel hop says the replay did not
    # start where the tunnel's dial does.
    results = trace_webhooks(items, _recorded(CAPTURES / "ok", saved),
                             name="validating/cert-manager-webhook",
                             options=TraceOptions(apiserver_node="control-plane-1"))
    for result in results:
        ids = [hop.id for hop in result.hops]
        assert ids[:3] == ["apiserver", "tunnel", "service"]
        tunnel = result.hops[1]
        assert tunnel.status is HopStatus.UNOBSERVABLE
        assert "konnectivity-agent-7x2lq on worker-1" in tunnel.label
        assert "control-plane-1's host network" in tunnel.detail
        assert "konnectivity-tunnel" in {f.code for f in result.findings}
        story.check(wire.trace_to_json([result])["results"][0])


def _ready_agent(name: str, node: str, *, host_network: bool = False) -> dict:
    agent = _agent(name, node, True)
    agent["spec"]["hostNetwork"] = host_network
    agent["status"]["podIP"] = "10.0.2.12" if host_network else "10.244.2.20"
    return agent


def _planned(items: list[dict], backend: FakeBackend, forced: str | None = None):
    [path] = discover(WEBHOOKS, items, "validating/cert-manager-webhook", None)
    target = WEBHOOKS.target(path)
    return plan.plan(path, target, discovery.nodes(items), backend, Timeouts(), forced,
                     discovery.konnectivity(items))


def _refuse(spec: AgentSpec) -> AgentResult:
    raise AssertionError(f"no agent should start: {spec}")


def test_no_ready_agent_is_a_verdict_without_any_agent(ok) -> None:
    _, items = ok
    items = _with_tunnel(items, _agent("konnectivity-agent-7x2lq", "worker-1", False))
    backend = FakeBackend(_refuse)
    [result] = trace_webhooks(items, backend, name="validating/cert-manager-webhook")
    assert result.verdict.cls is VerdictClass.NO_TUNNEL_AGENT
    assert result.verdict.cause == Cause.KONNECTIVITY_NO_AGENT
    assert result.culprit is not None and result.culprit.hop == "tunnel"
    assert result.apiserver_error is not None
    assert result.apiserver_error.message.startswith(
        'failed calling webhook "webhook.cert-manager.io": failed to call webhook: Post "https://')
    assert result.apiserver_error.message.endswith(": No agent available")
    assert [h.status for h in result.hops[2:]] == [HopStatus.SKIPPED] * 6
    assert backend.started == []
    story.check(wire.trace_to_json([result])["results"][0])


def test_the_aggregator_says_no_agent_available_in_its_own_words() -> None:
    target = CallTarget("https://10.97.131.110:443/apis/metrics.k8s.io/v1beta1", "10.97.131.110",
                        443, "/apis/metrics.k8s.io/v1beta1", kind=CallKind.DISCOVERY)
    error = apiserver.predict(target, Failure.NO_TUNNEL_AGENT)
    # k0s issue 5809, kube-apiserver's log through konnectivity without an agent.
    assert error.message == ("failing or missing response from https://10.97.131.110:443/apis/"
                             'metrics.k8s.io/v1beta1: Get "https://10.97.131.110:443/apis/'
                             'metrics.k8s.io/v1beta1": No agent available')


def test_the_replay_runs_in_the_agents_pod_when_the_backend_can_enter_it(ok) -> None:
    _, items = ok
    items = _with_tunnel(items, _ready_agent("konnectivity-agent-7x2lq", "worker-1"),
                         _ready_agent("konnectivity-agent-p4m9c", "worker-2"))
    agent_plan = _planned(items, FakeBackend(_refuse))
    # The webhook has a pod on each worker: the first agent by name is taken.
    assert agent_plan.tunnel_agent is not None
    assert agent_plan.tunnel_agent.pod == "konnectivity-agent-7x2lq"
    assert agent_plan.replay.node == "kube-system/konnectivity-agent-7x2lq"
    assert agent_plan.vantage == "worker-1" and agent_plan.in_tunnel_agent
    # worker-1's own capture watches its NAT and its local webhook pod; worker-2 its pod.
    assert sorted(spec.node for spec in agent_plan.captures) == ["worker-1", "worker-2"]
    assert agent_plan.vantage_captured


def test_the_chosen_agent_is_on_a_node_without_an_endpoint() -> None:
    tunnel = discovery.konnectivity([_ready_agent("konnectivity-agent-7x2lq", "worker-1"),
                                     _ready_agent("konnectivity-agent-p4m9c", "worker-2"),
                                     _agent("konnectivity-agent-a0a0a", "worker-3", False)])
    chosen = tunnel.choose(["worker-1"])
    assert chosen is not None and chosen.pod == "konnectivity-agent-p4m9c"
    assert chosen.key == "kube-system/konnectivity-agent-p4m9c" and chosen.ip == "10.244.2.20"
    first = tunnel.choose(["worker-1", "worker-2"])
    assert first is not None and first.pod == "konnectivity-agent-7x2lq"  # never a not-ready one
    assert discovery.konnectivity([]).choose() is None


def test_a_host_network_agent_replays_on_its_node(ok) -> None:
    _, items = ok
    items = _with_tunnel(items, _ready_agent("konnectivity-agent-p4m9c", "worker-2",
                                             host_network=True))
    agent_plan = _planned(items, FakeBackend(_refuse))
    assert agent_plan.replay.node == "worker-2" and agent_plan.in_tunnel_agent
    assert [spec.node for spec in agent_plan.captures] == ["worker-1"]  # the other endpoint


def test_a_pod_the_backend_cannot_enter_falls_back_to_its_node(ok) -> None:
    _, items = ok
    items = _with_tunnel(items, _ready_agent("konnectivity-agent-p4m9c", "worker-2"))
    backend = FakeBackend(_refuse, nodes=["control-plane-1", "worker-1", "worker-2"])
    agent_plan = _planned(items, backend)
    assert agent_plan.replay.node == "worker-2" and not agent_plan.in_tunnel_agent
    assert not agent_plan.vantage_captured
    forced = _planned(items, backend, forced="control-plane-1")
    assert forced.replay.node == "control-plane-1" and forced.tunnel_agent is None


def test_agent_pods_cannot_be_entered_through_the_api() -> None:
    backend = PodBackend(api=None)  # type: ignore[arg-type]  # has_node asks nothing
    assert backend.has_node("worker-1")
    assert not backend.has_node("kube-system/konnectivity-agent-p4m9c")
