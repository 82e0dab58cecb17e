"""Annotated pcapng files: saved traces and analysed captures, diagnosis inside.

Owns: wiring the readers, the annotation rules (`netprobe.annotate`) and the
pcapng writer together for `trace webhook --pcapng` and `analyze --pcapng`.
Must not: word comments (annotate) or lay out blocks (the writer).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netprobe import annotate, pathview
from netprobe.analysis.saved import SavedTrace
from netprobe.capture import pcapng_writer

Written = pcapng_writer.Written


def check_writable(path: str | Path) -> Path:
    """Fail early, before a long trace, if `path` cannot be written.

    Raises:
        UsageError: the folder is missing or not writable, or `path` is a folder.
    """
    import os

    from netprobe import errors

    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise errors.UsageError(f"writing {target}: is a directory")
    if not folder.is_dir():
        raise errors.UsageError(f"writing {target}: no such directory {folder}")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise errors.UsageError(f"writing {target}: permission denied")
    return target


def trace_pcapng(traces: Sequence[SavedTrace], path: str | Path) -> Written:
    """One pcapng of every capture of `traces`, each packet of the replayed calls annotated.

    A capture shared by several traced endpoints (two endpoints on one node)
    is written once, with the comments of all of them.

    Raises:
        CaptureFormatError: a capture cannot be read.
        UsageError: `path` cannot be written.
    """
    from netprobe import analysis

    files: dict[Path, dict[str, Any]] = {}
    summary: list[str] = []
    for trace in traces:
        frames = [analysis.read(c.path) for c in trace.captures]
        known = [trace.ifnames.get(c.node, {}) for c in trace.captures]
        table = pathview.path_packets(trace.result, frames, [c.node for c in trace.captures],
                                      [c.role for c in trace.captures], known)
        named = pathview.lanes(trace.result, frames, [c.role for c in trace.captures],
                               pathview.flow_key(trace.result, frames,
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
    sources = [pcapng_writer.Source(a.capture.path, a.capture.path.name,
                                    comments=annotate.flow_comments(a.packets, a.flows))
               for a in analyses]
    return pcapng_writer.write_pcapng(path, sources, [
        f"netprobe analyze: {len(analyses)} capture(s); packets of flows whose verdict is not "
        "'ok' carry the verdict and the evidence as packet comments"])
