"""`netprobe replay` against every lab scenario, from the control-plane namespace.

The verdict must be right, the apiserver's message must have the right
shape, and the capture netprobe wrote must show, to tshark, what the
verdict claims.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from tests.integration.wire import run_cli, tshark_count, tshark_rows

pytestmark = pytest.mark.lab

HOST = "cert-manager-webhook.cert-manager.svc"
URL = f"https://{HOST}/validate"
PREFIX = re.escape(f'failed calling webhook "webhook.cert-manager.io": failed to call webhook: '
                   f'Post "https://{HOST}:443/validate?timeout=10s": ')
DIAL = re.escape("dial tcp 10.96.20.99:443: ")
X509 = re.escape("tls: failed to verify certificate: x509: ")
TLS = ("tcp.port==10250,tls",)

# scenario: (class, cause, apiserver message after the prefix, early)
EXPECTED = {
    "ok": ("ok", "ok", None, False),
    "hostnetwork-10260": ("ok", "ok", None, False),
    "gke-port-443": ("ok", "ok", None, False),
    "connection-refused": ("connection-refused", "nothing-listening",
                           DIAL + "connect: connection refused", False),
    "rst-middlebox": ("connection-refused", "rst-from-middlebox",
                      DIAL + "connect: connection refused", False),
    "no-endpoints": ("no-endpoints", "kube-proxy-reject", DIAL + "connect: connection refused",
                     False),
    "io-timeout": ("io-timeout", "syn-dropped", "context deadline exceeded", True),
    "networkpolicy-drop": ("io-timeout", "syn-dropped", "context deadline exceeded", True),
    "eks-custom-cni": ("io-timeout", "syn-dropped", "context deadline exceeded", True),
    "no-route": ("no-route", "icmp-unreachable", DIAL + "connect: no route to host", False),
    # Without --endpoint the replay cannot know the address is a Service endpoint.
    "stale-endpoint": ("no-route", "neighbour-unreachable", DIAL + "connect: no route to host",
                       False),
    "tls-handshake-timeout": ("tls-handshake-timeout", "no-tls-server",
                              "context deadline exceeded", True),
    "response-timeout": ("response-timeout", "webhook-hung", "context deadline exceeded", True),
    "http-error": ("http-error", "http-500", None, False),
    "x509-unknown-authority": ("x509-unknown-authority", "stale-ca-bundle",
                               X509 + r"certificate signed by unknown authority \(possibly "
                               r"because of .* candidate authority certificate "
                               r'"cert-manager-webhook-ca"\)', False),
    "x509-expired": ("x509-expired", "expired-serving-cert",
                     X509 + "certificate has expired or is not yet valid: current time "
                     r"\S+Z is after \S+Z", False),
    "fargate-kubelet": ("x509-hostname-mismatch", "fargate-kubelet",
                        X509 + re.escape(f"certificate is valid for "
                                         f"ip-10-0-3-33.eu-west-1.compute.internal, not {HOST}"),
                        False),
}


def _replay(*extra: str, resolve: bool = True) -> tuple[int, dict]:
    args = ["replay", URL, "--ca-bundle", "/run/netprobe-lab/pki/ca.crt", "--netns", "np-cp",
            "--name", "webhook.cert-manager.io", "-o", "json", *extra]
    if resolve:
        args += ["--resolve", f"{HOST}:10.96.20.99"]
    done = run_cli(*args, check=False)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.fixture
def scenario(request: pytest.FixtureRequest):
    name = request.param
    run_cli("lab", "up", name)
    try:
        yield name
    finally:
        run_cli("lab", "down")


@pytest.mark.parametrize("scenario", sorted(EXPECTED), indirect=True)
def test_replay_verdict(scenario: str, tmp_path: Path) -> None:
    cls, cause, message, early = EXPECTED[scenario]
    capture = tmp_path / "replay.pcap"
    code, result = _replay("--capture", str(capture))
    verdict = result["verdict"]
    assert (verdict["class"], verdict["cause"]) == (cls, cause), verdict
    assert verdict["early"] is early
    assert code == (0 if cls == "ok" else 1)
    if message is None and cls == "ok":
        assert result["apiserver_error"] is None
    elif message is not None:
        assert re.fullmatch(PREFIX + message, result["apiserver_error"]), result["apiserver_error"]
    assert stat.S_IMODE(os.stat(capture).st_mode) == 0o600
    _check_capture(scenario, capture, result)


def _check_capture(scenario: str, pcap: Path, result: dict) -> None:
    """What tshark sees in netprobe's own capture agrees with the verdict."""
    syn = tshark_count(pcap, "tcp.flags.syn==1 && tcp.flags.ack==0 && !icmp && !(sll.ifindex==1)")
    counts = result["packets"]
    if scenario == "no-endpoints":
        assert syn == 0 and counts["left_host"] is False
        return
    assert syn == counts["syn"] >= 1
    rst = tshark_rows(pcap, "tcp.flags.reset==1 && ip.src!=10.0.0.10",
                      ["ip.src", "ip.ttl"])
    if scenario == "connection-refused":
        assert rst == [["10.244.1.5", "62"]]
    elif scenario == "rst-middlebox":
        assert rst == [["10.244.1.5", "64"]]
    elif result["verdict"]["class"] == "io-timeout":
        assert tshark_count(pcap, "tcp.analysis.retransmission && tcp.flags.syn==1") >= 2
        assert tshark_count(pcap, "tcp.flags.syn==1 && tcp.flags.ack==1") == 0
    elif scenario == "no-route":
        rows = tshark_rows(pcap, "icmp.type==3", ["icmp.code"])
        assert rows == [["1"]]
    elif scenario == "stale-endpoint":  # host unreachable only after retransmissions
        assert syn >= 2 and tshark_count(pcap, "tcp.flags.syn==1 && tcp.flags.ack==1") == 0
        assert {tuple(r) for r in tshark_rows(pcap, "icmp.type==3", ["icmp.code"])} == {("1",)}
    elif scenario == "tls-handshake-timeout":
        assert tshark_count(pcap, "tls.handshake.type==1", TLS) == 1
        assert tshark_count(pcap, "tls.handshake.type==2", TLS) == 0
    elif result["verdict"]["class"] not in ("connection-refused",):
        assert tshark_count(pcap, "tls.handshake.type==2", TLS) >= 1


@pytest.mark.parametrize("scenario", ["service-not-found"], indirect=True)
def test_unresolvable_name_without_the_service_resolver(scenario: str) -> None:
    code, result = _replay(resolve=False)
    assert code == 1
    assert (result["verdict"]["class"], result["verdict"]["phase"]) == ("dns-failure", "dns")
    assert result["phases"][1]["status"] == "skipped"


@pytest.mark.parametrize("scenario", ["io-timeout"], indirect=True)
def test_full_mode_waits_for_the_real_deadline(scenario: str) -> None:
    code, result = _replay("--full", "--timeout", "3")
    assert result["verdict"]["class"] == "io-timeout" and result["verdict"]["early"] is False
    tcp = result["phases"][1]
    assert tcp["status"] == "timeout" and tcp["duration"] >= 2.9
    assert result["apiserver_error"].endswith("?timeout=3s\": context deadline exceeded")


@pytest.mark.parametrize("scenario", ["tls-handshake-timeout"], indirect=True)
def test_full_mode_tls_handshake_timeout_wins_with_a_long_deadline(scenario: str) -> None:
    code, result = _replay("--full", "--timeout", "5", "--tls-timeout", "2")
    assert result["verdict"]["class"] == "tls-handshake-timeout"
    assert result["apiserver_error"].endswith('": net/http: TLS handshake timeout')


@pytest.mark.parametrize("scenario", ["ok"], indirect=True)
def test_text_output_has_the_phase_ladder(scenario: str) -> None:
    done = run_cli("replay", URL, "--resolve", f"{HOST}:10.96.20.99", "--ca-bundle",
                   "/run/netprobe-lab/pki/ca.crt", "--netns", "np-cp")
    for phase in ("DNS", "TCP", "TLS", "HTTP"):
        assert re.search(rf"^\s+{phase}\s+ok\s", done.stdout, re.M), done.stdout
    assert "verdict: ok" in done.stdout


def _tcpdumps() -> list[str]:
    found = subprocess.run(["pgrep", "-a", "tcpdump"], capture_output=True, text=True)
    return found.stdout.splitlines()


@pytest.mark.parametrize("scenario", ["ok"], indirect=True)
def test_bad_input_is_refused_cleanly(scenario: str, tmp_path: Path) -> None:
    before = set(os.listdir(tempfile_dir()))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    cases = [
        (["replay", "http://x/validate", "--ca-bundle", "/run/netprobe-lab/pki/ca.crt"],
         "webhooks are called over https://"),
        (["replay", URL, "--ca-bundle", str(tmp_path / "missing.pem")], "No such file"),
        (["replay", URL, "--ca-bundle", str(junk)], "reading CA bundle"),
        (["replay", URL, "--ca-bundle", "/run/netprobe-lab/pki/ca.crt", "--netns", "np-nope",
          "--resolve", f"{HOST}:10.96.20.99"], "no such namespace"),
    ]
    for args, needle in cases:
        done = run_cli(*args, check=False)
        assert done.returncode == 2, (args, done.stderr)
        assert needle in done.stderr and "Traceback" not in done.stderr
    assert _tcpdumps() == []
    assert set(os.listdir(tempfile_dir())) == before


def tempfile_dir() -> str:
    import tempfile
    return tempfile.gettempdir()


def test_capture_without_permission_is_a_clear_error() -> None:
    """As an ordinary user: capturing is refused clearly; --no-capture still diagnoses."""
    import encodings.idna  # noqa: F401 - imported before dropping
    import tempfile

    from click.testing import CliRunner

    import netprobe.api
    import netprobe.cli.replay  # noqa: F401
    from netprobe.cli import cli
    from netprobe.lab import pki

    shared = tempfile.TemporaryDirectory(prefix="netprobe-test-")
    os.chmod(shared.name, 0o755)
    bundle = Path(shared.name) / "ca.crt"
    bundle.write_bytes(pki.issue(pki.make_authority("ca"), "x", ["x"], []).cert)
    os.chmod(bundle, 0o644)
    url = "https://127.0.0.1:9/validate"  # loopback, nothing listens: refused at once
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.setgid(65534)
        os.setuid(65534)
        runner = CliRunner()
        denied = runner.invoke(cli, ["replay", url, "--ca-bundle", str(bundle)])
        plain = runner.invoke(cli, ["replay", url, "--ca-bundle", str(bundle), "--no-capture",
                                    "-o", "json"])
        os.write(write, json.dumps([denied.exit_code, denied.output, plain.exit_code,
                                    plain.output]).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        denied_code, denied_out, plain_code, plain_out = json.loads(pipe.read())
    os.waitpid(pid, 0)
    assert denied_code == 2 and "capturing packets: needs root" in denied_out
    assert "Traceback" not in denied_out
    assert plain_code == 1
    assert json.loads(plain_out)["verdict"]["class"] == "connection-refused"
    assert _tcpdumps() == []
    shared.cleanup()


def test_a_stale_endpoint_is_told_from_a_silent_drop() -> None:
    """The pod is gone, its EndpointSlice entry stays: the worker holds the SYN while it asks
    ARP for the address, gives up after 3 probes 1 s apart and answers ICMP host unreachable
    (Linux neigh defaults: mcast_solicit 3, retrans_time_ms 1000). Kernels >= 6.5 retransmit
    the first SYNs 1 s apart (tcp_syn_linear_timeouts), so an early io-timeout verdict on the
    retransmissions alone came before the kernel's own answer; it must not."""
    run_cli("lab", "up", "stale-endpoint")
    try:
        code, result = _replay("--endpoint", "10.244.1.5:10250")
    finally:
        run_cli("lab", "down")
    verdict = result["verdict"]
    assert code == 1 and (verdict["class"], verdict["cause"]) == ("no-route", "stale-endpoint")
    assert result["apiserver_error"].endswith("connect: no route to host")
    tcp = next(p for p in result["phases"] if p["phase"] == "tcp")
    neighbour_gave_up = 3.0  # the kernel's ARP failure, counted from the first SYN
    assert tcp["duration"] <= neighbour_gave_up + 0.5, tcp
    assert any(i["type"] == 3 and i["code"] == 1 for i in result["packets"]["icmp"])
