"""LiveSource reads the webhook path over real HTTP and maps failures once."""

from __future__ import annotations

import socket
from pathlib import Path

import kmock
import kubernetes_validate
import pytest

from netprobe.core import errors
from netprobe.core.model import ProxyMode
from netprobe.k8s.client import Api
from netprobe.k8s.source import LiveSource
from netprobe.lab import objects, pki, scenarios
from netprobe.trace import discovery

from .conftest import Cluster, b64, status

K8S_VERSION = "1.31.0"


def _crd(name: str, strategy: str) -> dict:
    group, plural = name.split(".", 1)[1], name.split(".", 1)[0]
    conversion: dict = {"strategy": strategy}
    if strategy == "Webhook":
        conversion["webhook"] = {"conversionReviewVersions": ["v1"], "clientConfig": {
            "service": {"namespace": "cert-manager", "name": "cert-manager-webhook",
                        "path": "/convert", "port": 443}, "caBundle": b64(b"-----BEGIN...")}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": name},
        "spec": {"group": group, "scope": "Namespaced", "conversion": conversion,
                 "names": {"plural": plural, "singular": plural[:-1], "kind": plural.title()[:-1],
                           "listKind": plural.title()[:-1] + "List"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                     "openAPIV3Schema": {"type": "object",
                                         "x-kubernetes-preserve-unknown-fields": True}}}]},
    }


def _tls_secret() -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "cert-manager-webhook-tls", "namespace": "cert-manager"},
            "data": {"tls.crt": b64(b"CERT"), "tls.key": b64(b"PRIVATE KEY"),
                     "ca.crt": b64(b"CA")}}


@pytest.fixture(scope="module")
def listing(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The lab's `ok` scenario as objects, plus CRDs and a TLS Secret; all schema-valid."""
    plan = scenarios.get("ok").build()
    directory: Path = tmp_path_factory.mktemp("pki")
    pki.write_pki(plan, directory)
    items = objects.build_list(plan, (directory / pki.CA_BUNDLE).read_bytes(),
                                (directory / pki.SIGNER_CA).read_bytes(), 1_790_000_000.0)["items"]
    items += [_crd("certificates.cert-manager.io", "Webhook"),
              _crd("widgets.example.com", "None"), _tls_secret()]
    for item in items:
        kubernetes_validate.validate(item, K8S_VERSION, strict=True)
    return items


@pytest.fixture
def served(cluster: Cluster, listing: list[dict]) -> list[dict]:
    cluster.add(*listing)
    return listing


def _kinds(objects: list[dict]) -> list[str]:
    return sorted(obj["kind"] for obj in objects)


def test_objects_come_back_as_kubectl_dicts(api: Api, served: list[dict]) -> None:
    objects = LiveSource(api).objects()
    expected = [item for item in served if item["kind"] != "Deployment"
                and item["metadata"]["name"] != "widgets.example.com"]
    assert _kinds(objects) == _kinds(expected)
    for obj in objects:
        assert obj["apiVersion"] and obj["kind"]
        assert isinstance(obj, dict)
    by_name = {(obj["kind"], obj["metadata"]["name"]): obj for obj in objects}
    for item in expected:
        got = by_name[item["kind"], item["metadata"]["name"]]
        if item["kind"] != "Secret":
            assert got == item  # as the server sent it: caBundle still base64, nothing lost


def test_ca_bundle_and_conversion_webhook_are_kept(api: Api, served: list[dict]) -> None:
    objects = LiveSource(api).objects()
    webhook = next(obj for obj in objects if obj["kind"] == "ValidatingWebhookConfiguration")
    sent = next(item for item in served if item["kind"] == "ValidatingWebhookConfiguration")
    assert webhook["webhooks"][0]["clientConfig"]["caBundle"] == \
        sent["webhooks"][0]["clientConfig"]["caBundle"]
    crds = [obj["metadata"]["name"] for obj in objects if obj["kind"] == "CustomResourceDefinition"]
    assert crds == ["certificates.cert-manager.io"]


def test_secrets_keep_public_certificates_only(api: Api, served: list[dict]) -> None:
    secrets = {obj["metadata"]["name"]: obj for obj in LiveSource(api).objects()
               if obj["kind"] == "Secret"}
    assert set(secrets["cert-manager-webhook-tls"]["data"]) == {"tls.crt", "ca.crt"}
    assert set(secrets["cert-manager-webhook-ca"]["data"]) == {"ca.crt"}


def test_namespaces_limit_namespaced_kinds(cluster: Cluster, api: Api,
                                           served: list[dict]) -> None:
    objects = LiveSource(api).objects({"default"})
    kinds = set(_kinds(objects))
    assert {"Service", "EndpointSlice", "Pod", "Secret"}.isdisjoint(kinds)
    assert {"ValidatingWebhookConfiguration", "Node"} <= kinds
    paths = {request.url.path for request in cluster.requests(kmock.action.LIST)}
    assert "/api/v1/namespaces/default/pods" in paths
    assert "/api/v1/pods" not in paths


def test_forbidden_secrets_are_skipped_and_noted(cluster: Cluster, api: Api,
                                                 served: list[dict]) -> None:
    message = ('secrets is forbidden: User "alice" cannot list resource "secrets" in API '
               'group "" at the cluster scope')
    cluster.emulator["list", kmock.resource("", "v1", "secrets")] << 403 << \
        status(403, "Forbidden", message)
    source = LiveSource(api)
    objects = source.objects()
    assert "Secret" not in _kinds(objects) and "Pod" in _kinds(objects)
    assert len(source.notes) == 1
    assert source.notes[0].startswith("skipped Secrets in all namespaces: not readable")
    assert message in source.notes[0]


def test_forbidden_services_stop_the_reading(cluster: Cluster, api: Api) -> None:
    message = ('services is forbidden: User "alice" cannot list resource "services" in API '
               'group "" at the cluster scope')
    cluster.emulator["list", kmock.resource("", "v1", "services")] << 403 << \
        status(403, "Forbidden", message)
    with pytest.raises(errors.K8sForbidden) as caught:
        LiveSource(api).objects()
    assert str(caught.value) == f"listing services in all namespaces: forbidden: {message}"
    assert (caught.value.status, caught.value.reason, caught.value.exit_code) == \
        (403, "Forbidden", 2)


def test_unauthorized_is_forbidden(cluster: Cluster, api: Api) -> None:
    cluster.emulator["list", kmock.resource("admissionregistration.k8s.io", "v1",
                                            "validatingwebhookconfigurations")] << 401 << \
        status(401, "Unauthorized", "Unauthorized")
    with pytest.raises(errors.K8sForbidden) as caught:
        LiveSource(api).objects()
    assert str(caught.value) == (
        "listing validatingwebhookconfigurations (cluster-wide): unauthorized: the API server "
        f"at {cluster.url} rejected the credentials (Unauthorized)")
    assert (caught.value.status, caught.value.exit_code) == (401, 2)


def test_a_kind_not_served_is_not_found(cluster: Cluster, api: Api) -> None:
    cluster.emulator["list", kmock.resource("discovery.k8s.io", "v1", "endpointslices")] << \
        404 << status(404, "NotFound", "the server could not find the requested resource")
    with pytest.raises(errors.K8sNotFound) as caught:
        LiveSource(api).objects()
    assert str(caught.value) == ("listing endpointslices in all namespaces: not found: "
                                 "the server could not find the requested resource")
    assert (caught.value.status, caught.value.exit_code, caught.value.retryable) == \
        (404, 3, False)


def test_a_server_error_is_retryable(cluster: Cluster, api: Api) -> None:
    cluster.emulator["list", kmock.resource("", "v1", "pods")] << 500 << \
        status(500, "InternalError", "etcdserver: request timed out")
    with pytest.raises(errors.K8sError) as caught:
        LiveSource(api).objects()
    assert type(caught.value) is errors.K8sError
    assert str(caught.value) == ("listing pods in all namespaces: 500 Internal Server Error: "
                                 "etcdserver: request timed out")
    assert (caught.value.status, caught.value.exit_code, caught.value.retryable) == \
        (500, 3, True)


def test_an_unreachable_server_is_a_retryable_error() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = Api.from_host(f"http://127.0.0.1:{port}", request_timeout=1.0)
    try:
        with pytest.raises(errors.K8sError) as caught:
            LiveSource(api).objects()
    finally:
        api.close()
    assert str(caught.value) == f"reaching the API server at http://127.0.0.1:{port}: " \
                                "connection refused"
    assert type(caught.value) is errors.K8sError
    assert (caught.value.reason, caught.value.exit_code, caught.value.retryable) == \
        ("ECONNREFUSED", 3, True)


def test_kube_proxys_mode_is_read_from_its_config_map(api: Api, served: list[dict]) -> None:
    objects = LiveSource(api).objects()
    [config_map] = [o for o in objects if o["kind"] == "ConfigMap"]
    assert (config_map["metadata"]["namespace"], config_map["metadata"]["name"]) == \
        ("kube-system", "kube-proxy")
    proxy = discovery.kube_proxy(objects)
    assert (proxy.mode, proxy.cluster_cidr) == (ProxyMode.IPTABLES, "10.244.0.0/16")


def test_an_unreadable_kube_proxy_config_is_noted(cluster: Cluster, api: Api,
                                                  served: list[dict]) -> None:
    message = ('configmaps "kube-proxy" is forbidden: User "alice" cannot get resource '
               '"configmaps" in API group "" in the namespace "kube-system"')
    cluster.emulator["get", kmock.resource("", "v1", "configmaps")] << 403 << \
        status(403, "Forbidden", message)
    source = LiveSource(api)
    objects = source.objects()
    assert "ConfigMap" not in _kinds(objects) and "Pod" in _kinds(objects)
    assert any(note.startswith("skipped ConfigMap kube-system/kube-proxy: not readable")
               and "mode is unknown" in note for note in source.notes)
    assert discovery.kube_proxy(objects).mode is None


def test_no_kube_proxy_config_is_no_mode(cluster: Cluster, api: Api) -> None:
    source = LiveSource(api)
    assert [o for o in source.objects() if o["kind"] == "ConfigMap"] == []
    assert source.notes == []


@pytest.fixture(scope="module")
def metrics_server(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The lab's metrics-server (APIService v1beta1.metrics.k8s.io), schema-valid."""
    plan = scenarios.get("apiservice-ok").build()
    directory: Path = tmp_path_factory.mktemp("pki")
    pki.write_pki(plan, directory)
    ca = (directory / pki.CA_BUNDLE).read_bytes()
    items = objects.build_list(plan, ca, ca, 1_790_000_000.0)["items"]
    for item in items:
        kubernetes_validate.validate(item, K8S_VERSION, strict=True)
    return items


def test_apiservices_are_read_for_trace_apiservice(cluster: Cluster, api: Api,
                                                   metrics_server: list[dict]) -> None:
    cluster.add(*metrics_server)
    read = [o for o in LiveSource(api).objects() if o["kind"] == "APIService"]
    assert [o["metadata"]["name"] for o in read] == ["v1beta1.metrics.k8s.io"]
    assert read[0]["spec"]["service"] == {"name": "metrics-server", "namespace": "kube-system",
                                          "port": 443}


def test_apiservices_that_cannot_be_read_are_noted(cluster: Cluster, api: Api,
                                                   served: list[dict]) -> None:
    cluster.emulator["list", kmock.resource("apiregistration.k8s.io", "v1", "apiservices")] << \
        403 << status(403, "Forbidden", 'apiservices.apiregistration.k8s.io is forbidden')
    source = LiveSource(api)
    found = source.objects()
    assert "APIService" not in _kinds(found) and "ValidatingWebhookConfiguration" in _kinds(found)
    assert any(note.startswith("skipped APIServices: not readable") for note in source.notes)
