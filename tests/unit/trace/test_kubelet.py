"""The kubelet target kind: the node address kube-apiserver dials for `kubectl logs`
(GetPreferredNodeAddress over --kubelet-preferred-address-types) and its port."""

from __future__ import annotations

import subprocess
import sys

import pytest

from netprobe.core.model import CallKind
from netprobe.trace import checks
from netprobe.trace.pipeline import discover
from netprobe.trace.targets.kubelet import Kubelets, preferred_types


def _node(name: str, port: int = 10250, **addresses: str) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"addresses": [{"type": kind, "address": value}
                                     for kind, value in addresses.items()],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}


def _apiserver(flag: str | None) -> dict:
    command = ["kube-apiserver", "--secure-port=6443"]
    if flag:
        command.append(f"--kubelet-preferred-address-types={flag}")
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "kube-apiserver-control-plane-1", "namespace": "kube-system"},
            "spec": {"containers": [{"name": "kube-apiserver", "command": command}]}}


NODE = _node("worker-1", Hostname="worker-1", InternalIP="10.0.1.11", ExternalIP="203.0.113.7")


@pytest.mark.parametrize("objects, preferred, url", [
    ([NODE], None, "https://worker-1:10250/healthz"),  # the default: Hostname first
    ([NODE, _apiserver("InternalIP,ExternalIP,Hostname")], None,
     "https://10.0.1.11:10250/healthz"),  # kubeadm's flag, read from the static pod
    ([NODE, _apiserver("InternalIP")], ("ExternalIP",), "https://203.0.113.7:10250/healthz"),
    ([_node("w", port=10255, InternalIP="fd00::11")], ("InternalIP",),
     "https://[fd00::11]:10255/healthz"),
])
def test_the_address_is_the_one_the_apiserver_prefers(objects, preferred, url) -> None:
    (path,) = discover(Kubelets(preferred), objects, None, None)
    assert path.url == url and path.kind is CallKind.KUBELET
    target = Kubelets(preferred).target(path)
    assert target.url == url and target.insecure_skip_verify


def test_an_ip_address_is_an_endpoint_on_its_node() -> None:
    (path,) = discover(Kubelets(("InternalIP",)), [NODE], "worker-1", None)
    (endpoint,) = path.endpoints
    assert (endpoint.ip, endpoint.port, endpoint.node, endpoint.host_network) == (
        "10.0.1.11", 10250, "worker-1", True)
    assert Kubelets(("InternalIP",)).target(path).resolve_ip == "10.0.1.11"


def test_a_hostname_is_resolved_on_the_replaying_node() -> None:
    (path,) = discover(Kubelets(), [NODE], None, None)
    assert path.endpoints == ()  # its address is only known once resolved
    assert Kubelets().target(path).resolve_ip is None


def test_the_flag_and_its_default() -> None:
    assert preferred_types([_apiserver(None)]) is None
    assert preferred_types([_apiserver("InternalIP,Hostname")]) == ("InternalIP", "Hostname")
    assert preferred_types([NODE]) is None  # no kube-apiserver pod: the default applies


def _verifying(ca_file: str) -> dict:
    pod = _apiserver("InternalIP")
    pod["spec"]["containers"][0]["command"].append(f"--kubelet-certificate-authority={ca_file}")
    return pod


PEM = (b"-----BEGIN CERTIFICATE-----\n"
       b"MIIBAzCBqqADAgECAgEBMAoGCCqGSM49BAMCMAAwHhcNMjQwMTAxMDAwMDAwWhcN\n"
       b"-----END CERTIFICATE-----\n")


def test_a_readable_kubelet_ca_makes_the_replay_verify(tmp_path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(PEM)
    objects = [NODE, _verifying(str(ca))]
    (path,) = discover(Kubelets(), objects, None, None)
    target = Kubelets().target(path)
    assert not target.insecure_skip_verify and target.ca_bundle == PEM
    assert "kubelet-ca-unread" not in {f.code for f in checks.run_checks(path, {}, objects)}
    # The command line's CA wins over the static pod's.
    (given,) = discover(Kubelets(None, b"other"), objects, None, None)
    assert given.ca_bundle == b"other"


def test_an_unreadable_kubelet_ca_is_said_and_not_verified(tmp_path) -> None:
    objects = [NODE, _verifying(str(tmp_path / "missing" / "ca.crt"))]
    (path,) = discover(Kubelets(), objects, None, None)
    assert Kubelets().target(path).insecure_skip_verify
    findings = {f.code: f for f in checks.run_checks(path, {}, objects)}
    assert "missing/ca.crt" in findings["kubelet-ca-unread"].message


@pytest.mark.parametrize("content, complaint", [(b"", "empty file"),
                                                (b"not pem\n", "PEM")])
def test_a_bad_kubelet_ca_file_is_refused(tmp_path, content: bytes, complaint: str) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(content)
    done = subprocess.run([sys.executable, "-m", "netprobe", "trace", "kubelet", "--snapshot",
                           str(tmp_path), "--kubelet-certificate-authority", str(ca),
                           "--static"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert complaint in done.stderr
