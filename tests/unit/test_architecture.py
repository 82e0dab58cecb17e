"""The layers of docs/architecture.md, enforced by import-linter's contracts (pyproject.toml)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(root))  # this tree's netprobe, not the installed one
    return subprocess.run([str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"),
                           "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "netprobe", tmp_path / "netprobe",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.c", "*.h"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_import_contracts_hold() -> None:
    done = _lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("analysis/counts.py", "from netprobe.trace import hops", "Packets in, tables out"),
    ("core/model.py", "from netprobe.replay import call", "Layers"),
    ("agents/program.py", "from netprobe.trace import pipeline", "never imports the controller"),
    ("trace/hops.py", "import kubernetes", "Only netprobe.k8s imports the kubernetes client"),
    ("present/graph.py", "import matplotlib", "matplotlib only in netprobe.present.plots"),
    ("capture/pcap.py", "import scapy", "No scapy in netprobe"),
    ("analysis/wireshark.py", "import pyshark", "pyshark only in netprobe.capture.tshark"),
])
def test_a_broken_contract_fails(tmp_path: Path, module: str, line: str, contract: str) -> None:
    tree = _copy(tmp_path)
    target = tree / "netprobe" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    done = _lint_imports(tree)
    assert done.returncode != 0
    broken = [text for text in done.stdout.splitlines() if text.endswith("BROKEN")]
    assert any(contract in text for text in broken), done.stdout
