"""preflight says what RBAC or Pod Security would deny, before any pod is made."""

from __future__ import annotations

import kmock
import pytest

from netprobe.agents import pod as agents
from netprobe.core import errors
from netprobe.k8s.client import Api

from .conftest import NAMESPACE_PATH, SSAR, Cluster, status


def _namespace(labels: dict[str, str] | None) -> dict:
    meta: dict = {"name": "netprobe"}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


PRIVILEGED = {"pod-security.kubernetes.io/enforce": "privileged"}


def test_nothing_to_report(cluster: Cluster, api: Api) -> None:
    cluster.add(_namespace(PRIVILEGED))
    assert agents.preflight(api, "netprobe") == []
    reviews = [request.data["spec"]["resourceAttributes"]
               for request in cluster.requests(kmock.action.CREATE, SSAR)]
    asked = {(item["verb"], item["resource"], item["subresource"], item["namespace"])
             for item in reviews}
    assert asked == {(verb, "pods", "", "netprobe")
                     for verb in ("create", "get", "list", "watch", "delete")} | \
        {("get", "pods", "log", "netprobe")}


def test_rbac_denials_are_listed(cluster: Cluster, api: Api) -> None:
    cluster.add(_namespace(PRIVILEGED))
    cluster.denied |= {("delete", "pods", ""), ("get", "pods", "log")}
    assert agents.preflight(api, "netprobe") == [
        "RBAC: cannot delete pods in namespace netprobe (no RBAC policy matched)",
        "RBAC: cannot get pods/log in namespace netprobe (no RBAC policy matched)",
    ]


@pytest.mark.parametrize("labels, shown", [
    ({"pod-security.kubernetes.io/enforce": "baseline"}, "is 'baseline'"),
    ({"pod-security.kubernetes.io/enforce": "restricted",
      "pod-security.kubernetes.io/warn": "privileged"}, "is 'restricted'"),
])
def test_a_namespace_that_is_not_privileged(cluster: Cluster, api: Api, labels, shown) -> None:
    cluster.add(_namespace(labels))
    assert agents.preflight(api, "netprobe") == [
        f"Pod Security: namespace netprobe label pod-security.kubernetes.io/enforce {shown}; "
        "agent pods need 'privileged' (hostNetwork, NET_RAW, NET_ADMIN)"]


@pytest.mark.parametrize("labels", [None, {}, {"team": "platform"}])
def test_without_a_level_the_cluster_default_is_trusted(cluster: Cluster, api: Api,
                                                        labels: dict[str, str] | None) -> None:
    cluster.add(_namespace(labels))
    assert agents.preflight(api, "netprobe") == []


def test_a_missing_namespace(api: Api) -> None:
    assert agents.preflight(api, "netprobe") == [
        "namespace netprobe does not exist (create it with "
        "'kubectl apply -f agents/namespace.yaml')"]


def test_a_namespace_that_cannot_be_read_is_not_a_problem(cluster: Cluster, api: Api) -> None:
    """A user with a Role in the agents' namespace only may not read namespaces: the
    pod creation itself would report a Pod Security refusal."""
    message = 'namespaces "netprobe" is forbidden: User "alice" cannot get resource "namespaces"'
    cluster.emulator[kmock.method.GET, NAMESPACE_PATH].override << 403 << \
        status(403, "Forbidden", message)
    assert agents.preflight(api, "netprobe") == []
    assert cluster.requests(kmock.method.GET, NAMESPACE_PATH)  # it did ask


def test_the_caller_can_raise_forbidden(cluster: Cluster, api: Api) -> None:
    cluster.denied.add(("create", "pods", ""))
    problems = agents.preflight(api, "netprobe")
    error = errors.K8sForbidden("checking agent permissions: " + "; ".join(problems), 403)
    assert error.exit_code == 2 and "RBAC: cannot create pods" in str(error)


def test_a_failing_review_is_an_error(cluster: Cluster, api: Api) -> None:
    cluster.add(_namespace(PRIVILEGED))
    cluster.emulator["create", SSAR].override << 503 << \
        status(503, "ServiceUnavailable", "the server is currently unable to handle the request")
    with pytest.raises(errors.K8sError) as caught:
        agents.preflight(api, "netprobe")
    assert str(caught.value) == (
        "reviewing access to create pods in namespace netprobe: 503 Service Unavailable: "
        "the server is currently unable to handle the request")
    assert caught.value.retryable
