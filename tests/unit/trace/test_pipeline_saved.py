"""The whole trace pipeline over every saved lab trace, with recorded agents (no root).

Each `captures/SCENARIO/trace.json` was made by `trace webhook` on the lab. Here
the same API objects go through `trace_webhooks` with `FakeBackend`, whose
agents answer with what the lab's agents recorded (replay documents, pcaps,
interface names). The report must be the saved one, field for field, except
the capture paths: the pipeline's discovery, vantage choice, agent plan,
decoding, correlation, hops, culprit and refinement all run for real.
"""

from __future__ import annotations

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
    files = {c for r in results for c in r.captures}
    assert frames.decoded == len(files)  # each capture decoded once, replay and worker alike
    if files:
        export.trace_pcapng(saved_trace.from_results(results), tmp_path / "all.pcapng", frames)
        assert frames.decoded == len(files)  # --pcapng read the same tables
    assert [spec.role for spec in backend.started][-1] == "replay"
    assert len(backend.cleaned) == 1
