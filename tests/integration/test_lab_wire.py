"""Every lab scenario fails (or works) on the wire as FAILURES.md says.

Checked from outside netprobe: a stdlib client in the control-plane
namespace reports the socket outcome, tcpdump captures, tshark counts.
"""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from tests.integration.wire import probe, run_cli, tcpdump, tshark_count, tshark_rows

pytestmark = pytest.mark.lab

HOST = "cert-manager-webhook.cert-manager.svc"
CLUSTER_IP = "10.96.20.99"
POD_IP = "10.244.1.5"
CA = Path("/run/netprobe-lab/pki/ca.crt")
TLS_10250 = ("tcp.port==10250,tls",)


@pytest.fixture
def lab() -> Iterator[object]:
    """Brings a scenario up with the real CLI; always takes it down."""
    def up(scenario: str) -> dict:
        run_cli("lab", "up", scenario)
        return yaml.safe_load(run_cli("lab", "snapshot").stdout)
    try:
        yield up
    finally:
        run_cli("lab", "down")


def _call(timeout: float = 1.5) -> dict:
    return probe("np-cp", HOST, CLUSTER_IP, 443, CA, timeout)


def _served_cert(port: int = 443, ip: str = CLUSTER_IP) -> x509.Certificate:
    """The certificate the server presents, fetched without verifying it."""
    code = ("import socket,ssl,sys;c=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT);"
            "c.check_hostname=False;c.verify_mode=ssl.CERT_NONE;"
            f"s=c.wrap_socket(socket.create_connection(('{ip}',{port}),timeout=2));"
            "sys.stdout.write(ssl.DER_cert_to_PEM_cert(s.getpeercert(True)))")
    pem = subprocess.run(["ip", "netns", "exec", "np-cp", sys.executable, "-c", code],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return x509.load_pem_x509_certificate(pem.encode())


def _items(snapshot: dict, kind: str) -> list[dict]:
    return [item for item in snapshot["items"] if item["kind"] == kind]


def test_ok_balances_between_both_endpoints(lab, tmp_path: Path) -> None:
    lab("ok")
    with tcpdump("np-cp", tmp_path / "cp.pcap", "npeth0") as pcap:
        replies = [_call() for _ in range(16)]
    assert all(reply["status"] == 200 and '"allowed": true' in reply["body"] for reply in replies)
    # DNAT happened on the node: the wire carries pod IPs, never the ClusterIP.
    destinations = {row[0] for row in tshark_rows(pcap, "tcp.flags.syn==1 && tcp.flags.ack==0",
                                                  ["ip.dst"])}
    assert destinations == {"10.244.1.5", "10.244.2.6"}  # 16 calls: 2**-15 to miss one
    assert tshark_count(pcap, f"ip.dst=={CLUSTER_IP}") == 0
    assert tshark_count(pcap, "tls.handshake.type==2", TLS_10250) == 16


@pytest.mark.parametrize("scenario", ["hostnetwork-10260", "gke-port-443"])
def test_documented_fixes_pass(lab, scenario: str) -> None:
    snapshot = lab(scenario)
    assert _call()["status"] == 200
    pod = _items(snapshot, "Pod")[0]
    if scenario == "hostnetwork-10260":
        assert pod["spec"]["hostNetwork"] is True
        assert pod["status"]["podIP"] == pod["status"]["hostIP"]
    assert pod["spec"]["containers"][0]["ports"][0]["containerPort"] in (443, 10260)


def test_connection_refused_rst_comes_from_the_pod(lab, tmp_path: Path) -> None:
    lab("connection-refused")
    with tcpdump("np-cp", tmp_path / "cp.pcap", "npeth0") as pcap:
        report = _call()
    assert report["errno"] == "ECONNREFUSED"
    rows = tshark_rows(pcap, "tcp.flags.reset==1", ["ip.src", "ip.ttl"])
    # The pod sends TTL 64; the worker and the VPC router each take one.
    assert rows == [[POD_IP, "62"]]


def test_rst_middlebox_forges_the_reset(lab, tmp_path: Path) -> None:
    lab("rst-middlebox")
    with tcpdump("np-cp", tmp_path / "cp.pcap", "npeth0") as cp, \
            tcpdump("np-w1", tmp_path / "w1.pcap", "npeth0") as w1:
        report = _call()
    assert report["errno"] == "ECONNREFUSED"
    # Same source address as the pod, but TTL 64: it was made one hop away.
    assert tshark_rows(cp, "tcp.flags.reset==1", ["ip.src", "ip.ttl"]) == [[POD_IP, "64"]]
    assert tshark_count(w1, "tcp") == 0


def test_no_endpoints_is_refused_without_a_packet(lab, tmp_path: Path) -> None:
    snapshot = lab("no-endpoints")
    with tcpdump("np-cp", tmp_path / "cp.pcap", "npeth0") as pcap:
        report = _call()
    assert report["errno"] == "ECONNREFUSED"
    assert tshark_count(pcap, "tcp or icmp") == 0
    endpoint = _items(snapshot, "EndpointSlice")[0]["endpoints"][0]
    assert endpoint["conditions"]["ready"] is False
    container = _items(snapshot, "Pod")[0]["spec"]["containers"][0]
    assert "--healthz-port=6081" in container["args"]
    assert container["readinessProbe"]["httpGet"]["port"] == 6080


@pytest.mark.parametrize("scenario,seen_on_worker", [
    ("io-timeout", False), ("eks-custom-cni", False), ("networkpolicy-drop", True)])
def test_syn_is_dropped_silently(lab, tmp_path: Path, scenario: str,
                                 seen_on_worker: bool) -> None:
    snapshot = lab(scenario)
    pod = _items(snapshot, "Pod")[0]
    with tcpdump("np-cp", tmp_path / "cp.pcap", "npeth0") as cp, \
            tcpdump("np-w1", tmp_path / "w1.pcap", "npeth0") as w1:
        report = _call(timeout=2.5)
    assert report["stage"] == "tcp" and report["error"] == "TimeoutError"
    assert tshark_count(cp, "tcp.flags.syn==1 && tcp.flags.ack==0") >= 3
    assert tshark_count(cp, "tcp.analysis.retransmission && tcp.flags.syn==1") >= 2
    assert tshark_count(cp, "tcp.flags.syn==1 && tcp.flags.ack==1") == 0
    assert tshark_count(cp, "icmp") == 0
    assert (tshark_count(w1, f"ip.dst=={pod['status']['podIP']}") > 0) is seen_on_worker


def test_networkpolicy_drop_never_reaches_the_pod(lab, tmp_path: Path) -> None:
    snapshot = lab("networkpolicy-drop")
    pod = _items(snapshot, "Pod")[0]["metadata"]["name"]
    with tcpdump(f"np-pod-{pod}", tmp_path / "pod.pcap", "npeth0") as pcap:
        _call(timeout=1.2)
    assert tshark_count(pcap, "tcp") == 0


def test_no_route_gets_icmp_host_unreachable_from_the_vpc(lab, tmp_path: Path) -> None:
    lab("no-route")
    with tcpdump("np-cp", tmp_path / "cp.pcap", "npeth0") as pcap:
        report = _call()
    assert report["errno"] == "EHOSTUNREACH"
    rows = tshark_rows(pcap, "icmp.type==3", ["ip.src", "icmp.code", "tcp.dstport"])
    rows = [[row[0].split(",")[0], *row[1:]] for row in rows]  # first ip.src: the reporter
    assert rows and rows[0] == ["10.0.0.1", "1", "10250"]


def test_tls_handshake_timeout_clienthello_acked_no_serverhello(lab, tmp_path: Path) -> None:
    lab("tls-handshake-timeout")
    with tcpdump("np-cp", tmp_path / "cp.pcap", "npeth0") as pcap:
        report = _call(timeout=1.5)
    assert report["stage"] == "tls" and report["error"] == "TimeoutError"
    hello = tshark_rows(pcap, "tls.handshake.type==1", ["tcp.nxtseq"], TLS_10250)
    assert len(hello) == 1
    acked = tshark_count(pcap, f"ip.src=={POD_IP} && tcp.ack>={hello[0][0]}", TLS_10250)
    assert acked >= 1
    assert tshark_count(pcap, "tls.handshake.type==2", TLS_10250) == 0


def test_response_timeout_after_a_complete_handshake(lab, tmp_path: Path) -> None:
    lab("response-timeout")
    with tcpdump("np-cp", tmp_path / "cp.pcap", "npeth0") as pcap:
        report = _call(timeout=1.5)
    assert report["stage"] == "http" and report["error"] == "TimeoutError"
    assert tshark_count(pcap, "tls.handshake.type==2", TLS_10250) == 1
    # The server did not close or reset: the client gave up first.
    closers = tshark_rows(pcap, "tcp.flags.fin==1 || tcp.flags.reset==1", ["ip.src"])
    assert closers[0] == ["10.0.0.10"]


def test_http_error_answers_500(lab) -> None:
    lab("http-error")
    report = _call()
    assert report["status"] == 500


def test_x509_unknown_authority_stale_ca_bundle(lab) -> None:
    snapshot = lab("x509-unknown-authority")
    report = _call()
    assert report["error"] == "SSLCertVerificationError"
    served = _served_cert()
    bundle = base64.b64decode(_items(snapshot, "ValidatingWebhookConfiguration")[0]
                              ["webhooks"][0]["clientConfig"]["caBundle"])
    secret_ca = base64.b64decode(_items(snapshot, "Secret")[0]["data"]["ca.crt"])
    stale = x509.load_pem_x509_certificate(bundle)
    current = x509.load_pem_x509_certificate(secret_ca)
    assert served.issuer == stale.subject  # same name, different key: a rotated CA
    served.verify_directly_issued_by(current)
    with pytest.raises(InvalidSignature):
        served.verify_directly_issued_by(stale)


def test_x509_expired(lab) -> None:
    lab("x509-expired")
    report = _call()
    assert report["verify_message"] == "certificate has expired"
    assert _served_cert().not_valid_after_utc < dt.datetime.now(dt.UTC)


def test_fargate_kubelet_answers_on_10250(lab) -> None:
    snapshot = lab("fargate-kubelet")
    assert _call()["error"] == "SSLCertVerificationError"
    pod = _items(snapshot, "Pod")[0]
    assert pod["status"]["podIP"] == pod["status"]["hostIP"]
    node = _items(snapshot, "Node")[0]
    assert node["metadata"]["labels"]["eks.amazonaws.com/compute-type"] == "fargate"
    names = _served_cert().extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert names.value.get_values_for_type(x509.DNSName) == [
        "ip-10-0-3-33.eu-west-1.compute.internal"]


def test_service_not_found_names_a_missing_service(lab) -> None:
    snapshot = lab("service-not-found")
    configured = _items(snapshot, "ValidatingWebhookConfiguration")[0]["webhooks"][0][
        "clientConfig"]["service"]["name"]
    assert configured not in {svc["metadata"]["name"] for svc in _items(snapshot, "Service")}
    assert _call()["status"] == 200  # the real Service works; the name is wrong
