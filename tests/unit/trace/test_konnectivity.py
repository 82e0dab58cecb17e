"""The konnectivity tunnel: detected from its agent pods and kube-apiserver's egress selector
flag, named as a hop, and 'No agent available' said before any packet."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from netprobe.api import trace_webhooks
from netprobe.core.model import HopStatus
from netprobe.trace import discovery
from netprobe.trace.pipeline import static_checks
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
    results = trace_webhooks(items, _recorded(CAPTURES / "ok", saved),
                             name="validating/cert-manager-webhook")
    from netprobe.core import wire

    for result in results:
        ids = [hop.id for hop in result.hops]
        assert ids[:3] == ["apiserver", "tunnel", "service"]
        tunnel = result.hops[1]
        assert tunnel.status is HopStatus.UNOBSERVABLE
        assert "konnectivity-agent-7x2lq on worker-1" in tunnel.label
        assert "konnectivity-tunnel" in {f.code for f in result.findings}
        story.check(wire.trace_to_json([result])["results"][0])
