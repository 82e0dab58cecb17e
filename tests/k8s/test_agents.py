"""Agent pods: the manifest, the lifecycle the test drives as the kubelet, and deletion.

The test plays the kubelet over real HTTP: it patches pod status and writes the
container's log (served as pods/{name}/log, followed or not). PodBackend sees
the phases through a watch and the READY line and result through the log.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import re
import signal
import threading

import kmock
import kubernetes_validate
import pytest

from netprobe.agents import pod as agents
from netprobe.agents.backend import AgentBackend
from netprobe.agents.spec import READY_LINE, AgentResult, AgentSpec, encode_result
from netprobe.core import errors
from netprobe.k8s.client import Api

from .conftest import PODS, Cluster, status

K8S_VERSION = "1.31.0"
SPEC = AgentSpec(run_id="7f3a9c2e41d84b0f", node="ip-10-0-1-23.eu-west-1.compute.internal",
                 role="capture", bpf="host 10.244.1.5 and tcp port 10250", duration=5.0)
RESULT = AgentResult(run_id=SPEC.run_id, node=SPEC.node, role="capture", ok=True,
                     captures=[bytes(range(256)) * 40], interfaces={"2": "eth0", "3": "cni0"},
                     started=1_790_000_000.0, ended=1_790_000_005.5)


@pytest.fixture
def backend(api: Api) -> agents.PodBackend:
    return agents.PodBackend(api, namespace="netprobe", image="netprobe-agent:0.1.0",
                             deadline_seconds=60)


@pytest.fixture
def pool() -> concurrent.futures.ThreadPoolExecutor:
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as running:
        yield running


def watch_opened(cluster: Cluster) -> threading.Event:
    """Set when the next pod watch reaches the emulator (a one-shot kmock sink)."""
    opened = threading.Event()
    cluster.emulator[kmock.action.WATCH, PODS] >> opened
    return opened


# The manifest


def test_agent_pod_is_schema_valid_and_locked_down() -> None:
    pod = agents.agent_pod(SPEC, image="netprobe-agent:0.1.0", namespace="netprobe",
                           deadline_seconds=60)
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    spec = pod["spec"]
    assert (spec["nodeName"], spec["hostNetwork"], spec["restartPolicy"]) == \
        (SPEC.node, True, "Never")
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["activeDeadlineSeconds"] == 60
    assert spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    assert container["securityContext"] == {
        "privileged": False, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
        "runAsUser": 0, "capabilities": {"add": ["NET_RAW", "NET_ADMIN"], "drop": ["ALL"]}}
    assert container["volumeMounts"] == [{"name": "work", "mountPath": "/tmp"}]
    assert spec["volumes"][0]["emptyDir"]
    assert container["resources"]["limits"] and container["resources"]["requests"]
    assert pod["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "netprobe", "app.kubernetes.io/name": "netprobe-agent",
        "netprobe.io/run-id": SPEC.run_id, "netprobe.io/role": "capture"}
    assert container["command"][:4] == ["python", "-m", "netprobe.agents", "--spec"]
    assert AgentSpec.from_json(container["command"][4]) == SPEC


def test_the_pod_spec_never_waits_for_stdin() -> None:
    spec = dataclasses.replace(SPEC, stop_on_stdin=True, netns="node-a")
    pod = agents.agent_pod(spec, image="i", namespace="netprobe", deadline_seconds=60)
    sent = AgentSpec.from_json(pod["spec"]["containers"][0]["command"][4])
    assert (sent.stop_on_stdin, sent.netns) == (False, None)


@pytest.mark.parametrize("node", ["worker-1", "a" * 253, "Node_With.Odd-Chars"])
@pytest.mark.parametrize("role", ["capture", "replay"])
def test_pod_names_are_dns_labels_unique_per_node(node: str, role: str) -> None:
    spec = dataclasses.replace(SPEC, node=node, role=role)
    name = agents.pod_name(spec)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63
    assert name.startswith(f"netprobe-{role}-7f3a9c2e-")
    assert name != agents.pod_name(dataclasses.replace(spec, node=node + "x"))


def test_a_run_id_that_is_no_label_value_is_a_usage_error() -> None:
    with pytest.raises(errors.UsageError, match="run id 'run/1' is not a valid label value"):
        agents.agent_pod(dataclasses.replace(SPEC, run_id="run/1"), image="i",
                         namespace="n", deadline_seconds=60)


def test_the_deadline_must_cover_the_capture() -> None:
    with pytest.raises(errors.UsageError, match="deadline of 5 s does not cover the 5 s"):
        agents.agent_pod(SPEC, image="i", namespace="n", deadline_seconds=5)


# The lifecycle


def test_the_submitted_pod_is_schema_valid(cluster: Cluster,
                                           backend: agents.PodBackend) -> None:
    handle = backend.start(SPEC)
    (created,) = cluster.requests(kmock.action.CREATE, PODS)
    assert created.url.path == "/api/v1/namespaces/netprobe/pods"
    kubernetes_validate.validate(created.data, K8S_VERSION, strict=True)
    assert cluster.pods() == [handle.name]
    handle.abort()


def test_capture_agent_ready_then_result_then_deleted(
        cluster: Cluster, backend: agents.PodBackend,
        pool: concurrent.futures.ThreadPoolExecutor) -> None:
    handle = backend.start(SPEC)
    opened = watch_opened(cluster)
    ready = pool.submit(handle.wait_ready, 5.0)
    assert opened.wait(5)
    cluster.kubelet.run(handle.name)  # Pending -> Running, seen through the watch
    cluster.kubelet.write(handle.name, "tcpdump: listening on any\n")
    assert not ready.done()
    cluster.kubelet.write(handle.name, READY_LINE + "\n")  # through the followed log
    ready.result(5)

    opened = watch_opened(cluster)
    finished = pool.submit(handle.finish, 5.0)
    assert opened.wait(5)
    assert cluster.pods() == [handle.name]
    cluster.kubelet.end(handle.name, encode_result(RESULT))
    assert finished.result(5) == RESULT
    assert cluster.pods() == []
    followed = cluster.requests(kmock.method.GET, PODS, kmock.subresource("log"))
    assert [request.params.get("follow") for request in followed] == ["true", None]


def test_replay_agent_without_ready(cluster: Cluster, backend: agents.PodBackend) -> None:
    spec = dataclasses.replace(SPEC, role="replay")
    result = dataclasses.replace(RESULT, role="replay", replays=[{"phases": []}])
    handle = backend.start(spec)
    cluster.kubelet.run(handle.name)
    cluster.kubelet.end(handle.name, "replaying\n" + encode_result(result))
    assert handle.finish(2.0) == result
    assert cluster.pods() == []


def test_a_damaged_result_is_rejected_and_the_pod_deleted(
        cluster: Cluster, backend: agents.PodBackend) -> None:
    handle = backend.start(SPEC)
    header, payload, _ = encode_result(RESULT).split("\n")
    damaged = payload[:100] + ("A" if payload[100] != "A" else "B") + payload[101:]
    cluster.kubelet.run(handle.name)
    cluster.kubelet.end(handle.name, f"{header}\n{damaged}\n")
    with pytest.raises(errors.AgentError) as caught:
        handle.finish(2.0)
    assert str(caught.value) == (
        f"agent on node {SPEC.node} (pod netprobe/{handle.name}): reading agent result: "
        "damaged in transit (checksum mismatch)")
    assert cluster.pods() == []


def test_a_truncated_result_is_rejected(cluster: Cluster, backend: agents.PodBackend) -> None:
    handle = backend.start(SPEC)
    cluster.kubelet.run(handle.name)
    cluster.kubelet.end(handle.name, encode_result(RESULT)[:-500])
    with pytest.raises(errors.AgentError, match="damaged in transit"):
        handle.finish(2.0)
    assert cluster.pods() == []


def test_a_failed_pod_without_result_names_node_and_reason(
        cluster: Cluster, backend: agents.PodBackend) -> None:
    handle = backend.start(SPEC)
    cluster.kubelet.run(handle.name)
    cluster.kubelet.end(handle.name, "Traceback (most recent call last):\n"
                        "ModuleNotFoundError: No module named 'netprobe'\n",
                        exit_code=1, reason="Error")
    with pytest.raises(errors.AgentError) as caught:
        handle.finish(2.0)
    assert str(caught.value) == (
        f"agent on node {SPEC.node} (pod netprobe/{handle.name}): failed: Error (exit code 1); "
        "last log line: ModuleNotFoundError: No module named 'netprobe'")
    assert cluster.pods() == []


def test_a_failed_agent_that_answered_returns_its_answer(
        cluster: Cluster, backend: agents.PodBackend) -> None:
    answer = dataclasses.replace(RESULT, ok=False, captures=[],
                                 error="capturing packets: tcpdump: permission denied")
    handle = backend.start(SPEC)
    cluster.kubelet.run(handle.name)
    cluster.kubelet.end(handle.name, encode_result(answer), exit_code=3, reason="Error")
    assert handle.finish(2.0) == answer
    assert cluster.pods() == []


def test_the_deadline_exceeded_is_a_failure(cluster: Cluster,
                                            backend: agents.PodBackend) -> None:
    handle = backend.start(SPEC)
    cluster.kubelet.run(handle.name)
    cluster.kubelet.set_status(handle.name, {"phase": "Failed", "reason": "DeadlineExceeded",
                                             "message": "Pod was active on the node longer "
                                             "than the specified deadline"})
    with pytest.raises(errors.AgentError, match="failed: DeadlineExceeded: Pod was active"):
        handle.wait_ready(2.0)
    assert cluster.pods() == []


def test_an_image_pull_error_names_node_and_reason(cluster: Cluster,
                                                   backend: agents.PodBackend) -> None:
    handle = backend.start(SPEC)
    cluster.kubelet.set_status(handle.name, {"phase": "Pending", "containerStatuses": [{
        "name": "agent", "ready": False, "restartCount": 0, "image": "netprobe-agent:0.1.0",
        "imageID": "", "state": {"waiting": {
            "reason": "ErrImagePull",
            "message": 'failed to pull image "netprobe-agent:0.1.0": not found'}}}]})
    with pytest.raises(errors.AgentError) as caught:
        handle.wait_ready(2.0)
    assert str(caught.value) == (
        f"agent on node {SPEC.node} (pod netprobe/{handle.name}): cannot start its container: "
        "ErrImagePull: failed to pull image \"netprobe-agent:0.1.0\": not found")
    assert cluster.pods() == []


def test_an_unschedulable_pod_names_the_reason(cluster: Cluster,
                                               backend: agents.PodBackend) -> None:
    handle = backend.start(SPEC)
    cluster.kubelet.set_status(handle.name, {"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/3 nodes are available: 3 Insufficient cpu."}]})
    with pytest.raises(errors.AgentError, match=re.escape(
            f"agent on node {SPEC.node} (pod netprobe/{handle.name}): cannot be scheduled: "
            "Unschedulable: 0/3 nodes are available: 3 Insufficient cpu.")):
        handle.wait_ready(2.0)
    assert cluster.pods() == []


# Timeouts and interruptions


def test_a_pod_that_never_runs_times_out(cluster: Cluster, backend: agents.PodBackend) -> None:
    handle = backend.start(SPEC)
    with pytest.raises(errors.AgentError) as caught:
        handle.wait_ready(0.3)
    assert str(caught.value) == (
        f"agent on node {SPEC.node} (pod netprobe/{handle.name}): not running after 0.3 s: "
        "still Pending (is the node there and Ready?)")
    assert cluster.pods() == []


def test_no_ready_line_times_out(cluster: Cluster, backend: agents.PodBackend) -> None:
    handle = backend.start(SPEC)
    cluster.kubelet.run(handle.name)
    cluster.kubelet.write(handle.name, "tcpdump: listening on any\n")
    with pytest.raises(errors.AgentError) as caught:
        handle.wait_ready(0.3)
    assert str(caught.value) == (f"agent on node {SPEC.node} (pod netprobe/{handle.name}): "
                                 f"printed no {READY_LINE} within 0.3 s (still Running)")
    assert cluster.pods() == []


def test_exit_before_ready(cluster: Cluster, backend: agents.PodBackend) -> None:
    handle = backend.start(SPEC)
    cluster.kubelet.run(handle.name)
    cluster.kubelet.write(handle.name, "netprobe-agent: error: bad spec\n", exit=True)
    with pytest.raises(errors.AgentError, match="closed its log before it was ready"):
        handle.wait_ready(2.0)
    assert cluster.pods() == []


def test_no_end_in_time_deletes_the_pod(cluster: Cluster, backend: agents.PodBackend) -> None:
    handle = backend.start(SPEC)
    cluster.kubelet.run(handle.name)
    with pytest.raises(errors.AgentError) as caught:
        handle.finish(0.3)
    assert str(caught.value) == (f"agent on node {SPEC.node} (pod netprobe/{handle.name}): "
                                 "not finished after 0.3 s: still Running")
    assert cluster.pods() == []


def test_a_pod_deleted_by_someone_else(cluster: Cluster, backend: agents.PodBackend,
                                       pool: concurrent.futures.ThreadPoolExecutor) -> None:
    handle = backend.start(SPEC)
    cluster.kubelet.run(handle.name)
    opened = watch_opened(cluster)
    finished = pool.submit(handle.finish, 5.0)
    assert opened.wait(5)
    cluster.core.delete_namespaced_pod(handle.name, "netprobe")
    with pytest.raises(errors.AgentError, match="deleted before it was finished"):
        finished.result(5)
    handle.abort()  # already gone: still fine


def test_ctrl_c_while_finishing_deletes_the_pod(cluster: Cluster,
                                                backend: agents.PodBackend) -> None:
    """A real SIGINT reaches the main thread while it waits on the pod watch."""
    handle = backend.start(SPEC)
    cluster.kubelet.run(handle.name)
    main = threading.main_thread().ident
    assert main == threading.get_ident()
    cluster.emulator[kmock.action.WATCH, PODS] >> \
        (lambda: signal.pthread_kill(main, signal.SIGINT))
    with pytest.raises(KeyboardInterrupt):
        handle.finish(5.0)
    assert cluster.pods() == []


def test_abort_is_idempotent(cluster: Cluster, backend: agents.PodBackend) -> None:
    handle = backend.start(SPEC)
    handle.abort()
    handle.abort()
    assert cluster.pods() == []
    assert len(cluster.requests(kmock.method.DELETE, PODS)) == 1


def test_a_failed_deletion_is_noted_on_the_error(cluster: Cluster,
                                                 backend: agents.PodBackend) -> None:
    handle = backend.start(SPEC)
    cluster.emulator[kmock.method.DELETE, PODS] << 500 << \
        status(500, "InternalError", "etcdserver: leader changed")
    with pytest.raises(errors.AgentError) as caught:
        handle.wait_ready(0.2)
    assert caught.value.__notes__ == [
        f"deleting pod netprobe/{handle.name}: 500 Internal Server Error: etcdserver: leader "
        f"changed; delete it with: kubectl delete pod -n netprobe {handle.name}"]


def test_cleanup_deletes_this_runs_pods_only(cluster: Cluster,
                                             backend: agents.PodBackend) -> None:
    mine = {backend.start(dataclasses.replace(SPEC, node=node)).name for node in ("a", "b")}
    other = backend.start(dataclasses.replace(SPEC, run_id="0ther", node="a")).name
    stranger = agents.agent_pod(dataclasses.replace(SPEC, node="c"), image="i",
                                namespace="netprobe", deadline_seconds=60)
    del stranger["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    cluster.core.create_namespaced_pod("netprobe", stranger)
    assert sorted(backend.cleanup(SPEC.run_id)) == sorted(mine)
    assert cluster.pods() == sorted([other, stranger["metadata"]["name"]])
    assert backend.cleanup(SPEC.run_id) == []


def test_finish_after_a_failed_wait_says_so(cluster: Cluster,
                                            backend: agents.PodBackend) -> None:
    handle = backend.start(SPEC)
    with pytest.raises(errors.AgentError):
        handle.wait_ready(0.1)
    with pytest.raises(errors.AgentError, match="already deleted"):
        handle.finish(5.0)


def test_pod_backend_is_an_agent_backend(backend: agents.PodBackend) -> None:
    typed: AgentBackend = backend  # checked by mypy; the protocol's methods exist at runtime
    assert all(callable(getattr(agents.PodHandle, name))
               for name in ("wait_ready", "finish", "abort"))
    assert callable(typed.start)


def test_a_pod_security_refusal_at_creation_is_forbidden_and_worded(
        cluster: Cluster, backend: agents.PodBackend) -> None:
    """preflight trusts a namespace without a Pod Security label; if the cluster's default
    refuses the agent after all, the creation says why (exit 2)."""
    message = ('pods "x" is forbidden: violates PodSecurity "baseline:latest": host namespaces '
               '(hostNetwork=true)')
    cluster.emulator[kmock.action.CREATE, PODS].override << 403 << \
        status(403, "Forbidden", message)
    with pytest.raises(errors.K8sForbidden) as caught:
        backend.start(SPEC)
    assert "violates PodSecurity" in str(caught.value) and SPEC.node in str(caught.value)
    assert caught.value.exit_code == 2
