"""Annotated pcapng files: saved traces and analysed captures, diagnosis inside.

Owns: wiring the readers, the annotation rules (`netprobe.annotate`) and the
pcapng writer together for `trace webhook --pcapng` and `analyze --pcapng`.
Must not: word comments (annotate) or lay out blocks (the writer).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netprobe.trace import pathview
from netprobe.trace.frames import Frames
from netprobe.trace.saved import SavedTrace

if TYPE_CHECKING:  # the writer and the comments load only when a pcapng is written
    from netprobe.capture.pcapng_writer import Written


def check_writable(path: str | Path) -> Path:
    """Fail early, before a long trace, if `path` cannot be written.

    Raises:
        UsageError: the folder is missing or not writable, or `path` is a folder.
    """
    import os

    from netprobe.core import errors

    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise errors.UsageError(f"writing {target}: is a directory")
    if not folder.is_dir():
        raise errors.UsageError(f"writing {target}: no such directory {folder}")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise errors.UsageError(f"writing {target}: permission denied")
    return target


def trace_pcapng(traces: Sequence[SavedTrace], path: str | Path,
                 frames: Frames | None = None) -> Written:
    """One pcapng of every capture of `traces`, each packet of the replayed calls annotated.

    A capture shared by several traced endpoints (two endpoints on one node)
    is written once, with the comments of all of them.

    Raises:
        CaptureFormatError: a capture cannot be read.
        UsageError: `path` cannot be written.

    FRAMES: the trace's decoded captures, when the caller has them (none decoded twice).
    """
    from netprobe.capture import pcapng_writer
    from netprobe.present import annotate

    frames = frames if frames is not None else Frames()
    files: dict[Path, dict[str, Any]] = {}
    summary: list[str] = []
    for trace in traces:
        tables = [frames.get(c.path) for c in trace.captures]
        known = [trace.ifnames.get(c.node, {}) for c in trace.captures]
        table = pathview.path_packets(trace.result, tables, [c.node for c in trace.captures],
                                      [c.role for c in trace.captures], known)
        named = pathview.lanes(trace.result, tables, [c.role for c in trace.captures],
                               pathview.flow_key(trace.result, tables,
                                                 [c.role for c in trace.captures]), known)
        comments = annotate.trace_comments(trace.result, table)
        summary += annotate.trace_summary(trace.result)
        hop_labels = {hop.id: hop.label for hop in trace.result.hops}
        for index, capture in enumerate(trace.captures):
            entry = files.setdefault(capture.path.resolve(), {
                "node": capture.node, "names": {}, "descriptions": {},
                "comments": defaultdict(list)})
            entry["names"].update(named.names[index])
            entry["descriptions"].update({i: f"{hop_labels.get(h, h)} (hop {h})"
                                          for i, h in named.hops[index].items()})
            for (cap, row), notes in comments.items():
                if cap == index:
                    entry["comments"][row] += [n for n in notes if n not in entry["comments"][row]]
    sources = [pcapng_writer.Source(p, e["node"], e["names"], e["descriptions"], e["comments"])
               for p, e in files.items()]
    return pcapng_writer.write_pcapng(path, sources, summary)


def analysis_pcapng(analyses: Sequence[Any], path: str | Path) -> Written:
    """One pcapng of the analysed captures, each suspicious flow annotated with its verdict.

    `analyses` are `netprobe.analysis.pipeline.Analysis` results; each file's
    interfaces are named after the file (`FILE/ifN`).

    Raises:
        CaptureFormatError: a capture cannot be read again.
        UsageError: `path` cannot be written.
    """
    from netprobe.capture import pcapng_writer
    from netprobe.present import annotate

    sources = [pcapng_writer.Source(a.capture.path, a.capture.path.name,
                                    comments=annotate.flow_comments(a.packets, a.flows))
               for a in analyses]
    return pcapng_writer.write_pcapng(path, sources, [
        f"netprobe analyze: {len(analyses)} capture(s); packets of flows whose verdict is not "
        "'ok' carry the verdict and the evidence as packet comments"])


GRAPH_SUFFIXES = (".png", ".svg", ".pdf", ".json", ".graphml", ".dot", ".gv")


def check_graph_path(path: str | Path) -> Path:
    """Fail early on a hop-graph path with an unknown suffix or that cannot be written.

    Raises:
        UsageError: the suffix names no format, or the path cannot be written.
    """
    from netprobe.core import errors

    target = Path(path)
    if target.suffix.lower() not in GRAPH_SUFFIXES:
        raise errors.UsageError(f"writing {target}: unknown graph format "
                                f"{target.suffix or '(no suffix)'!r}: use "
                                + ", ".join(GRAPH_SUFFIXES))
    return check_writable(target)


def graph_paths(path: str | Path, count: int) -> list[Path]:
    """PATH for one graph; PATH-1.ext, PATH-2.ext... for several."""
    target = Path(path)
    if count == 1:
        return [target]
    return [target.with_name(f"{target.stem}-{i}{target.suffix}") for i in range(1, count + 1)]


def write_hop_graphs(results: Sequence[Any], path: str | Path) -> list[Path]:
    """Write each result's hop graph (see `graph_paths` for the names).

    Raises:
        UsageError: a file cannot be written.
    """
    from netprobe.core import errors
    from netprobe.present import graph, plots

    written = []
    for result, target in zip(results, graph_paths(path, len(results)), strict=True):
        hop_graph = graph.build_hop_graph(result.hops, result.culprit)
        try:
            written.append(plots.save_hop_graph(hop_graph, target))
        except OSError as exc:
            raise errors.UsageError(f"writing {target}: {exc.strerror or exc}") from None
    return written


def check_outputs(pcapng: Path | None, graph_path: Path | None) -> None:
    """Check `trace webhook --pcapng/--graph` paths before the trace runs.

    Raises:
        UsageError: a path cannot be written or the graph suffix is unknown.
    """
    if pcapng is not None:
        check_writable(pcapng)
    if graph_path is not None:
        check_graph_path(graph_path)


@contextlib.contextmanager
def capture_folder(pcap_dir: Path | None, needed: bool) -> Iterator[Path | None]:
    """`pcap_dir`, or a scratch folder (removed afterwards) when captures are needed anyway."""
    if pcap_dir is not None or not needed:
        yield pcap_dir
        return
    with tempfile.TemporaryDirectory(prefix="netprobe-pcapng-") as scratch:
        yield Path(scratch)


def people_outputs(results: Sequence[Any], pcapng: Path | None, graph_path: Path | None,
                   frames: Frames | None = None) -> list[str]:
    """Write the pcapng and hop graphs a trace asked for; one line per file written.

    Raises:
        UsageError: a file cannot be written.
        CaptureFormatError: a capture cannot be read.
    """
    from netprobe.trace import saved

    lines = []
    if pcapng is not None:
        written = trace_pcapng(saved.from_results(list(results)), pcapng, frames)
        lines.append(f"wrote {pcapng}: {written.packets} packets from "
                     f"{len(written.interfaces)} interfaces, {written.comments} comments")
    if graph_path is not None:
        lines += [f"wrote {p}" for p in write_hop_graphs(results, graph_path)]
    return lines
