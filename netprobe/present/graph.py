"""The hop graph: a networkx DiGraph of the path with its evidence and the culprit.

Owns: building the graph from hops (nodes carry label, status, node,
interface, addresses, evidence; the culprit is marked) and exporting it
(node-link JSON, GraphML, DOT). Must not: draw (netprobe.render does) or
decide statuses (hops.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import networkx as nx

from netprobe.core.model import Culprit, Hop


def build_hop_graph(hops: list[Hop] | tuple[Hop, ...], culprit: Culprit | None) -> nx.DiGraph:
    """Returns the path as a chain of hop nodes, in order."""
    graph = nx.DiGraph()
    previous = None
    for index, hop in enumerate(hops):
        graph.add_node(hop.id, label=hop.label, status=hop.status.value, node=hop.node or "",
                       interface=hop.interface or "", detail=hop.detail,
                       addresses=hop.addresses, evidence="; ".join(hop.evidence), order=index,
                       culprit=culprit is not None and culprit.hop == hop.id)
        if previous is not None:
            graph.add_edge(previous, hop.id)
        previous = hop.id
    graph.graph["culprit"] = culprit.hop if culprit else ""
    return graph


def to_node_link(graph: nx.DiGraph) -> dict[str, Any]:
    return nx.node_link_data(graph, edges="links")


def write_graph(graph: nx.DiGraph, path: Path) -> None:
    """Writes GRAPH in the format PATH's suffix names: .json, .graphml, .dot/.gv.

    Raises ValueError for another suffix (the caller maps it to a usage error).
    """
    suffix = path.suffix.lower()
    if suffix == ".json":
        path.write_text(json.dumps(to_node_link(graph), indent=2))
    elif suffix == ".graphml":
        nx.write_graphml(graph, path)
    elif suffix in (".dot", ".gv"):
        path.write_text(to_dot(graph))
    else:
        raise ValueError(f"unknown graph format {suffix!r}: use .json, .graphml or .dot")


def to_dot(graph: nx.DiGraph) -> str:
    """Graphviz DOT text (no pydot needed); the culprit is drawn red and bold."""
    lines = ["digraph netprobe {", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    for name, data in graph.nodes(data=True):
        label = f"{data['label']}\\n{data['status']}".replace('"', "'")
        style = ', color=red, penwidth=3, fontcolor=red' if data.get("culprit") else ""
        lines.append(f'  "{name}" [label="{label}"{style}];')
    lines += [f'  "{a}" -> "{b}";' for a, b in graph.edges()]
    return "\n".join(lines + ["}"]) + "\n"
