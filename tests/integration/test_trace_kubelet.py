"""`netprobe trace kubelet` on the lab: the apiserver's call to a node's kubelet (what
`kubectl logs` and `exec` need), to the address kubeadm's kube-apiserver prefers
(--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname, read from its static
pod in the snapshot) on the port the Node publishes (status.daemonEndpoints)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import story
from tests.integration.wire import trace_scenario

pytestmark = pytest.mark.lab

URL = "https://10.0.1.11:10250/healthz"
# scenario: (class, cause, culprit hop, the apiserver's message)
EXPECTED = {
    "kubelet-ok": ("ok", "ok", None, None),
    "kubelet-firewalled": ("io-timeout", "dropped-in-network", "network",
                           f'Get "{URL}": dial tcp 10.0.1.11:10250: i/o timeout'),
    "kubelet-no-serving-cert": ("tls-internal-error", "no-serving-cert", "webhook",
                                f'Get "{URL}": remote error: tls: internal error'),
    "kubelet-self-signed": ("x509-unknown-authority", "unknown-issuer", "webhook",
                            f'Get "{URL}": tls: failed to verify certificate: x509: '
                            "certificate signed by unknown authority"),
    "kubelet-external-ip": ("io-timeout", "dropped-in-network", "network",
                            'Get "https://203.0.113.11:10250/healthz": dial tcp '
                            "203.0.113.11:10250: i/o timeout"),
    "kubelet-down": ("connection-refused", "nothing-listening", "webhook",
                     f'Get "{URL}": dial tcp 10.0.1.11:10250: connect: connection refused'),
}


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_trace_kubelet_names_the_culprit(scenario: str, tmp_path: Path) -> None:
    done = trace_scenario(tmp_path, scenario, "kubelet", "worker-1")
    cls, cause, hop, message = EXPECTED[scenario]
    assert done.returncode == (0 if cls == "ok" else 1), done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert result["target_kind"] == "kubelet"
    assert result["target"] == (URL if scenario != "kubelet-external-ip"
                                else "https://203.0.113.11:10250/healthz")
    codes = {finding["code"] for finding in result["findings"]}
    assert ("kubelet-external-address" in codes) == (scenario == "kubelet-external-ip")
    assert (result["verdict"]["class"], result["verdict"]["cause"]) == (cls, cause)
    assert (result["verdict"]["culprit"] or {}).get("hop") == hop
    assert result["apiserver_error"] == message
    if message:
        assert result["client_error"] == f"Error from server: {message}"
    hops = {h["id"]: h for h in result["hops"]}
    if cls != "ok":  # the node's own agent captured: worker-1's side is observed
        assert hops["worker-ingress"]["status"] in ("ok", "not-seen")
    story.check(result)


def test_a_verifying_apiserver_trusts_the_kubelets_its_ca_signed(tmp_path: Path) -> None:
    """kubelet-self-signed: kube-apiserver's static pod names the lab's kubelet CA file;
    worker-2's kubelet (serverTLSBootstrap, signed by that CA) verifies, worker-1's own
    self-signed certificate does not."""
    done = trace_scenario(tmp_path, "kubelet-self-signed", "kubelet")
    assert done.returncode == 1, done.stderr
    results = {r["webhook"]: r for r in json.loads(done.stdout)["results"]}
    assert results["worker-2"]["verdict"]["class"] == "ok"
    assert results["worker-1"]["verdict"]["class"] == "x509-unknown-authority"
    for result in results.values():
        assert not result["replay"]["target"]["insecure_skip_verify"]
        story.check(result)
