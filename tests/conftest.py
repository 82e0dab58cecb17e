"""Shared test configuration: the `lab` marker needs root and the system tools."""

from __future__ import annotations

import os
import shutil

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = [tool for tool in ("ip", "iptables-restore", "tcpdump", "tshark")
               if shutil.which(tool) is None]
    reason = None
    if os.geteuid() != 0:
        reason = "needs root for network namespaces (run 'sudo make test')"
    elif missing:
        reason = f"needs {', '.join(missing)} (run 'sudo make setup')"
    if reason is None:
        return
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
