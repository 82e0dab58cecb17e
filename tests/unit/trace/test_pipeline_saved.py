"""The whole trace pipeline over every saved lab trace, with recorded agents (no root).

Each `captures/SCENARIO/trace.json` was made by `trace webhook` on the lab. Here
the same API objects go through `trace_webhooks` with `FakeBackend`, whose
agents answer with what the lab's agents recorded (replay documents, pcaps,
interface names). The report must be the saved one, field for field, except
the capture paths: the pipeline's discovery, vantage choice, agent plan,
decoding, correlation, hops, culprit and refinement all run for real.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from netprobe.agents.fake import FakeBackend
from netprobe.agents.spec import AgentResult, AgentSpec
from netprobe.api import TraceOptions, trace_webhooks
from netprobe.core import wire
from netprobe.lab import objects, pki, scenarios
from netprobe.present import export
from netprobe.trace import saved as saved_trace
from netprobe.trace.frames import Frames
from tests import story

CAPTURES = Path(__file__).resolve().parents[3] / "captures"
SAVED = sorted(path.parent.name for path in CAPTURES.glob("*/trace.json"))


def _objects(scenario: str, report: dict[str, Any], directory: Path) -> list[dict[str, Any]]:
    plan = scenarios.get(scenario).build()
    pki.write_pki(plan, directory)
    started = min(phase["started"] for result in report["results"]
                  for phase in result["replay"]["phases"])
    return objects.build_list(plan, (directory / pki.CA_BUNDLE).read_bytes(),
                              (directory / pki.SIGNER_CA).read_bytes(), int(started))["items"]


def _recorded(folder: Path, report: dict[str, Any]) -> FakeBackend:
    results = report["results"]
    apiserver = results[0]["hops"][0]["node"]

    def pcap(name: str) -> bytes:
        return (folder / Path(name).name).read_bytes()

    def answer(spec: AgentSpec) -> AgentResult:
        if spec.role == "replay":
            assert len(spec.targets) == len(results)
            return AgentResult(spec.run_id, spec.node, "replay", ok=True,
                               replays=[r["replay"] for r in results],
                               captures=[pcap(r["captures"][0]) for r in results],
                               interfaces=results[0]["interfaces"].get(spec.node, {}))
        [result] = [r for r in results if r["node"] == spec.node]
        return AgentResult(spec.run_id, spec.node, "capture", ok=True,
                           captures=[pcap(result["captures"][1])],
                           interfaces=result["interfaces"][spec.node])

    nodes = {apiserver, *(r["node"] for r in results if r["node"])}
    return FakeBackend(answer, nodes=nodes)


def _comparable(report: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for result in report["results"]:
        replay = dict(result["replay"], capture=None)
        out.append(dict(result, captures=[Path(c).name for c in result["captures"]],
                        replay=replay))
    return out


@pytest.mark.parametrize("folder", SAVED)
def test_saved_trace_is_reproduced_by_the_pipeline(folder: str, tmp_path: Path) -> None:
    saved = json.loads((CAPTURES / folder / "trace.json").read_text())
    backend = _recorded(CAPTURES / folder, saved)
    frames = Frames()
    results = trace_webhooks(_objects(folder, saved, tmp_path / "pki"), backend,
                             name="validating/cert-manager-webhook",
                             options=TraceOptions(pcap_dir=tmp_path / "pcaps"), frames=frames)
    assert _comparable(wire.trace_to_json(results)) == _comparable(saved)
    for result in wire.trace_to_json(results)["results"]:
        story.check(result)
    files = {c for r in results for c in r.captures}
    assert frames.decoded == len(files)  # each capture decoded once, replay and worker alike
    if files:
        export.trace_pcapng(saved_trace.from_results(results), tmp_path / "all.pcapng", frames)
        assert frames.decoded == len(files)  # --pcapng read the same tables
    assert [spec.role for spec in backend.started][-1] == "replay"
    assert len(backend.cleaned) == 1


def test_each_traced_call_keeps_its_own_captures(tmp_path: Path) -> None:
    """Both configurations of the lab (validating and mutating) replayed into one --pcap-dir:
    each call's files go to a folder of its own, none overwrites another's."""
    saved = json.loads((CAPTURES / "ok" / "trace.json").read_text())
    results = trace_webhooks(_objects("ok", saved, tmp_path / "pki"),
                             _recorded(CAPTURES / "ok", saved),
                             options=TraceOptions(pcap_dir=tmp_path / "pcaps"))
    folders = {(r.configuration, r.webhook): {Path(c).parent for c in r.captures}
               for r in results}
    assert len(folders) == 2 and all(len(f) == 1 for f in folders.values())
    assert len({f for fs in folders.values() for f in fs}) == 2
    assert {f.name for fs in folders.values() for f in fs} == {
        "validating-cert-manager-webhook--webhook.cert-manager.io",
        "mutating-cert-manager-webhook--webhook.cert-manager.io"}
    assert all(Path(c).is_file() for r in results for c in r.captures)
    assert all(h.status.value == "ok" for r in results for h in r.hops)


def test_a_capture_written_again_is_decoded_again(tmp_path: Path) -> None:
    frames = Frames()
    path = tmp_path / "replay.pcap"
    first = CAPTURES / "ok" / "worker-1-capture.pcap"
    second = CAPTURES / "ok" / "control-plane-1-replay-0.pcap"
    assert first.stat().st_size != second.stat().st_size  # a rewrite the stat can tell
    path.write_bytes(first.read_bytes())
    before = len(frames.get(path))
    assert len(frames.get(path)) == before and frames.decoded == 1
    path.write_bytes(second.read_bytes())
    rewritten = frames.get(path)
    assert len(rewritten) == len(frames.get(second)) != before and frames.decoded == 3


def test_a_ca_bundle_that_is_not_pem_is_diagnosed_without_agents(tmp_path: Path) -> None:
    """The apiserver cannot build the webhook's client (client-go: "unable to load root
    certificates"), so it sends nothing: no agent runs, the culprit is the apiserver hop."""
    saved = json.loads((CAPTURES / "ok" / "trace.json").read_text())
    items = _objects("ok", saved, tmp_path / "pki")
    for item in items:
        if item["kind"].endswith("WebhookConfiguration"):
            item["webhooks"][0]["clientConfig"]["caBundle"] = "bm90IHBlbQo="  # "not pem"
    backend = _recorded(CAPTURES / "ok", saved)
    results = trace_webhooks(items, backend)
    assert backend.started == []
    assert {(r.verdict.cls.value, r.verdict.cause, r.culprit.hop if r.culprit else None)
            for r in results} == {("x509-unknown-authority", "invalid-ca-bundle", "apiserver")}
    assert all("could not get REST client: unable to load root certificates" in
               (r.apiserver_error.message if r.apiserver_error else "") for r in results)
    assert all("invalid-ca-bundle" in {f.code for f in r.findings} for r in results)


@pytest.mark.parametrize("state, verdict", [
    ("incomplete", ("no-route", "stale-endpoint", "pod-veth")),
    ("failed", ("no-route", "stale-endpoint", "pod-veth")),
    ("reachable", ("io-timeout", "dropped-at-pod", "pod-veth")),
    (None, ("io-timeout", "dropped-at-pod", "pod-veth"))])
def test_the_endpoint_nodes_neighbour_table_tells_a_stale_endpoint(tmp_path: Path, state,
                                                                   verdict) -> None:
    """The SYN reached the node and never the pod: a policy drop, unless the node still asks
    ARP for the pod IP (its agent's neighbour table), then the pod is gone and the apiserver
    gets `no route to host` once the node's kernel gives up."""
    saved = json.loads((CAPTURES / "networkpolicy-drop" / "trace.json").read_text())
    recorded = _recorded(CAPTURES / "networkpolicy-drop", saved)

    def answer(spec: AgentSpec) -> AgentResult:
        result = recorded.handler(spec)
        if spec.role == "capture":
            assert spec.watch == ["10.244.1.5"]
            return dataclasses.replace(result, neighbours={"10.244.1.5": state} if state else {})
        assert spec.timeouts["neighbour_give_up"] == 0  # the node agent watches ARP instead
        return result

    backend = FakeBackend(answer, nodes=recorded.nodes)
    (result,) = trace_webhooks(_objects("networkpolicy-drop", saved, tmp_path / "pki"), backend,
                               name="validating/cert-manager-webhook")
    assert (result.verdict.cls.value, result.verdict.cause,
            result.culprit.hop if result.culprit else None) == verdict
    message = result.apiserver_error.message if result.apiserver_error else ""
    assert message.endswith("connect: no route to host") == (verdict[0] == "no-route")


def test_a_gated_replay_starts_with_the_captures_and_is_released(tmp_path: Path) -> None:
    saved = json.loads((CAPTURES / "ok" / "trace.json").read_text())
    recorded = _recorded(CAPTURES / "ok", saved)
    backend = FakeBackend(recorded.handler, nodes=recorded.nodes, gates_replay=True)
    results = trace_webhooks(_objects("ok", saved, tmp_path / "pki"), backend,
                             name="validating/cert-manager-webhook")
    assert [r.verdict.cls.value for r in results] == ["ok", "ok"]
    roles = [(spec.role, spec.gated) for spec in backend.started]
    assert roles == [("capture", False), ("capture", False), ("replay", True)]
