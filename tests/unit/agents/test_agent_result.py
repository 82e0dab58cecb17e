"""An agent's result fits through a pod log: a huge capture is cut, and the user is told."""

from __future__ import annotations

from pathlib import Path

import netprobe.analysis as analysis
from netprobe.agents import spec
from tests import craft


def _busy_capture(tmp_path: Path) -> bytes:
    packets: craft.Packets = []
    for k in range(400):  # a node where the real apiserver keeps calling the webhook
        craft.scenario_ok(packets, sport=10000 + k, t=craft.T0 + k * 0.01)
    craft.scenario_refused(packets, t=craft.T0 + 2)
    packets.sort(key=lambda p: p[0])
    return craft.write_pcap(tmp_path / "busy.pcap", packets).read_bytes()


def _result(capture: bytes) -> spec.AgentResult:
    return spec.AgentResult("run1", "worker-1", "capture", True, captures=[capture])


def _payload_chars(encoded: str) -> int:
    return int(encoded.splitlines()[0].split()[2])


def test_small_result_is_sent_whole(tmp_path: Path) -> None:
    capture = _busy_capture(tmp_path)
    got = spec.decode_result(spec.encode_result(_result(capture)))
    assert got.captures == [capture] and got.warnings == []


def test_huge_capture_is_cut_to_the_budget_with_a_warning(tmp_path: Path) -> None:
    capture = _busy_capture(tmp_path)
    budget = len(spec.encode_result(_result(capture))) // 3
    encoded = spec.encode_result(_result(capture), budget=budget)
    assert _payload_chars(encoded) <= budget
    got = spec.decode_result(encoded)
    assert len(got.captures[0]) < len(capture)
    assert len(got.warnings) == 1 and "worker-1" in got.warnings[0] and "cut to" in got.warnings[0]
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(got.captures[0])
    whole = tmp_path / "whole.pcap"
    whole.write_bytes(capture)
    # every SYN and the refusal survive: the trace can still find its flow and the RST
    for name in ("tcp_syn", "tcp_synack", "tcp_rst"):
        assert analysis.totals(cut)[name] == analysis.totals(whole)[name], name
    assert analysis.totals(cut)["packets"] < analysis.totals(whole)["packets"]


def test_notes_travel_in_the_trace_json_and_text() -> None:
    import dataclasses
    import io
    import json

    from netprobe.core import wire
    from netprobe.present import text as render

    root = Path(__file__).resolve().parents[3]
    data = json.loads((root / "captures" / "ok" / "trace.json").read_text())
    result = dataclasses.replace(wire.trace_from_json(data)[0], notes=("the capture was cut",))
    again = wire.trace_from_json(wire.trace_to_json([result]))[0]
    assert again.notes == ("the capture was cut",)
    out = io.StringIO()
    render.trace_text(again, out)
    assert "note: the capture was cut" in out.getvalue()
