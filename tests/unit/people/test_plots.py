"""Figures: rendered to PNG/SVG, and holding the artists a person reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from netprobe import analysis
from netprobe.present import graph, plots
from netprobe.trace import saved

ROOT = Path(__file__).resolve().parents[3]
CAPTURES = ROOT / "captures"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _texts(figure: Figure) -> list[str]:
    texts = []
    for ax in figure.axes:
        texts += [t.get_text() for t in ax.texts + ax.get_yticklabels()]
        texts += [ax.get_title(loc) for loc in ("left", "center", "right")]
    return texts


def _png(figure: Figure, path: Path) -> bytes:
    figure.savefig(path, dpi=80)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 8_000
    return data


def _trace(scenario: str) -> saved.SavedTrace:
    return saved.load_trace(CAPTURES / scenario)[0]


def test_ladder_of_a_refused_connection(tmp_path: Path) -> None:
    trace = _trace("connection-refused")
    figure = plots.ladder_diagram(saved.read_trace(trace), trace.result)
    texts = _texts(figure)
    assert "SYN" in texts and "RST from 10.244.1.5, TTL 64 \u2192 62" in texts
    assert any(t.startswith("worker-1/\nnpv-8d7b5-x2x4q") for t in texts)
    assert any("culprit webhook 10.244.1.5:10250" in t for t in texts)
    arrows = [c for c in figure.axes[0].texts if getattr(c, "arrow_patch", None) is not None]
    assert len(arrows) == 6  # SYN and RST across the four interfaces
    _png(figure, tmp_path / "ladder.png")


def test_ladder_of_a_drop_shows_retransmissions_and_the_loss(tmp_path: Path) -> None:
    trace = _trace("io-timeout")
    figure = plots.ladder_diagram(saved.read_trace(trace), trace.result)
    texts = _texts(figure)
    assert {"SYN", "SYN retransmission 1", "SYN retransmission 2"} <= set(texts)
    assert "provider network\n(culprit)" in texts
    crosses = [line for line in figure.axes[0].lines if line.get_marker() == "x"]
    assert len(crosses) == 3  # each SYN lost after the control plane's NIC
    assert any("s later" in t for t in texts)
    _png(figure, tmp_path / "ladder.png")


def test_ladder_limits_its_rows() -> None:
    trace = _trace("ok")
    figure = plots.ladder_diagram(saved.read_trace(trace), trace.result, max_packets=5)
    assert sum(t.endswith(" ms") for t in _texts(figure)) == 5


def test_retransmission_timeline_counts_per_interface(tmp_path: Path) -> None:
    trace = _trace("networkpolicy-drop")
    figure = plots.retransmission_timeline(saved.read_trace(trace))
    texts = _texts(figure)
    # Two retransmissions, seen on the control plane's NIC and on the worker's: four marks,
    # each about a second after the send before it (Linux's linear first SYN timeouts).
    again = [t for t in texts if t.startswith("SYN again\n+")]
    assert len(again) == 4
    assert all(0.9 <= float(t.split("+")[1].removesuffix(" s")) <= 1.2 for t in again)
    assert any(t.startswith("Retransmissions: 2 SYN, 0 data") for t in texts)
    assert {"control-plane-1/npeth0", "worker-1/npeth0"} <= set(texts)
    _png(figure, tmp_path / "retx.png")


def test_retransmission_timeline_of_a_plain_capture() -> None:
    packets = analysis.read(CAPTURES / "ok" / "worker-1-capture.pcap")
    figure = plots.retransmission_timeline(packets)
    title = next(t for t in _texts(figure) if t.startswith("Retransmissions"))
    assert title.startswith("Retransmissions: 0 SYN, 0 data")  # three interfaces, no real one


@pytest.mark.parametrize("scenario,culprit", [("rst-middlebox", "provider network"),
                                              ("networkpolicy-drop", "veth"),
                                              ("no-endpoints", "Service")])
def test_hop_graph_marks_the_culprit(tmp_path: Path, scenario: str, culprit: str) -> None:
    trace = _trace(scenario)
    figure = plots.hop_graph_figure(trace.result)
    boxes = {t.get_text(): t for t in figure.axes[0].texts if t.get_bbox_patch() is not None}
    red = [text for text, box in boxes.items() if box.get_bbox_patch().get_linewidth() == 3]
    assert len(red) == 1 and culprit in red[0].replace("\n", " ")
    assert "CULPRIT" in _texts(figure)
    assert len(boxes) == len(trace.result.hops)
    _png(figure, tmp_path / "graph.png")


def test_hop_graph_files(tmp_path: Path) -> None:
    trace = _trace("connection-refused")
    hops = graph.build_hop_graph(trace.result.hops, trace.result.culprit)
    plots.save_hop_graph(hops, tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes().startswith(PNG_MAGIC)
    plots.save_hop_graph(hops, tmp_path / "g.svg")
    svg = (tmp_path / "g.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "CULPRIT" in svg
    for suffix in (".dot", ".graphml", ".json"):
        plots.save_hop_graph(hops, tmp_path / f"g{suffix}")
        assert "webhook" in (tmp_path / f"g{suffix}").read_text()
    with pytest.raises(ValueError, match="unknown graph format"):
        plots.save_hop_graph(hops, tmp_path / "g.bmp")


def test_ladder_shows_the_unseen_culprit_column() -> None:
    trace = _trace("networkpolicy-drop")
    figure = plots.ladder_diagram(saved.read_trace(trace), trace.result)
    assert any(t.startswith("worker-1/\n(never seen)") for t in _texts(figure))
    crosses = [line for line in figure.axes[0].lines if line.get_marker() == "x"]
    assert len(crosses) == 3  # every SYN stops after the worker's NIC
