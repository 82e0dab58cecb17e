"""Only netprobe/k8s imports `kubernetes`, and netprobe/k8s imports no other edge."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "netprobe"
OTHER_EDGES = ("netprobe.capture", "netprobe.replay", "netprobe.lab", "netprobe.backends",
               "netprobe.cli", "netprobe.api", "netprobe.nsenter")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_only_the_k8s_edge_imports_kubernetes() -> None:
    importers = {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                 if any(name.split(".")[0] == "kubernetes" for name in _imports(path))}
    assert importers and all(path.startswith("k8s/") for path in importers), importers


def test_the_k8s_edge_imports_no_other_edge() -> None:
    for path in (PACKAGE / "k8s").glob("*.py"):
        bad = {name for name in _imports(path) if name.startswith(OTHER_EDGES)}
        assert not bad, (path.name, bad)
