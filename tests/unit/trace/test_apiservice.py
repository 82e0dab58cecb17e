"""The aggregated API target kind: APIServices, kube-aggregator's availability check and its
words (kube-aggregator pkg/controllers/status/available_controller.go, v1.31)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from netprobe.core.model import ApiserverError, CallKind, Failure
from netprobe.core.verdicts import VerdictClass
from netprobe.lab import objects, pki, scenarios
from netprobe.replay import apiserver
from netprobe.trace import checks, discovery
from netprobe.trace.pipeline import discover, static_checks
from netprobe.trace.targets.apiservice import APISERVICES

LOCAL = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
         "metadata": {"name": "v1.apps"}, "spec": {"group": "apps", "version": "v1",
                                                    "groupPriorityMinimum": 17800,
                                                    "versionPriority": 15}}


@pytest.fixture(scope="module")
def metrics_server(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    plan = scenarios.get("apiservice-ok").build()
    directory = tmp_path_factory.mktemp("pki")
    pki.write_pki(plan, directory)
    ca = (directory / pki.CA_BUNDLE).read_bytes()
    return [*objects.build_list(plan, ca, ca, time.time())["items"], LOCAL]


def test_local_apiservices_make_no_call(metrics_server) -> None:
    (path,) = discover(APISERVICES, metrics_server, None, None)
    assert (path.configuration, path.name, path.kind) == (
        "apiservice/v1beta1.metrics.k8s.io", "v1beta1.metrics.k8s.io", CallKind.DISCOVERY)
    assert path.insecure_skip_verify and path.timeout_seconds == 5.0
    assert (path.service_namespace, path.service_name, path.service_port) == (
        "kube-system", "metrics-server", 443)


def test_the_check_gets_the_discovery_path_on_the_cluster_ip(metrics_server) -> None:
    (path,) = discover(APISERVICES, metrics_server, "metrics-server", None)
    target = APISERVICES.target(path)
    assert target.url == "https://10.96.140.21:443/apis/metrics.k8s.io/v1beta1"
    assert target.host == "metrics-server.kube-system.svc"  # the TLS ServerName
    assert target.insecure_skip_verify and target.kind is CallKind.DISCOVERY


def test_an_unknown_name_lists_the_apiservices(metrics_server) -> None:
    from netprobe.core import errors

    with pytest.raises(errors.UsageError, match="v1beta1.metrics.k8s.io"):
        discover(APISERVICES, metrics_server, "v1beta1.custom.metrics.k8s.io", None)


def test_static_checks_skip_webhook_only_findings(metrics_server) -> None:
    (report,) = static_checks(metrics_server, kind=APISERVICES)
    codes = {finding.code for finding in report.findings}
    assert "timeout-masks-errors" not in codes  # the aggregator's 5 s is fixed
    assert "empty-ca-bundle" not in codes  # insecureSkipTLSVerify needs none


def _target(metrics_server):
    (path,) = discover(APISERVICES, metrics_server, None, None)
    return APISERVICES.target(path)


URL = "https://10.96.140.21:443/apis/metrics.k8s.io/v1beta1"


@pytest.mark.parametrize("failure, detail, message", [
    (Failure.DIAL_STALL, "", f'failing or missing response from {URL}: Get "{URL}": context '
     "deadline exceeded (Client.Timeout exceeded while awaiting headers)"),
    (Failure.REFUSED, "", f'failing or missing response from {URL}: Get "{URL}": dial tcp '
     "10.96.140.21:443: connect: connection refused"),
    (Failure.HTTP_STATUS, f"bad status from {URL}: 401",
     f"failing or missing response from {URL}: bad status from {URL}: 401"),
    (Failure.NO_SERVICE, "metrics-server",
     'service/metrics-server in "kube-system" is not present'),
])
def test_the_aggregators_own_words(metrics_server, failure, detail, message) -> None:
    error = apiserver.predict(_target(metrics_server), failure, dialed=("10.96.140.21", 443),
                              detail=detail)
    assert error.message == message
    assert "the server is currently unable to handle the request" in error.client_message


def test_finish_sets_the_apiservice_condition_beside_the_verdict(metrics_server) -> None:
    from netprobe.core.model import Culprit, Phase, TraceResult, Verdict

    items = [dict(item) for item in metrics_server]
    for item in items:
        if item["kind"] == "APIService" and item["metadata"]["name"].startswith("v1beta1"):
            item["status"] = {"conditions": [{
                "type": "Available", "status": "False", "reason": "FailedDiscoveryCheck",
                "message": "failing or missing response from ..."}]}
    (path,) = discover(APISERVICES, items, None, None)
    refused = Verdict(VerdictClass.NO_ENDPOINTS, Phase.TCP, "kube-proxy-reject", "", "")
    result = TraceResult("t", path.configuration, path.name, None, refused,
                         Culprit("service", None), ApiserverError("dial ..."), (), ())
    done = APISERVICES.finish(path, result)
    assert any("Available=False (FailedDiscoveryCheck" in note and "the replay agrees" in note
               for note in done.notes)
    assert done.apiserver_error is not None and done.apiserver_error.message == (
        'endpoints for service/metrics-server in "kube-system" have no addresses with port '
        'name "https"')
    ok = dataclasses.replace(result, verdict=Verdict(VerdictClass.OK, None, "ok", "", ""))
    assert any("the replay disagrees" in note for note in APISERVICES.finish(path, ok).notes)


def test_a_ca_bundle_without_insecure_skip_is_checked(metrics_server) -> None:
    items = [dict(item) for item in metrics_server]
    for item in items:
        if item["kind"] == "APIService" and item["spec"].get("service"):
            spec = dict(item["spec"])
            spec.pop("insecureSkipTLSVerify")
            spec["caBundle"] = ""
            item["spec"] = spec
    (path,) = discover(APISERVICES, items, None, None)
    codes = {f.code for f in checks.run_checks(path, discovery.nodes(items), items)}
    assert "empty-ca-bundle" in codes
