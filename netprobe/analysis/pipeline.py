"""The numpy pipeline behind `netprobe analyze`: file -> packets -> flows -> verdicts.

Owns: joining the decoded columns with the TCP view into the packet table,
and running flows, verdicts and totals over it. Stays in numpy (no pandas
import) so the command starts fast.
Must not: print or exit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from netprobe.analysis import counts, encrypted, flowtable, tcp
from netprobe.analysis.load import Capture, load
from netprobe.capture import decode
from netprobe.core import rules

Table = flowtable.Table


@dataclass
class Analysis:
    """Everything `netprobe analyze` reports about one capture."""

    capture: Capture
    packets: Table
    """Decoded columns plus `stream`, `retransmission`, `from_client`."""
    flows: Table
    """One row per TCP stream, with `verdict` and `reason`."""
    totals: dict[str, int]
    encrypted: list[encrypted.EncryptedLink] = field(default_factory=list)
    """Encrypted node-to-node traffic, whose flows cannot be seen in this capture."""


def packet_table(cols: decode.Columns) -> Table:
    """Add the TCP analysis columns to decoded packet columns."""
    view = tcp.analyse(cols)
    n = len(cols["time"])
    table = dict(cols)
    table["stream"] = np.full(n, -1, np.int32 if n < 2**31 else np.int64)
    table["stream"][view.index] = view.stream
    table["retransmission"] = np.zeros(n, bool)
    table["retransmission"][view.index] = view.retransmission
    table["from_client"] = np.zeros(n, bool)
    table["from_client"][view.index] = view.from_client
    return table


def flow_table(packets: Table) -> Table:
    """Flows of a packet table, with their verdicts."""
    f = flowtable.build(packets)
    f["verdict"], f["reason"] = rules.classify_flows(f)
    return f


def analyse(path: str | Path, detail: bool = False) -> Analysis:
    """Run the whole pipeline over one capture file.

    Raises:
        CaptureFormatError: the file cannot be read at all.
    """
    capture = load(path, detail=detail)
    packets = packet_table(capture.cols)
    return Analysis(capture, packets, flow_table(packets), counts.count(packets),
                    encrypted.summarize(packets))
