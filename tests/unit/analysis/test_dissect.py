"""`netprobe analyze --dissect` and `netprobe.analysis.dissect`: Wireshark's view of the
suspicious flows, on captures crafted with scapy and dissected by the real tshark."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scapy.contrib.http2 import (
    H2Frame,
    H2GoAwayFrame,
    H2HeadersFrame,
    H2ResetFrame,
    H2SettingsFrame,
    HPackIndexedHdr,
)
from scapy.layers.inet import IP, UDP
from scapy.layers.tls.all import TLS, TLSAlert

from netprobe import analysis
from netprobe.analysis import wireshark
from netprobe.core import errors
from tests import craft

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(not Path("/usr/bin/tshark").exists(), reason="needs tshark")


def _alert(level: int, description: int) -> bytes:
    return bytes(TLS(msg=[TLSAlert(level=level, descr=description)]))


def _untrusted_server(out: craft.Packets, t: float, sport: int, v6: bool = False) -> None:
    """The apiserver does not trust the webhook's certificate: unknown_ca after the
    ServerHello, from the client (frames 1-7 when written first)."""
    c = craft.Conn(out, sport, v6=v6)
    t = c.handshake(t)
    c.send(t + 0.001, True, "PA", craft.CLIENT_HELLO)
    c.send(t + 0.002, False, "PA", craft.SERVER_HELLO)
    c.send(t + 0.003, True, "PA", _alert(2, 48))
    c.send(t + 0.004, True, "FA")


def _refusing_handshake(out: craft.Packets, t: float, sport: int, isn: int = 1000) -> None:
    """A kubelet-like server on 10250 refuses the handshake, the client resets."""
    c = craft.Conn(out, sport, dport=10250, isn=isn)
    t = c.handshake(t)
    c.send(t + 0.001, True, "PA", craft.CLIENT_HELLO)
    c.send(t + 0.002, False, "PA", _alert(2, 40))
    c.send(t + 0.003, False, "FA")
    c.send(t + 0.004, True, "RA")


def _plain_http_server(out: craft.Packets, t: float, sport: int) -> None:
    """Something speaking plain HTTP owns the webhook's port: 400 to the ClientHello."""
    c = craft.Conn(out, sport)
    t = c.handshake(t)
    c.send(t + 0.001, True, "PA", craft.CLIENT_HELLO)
    c.send(t + 0.002, False, "PA", b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                                   b"Content-Length: 0\r\n\r\n")
    c.send(t + 0.003, False, "FA")


def _h2c_goaway(out: craft.Packets, t: float, sport: int) -> None:
    """Cleartext HTTP/2 (prior knowledge), captured from just after the handshake: the
    server refuses stream 1 and sends GOAWAY PROTOCOL_ERROR."""
    c = craft.Conn(out, sport, dport=8080)
    c.cseq += 1
    c.sseq += 1
    c.send(t, True, "A")
    headers = H2Frame(stream_id=1, flags={"EH"}) / H2HeadersFrame(
        hdrs=[HPackIndexedHdr(index=3), HPackIndexedHdr(index=6), HPackIndexedHdr(index=4)])
    c.send(t + 0.001, True, "PA", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
           + bytes(H2Frame() / H2SettingsFrame()) + bytes(headers))
    c.send(t + 0.002, False, "PA", bytes(H2Frame() / H2SettingsFrame())
           + bytes(H2Frame(stream_id=1) / H2ResetFrame(error=7))
           + bytes(H2Frame(stream_id=0) / H2GoAwayFrame(last_stream_id=1, error=1)))
    c.send(t + 0.003, False, "FA")


def _write(tmp_path: Path, *scenarios, name: str = "c.pcap") -> Path:  # type: ignore[no-untyped-def]
    out: craft.Packets = []
    for i, scenario in enumerate(scenarios):
        scenario(out, sport=43000 + i, t=craft.T0 + i)
    out.sort(key=lambda p: p[0])
    return craft.write_pcap(tmp_path / name, out)


def _dissect(path: Path, **options: float) -> analysis.Dissection:
    return analysis.dissect(path, analysis.flows(analysis.read(path)), **options)  # type: ignore[arg-type]


def _analyze(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netprobe", "analyze", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_tls_alerts_are_named_by_wireshark_with_their_sender_and_frame(tmp_path: Path) -> None:
    path = _write(tmp_path, _untrusted_server, _refusing_handshake, craft.scenario_ok)
    result = _dissect(path)
    assert result.error == "" and not result.timed_out
    assert set(result.views) == {0, 1}  # the ok flow (stream 2) is not dissected
    assert result.views[0].tls_alerts == (wireshark.TlsAlert(6, "client", "Fatal", "Unknown CA",
                                                             48),)
    assert result.views[1].tls_alerts == (wireshark.TlsAlert(12, "server", "Fatal",
                                                             "Handshake Failure", 40),)
    rst = [e for e in result.views[1].expert if e.message == "Connection reset (RST)"]
    assert [(e.frame, e.severity, e.group, e.protocol) for e in rst] == [
        (14, "Warning", "Sequence", "tcp")]


def test_http2_rst_stream_and_goaway_and_plain_http_answers(tmp_path: Path) -> None:
    path = _write(tmp_path, _h2c_goaway, _plain_http_server)
    views = _dissect(path).views
    h2 = [(m.frame_type, m.stream_id, m.error, m.error_code, m.side) for m in views[0].http]
    assert h2 == [("RST_STREAM", 1, "REFUSED_STREAM", 7, "server"),
                  ("GOAWAY", 0, "PROTOCOL_ERROR", 1, "server")]
    assert [(m.version, m.status, m.phrase) for m in views[1].http] == [
        ("HTTP/1.1", 400, "Bad Request")]
    assert any(e.severity == "Warning" and e.group == "Security" and "Unencrypted HTTP"
               in e.message for e in views[1].expert)


def test_ipv6_and_a_reused_port_find_their_own_flow(tmp_path: Path) -> None:
    """The refused first use of a client port gets the RST, the second its alert."""
    out: craft.Packets = []
    refused = craft.Conn(out, 43100, dport=10250)
    refused.send(craft.T0, True, "S")
    refused.send(craft.T0 + 0.0005, False, "RA")
    _refusing_handshake(out, craft.T0 + 1, 43100, isn=900_000)
    _untrusted_server(out, craft.T0 + 2, 43101, v6=True)
    path = craft.write_pcap(tmp_path / "reuse.pcap", out)
    flow_table = analysis.flows(analysis.read(path))
    assert list(flow_table["stream"]) == [0, 1, 2]
    views = analysis.dissect(path, flow_table).views
    assert views[0].tls_alerts == () and views[1].tls_alerts[0].code == 40
    assert [(a.side, a.description) for a in views[2].tls_alerts] == [("client", "Unknown CA")]
    assert "ipv6.addr==fd00::1" in wireshark.display_filter(
        {k: flow_table[k].to_numpy() for k in flow_table.columns})


def test_cli_text_and_json_say_what_was_dissected_and_what_the_limit_left_out(
        tmp_path: Path) -> None:
    path = _write(tmp_path, _untrusted_server, _refusing_handshake, _plain_http_server,
                  craft.scenario_ok)
    done = _analyze("--dissect", "--dissect-limit", "2", str(path))
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert "    wireshark: TLS alert from the client: Fatal Unknown CA (48) (frame 6)" in lines
    assert "    wireshark: TLS alert from the server: Fatal Handshake Failure (40) (frame 12)" \
        in lines
    assert not any("400 Bad Request" in line for line in lines)  # third suspicious: capped
    assert lines[-1].startswith("  wireshark: dissected 2 of 3 suspicious flows in ")
    assert lines[-1].endswith("; 1 left out by --dissect-limit 2")
    doc = json.loads(_analyze("--dissect", "--dissect-limit", "2", "-o", "json",
                              str(path)).stdout)["captures"][0]
    assert [f["wireshark"] is not None for f in doc["flows"]] == [True, True, False, False]
    assert doc["flows"][0]["wireshark"]["tls_alerts"] == [
        {"frame": 6, "side": "client", "level": "Fatal", "description": "Unknown CA",
         "code": 48}]
    assert {k: doc["dissect"][k] for k in ("suspicious", "dissected", "limit", "capped",
                                           "timed_out", "error")} == {
        "suspicious": 3, "dissected": 2, "limit": 2, "capped": 1, "timed_out": False,
        "error": None}
    assert "wireshark" not in json.loads(_analyze("-o", "json", str(path)).stdout)[
        "captures"][0]["flows"][0]  # off by default


@pytest.mark.parametrize("env, said", [
    ({"NETPROBE_TSHARK": "/nonexistent/tshark"},
     "netprobe: warning: --dissect: finding tshark: NETPROBE_TSHARK=/nonexistent/tshark is "
     "not an executable file"),
    ({"PATH": "/nonexistent"},
     "netprobe: warning: --dissect: finding tshark: not installed; install the Debian/Ubuntu "
     "package 'tshark' (apt-get install tshark) or run 'sudo make setup'"),
])
def test_without_tshark_analyze_still_works_and_says_so_once(
        tmp_path: Path, env: dict[str, str], said: str) -> None:
    path = _write(tmp_path, _untrusted_server, craft.scenario_ok)
    plain = _analyze("-o", "json", str(path))
    done = _analyze("--dissect", "-o", "json", str(path), str(path), env=env)
    assert done.returncode == plain.returncode == 1
    assert done.stderr.splitlines() == [said]  # once for both files, no traceback
    captures = json.loads(done.stdout)["captures"]
    assert [f["verdict"] for f in captures[1]["flows"]] == [
        f["verdict"] for f in json.loads(plain.stdout)["captures"][0]["flows"]]
    assert all(f["wireshark"] is None for c in captures for f in c["flows"])
    assert captures[1]["dissect"]["error"] == said.removeprefix("netprobe: warning: --dissect: ")


def _big_capture(tmp_path: Path, filler: int = 100_000) -> Path:
    """A failing flow after many UDP packets: tshark needs seconds to get to it."""
    raw = bytes(IP(src="10.0.0.9", dst="10.0.0.8") / UDP(sport=5000, dport=6000) / (b"x" * 64))
    out = [(craft.T0 + i * 1e-5, raw) for i in range(filler)]
    _refusing_handshake(out, craft.T0 + 10, 43200)
    return craft.write_pcap(tmp_path / "big.pcap", out)


def _tshark_children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        name, rest = stat[stat.index("(") + 1: stat.rindex(")")], stat[stat.rindex(")") + 2:]
        state, ppid = rest.split()[:2]
        if name == "tshark" and int(ppid) == pid and state != "Z":
            found.append(int(entry.name))
    return found


def test_the_timeout_stops_tshark_and_says_so(tmp_path: Path) -> None:
    path = _big_capture(tmp_path)
    started = time.monotonic()
    result = _dissect(path, timeout=0.5)
    assert time.monotonic() - started < 3.0
    assert result.timed_out and set(result.views) == {0}
    assert result.views[0].tls_alerts == ()  # tshark never got there
    assert _tshark_children(os.getpid()) == []


def test_ctrl_c_leaves_no_tshark_behind(tmp_path: Path) -> None:
    path = _big_capture(tmp_path, filler=200_000)
    proc = subprocess.Popen([sys.executable, "-m", "netprobe", "analyze", "--dissect", str(path)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # SIGINT reaches netprobe only, not tshark
    deadline = time.monotonic() + 30
    while not (children := _tshark_children(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert children, "tshark never started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "netprobe: interrupted"
    assert not Path(f"/proc/{children[0]}").exists() or _state(children[0]) == "Z"


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2:].split()[0]


def test_from_inside_a_running_event_loop_like_jupyter(tmp_path: Path) -> None:
    path = _write(tmp_path, _refusing_handshake)
    flow_table = analysis.flows(analysis.read(path))
    mine = asyncio.new_event_loop()
    asyncio.set_event_loop(mine)
    try:
        async def notebook_cell() -> analysis.Dissection:
            return analysis.dissect(path, flow_table)

        result = mine.run_until_complete(notebook_cell())
        assert result.views[0].tls_alerts[0].description == "Handshake Failure"
        assert asyncio.get_event_loop_policy().get_event_loop() is mine  # left as it was
    finally:
        asyncio.set_event_loop(None)
        mine.close()


def test_limits_are_checked() -> None:
    with pytest.raises(errors.UsageError):
        analysis.dissect("x.pcap", {"stream": [], "verdict": []}, limit=0)
