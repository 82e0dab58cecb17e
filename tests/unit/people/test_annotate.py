"""The diagnosis on the packets: annotated pcapng of the real lab captures in captures/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netprobe import analysis
from netprobe.analysis import pipeline
from netprobe.core import errors, wire
from netprobe.present import annotate, export
from netprobe.trace import saved
from tests.unit.people.tshark_fields import comment_field, needs_tshark, rows

ROOT = Path(__file__).resolve().parents[3]
CAPTURES = ROOT / "captures"
SCENARIOS = sorted(p.name for p in CAPTURES.iterdir() if (p / "trace.json").is_file())

# scenario -> (interface the packet was seen on, its kind, words its comment holds)
EXPECTED = {
    "connection-refused": [
        ("worker-1/npv-8d7b5-x2x4q", "RST", "nothing listens on port 10250"),
        ("control-plane-1/npeth0", "RST", "TTL 62, 64 when it left the pod"),
        ("worker-1/npeth0", "SYN", "a copy on another interface, not a retransmission")],
    "rst-middlebox": [
        ("control-plane-1/npeth0", "RST", "RST forged on the path: it claims to come from "
                                          "10.244.1.5 but has TTL 64"),
        ("control-plane-1/npeth0", "RST", "culprit: provider network")],
    "networkpolicy-drop": [
        ("worker-1/npeth0", "SYN", "SYN seen on worker-1/npeth0, never on the pod's veth"),
        ("control-plane-1/npeth0", "SYN", "SYN retransmission 2 of the replayed call")],
    "io-timeout": [
        ("control-plane/npeth0", "SYN", "SYN retransmission 2 of the replayed call, 1.02 s "
                                        "after the last: no SYN-ACK from 10.244.1.5"),
        ("control-plane/npeth0", "SYN", "never on gke-lab-default-pool-3f2a9c1e-k7xq")],
    "no-route": [("control-plane-1/npeth0", "ICMP 3/1", "ICMP host unreachable (3/1) from "
                                                        "10.0.0.1 quoting the replayed SYN")],
    "no-endpoints": [("control-plane-1/lo", "ICMP 3/3", "kube-proxy's REJECT on control-plane-1")],
    "tls-handshake-timeout": [
        ("control-plane-1/npeth0", "ClientHello", "never answered with a ServerHello"),
        ("control-plane-1/npeth0", "FIN", "the client gives up after 1.51 s")],
    "response-timeout": [
        ("control-plane-1/npeth0", "FIN", "without a response")],
    "x509-expired": [("control-plane-1/npeth0", "ServerHello", "certificate has expired")],
    "x509-unknown-authority": [
        ("control-plane-1/npeth0", "ServerHello", "certificate signed by unknown authority")],
    "empty-ca-bundle": [
        ("control-plane-1/npeth0", "ServerHello", "certificate signed by unknown authority")],
    "fargate-kubelet": [
        ("control-plane/npeth0", "ServerHello",
         "x509: certificate is valid for ip-10-0-3-33.eu-west-1.compute.internal")],
    "http-error": [("control-plane-1/npeth0", "data", "netprobe verdict: http-error")],
    "stale-endpoint": [
        ("worker-1/npeth0", "SYN", "a copy on another interface, not a retransmission"),
        ("control-plane-1/npeth0", "SYN", "netprobe verdict: no-route (stale-endpoint)")],
    # The endpoint on the replaying node: the replay's own capture is the pod's side too.
    "pod-on-control-plane": [
        ("control-plane-1/npv-8d7b5-x2x4q", "SYN", "a copy on another interface"),
        ("control-plane-1/npv-8d7b5-x2x4q", "SYN-ACK", "the connection is accepted")],
    "hostnetwork-control-plane": [
        ("control-plane-1/lo", "SYN", "to 10.0.0.10:10260, the Service 10.96.20.99:443 after "
                                      "kube-proxy's DNAT")],
    "ok": [("worker-1/npv-8d7b5-x2x4q", "SYN-ACK", "the connection is accepted"),
           ("worker-2/npv-8d7b5-p8wzn", "SYN-ACK", "the connection is accepted")],
}


def _comments(scenario: str) -> list[tuple[str, str, list[str]]]:
    """(where, kind, comments) of every commented packet of a saved trace."""
    out = []
    for trace in saved.load_trace(CAPTURES / scenario):
        table = saved.read_trace(trace)
        notes = annotate.trace_comments(trace.result, table)
        for (capture, row), texts in notes.items():
            hit = table[(table["capture"] == capture) & (table["row"] == row)].iloc[0]
            out.append((hit["where"], hit["kind"], texts))
    return out


def test_every_scenario_has_expectations() -> None:
    assert sorted(EXPECTED) == SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_comments_say_what_the_packets_show(scenario: str) -> None:
    found = _comments(scenario)
    for where, kind, words in EXPECTED[scenario]:
        assert any(w == where and k.startswith(kind) and any(words in t for t in texts)
                   for w, k, texts in found), (where, kind, words, found)
    verdicts = [t for _, _, texts in found for t in texts if t.startswith("netprobe verdict:")]
    results = saved.load_trace(CAPTURES / scenario)
    assert len(verdicts) == len(results)  # the verdict once per traced endpoint
    for _, _, texts in found:  # a copy on another interface is never called a retransmission
        assert not any("copy" in t and "retransmission " in t.split("(")[0] for t in texts)


@needs_tshark
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_wireshark_reads_every_packet_and_the_comments(tmp_path: Path, scenario: str) -> None:
    traces = saved.load_trace(CAPTURES / scenario)
    out = tmp_path / f"{scenario}.pcapng"
    written = export.trace_pcapng(traces, out)
    inputs = {c.path for t in traces for c in t.captures}
    got = rows(out, "frame.interface_name", comment_field())
    assert len(got) == written.packets == sum(len(analysis.read(p)) for p in inputs)
    comments = [c for _, c in got if c]
    assert len(comments) > 0 and sum(c.count("netprobe verdict:") for c in comments) == len(traces)
    assert {name for name, _ in got} <= set(written.interfaces)


@needs_tshark
def test_section_comment_holds_the_diagnosis(tmp_path: Path) -> None:
    import subprocess

    out = tmp_path / "x.pcapng"
    export.trace_pcapng(saved.load_trace(CAPTURES / "rst-middlebox"), out)
    info = subprocess.run(["capinfos", str(out)], capture_output=True, text=True, check=False)
    if info.returncode != 0:
        pytest.skip("capinfos is not installed")
    assert "verdict: connection-refused (rst-from-middlebox)" in info.stdout
    assert "culprit: provider network" in info.stdout


def test_interface_names_come_from_the_agents() -> None:
    [trace] = saved.load_trace(CAPTURES / "connection-refused")
    table = saved.read_trace(trace)
    lanes = table.drop_duplicates("where").sort_values("lane")
    assert lanes["where"].tolist() == ["control-plane-1/npeth0", "worker-1/npeth0",
                                       "worker-1/npbr0", "worker-1/npv-8d7b5-x2x4q"]
    assert lanes["hop"].tolist() == ["cp-egress", "worker-ingress", "", "pod-veth"]
    assert table["conn"].all() and table["instance"].nunique() == 2


def test_interface_names_from_the_json_win(tmp_path: Path) -> None:
    source = CAPTURES / "connection-refused"
    data = json.loads((source / "trace.json").read_text())
    data["results"][0]["interfaces"] = {"worker-1": {"4": "cni0"}}
    for pcap in source.glob("*.pcap"):
        (tmp_path / pcap.name).write_bytes(pcap.read_bytes())
    (tmp_path / "trace.json").write_text(json.dumps(data))
    [trace] = saved.load_trace(tmp_path / "trace.json")
    assert "worker-1/cni0" in set(saved.read_trace(trace)["where"])


def test_load_trace_resolves_and_rejects(tmp_path: Path) -> None:
    traces = saved.load_trace(CAPTURES / "ok")
    assert [[(c.node, c.role, c.path.name) for c in t.captures] for t in traces] == [
        [("control-plane-1", "replay", "control-plane-1-replay-0.pcap"),
         ("worker-1", "capture", "worker-1-capture.pcap")],
        [("control-plane-1", "replay", "control-plane-1-replay-1.pcap"),
         ("worker-2", "capture", "worker-2-capture.pcap")]]
    assert all(c.path.is_absolute() or c.path.exists() for t in traces for c in t.captures)
    with pytest.raises(errors.UsageError, match="No such file"):
        saved.load_trace(tmp_path / "nothing")
    (tmp_path / "trace.json").write_text("{not json")
    with pytest.raises(errors.UsageError, match="reading .*trace.json"):
        saved.load_trace(tmp_path)
    (tmp_path / "trace.json").write_text((CAPTURES / "ok" / "trace.json").read_text())
    with pytest.raises(errors.UsageError, match="capture control-plane-1-replay-0.pcap is missing"):
        saved.load_trace(tmp_path)
    (tmp_path / "trace.json").write_text(json.dumps({"schema": "x", "kind": "TraceReport"}))
    with pytest.raises(errors.UsageError, match="not a netprobe.io/v1 TraceReport"):
        saved.load_trace(tmp_path)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_trace_json_round_trips(scenario: str) -> None:
    data = json.loads((CAPTURES / scenario / "trace.json").read_text())
    assert wire.trace_to_json(wire.trace_from_json(data)) == data


def test_flow_comments_for_analyze() -> None:
    timeout = pipeline.analyse(CAPTURES / "io-timeout" / "control-plane-replay-0.pcap")
    notes = annotate.flow_comments(timeout.packets, timeout.flows)
    assert notes == {0: ["netprobe: stream 0: io-timeout: SYN retransmitted, never answered"],
                     1: ["SYN retransmission 1: no SYN-ACK yet"],
                     2: ["SYN retransmission 2: no SYN-ACK yet"]}
    refused = pipeline.analyse(CAPTURES / "connection-refused" / "worker-1-capture.pcap")
    notes = annotate.flow_comments(refused.packets, refused.flows)
    assert "a copy of the same packet, not a retransmission" in notes[1][0]
    assert notes[3] == ["RST from the server side, TTL 64"]
    route = pipeline.analyse(CAPTURES / "no-route" / "control-plane-1-replay-0.pcap")
    assert annotate.flow_comments(route.packets, route.flows)[1] == ["ICMP 3/1 quoting stream 0: "
                                                                     "no-route"]
    ok = pipeline.analyse(CAPTURES / "ok" / "control-plane-1-replay-0.pcap")
    assert annotate.flow_comments(ok.packets, ok.flows) == {}
