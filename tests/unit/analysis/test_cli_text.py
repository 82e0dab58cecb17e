"""`netprobe analyze` text output: totals, suspicious flows first, plain when piped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests import craft

ROOT = Path(__file__).resolve().parents[3]


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netprobe", "analyze", *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_text_table_matches_the_json(tmp_path: Path) -> None:
    path = craft.write_pcap(tmp_path / "all.pcap", craft.everything())
    text, doc = _analyze(str(path)), _analyze("-o", "json", str(path))
    assert text.returncode == doc.returncode == 1  # failures diagnosed
    report = json.loads(doc.stdout)["captures"][0]
    lines = text.stdout.splitlines()
    assert lines[0] == str(path)
    assert lines[1].split() == [f"{k}={v}" for k, v in report["totals"].items()]
    assert lines[2].split()[:4] == ["stream", "client", "server", "verdict"]
    assert set(lines[3]) == {"-", " "}
    table = [line.split() for line in lines[4:]]
    assert len(table) == report["flow_count"]
    # same flows in the same order (suspicious first), with their verdicts
    assert [(int(r[0]), r[3]) for r in table] == [(f["stream"], f["verdict"])
                                                  for f in report["flows"]]
    assert "\x1b[" not in text.stdout  # piped: no terminal colours


def test_limit_says_how_many_flows_are_left(tmp_path: Path) -> None:
    path = craft.write_pcap(tmp_path / "all.pcap", craft.everything())
    done = _analyze("--limit", "2", str(path))
    flows = json.loads(_analyze("-o", "json", str(path)).stdout)["captures"][0]["flow_count"]
    assert len(done.stdout.splitlines()) == 2 + 2 + 2 + 1
    assert done.stdout.splitlines()[-1].strip() == (
        f"... {flows - 2} more flows (use --limit 0 or -o json)")
