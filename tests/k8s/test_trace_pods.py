"""`netprobe trace webhook` on a live cluster with agent pods, replaying a real lab trace.

The API objects are the lab's `ok` scenario, served by the emulator; the CLI runs as
a subprocess pointed at it by a kubeconfig. The test plays the kubelet: each agent
pod the CLI creates answers with what the lab's agents recorded (captures/ok/: the
replay documents, the pcaps, the interface names). The report must be the lab's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from kubernetes import watch

from netprobe.agents.spec import READY_LINE, AgentResult, AgentSpec, encode_result
from netprobe.lab import objects, pki, scenarios

from .conftest import Cluster

CAPTURES = Path(__file__).resolve().parents[2] / "captures" / "ok"
WEBHOOK = "validating/cert-manager-webhook"
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "{url}"}}}}]
users: [{{name: u, user: {{token: abc}}}}]
contexts: [{{name: ctx, context: {{cluster: c, user: u}}}}]
current-context: ctx
"""


def lab_objects(report: dict[str, Any], directory: Path) -> list[dict[str, Any]]:
    """The objects the lab served for `ok` (fresh PKI; created when the trace ran)."""
    plan = scenarios.get("ok").build()
    pki.write_pki(plan, directory)
    started = min(phase["started"] for result in report["results"]
                  for phase in result["replay"]["phases"])
    return objects.build_list(plan, (directory / pki.CA_BUNDLE).read_bytes(),
                               (directory / pki.SIGNER_CA).read_bytes(), int(started))["items"]


class LabKubelet:
    """Answers each agent pod with the lab's recording, in the order the CLI expects."""

    def __init__(self, cluster: Cluster, report: dict[str, Any]) -> None:
        self.cluster = cluster
        self.by_endpoint = {result["endpoint"]: result for result in report["results"]}
        self.by_node = {result["node"]: result for result in report["results"]}
        self.placed: list[tuple[str, str]] = []
        """(role label, nodeName) of every agent pod, in creation order."""
        self.captures: list[tuple[str, AgentSpec]] = []
        self.replay: AgentSpec | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._drive, daemon=True)

    def _drive(self) -> None:
        """Watches the agent namespace (a watch starts with the pods already there)."""
        try:
            stream = watch.Watch()
            events = stream.stream(self.cluster.core.list_namespaced_pod, "netprobe",
                                   timeout_seconds=30)
            for event in events:
                if event["type"] == "ADDED" and self._start(event["raw_object"]):
                    break
            stream.stop()
            events.close()
        except BaseException as exc:  # reported by the test's main thread
            self.error = exc

    def _start(self, pod: dict[str, Any]) -> bool:
        """Runs POD's agent; True once the replay agent (the last) has ended."""
        name, spec = pod["metadata"]["name"], _spec(pod)
        self.placed.append((pod["metadata"]["labels"]["netprobe.io/role"],
                            pod["spec"]["nodeName"]))
        assert spec.node == pod["spec"]["nodeName"]
        self.cluster.kubelet.run(name)
        if spec.role == "capture":
            self.cluster.kubelet.write(name, READY_LINE + "\n")
            self.captures.append((name, spec))
            return False
        self.replay = spec
        self.cluster.kubelet.end(name, encode_result(self._replayed(spec)))
        for capture, capture_spec in self.captures:
            self.cluster.kubelet.end(capture, encode_result(self._captured(capture_spec)))
        return True

    def _replayed(self, spec: AgentSpec) -> AgentResult:
        results = [self.by_endpoint[f"{t['resolve_ip']}:{t['connect_port']}"]
                   for t in spec.targets]
        return AgentResult(spec.run_id, spec.node, "replay", ok=True,
                           replays=[result["replay"] for result in results],
                           captures=[_pcap(result["captures"][0]) for result in results],
                           interfaces=results[0]["interfaces"][spec.node])

    def _captured(self, spec: AgentSpec) -> AgentResult:
        result = self.by_node[spec.node]
        return AgentResult(spec.run_id, spec.node, "capture", ok=True,
                           captures=[_pcap(result["captures"][1])],
                           interfaces=result["interfaces"][spec.node])


def _spec(pod: dict[str, Any]) -> AgentSpec:
    command = pod["spec"]["containers"][0]["command"]
    return AgentSpec.from_json(command[command.index("--spec") + 1])


def _pcap(name: str) -> bytes:
    return (CAPTURES / name).read_bytes()


def without_capture_paths(report: dict[str, Any]) -> list[dict[str, Any]]:
    results = [dict(result, captures=None) for result in report["results"]]
    return [dict(result, replay=dict(result["replay"], capture=None)) for result in results]


def test_a_lab_trace_replayed_through_agent_pods(cluster: Cluster, tmp_path: Path) -> None:
    lab = json.loads((CAPTURES / "trace.json").read_text())
    cluster.add(*lab_objects(lab, tmp_path / "pki"),
                {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "netprobe"}})
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG.format(url=cluster.url))
    kubelet = LabKubelet(cluster, lab)
    kubelet.thread.start()

    done = subprocess.run(
        [sys.executable, "-m", "netprobe", "trace", "webhook", WEBHOOK, "--kubeconfig",
         str(kubeconfig), "--pcap-dir", str(tmp_path / "pcaps"), "-o", "json"],
        capture_output=True, text=True, timeout=60)
    kubelet.thread.join(10)

    assert kubelet.error is None, kubelet.error
    assert done.returncode == 0, done.stderr
    traced = json.loads(done.stdout)
    assert without_capture_paths(traced) == without_capture_paths(lab)
    assert sorted(kubelet.placed) == [("capture", "worker-1"), ("capture", "worker-2"),
                                      ("replay", "control-plane-1")]
    assert cluster.pods() == []
    assert kubelet.replay is not None  # the caBundle came from the API, decoded
    ca_bundle = (tmp_path / "pki" / pki.CA_BUNDLE).read_text()
    assert [t["ca_bundle"] for t in kubelet.replay.targets] == [ca_bundle, ca_bundle]
    for result in traced["results"]:  # the pcaps the agents sent, kept as the lab kept them
        for path in result["captures"]:
            assert Path(path).read_bytes() == _pcap(Path(path).name)
