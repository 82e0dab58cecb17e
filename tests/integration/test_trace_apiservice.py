"""`netprobe trace apiservice` on the lab: metrics-server behind APIService
v1beta1.metrics.k8s.io, as its components.yaml (v0.7) deploys it, in the states operators
meet (kube-aggregator's availability check as available_controller.go makes it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import story
from tests.integration.wire import trace_scenario

pytestmark = pytest.mark.lab

URL = "https://10.96.140.21:443/apis/metrics.k8s.io/v1beta1"
# scenario: (class, cause, culprit hop, start of the aggregator's message)
EXPECTED = {
    "apiservice-ok": ("ok", "ok", None, None),
    "apiservice-no-endpoints": ("no-endpoints", "kube-proxy-reject", "service",
                                'endpoints for service/metrics-server in "kube-system" have no '
                                'addresses with port name "https"'),
    "apiservice-firewalled": ("io-timeout", "gke-private-firewall", "network",
                              f'failing or missing response from {URL}: Get "{URL}": context '
                              "deadline exceeded (Client.Timeout exceeded"),
    "apiservice-ca-mismatch": ("x509-unknown-authority", "stale-ca-bundle", "webhook",
                               f'failing or missing response from {URL}: Get "{URL}": tls: '
                               "failed to verify certificate: x509: certificate signed by "
                               "unknown authority"),
}


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_trace_apiservice_names_the_culprit(scenario: str, tmp_path: Path) -> None:
    done = trace_scenario(tmp_path, scenario, "apiservice")
    cls, cause, hop, message = EXPECTED[scenario]
    assert done.returncode == (0 if cls == "ok" else 1), done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert result["target_kind"] == "apiservice"
    assert result["configuration"] == "apiservice/v1beta1.metrics.k8s.io"
    verdict = result["verdict"]
    assert (verdict["class"], verdict["cause"]) == (cls, cause), verdict
    assert (verdict["culprit"] or {}).get("hop") == hop
    if message is None:
        assert result["apiserver_error"] is None
    else:
        assert result["apiserver_error"].startswith(message), result["apiserver_error"]
    assert any("APIService v1beta1.metrics.k8s.io says Available=" in n for n in result["notes"])
    story.check(result)
