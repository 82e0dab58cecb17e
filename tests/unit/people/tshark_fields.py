"""tshark as the independent reader of netprobe's pcapng (test helper)."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="needs tshark")


@functools.cache
def comment_field() -> str:
    """The packet-comment field of this tshark: `frame.comment` (3.6+) or `pkt_comment` (older)."""
    assert TSHARK is not None
    fields = subprocess.run([TSHARK, "-G", "fields"], capture_output=True, text=True,
                            check=True, timeout=60).stdout
    names = {line.split("\t")[2] for line in fields.splitlines() if line.count("\t") >= 2}
    for name in ("frame.comment", "pkt_comment"):
        if name in names:
            return name
    raise AssertionError("this tshark has no packet comment field")


def rows(path: Path, *fields: str) -> list[list[str]]:
    """One list of field values per frame; fails if tshark reports any error."""
    assert TSHARK is not None
    cmd = [TSHARK, "-n", "-r", str(path), "-T", "fields", "-E", "separator=\t",
           "-E", "aggregator=|"]
    for field in fields:
        cmd += ["-e", field]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    errors = [line for line in done.stderr.splitlines() if "Running as user" not in line]
    assert done.returncode == 0 and not errors, done.stderr
    return [line.split("\t") for line in done.stdout.splitlines()]


def count(path: Path) -> int:
    """Frames tshark reads in `path`."""
    return len(rows(path, "frame.number"))
