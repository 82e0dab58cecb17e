"""From API objects to webhook paths, and the static checks (lab snapshots as realistic input)."""

from __future__ import annotations

import base64
import copy
from pathlib import Path

import pytest
import yaml

from netprobe.core import errors
from netprobe.core.model import CallKind
from netprobe.k8s import files as snapshot
from netprobe.lab import objects as lab_snapshot
from netprobe.lab import pki, scenarios
from netprobe.trace import checks, discovery
from netprobe.trace.targets.webhook import WEBHOOKS

CA = pki.issue(pki.make_authority("ca"), "x", ["x"], []).cert


def _objects(scenario: str, signer: bytes = CA) -> list[dict]:
    return lab_snapshot.build_list(scenarios.get(scenario).build(), CA, signer, 0.0)["items"]


def _resolved(objects: list[dict], name: str | None = None) -> list[discovery.CallPath]:
    return [discovery.resolve(objects, p)
            for p in discovery.select(WEBHOOKS.paths(objects), name, None)]


def _codes(objects: list[dict]) -> set[str]:
    path = _resolved(objects, "validating/cert-manager-webhook")[0]
    return {f.code for f in checks.run_checks(path, discovery.nodes(objects), objects)}


def test_paths_resolve_named_target_port_through_the_pod() -> None:
    paths = _resolved(_objects("ok"))
    assert {p.path for p in paths} == {"/validate", "/mutate"}
    path = paths[0]
    assert (path.cluster_ip, path.target_port, path.service_port) == ("10.96.20.99", "https", 443)
    assert {(e.ip, e.port, e.node) for e in path.endpoints} == {
        ("10.244.1.5", 10250, "worker-1"), ("10.244.2.6", 10250, "worker-2")}
    assert path.ca_bundle == CA and path.host == "cert-manager-webhook.cert-manager.svc"


def test_selection_by_webhook_service_or_configuration() -> None:
    objects = _objects("ok")
    every = WEBHOOKS.paths(objects)
    assert len(discovery.select(every, "cert-manager-webhook", None)) == 2
    assert len(discovery.select(every, "validating/cert-manager-webhook", None)) == 1
    assert len(discovery.select(every, "webhook.cert-manager.io", "cert-manager")) == 2


def test_webhook_not_found_lists_what_exists() -> None:
    with pytest.raises(errors.UsageError, match="not found; there are: mutating/cert-manager"):
        discovery.select(WEBHOOKS.paths(_objects("ok")), "nope", None)


def test_conversion_and_url_webhooks() -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "crontabs.stable.example.com"},
           "spec": {"group": "stable.example.com", "names": {"kind": "CronTab"},
                    "versions": [{"name": "v1", "storage": True}],
                    "conversion": {"strategy": "Webhook", "webhook": {"clientConfig": {
                        "service": {"namespace": "ns", "name": "conv", "path": "/convert"}}}}}}
    config = {"apiVersion": "admissionregistration.k8s.io/v1",
              "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "ext"},
              "webhooks": [{"name": "ext.example.com",
                            "clientConfig": {"url": "https://hooks.example.com:8443/check"}}]}
    paths = WEBHOOKS.paths([crd, config])
    kinds = {p.configuration: p for p in paths}
    conversion = kinds["crd/crontabs.stable.example.com"]
    assert conversion.kind is CallKind.CONVERSION and conversion.timeout_seconds == 30
    assert conversion.crd_gvk == "stable.example.com/v1, Kind=CronTab"
    assert kinds["validating/ext"].host == "hooks.example.com"


@pytest.mark.parametrize("scenario,code", [
    ("no-endpoints", "endpoints-not-ready"), ("no-endpoints", "probe-port-mismatch"),
    ("io-timeout", "gke-firewall-port"), ("fargate-kubelet", "fargate-port-10250"),
    ("eks-custom-cni", "eks-overlay-pod-ip"), ("service-not-found", "service-not-found"),
    ("ok", "timeout-masks-errors"), ("fargate-kubelet", "managed-control-plane")])
def test_static_checks(scenario: str, code: str) -> None:
    assert code in _codes(_objects(scenario))


def test_healthy_cluster_has_no_errors() -> None:
    objects = _objects("ok")
    path = _resolved(objects, "validating/cert-manager-webhook")[0]
    found = checks.run_checks(path, discovery.nodes(objects), objects)
    assert [f.code for f in found if f.severity.value == "error"] == []


def test_ca_bundle_checks() -> None:
    other = pki.issue(pki.make_authority("other"), "x", ["x"], []).cert
    assert "ca-bundle-mismatch" in _codes(_objects("ok", signer=other))
    objects = copy.deepcopy(_objects("ok"))
    objects[0]["webhooks"][0]["clientConfig"]["caBundle"] = ""
    assert "empty-ca-bundle" in _codes(objects)


def test_hostnetwork_on_the_kubelet_port() -> None:
    objects = copy.deepcopy(_objects("hostnetwork-10260"))
    for item in objects:
        if item["kind"] == "EndpointSlice":
            item["ports"][0]["port"] = 10250
    assert "hostnetwork-kubelet-port" in _codes(objects)


def test_named_target_port_that_resolves_nowhere() -> None:
    objects = copy.deepcopy(_objects("connection-refused"))
    for item in objects:
        if item["kind"] == "EndpointSlice":
            item["ports"][0]["name"] = "other"
        if item["kind"] == "Pod" and item["metadata"]["namespace"] == "cert-manager":
            item["spec"]["containers"][0]["ports"][0]["name"] = "not-https"
    assert "target-port-unresolved" in _codes(objects)


def test_ipv6_cluster_ip_is_carried() -> None:
    objects = copy.deepcopy(_objects("connection-refused"))
    for item in objects:
        if item["kind"] == "Service":
            item["spec"]["clusterIP"] = "fd00:10:96::20"
            item["spec"]["clusterIPs"] = ["fd00:10:96::20"]
    assert _resolved(objects)[0].cluster_ip == "fd00:10:96::20"


def test_snapshot_loader_reads_lists_multidoc_json_and_dirs(tmp_path: Path) -> None:
    objects = _objects("ok")
    listing = {"apiVersion": "v1", "kind": "List", "items": objects}
    (tmp_path / "list.yaml").write_text(yaml.safe_dump(listing))
    (tmp_path / "multi.yml").write_text(yaml.safe_dump_all(objects[:3]))
    import json
    (tmp_path / "one.json").write_text(json.dumps(objects[0]))
    assert len(snapshot.load(tmp_path / "list.yaml")) == len(objects)
    assert len(snapshot.load(tmp_path)) == len(objects) + 4


@pytest.mark.parametrize("text,needle", [
    ("kind: List\nitems: [1, 2", "line"), ("{\"kind\": ", "line 1"),
    ("- just\n- a list\n", "expected Kubernetes objects"), ("hello: world\n", "without kind"),
    ("", "no Kubernetes objects")])
def test_malformed_snapshots_are_usage_errors(tmp_path: Path, text: str, needle: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(errors.UsageError, match=needle):
        snapshot.load(bad)


def test_ca_bundle_is_decoded() -> None:
    objects = _objects("ok")
    assert base64.b64decode(objects[0]["webhooks"][0]["clientConfig"]["caBundle"]) == CA


# --- IP families ------------------------------------------------------------------------

def _family_objects(scenario: str, family) -> list[dict]:
    from netprobe.lab.lifecycle import build_plan

    return lab_snapshot.build_list(build_plan(scenario, ip_family=family), CA, CA, 0.0)["items"]


def test_a_dual_stack_call_dials_the_primary_cluster_ip_and_its_family_s_endpoints() -> None:
    from netprobe.lab.topology import IpFamily

    path = _resolved(_family_objects("ok", IpFamily.DUAL), "validating/cert-manager-webhook")[0]
    assert path.cluster_ip == "10.96.20.99"
    assert sorted(e.ip for e in path.endpoints) == ["10.244.1.5", "10.244.2.6"]


def test_an_ipv6_primary_service_dials_ipv6_and_its_ipv6_slice() -> None:
    """`spec.clusterIP` is what kube-apiserver's service resolver dials: a Service created
    with ipFamilies [IPv6, IPv4] has its IPv6 ClusterIP there."""
    from netprobe.lab.topology import IpFamily

    objects = copy.deepcopy(_family_objects("ok", IpFamily.DUAL))
    service = next(o for o in objects if o["kind"] == "Service")
    service["spec"]["ipFamilies"].reverse()
    service["spec"]["clusterIPs"].reverse()
    service["spec"]["clusterIP"] = service["spec"]["clusterIPs"][0]
    path = _resolved(objects, "validating/cert-manager-webhook")[0]
    assert path.cluster_ip == "fd00:10:96::1463"
    assert sorted(e.ip for e in path.endpoints) == ["fd00:10:244:1::5", "fd00:10:244:2::6"]
    assert {e.node for e in path.endpoints} == {"worker-1", "worker-2"}


def test_a_single_stack_ipv6_call() -> None:
    from netprobe.lab.topology import IpFamily

    objects = _family_objects("ok", IpFamily.IPV6)
    path = _resolved(objects, "validating/cert-manager-webhook")[0]
    assert path.cluster_ip == "fd00:10:96::1463" and path.target_port == "https"
    assert {(e.ip, e.port) for e in path.endpoints} == {("fd00:10:244:1::5", 10250),
                                                         ("fd00:10:244:2::6", 10250)}
    assert discovery.nodes(objects)["worker-1"].internal_ip == "fd00:10:0:1::11"


def test_a_dual_stack_node_s_internal_ip_is_its_first() -> None:
    from netprobe.lab.topology import IpFamily

    assert discovery.nodes(_family_objects("ok", IpFamily.DUAL))["worker-1"].internal_ip \
        == "10.0.1.11"


def test_the_eks_overlay_finding_holds_in_ipv6() -> None:
    from netprobe.lab.topology import IpFamily

    assert "eks-overlay-pod-ip" in _codes(_family_objects("eks-custom-cni", IpFamily.IPV6))
    assert "eks-overlay-pod-ip" not in _codes(_family_objects("ok", IpFamily.IPV6))


def test_slices_without_an_address_type_and_headless_services_keep_every_endpoint() -> None:
    assert discovery.address_type("None") is None
    assert discovery.address_type("fd00::1") == "IPv6"
    assert discovery.address_type("10.0.0.1") == "IPv4"
