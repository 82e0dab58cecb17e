"""The public API is what __all__ says, sorted, and every name resolves."""

from __future__ import annotations

import netprobe


def test_exported_members() -> None:
    assert netprobe.__all__ == sorted(netprobe.__all__)
    for name in netprobe.__all__:
        assert getattr(netprobe, name) is not None


def test_analysis_exports() -> None:
    from netprobe import analysis

    assert analysis.__all__ == sorted(analysis.__all__)
    assert "dissect" in analysis.__all__ and "Dissection" in analysis.__all__
    for name in analysis.__all__:
        assert getattr(analysis, name) is not None


def test_cli_starts_without_the_heavy_imports() -> None:
    import subprocess
    import sys
    code = ("import sys, netprobe.cli; "
            "print(sorted(m for m in ('scapy', 'kubernetes', 'matplotlib', 'pyshark') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
