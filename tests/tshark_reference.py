"""tshark as the reference for `netprobe.analysis` totals (test helper).

One tshark pass per file with `-T fields`; tshark's defaults are kept
(`tcp.analyze_sequence_numbers: TRUE`, single pass: retransmission marking is
decided in the first pass anyway). Each count is the number of frames the
display filter in the comment would match.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

TSHARK = shutil.which("tshark")
FIELDS = (
    "frame.protocols",
    "tcp.flags.syn",  # tcp_syn: tcp.flags.syn==1 && tcp.flags.ack==0 && !icmp && !icmpv6
    "tcp.flags.ack",
    "tcp.flags.reset",  # tcp_rst: tcp.flags.reset==1 && !icmp && !icmpv6
    "tcp.analysis.retransmission",  # tcp_retransmissions (+ SYN: tcp_syn_retransmissions)
    "tls.handshake.type",  # tls_*_hello: tcp && tls.handshake.type==1 / ==2
    "icmp.type",  # icmp_unreachable: icmp.type==3 || icmpv6.type==1
    "icmpv6.type",
    "tcp.stream",  # tcp_streams: distinct tcp.stream of tcp && !icmp && !icmpv6
)


def _values(cell: str) -> list[str]:
    return [v for v in cell.split(",") if v != ""]


def totals(path: Path, extra: tuple[str, ...] = ()) -> dict[str, int] | None:
    """tshark's totals for `path`, or None when tshark cannot read the file."""
    assert TSHARK is not None
    cmd = [TSHARK, "-n", "-r", str(path), *extra, "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in FIELDS:
        cmd += ["-e", f]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0 and not proc.stdout:
        return None
    out = dict.fromkeys(
        ("packets", "tcp_syn", "tcp_synack", "tcp_rst", "tcp_retransmissions",
         "tcp_syn_retransmissions", "tls_client_hello", "tls_server_hello",
         "icmp_unreachable"), 0)
    streams: set[str] = set()
    for line in proc.stdout.splitlines():
        cells = line.split("\t")
        cells += [""] * (len(FIELDS) - len(cells))
        # padded above, but a value holding a tab makes more cells: the extra ones are ignored
        row = dict(zip(FIELDS, cells, strict=False))
        layers = row["frame.protocols"].split(":")
        out["packets"] += 1
        if "3" in _values(row["icmp.type"]) or "1" in _values(row["icmpv6.type"]):
            out["icmp_unreachable"] += 1
        if "tcp" not in layers or "icmp" in layers or "icmpv6" in layers:
            continue
        syn, ack = _values(row["tcp.flags.syn"]), _values(row["tcp.flags.ack"])
        is_syn = "1" in syn and "0" in ack
        out["tcp_syn"] += is_syn
        out["tcp_synack"] += "1" in syn and "1" in ack
        out["tcp_rst"] += "1" in _values(row["tcp.flags.reset"])
        if _values(row["tcp.analysis.retransmission"]):
            out["tcp_retransmissions"] += 1
            out["tcp_syn_retransmissions"] += is_syn
        hs = _values(row["tls.handshake.type"])
        out["tls_client_hello"] += "1" in hs
        out["tls_server_hello"] += "2" in hs
        streams.update(_values(row["tcp.stream"]))
    out["tcp_streams"] = len(streams)
    return out
