"""Pictures for people: the ladder of one connection, its retransmissions, the hop graph.

Owns: matplotlib figures (Agg canvas, `matplotlib.figure.Figure`, no pyplot
state, never `show`) and the PNG/SVG export of the hop graph. Every
function returns the Figure; notebooks display it, the CLI saves it.
Must not: decide anything (the tables come from `netprobe.pathview` /
`netprobe.analysis`, statuses and culprit from the trace).
"""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from netprobe.core.model import TraceResult
from netprobe.present import graph as hopgraph

if TYPE_CHECKING:
    import networkx as nx
    import pandas as pd

KIND_COLOURS = {"SYN": "#1f77b4", "SYN-ACK": "#2ca02c", "RST": "#d62728", "ClientHello": "#9467bd",
                "ServerHello": "#9467bd", "FIN": "#7f7f7f", "ACK": "#b0b0b0"}
ICMP_COLOUR, DATA_COLOUR = "#ff7f0e", "#555555"
STATUS_COLOURS = {"ok": "#7cc47f", "not-seen": "#d0d0d0", "dropped": "#ffb74d",
                  "refused": "#ef5350", "failed": "#ef5350", "unobservable": "#f2f2f2",
                  "skipped": "#ffffff"}
CULPRIT_COLOUR = "#c62828"
PICTURE_SUFFIXES = (".png", ".svg", ".pdf")
GAP_SECONDS = 0.5
"""A pause this long between two packets of the ladder is marked (the rows are not to scale)."""


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _colour(kind: str) -> str:
    if kind.startswith("ICMP"):
        return ICMP_COLOUR
    return KIND_COLOURS.get(kind, DATA_COLOUR)


def _lane_titles(packets: pd.DataFrame, result: TraceResult | None) -> list[tuple[str, str, str]]:
    """(where, hop id, hop label) per lane, in lane order."""
    labels = {hop.id: hop.label for hop in result.hops} if result else {}
    lanes = packets.drop_duplicates("lane").sort_values("lane")
    return [(str(w), str(h), labels.get(str(h), ""))
            for w, h in zip(lanes["where"], lanes["hop"], strict=True)]


def ladder_diagram(packets: pd.DataFrame, result: TraceResult | None = None, *,
                   max_packets: int = 60) -> Figure:
    """A sequence diagram of the replayed connection: one column per vantage interface.

    `packets` is the `netprobe.analysis.read_trace` table. Each packet is a
    row; its arrow joins the interfaces it was seen on, left to right for the
    client's packets, right to left for the server's. A dashed stub means it
    came from beyond the first interface that saw it; a red cross that no
    later interface saw it. At most `max_packets` packets are drawn.
    """
    conn = packets[packets["conn"]] if "conn" in packets else packets.iloc[0:0]
    lanes = _lane_titles(conn, result) + _unseen_culprit(conn, result)
    groups = sorted((g.sort_values("time") for _, g in conn.groupby("instance")),
                    key=lambda g: float(g["time"].iloc[0]))[:max_packets]
    n_lanes = max(len(lanes), 1)
    figure = _figure(2.4 * n_lanes + 2.5, 0.42 * len(groups) + 2.2)
    ax = figure.add_subplot()
    t0 = float(groups[0]["time"].iloc[0]) if groups else 0.0
    syn_count = 0
    starts = [float(g["time"].iloc[0]) for g in groups]
    for y, group in enumerate(groups):
        kind = str(group["kind"].iloc[0])
        label = _ladder_label(group, kind, syn_count)
        syn_count += kind == "SYN"
        _ladder_row(ax, group, y, label, _colour(kind), n_lanes)
        ax.text(-0.45, y, f"+{(starts[y] - t0) * 1e3:.3f} ms", ha="right",
                va="center", fontsize=8, family="monospace")
        if y and starts[y] - starts[y - 1] > GAP_SECONDS:
            ax.axhline(y - 0.5, color="#bbbbbb", lw=0.8, linestyle=":")
            ax.text(-0.45, y - 0.5, f"{starts[y] - starts[y - 1]:.3f} s later", ha="right",
                    va="center", fontsize=7, color="#777777", style="italic")
    _ladder_frame(ax, lanes, len(groups), result)
    return figure


def _ladder_label(group: pd.DataFrame, kind: str, syn_count: int) -> str:
    """SYN retransmission k; RST and SYN-ACK with their TTL where first and last seen."""
    if kind == "SYN" and syn_count:
        return f"SYN retransmission {syn_count}"
    if kind in ("RST", "SYN-ACK") or kind.startswith("ICMP"):
        by_time = group.sort_values("time")
        first, last = int(by_time["ttl"].iloc[0]), int(by_time["ttl"].iloc[-1])
        ttl = f"TTL {first}" if first == last else f"TTL {first} \u2192 {last}"
        source = f" from {by_time['src'].iloc[0]}" if kind != "SYN-ACK" else ""
        return f"{kind}{source}, {ttl}"
    return kind


def _unseen_culprit(conn: pd.DataFrame, result: TraceResult | None) -> list[tuple[str, str, str]]:
    """A column for the pod's veth when the flow stopped there, though nothing was seen there."""
    culprit = result.culprit if result else None
    if culprit is None or culprit.hop not in ("pod-veth", "host-socket"):
        return []
    if culprit.hop in set(conn["hop"]):
        return []
    label = next(h.label for h in result.hops if h.id == culprit.hop)  # type: ignore[union-attr]
    return [(f"{culprit.node or '?'}/(never seen)", culprit.hop, label)]


def _ladder_row(ax: Any, group: pd.DataFrame, y: int, label: str, colour: str,
                n_lanes: int) -> None:
    outbound = bool(group["from_client"].iloc[0]) if group["icmp_type"].iloc[0] < 0 else False
    step = 1 if outbound else -1
    xs = sorted(set(int(x) for x in group["lane"]), reverse=not outbound)
    origin_edge, far_edge = (0, n_lanes - 1) if outbound else (n_lanes - 1, 0)
    style = dict(arrowstyle="-|>", color=colour, lw=1.6, shrinkA=0, shrinkB=0)
    if xs[0] != origin_edge or len(xs) == 1 and xs[0] == origin_edge and not outbound:
        ax.annotate("", xy=(xs[0], y), xytext=(xs[0] - 0.45 * step, y),
                    arrowprops=dict(style, linestyle="--", alpha=0.6))
    for a, b in itertools.pairwise(xs):
        ax.annotate("", xy=(b, y), xytext=(a, y), arrowprops=style)
    if xs[-1] != far_edge or (n_lanes == 1 and outbound):
        end = xs[-1] + 0.45 * step
        ax.plot([xs[-1], end], [y, y], color=colour, lw=1.6)
        ax.plot([end], [y], marker="x", color=CULPRIT_COLOUR, markersize=9, mew=2.5)
    ax.text((xs[0] + xs[-1]) / 2 if len(xs) > 1 else xs[0] + 0.2 * step, y - 0.18, label,
            ha="center", va="bottom", fontsize=8, color=colour)


def _ladder_frame(ax: Any, lanes: list[tuple[str, str, str]], rows: int,
                  result: TraceResult | None) -> None:
    culprit = result.culprit.hop if result and result.culprit else ""
    for x, (where, hop, hop_label) in enumerate(lanes):
        bad = bool(hop) and hop == culprit
        ax.plot([x, x], [-0.75, rows + 0.3], color=CULPRIT_COLOUR if bad else "#999999",
                lw=2 if bad else 1, zorder=0,
                linestyle="--" if where.endswith("(never seen)") else "-")
        title = where.replace("/", "/\n", 1) + (f"\n({_wrap(hop_label, 26)})" if hop_label else "")
        ax.text(x, -1.0, title, ha="center", va="bottom", fontsize=8,
                color=CULPRIT_COLOUR if bad else "black", weight="bold" if bad else "normal")
    if culprit == "network" and lanes:
        node = lanes[0][0].split("/")[0] + "/"
        gap = next((x for x, (w, _, _) in enumerate(lanes) if not w.startswith(node)), len(lanes))
        ax.axvspan(gap - 0.75, gap - 0.25, color=CULPRIT_COLOUR, alpha=0.12, zorder=0)
        ax.text(gap - 0.5, -1.0, "provider network\n(culprit)", ha="center", va="bottom",
                color=CULPRIT_COLOUR, fontsize=8, weight="bold")
    ax.set_xlim(-1.3, max(len(lanes) - 1, 0) + 0.9)
    ax.set_ylim(rows + 0.3, -1.9)
    ax.axis("off")
    if result is not None:
        width = int(ax.figure.get_figwidth() * 11)
        ax.set_title(_wrap(_verdict_title(result), width), fontsize=10, loc="left")


def _verdict_title(result: TraceResult) -> str:
    verdict = result.verdict
    title = f"{verdict.cls} ({verdict.cause})"
    if result.culprit is not None:
        labels = {hop.id: hop.label for hop in result.hops}
        title += f": culprit {labels.get(result.culprit.hop, result.culprit.hop)}"
    return title


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def _lane_key(packets: pd.DataFrame) -> tuple[Any, list[str]]:
    """Lane of each packet and the lane names: `where` (a trace table) else the interface."""
    if "where" in packets:
        order = packets.sort_values("lane").drop_duplicates("where")["where"].tolist()
        return packets["where"], order
    names = packets["interface"].astype(str) + "/if" + packets["ifindex"].astype(str)
    return names, sorted(names.unique().tolist())


def _retransmitted(lane: pd.DataFrame) -> list[bool]:
    """Per packet of one interface: was this segment (stream, direction, seq, length, SYN/FIN)
    seen before on it."""
    seen: set[tuple[int, ...]] = set()
    out = []
    for stream, client, seq, length, flags in zip(lane["stream"], lane["from_client"], lane["seq"],
                                                  lane["seglen"], lane["flags"], strict=True):
        key = (int(stream), int(client), int(seq), int(length), int(flags) & 0x03)
        out.append((int(length) > 0 or bool(int(flags) & 0x03)) and key in seen)
        seen.add(key)
    return out


def retransmission_timeline(packets: pd.DataFrame) -> Figure:
    """When each TCP packet was seen, per interface, retransmissions marked.

    Works on a `read_trace` table (the replayed connection, one row per
    vantage interface) or a `read` table (one row per interface). A
    retransmission is a segment (same stream, direction, sequence number
    and length) seen again *on the same interface*: copies of one packet on
    several interfaces are not retransmissions. SYN retransmissions are
    labelled with the time since the previous SYN.
    """
    rows = packets[packets["conn"]] if "conn" in packets else packets
    rows = rows[rows["proto"] == 6].sort_values("time", kind="stable")
    lane, names = _lane_key(rows)
    figure = _figure(10, 1.2 + 0.7 * max(len(names), 1))
    ax = figure.add_subplot()
    t0 = float(rows["time"].min()) if len(rows) else 0.0
    most = {"SYN": 0, "data": 0}
    for y, name in enumerate(names):
        mine = rows[lane == name]
        t = mine["time"].to_numpy() - t0
        syn = ((mine["flags"] & 0x12) == 0x02).to_numpy()
        again = np.asarray(_retransmitted(mine), dtype=bool)
        ax.plot(t[~syn & ~again], [y] * int((~syn & ~again).sum()), "|", color="#888888",
                markersize=10)
        ax.plot(t[syn & ~again], [y] * int((syn & ~again).sum()), "o", color="#1f77b4")
        ax.plot(t[~syn & again], [y] * int((~syn & again).sum()), "X", color="#ff7f0e",
                markersize=11)
        ax.plot(t[syn & again], [y] * int((syn & again).sum()), "X", color="#d62728",
                markersize=11)
        syn_times = t[syn]
        for previous, now in itertools.pairwise(syn_times):
            ax.annotate(f"SYN again\n+{now - previous:.2f} s", (now, y), xytext=(0, 10),
                        textcoords="offset points", ha="center", fontsize=8)
        most = {"SYN": max(most["SYN"], int((syn & again).sum())),
                "data": max(most["data"], int((~syn & again).sum()))}
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.4, -0.9)
    ax.set_xlabel("seconds since the first packet")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"Retransmissions: {most['SYN']} SYN, {most['data']} data (the most seen on "
                 "one interface; copies on other interfaces are not retransmissions)",
                 fontsize=10, loc="left")
    ax.legend(handles=[Patch(color="#1f77b4", label="SYN"),
                       Patch(color="#d62728", label="SYN retransmission"),
                       Patch(color="#ff7f0e", label="data retransmission"),
                       Patch(color="#888888", label="other segment")],
              loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return figure


def hop_graph_figure(source: TraceResult | nx.DiGraph) -> Figure:
    """The hop graph drawn left to right: statuses coloured, the culprit hop red and bold."""
    import networkx as nx

    graph = source if isinstance(source, nx.DiGraph) else hopgraph.build_hop_graph(
        source.hops, source.culprit)
    order = list(nx.topological_sort(graph)) if nx.is_directed_acyclic_graph(graph) \
        else list(graph.nodes)
    figure = _figure(max(2.05 * len(order), 6), 3.0)
    ax = figure.add_subplot()
    boxes = {name: _hop_box(ax, 2.0 * index, graph.nodes[name])
             for index, name in enumerate(order)}
    for a, b in graph.edges():
        ax.annotate("", xy=(0.5, 0.5), xycoords=boxes[b], xytext=(0.5, 0.5),
                    textcoords=boxes[a], arrowprops=dict(
                        arrowstyle="-|>", color="#555555", lw=1.3, mutation_scale=14,
                        patchA=boxes[a].get_bbox_patch(), patchB=boxes[b].get_bbox_patch()))
    present = dict.fromkeys(str(graph.nodes[n].get("status")) for n in order)
    ax.legend(handles=[Patch(fc=STATUS_COLOURS.get(s, "white"), ec="#555555", label=s)
                       for s in present], loc="lower center", ncol=len(present), fontsize=8,
              bbox_to_anchor=(0.5, -0.08), frameon=False)
    ax.set_xlim(-1.05, 2.0 * (len(order) - 1) + 1.05)
    ax.set_ylim(-1.0, 1.0)
    ax.axis("off")
    if not isinstance(source, nx.DiGraph):
        ax.set_title(_verdict_title(source), fontsize=10, loc="left")
    return figure


def _hop_box(ax: Any, x: float, data: dict[str, Any]) -> Any:
    culprit = bool(data.get("culprit"))
    text = _wrap(str(data.get("label", "")), 17) + f"\n[{data.get('status', '')}]"
    if data.get("interface"):
        text += f"\n{data['interface']}"
    box = ax.text(x, 0, text, ha="center", va="center", fontsize=8,
                  weight="bold" if culprit else "normal",
                  bbox=dict(boxstyle="round,pad=0.5",
                            fc=STATUS_COLOURS.get(data.get("status", ""), "white"),
                            ec=CULPRIT_COLOUR if culprit else "#555555", lw=3 if culprit else 1))
    if culprit:
        ax.text(x, 0.68, "CULPRIT", ha="center", color=CULPRIT_COLOUR, weight="bold", fontsize=10)
    return box


def save_hop_graph(graph: nx.DiGraph, path: str | Path, title: str = "") -> Path:
    """Write the hop graph as PATH's suffix says: .png/.svg/.pdf drawn, .json/.graphml/.dot data.

    Raises:
        ValueError: another suffix (the CLI makes it a usage error).
    """
    target = Path(path)
    if target.suffix.lower() in PICTURE_SUFFIXES:
        figure = hop_graph_figure(graph)
        if title:
            figure.axes[0].set_title(title, fontsize=10, loc="left")
        figure.savefig(target, dpi=120)
    else:
        hopgraph.write_graph(graph, target)
    return target
