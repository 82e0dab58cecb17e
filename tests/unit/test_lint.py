"""The code base stays lint-clean: ruff and mypy, as configured in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUFF_PATHS = ("netprobe", "tests", "bench", "scripts", "setup.py")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.mark.timeout(300)
def test_ruff() -> None:
    proc = _run("ruff", "check", "--no-cache", *RUFF_PATHS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.timeout(300)
def test_mypy() -> None:
    proc = _run("mypy", "netprobe")  # its cache, .mypy_cache, is git-ignored
    assert proc.returncode == 0, proc.stdout + proc.stderr
