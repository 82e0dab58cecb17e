"""`netprobe trace apiservice` and `trace kubelet` against a live API server (the kmock
emulator, real HTTP): their objects come from the API, the static checks run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from netprobe.lab import objects, pki, scenarios

from .conftest import Cluster
from .test_trace_pods import KUBECONFIG


def _run(kubeconfig: Path, *args: str, command: str = "apiservice"
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netprobe", "trace", command, *args,
                           "--kubeconfig", str(kubeconfig), "--static", "-o", "json"],
                          capture_output=True, text=True, timeout=60)


def _serve(cluster: Cluster, scenario: str, tmp_path: Path) -> Path:
    """The API serves lab SCENARIO's objects; returns a kubeconfig for it."""
    plan = scenarios.get(scenario).build()
    pki.write_pki(plan, tmp_path / "pki")
    ca = (tmp_path / "pki" / pki.CA_BUNDLE).read_bytes()
    cluster.add(*objects.build_list(plan, ca, ca, time.time())["items"])
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG.format(url=cluster.url))
    return kubeconfig


def test_live_apiservices_are_found_and_checked(cluster: Cluster, tmp_path: Path) -> None:
    kubeconfig = _serve(cluster, "apiservice-no-endpoints", tmp_path)

    done = _run(kubeconfig)
    assert done.returncode == 1, done.stderr  # an error finding: no ready endpoint
    (report,) = json.loads(done.stdout)["results"]
    assert report["configuration"] == "apiservice/v1beta1.metrics.k8s.io"
    assert report["target"] == "https://10.96.140.21:443/apis/metrics.k8s.io/v1beta1"
    assert "endpoints-not-ready" in {finding["code"] for finding in report["findings"]}

    missing = _run(kubeconfig, "v1beta1.custom.metrics.k8s.io")
    assert missing.returncode == 2
    assert "v1beta1.metrics.k8s.io" in missing.stderr  # the message lists what exists


def test_live_kubelets_are_found_at_the_address_the_apiserver_prefers(cluster: Cluster,
                                                                      tmp_path: Path) -> None:
    kubeconfig = _serve(cluster, "kubelet-ok", tmp_path)

    done = _run(kubeconfig, command="kubelet")
    assert done.returncode == 0, done.stderr
    targets = {r["webhook"]: r["target"] for r in json.loads(done.stdout)["results"]}
    # kubeadm's kube-apiserver prefers InternalIP (its static pod, read from the API)
    assert targets == {"control-plane-1": "https://10.0.0.10:10250/healthz",
                       "worker-1": "https://10.0.1.11:10250/healthz",
                       "worker-2": "https://10.0.2.12:10250/healthz"}
    hostname = _run(kubeconfig, "worker-1", "--kubelet-preferred-address-types", "Hostname",
                    command="kubelet")
    (result,) = json.loads(hostname.stdout)["results"]
    assert result["target"] == "https://worker-1:10250/healthz"
