"""The manifests in agents/ are valid Kubernetes objects with the labels we promise."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import yaml

AGENTS = Path(__file__).resolve().parents[3] / "agents"


def _objects() -> list[dict]:
    found = []
    for path in sorted(AGENTS.glob("*.yaml")):
        found += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def test_manifests_validate() -> None:
    objects = _objects()
    assert {obj["kind"] for obj in objects} >= {"Namespace", "ClusterRole", "Role"}
    for obj in objects:
        kubernetes_validate.validate(obj, "1.31.0", strict=True)


def test_namespace_admits_agents_under_pod_security() -> None:
    namespace = next(obj for obj in _objects() if obj["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def test_agents_may_only_write_pods_in_their_namespace() -> None:
    for obj in _objects():
        if obj["kind"] == "ClusterRole":
            verbs = {verb for rule in obj["rules"] for verb in rule["verbs"]}
            assert verbs <= {"get", "list", "watch"}
