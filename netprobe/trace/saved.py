"""Saved traces: a `netprobe trace webhook -o json` document and the captures beside it.

Owns: reading the TraceReport back into `TraceResult`s, resolving each
result's capture names against the JSON's folder, and saying which vantage
point (node, role) took each capture. Must not: decide anything about the
packets (`netprobe.annotate`, `netprobe.correlate`).

A trace run with `--pcap-dir` writes `NODE-replay-I.pcap` (the apiserver's
node replaying the call to endpoint I) and `NODE-capture.pcap` (each
endpoint's node). A result lists its replay capture first, then its
endpoint node's capture when that node is not the apiserver's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from netprobe import analysis
from netprobe.core import errors, wire
from netprobe.core.model import TraceResult
from netprobe.trace import pathview

if TYPE_CHECKING:
    import pandas as pd

REPLAY, CAPTURE = "replay", "capture"
TRACE_FILE = "trace.json"


@dataclass(frozen=True)
class VantageCapture:
    """One capture of a trace and where it was taken."""

    path: Path
    node: str
    """The node it was captured on."""
    role: str
    """`replay` (the apiserver's node, making the call) or `capture` (an endpoint's node)."""


@dataclass(frozen=True)
class SavedTrace:
    """One traced endpoint as saved: the result and its captures."""

    result: TraceResult
    captures: tuple[VantageCapture, ...]
    ifnames: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    """node -> interface index -> name, when the JSON carries them (`interfaces`)."""

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(c.path for c in self.captures)


def _vantage(name: str, index: int, result: TraceResult) -> tuple[str, str]:
    """(node, role) of the capture file `name`, the `index`-th of `result`."""
    stem = Path(name).stem
    apiserver = next((h.node for h in result.hops if h.id == "apiserver" and h.node), None)
    if "-replay-" in stem or (index == 0 and not stem.endswith("-capture")):
        return apiserver or stem.rsplit("-replay-", 1)[0], REPLAY
    return result.node or stem.removesuffix("-capture"), CAPTURE


def _ifnames(data: object) -> dict[str, dict[int, str]]:
    if not isinstance(data, dict):
        return {}
    return {str(node): {int(k): str(v) for k, v in names.items()}
            for node, names in data.items() if isinstance(names, dict)}


def load_trace(path: str | Path) -> list[SavedTrace]:
    """Read a saved trace: a trace JSON file, or a folder holding `trace.json`.

    Returns:
        One `SavedTrace` per traced endpoint; capture paths are resolved
        against the JSON's folder (absolute paths are kept).

    Raises:
        UsageError: no such file, not JSON, not a netprobe TraceReport, or a
            capture it names is missing.
    """
    source = Path(path)
    file = source / TRACE_FILE if source.is_dir() else source
    try:
        data = json.loads(file.read_text())
        results = wire.trace_from_json(data)
    except OSError as exc:
        raise errors.UsageError(f"reading {file}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise errors.UsageError(f"reading {file}: {exc}") from None
    return [_saved(result, file.parent, _ifnames(raw.get("interfaces")), str(file))
            for result, raw in zip(results, data["results"], strict=True)]


def from_results(results: list[TraceResult]) -> list[SavedTrace]:
    """SavedTraces of results fresh from `trace_webhooks` (their capture paths as they are).

    Raises:
        UsageError: a capture a result names is missing.
    """
    return [_saved(result, Path("."), {}, "the trace") for result in results]


def _saved(result: TraceResult, base: Path, ifnames: dict[str, dict[int, str]],
           origin: str) -> SavedTrace:
    captures = []
    for index, name in enumerate(result.captures):
        capture = base / name
        if not capture.is_file():
            raise errors.UsageError(f"reading {origin}: capture {name} is missing "
                                    f"(looked for {capture})")
        node, role = _vantage(name, index, result)
        captures.append(VantageCapture(capture, node, role))
    return SavedTrace(result, tuple(captures), ifnames)


def read_trace(trace: SavedTrace) -> pd.DataFrame:
    """Every capture of a saved trace in one table: the replayed call across vantage points.

    Returns:
        The `read()` columns of every capture plus `capture`, `row`, `node`,
        `where` (`node/interface`), `hop`, `lane` (path order), `conn` (part
        of the replayed connection, found by its ISN through NAT), `kind`
        (SYN, SYN-ACK, RST, ClientHello...) and `instance` (one number for
        the copies of a packet on several interfaces), sorted by time.

    Raises:
        CaptureFormatError: a capture cannot be read.
    """

    frames = [analysis.read(c.path) for c in trace.captures]
    return pathview.path_packets(trace.result, frames, [c.node for c in trace.captures],
                                 [c.role for c in trace.captures],
                                 [trace.ifnames.get(c.node, {}) for c in trace.captures])
