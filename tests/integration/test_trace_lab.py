"""`netprobe trace webhook --snapshot <lab snapshot> --netns-map <lab map>` on every scenario.

Right class, culprit hop and node; the captures it keeps agree with the hops.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import story
from tests.integration.wire import run_cli, tshark_count, tshark_rows

pytestmark = pytest.mark.lab

POD = "cert-manager-webhook-6c9f8d7b5-x2x4q"
# scenario: (class, cause, culprit hop, culprit node)
EXPECTED = {
    "ok": ("ok", "ok", None, None),
    "hostnetwork-10260": ("ok", "ok", None, None),
    "gke-port-443": ("ok", "ok", None, None),
    "connection-refused": ("connection-refused", "nothing-listening", "webhook", "worker-1"),
    "no-endpoints": ("no-endpoints", "kube-proxy-reject", "service", "control-plane-1"),
    "io-timeout": ("io-timeout", "gke-private-firewall", "network", None),
    "networkpolicy-drop": ("io-timeout", "dropped-at-pod", "pod-veth", "worker-1"),
    "rst-middlebox": ("connection-refused", "rst-from-middlebox", "network", None),
    "no-route": ("no-route", "icmp-unreachable", "network", None),
    "stale-endpoint": ("no-route", "stale-endpoint", "pod-veth", "worker-1"),
    "tls-handshake-timeout": ("tls-handshake-timeout", "no-tls-server", "webhook", "worker-1"),
    "response-timeout": ("response-timeout", "webhook-hung", "webhook", "worker-1"),
    "http-error": ("http-error", "http-500", "webhook", "worker-1"),
    "x509-unknown-authority": ("x509-unknown-authority", "stale-ca-bundle", "webhook",
                               "worker-1"),
    "x509-expired": ("x509-expired", "expired-serving-cert", "webhook", "worker-1"),
    "empty-ca-bundle": ("x509-unknown-authority", "empty-ca-bundle", "webhook", "worker-1"),
    "fargate-kubelet": ("x509-hostname-mismatch", "fargate-kubelet", "webhook",
                        "fargate-ip-10-0-3-33.eu-west-1.compute.internal"),
    "eks-custom-cni": ("io-timeout", "eks-custom-cni", "network", None),
    "service-not-found": ("service-not-found", "service-not-found", "service", None),
}


@pytest.fixture
def lab_trace(request: pytest.FixtureRequest, tmp_path: Path):
    name = request.param
    run_cli("lab", "up", name)
    try:
        snapshot = tmp_path / "snapshot.yaml"
        snapshot.write_text(run_cli("lab", "snapshot").stdout)
        netns_map = run_cli("lab", "netns-map").stdout.strip()
        pcaps = tmp_path / "pcaps"
        done = run_cli("trace", "webhook", "validating/cert-manager-webhook", "--snapshot",
                       str(snapshot), "--netns-map", netns_map, "--pcap-dir", str(pcaps),
                       "-o", "json", check=False)
        assert done.returncode in (0, 1), done.stderr
        yield name, done.returncode, json.loads(done.stdout), pcaps
    finally:
        run_cli("lab", "down")


@pytest.mark.parametrize("lab_trace", sorted(EXPECTED), indirect=True)
def test_trace_names_the_culprit(lab_trace) -> None:
    name, code, report, pcaps = lab_trace
    cls, cause, hop, node = EXPECTED[name]
    results = report["results"]
    assert report["kind"] == "TraceReport" and results
    for result in results:
        verdict = result["verdict"]
        assert (verdict["class"], verdict["cause"]) == (cls, cause), (name, verdict)
        culprit = verdict["culprit"]
        if hop is None:
            assert culprit is None
        else:
            assert (culprit["hop"], culprit["node"]) == (hop, node), culprit
        assert [h["id"] for h in result["hops"]][:2] == ["apiserver", "service"]
        story.check(result)
    assert code == (0 if cls == "ok" else 1)


@pytest.mark.parametrize("lab_trace", ["networkpolicy-drop"], indirect=True)
def test_kept_captures_show_where_the_syn_stopped(lab_trace) -> None:
    _, _, report, pcaps = lab_trace
    result = report["results"][0]
    captures = {Path(p).name: Path(p) for p in result["captures"]}
    replay = next(p for n, p in captures.items() if "replay" in n)
    worker = next(p for n, p in captures.items() if n.startswith("worker-1"))
    syn = "tcp.flags.syn==1 && tcp.flags.ack==0"
    assert tshark_count(replay, syn) >= 2
    # On the worker: the SYNs crossed one interface (its NIC), never a second (the veth).
    interfaces = {row[0] for row in tshark_rows(worker, syn, ["sll.ifindex"])}
    assert len(interfaces) == 1
    pod_veth = next(h for h in result["hops"] if h["id"] == "pod-veth")
    assert pod_veth["status"] == "dropped"


@pytest.mark.parametrize("lab_trace", ["ok"], indirect=True)
def test_two_endpoints_are_probed_each(lab_trace) -> None:
    _, code, report, _ = lab_trace
    endpoints = {result["endpoint"] for result in report["results"]}
    assert endpoints == {"10.244.1.5:10250", "10.244.2.6:10250"}
    nodes = {result["node"] for result in report["results"]}
    assert nodes == {"worker-1", "worker-2"}
    for result in report["results"]:
        ingress = next(h for h in result["hops"] if h["id"] == "worker-ingress")
        assert ingress["status"] == "ok" and ingress["node"] == result["node"]
