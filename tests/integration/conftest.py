"""Every lab test must leave no namespace behind; a leak fails the test that made it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest


def _leftovers() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith("np-")]


@pytest.fixture(autouse=True)
def no_leftover_namespaces(request: pytest.FixtureRequest) -> Iterator[None]:
    if "lab" not in request.keywords:
        yield
        return
    yield
    left = _leftovers()
    if left:
        from tests.integration.wire import run_cli
        run_cli("lab", "down", check=False)
        pytest.fail(f"the test left lab namespaces behind: {' '.join(left)}")
