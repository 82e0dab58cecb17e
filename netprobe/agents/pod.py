"""Agents as short-lived pods, one per vantage node.

Owns: the agent pod manifest (`agent_pod`, pure), reading a pod's state into
a reason (`pod_problem`, pure), `PodBackend`/`PodHandle` (create, watch until
Running, follow the log until NETPROBE-READY, watch until it ends, collect
the checksummed result from the log, always delete), `cleanup` by run id, and
`preflight` (what RBAC or Pod Security would deny, before anything is made).
Must not: decide what agents do (that is the spec) or talk to nodes directly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from typing import Any

from netprobe.agents.backend import MANAGED_CONTROL_PLANE
from netprobe.agents.spec import READY_LINE, AgentResult, AgentSpec, decode_result
from netprobe.core import errors
from netprobe.k8s.client import Api, follow_log, read_log, translated, watch_pod

DEFAULT_IMAGE = "netprobe-agent:0.1.0"
MANAGED_BY = ("app.kubernetes.io/managed-by", "netprobe")
RUN_ID = "netprobe.io/run-id"
ROLE = "netprobe.io/role"
ENFORCE = "pod-security.kubernetes.io/enforce"
_LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")
_WAITING_FAILURES = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                               "ErrImageNeverPull", "CreateContainerConfigError",
                               "CreateContainerError", "RunContainerError", "CrashLoopBackOff"})


def pod_name(spec: AgentSpec) -> str:
    """`netprobe-<role>-<short run id>-<node hash>`: a DNS label, unique per run, role, node."""
    short = re.sub(r"[^a-z0-9]", "", spec.run_id.lower())[:8] or "run"
    role = re.sub(r"[^a-z0-9]", "", spec.role.lower())[:12] or "agent"
    return f"netprobe-{role}-{short}-{hashlib.sha256(spec.node.encode()).hexdigest()[:8]}"


def agent_pod(spec: AgentSpec, *, image: str, namespace: str,
              deadline_seconds: int) -> dict[str, Any]:
    """The Pod that runs SPEC's agent on SPEC.node, host network, NET_RAW/NET_ADMIN only.

    The agent gets the spec with `stop_on_stdin` False (a pod has no stdin: a
    capture stops after `spec.duration`) and no netns (it is in the node's).

    Raises:
        UsageError: the run id is not a valid label value, or the deadline does not
            leave room for the capture window.
    """
    if not _LABEL_VALUE.match(spec.run_id):
        raise errors.UsageError(f"naming agent pods: run id {spec.run_id!r} is not a valid "
                                "label value (63 letters, digits, '-', '_', '.')")
    if deadline_seconds <= spec.duration:
        raise errors.UsageError(f"naming agent pods: a deadline of {deadline_seconds} s does not "
                                f"cover the {spec.duration:g} s capture")
    spec = dataclasses.replace(spec, netns=None, stop_on_stdin=False)
    labels = {MANAGED_BY[0]: MANAGED_BY[1], "app.kubernetes.io/name": "netprobe-agent",
              RUN_ID: spec.run_id, ROLE: spec.role}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name(spec), "namespace": namespace, "labels": labels,
                     "annotations": {"netprobe.io/node": spec.node}},
        "spec": {
            "nodeName": spec.node,  # pinned: no scheduler, the node's kubelet admits it
            "hostNetwork": True,
            "dnsPolicy": "ClusterFirstWithHostNet",
            "tolerations": [{"operator": "Exists"}],  # every taint: control-plane nodes too
            "restartPolicy": "Never",
            "activeDeadlineSeconds": deadline_seconds,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 2,
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [_container(spec, image)],
            "volumes": [{"name": "work", "emptyDir": {"sizeLimit": "256Mi"}}],
        },
    }


def _container(spec: AgentSpec, image: str) -> dict[str, Any]:
    return {
        "name": "agent",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", "netprobe.agents", "--spec", spec.to_json()],
        "env": [{"name": "PYTHONUNBUFFERED", "value": "1"},
                {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
                {"name": "TMPDIR", "value": "/tmp"}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                      "limits": {"cpu": "500m", "memory": "256Mi"}},
        "securityContext": {
            "privileged": False,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsUser": 0,  # capabilities below are root's; every other one is dropped
            "capabilities": {"add": ["NET_RAW", "NET_ADMIN"], "drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "work", "mountPath": "/tmp"}],  # the agent's work files
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _phase(pod: dict[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def pod_problem(pod: dict[str, Any]) -> str | None:
    """Why POD will not run, or did not run to its end; None while all is well."""
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    if _phase(pod) == "Failed":
        for state in (item.get("state", {}).get("terminated") for item in containers):
            if state:
                detail = f": {state['message'].strip()}" if state.get("message") else ""
                return (f"failed: {state.get('reason') or 'Error'} "
                        f"(exit code {state.get('exitCode')}){detail}")
        detail = f": {status['message']}" if status.get("message") else ""
        return f"failed: {status.get('reason') or 'no reason given'}{detail}"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return (f"cannot be scheduled: {condition.get('reason', 'Unschedulable')}: "
                    f"{condition.get('message', 'no message')}")
    for waiting in (item.get("state", {}).get("waiting") for item in containers):
        if waiting and waiting.get("reason") in _WAITING_FAILURES:
            return (f"cannot start its container: {waiting['reason']}: "
                    f"{waiting.get('message', 'no message')}")
    return None


class PodHandle:
    """One agent pod; every way out of `finish` deletes it."""

    def __init__(self, api: Api, namespace: str, name: str, node: str) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        """The pod's name."""
        self.node = node
        self._deleted = False

    def _error(self, what: str) -> errors.AgentError:
        return errors.AgentError(f"agent on node {self.node} (pod {self.namespace}/{self.name}): "
                                 f"{what}")

    def _await(self, timeout: float, phases: set[str], waiting_for: str) -> dict[str, Any]:
        """The pod once its phase is one of PHASES. Raises AgentError on a problem or timeout."""
        phase = "unknown"
        for kind, pod in watch_pod(self.api, self.namespace, self.name, timeout):
            if kind == "DELETED":
                raise self._error(f"deleted before it was {waiting_for}")
            phase = _phase(pod)
            if phase in phases:
                return pod
            if (problem := pod_problem(pod)) is not None:
                raise self._error(problem)
        hint = " (is the node there and Ready?)" if phase == "Pending" else ""
        raise self._error(f"not {waiting_for} after {timeout:g} s: still {phase}{hint}")

    def wait_ready(self, timeout: float) -> None:
        """Returns once the agent printed NETPROBE-READY (its capture is attached).

        Raises:
            AgentError: the pod failed, cannot start, or was not ready in time (it is deleted).
        """
        deadline = time.monotonic() + timeout
        try:
            pod = self._await(timeout, {"Running", "Succeeded", "Failed"}, "running")
            if _phase(pod) == "Running":
                remaining = max(deadline - time.monotonic(), 0.001)
                if any(line.strip() == READY_LINE for line in
                       follow_log(self.api, self.namespace, self.name, remaining)):
                    return
            self._not_ready(timeout, deadline)
        except BaseException as exc:
            self._delete_noting(exc)
            raise

    def _not_ready(self, timeout: float, deadline: float) -> None:
        """Raises why no READY line came: the pod ended (or failed), or time ran out."""
        with translated(f"reading pod {self.namespace}/{self.name}", self.api.host):
            pod = self.api.raw(self.api.core.read_namespaced_pod, self.name, self.namespace)
        if (problem := pod_problem(pod)) is not None:
            raise self._error(problem)
        if _phase(pod) == "Succeeded":
            if READY_LINE in read_log(self.api, self.namespace, self.name).splitlines():
                return
            raise self._error("exited before it was ready")
        raise self._error(f"printed no {READY_LINE} within {timeout:g} s "
                          f"(still {_phase(pod)})" if time.monotonic() >= deadline else
                          f"closed its log before it was ready (still {_phase(pod)})")

    def finish(self, timeout: float) -> AgentResult:
        """Waits until the pod ends, returns the result from its log, deletes the pod.

        A failed agent that still printed a result (`ok: false`) returns it.

        Raises:
            AgentError: no end within TIMEOUT, the pod failed without a result, or the
                result is missing or damaged (checksum mismatch).
        """
        if self._deleted:
            raise self._error("already deleted (the agent was aborted)")
        try:
            result = self._collect(timeout)
        except BaseException as exc:
            self._delete_noting(exc)
            raise
        self.abort()
        return result

    def _collect(self, timeout: float) -> AgentResult:
        pod = self._await(timeout, {"Succeeded", "Failed"}, "finished")
        output = read_log(self.api, self.namespace, self.name)
        try:
            return decode_result(output)
        except errors.AgentError as exc:
            if _phase(pod) == "Failed":
                tail = [line for line in output.splitlines() if line.strip()][-1:]
                detail = f"; last log line: {tail[0].strip()}" if tail else ""
                raise self._error(f"{pod_problem(pod)}{detail}") from exc
            raise self._error(str(exc)) from exc

    def release(self) -> None:
        """Nothing to do: a pod replays as soon as it runs (it is started last)."""

    def abort(self) -> None:
        """Deletes the pod; safe to call twice. Raises K8sError if the API refuses."""
        if self._deleted:
            return
        _delete(self.api, self.namespace, self.name)
        self._deleted = True

    def _delete_noting(self, exc: BaseException) -> None:
        """Deletes the pod while EXC propagates; a failure to delete is noted on EXC."""
        try:
            self.abort()
        except errors.NetprobeError as failure:
            exc.add_note(f"{failure}; delete it with: kubectl delete pod -n {self.namespace} "
                         f"{self.name}")


def _delete(api: Api, namespace: str, name: str) -> bool:
    """Deletes pod NAME; False if it was already gone."""
    try:
        with translated(f"deleting pod {namespace}/{name}", api.host):
            api.core.delete_namespaced_pod(name, namespace, grace_period_seconds=1,
                                           _request_timeout=api.request_timeout)
    except errors.K8sNotFound:
        return False
    return True


def cleanup(api: Api, namespace: str, run_id: str) -> list[str]:
    """Deletes every agent pod of RUN_ID (after Ctrl-C or a crash); returns their names.

    Only pods labelled both managed-by netprobe and with this run id are touched,
    whatever the server does with the label selector.

    Raises:
        K8sError (and subclasses): listing or deleting was refused or failed.
    """
    selector = f"{MANAGED_BY[0]}={MANAGED_BY[1]},{RUN_ID}={run_id}"
    with translated(f"listing agent pods of run {run_id} in namespace {namespace}", api.host):
        body = api.raw(api.core.list_namespaced_pod, namespace, label_selector=selector)
    names = [item["metadata"]["name"] for item in (body or {}).get("items") or []
             if (item["metadata"].get("labels") or {}).get(MANAGED_BY[0]) == MANAGED_BY[1]
             and item["metadata"]["labels"].get(RUN_ID) == run_id]
    return [name for name in names if _delete(api, namespace, name)]


class PodBackend:
    gates_replay = False
    """A pod has no stdin to read `go` from: the replay pod is created after the captures."""
    """Starts each agent as a pod pinned to its node."""

    def __init__(self, api: Api, namespace: str = "netprobe", image: str = DEFAULT_IMAGE,
                 deadline_seconds: int = 300) -> None:
        self.api = api
        self.namespace = namespace
        self.image = image
        self.deadline_seconds = deadline_seconds
        """The pod's activeDeadlineSeconds: the kubelet kills it even if netprobe died."""

    def has_node(self, node: str) -> bool:
        """Any Node of the cluster; never a managed control plane (it has no Node to run on)."""
        # A `NS/POD` (a konnectivity agent's namespace) cannot be entered through the API.
        return node != MANAGED_CONTROL_PLANE and "/" not in node

    def start(self, spec: AgentSpec) -> PodHandle:
        """Creates SPEC's agent pod on SPEC.node (it is not yet running).

        Raises:
            UsageError: see `agent_pod`.
            K8sForbidden: RBAC or admission (Pod Security) refused the pod.
            K8sError: the API failed (e.g. a pod of that name already exists: 409).
        """
        pod = agent_pod(spec, image=self.image, namespace=self.namespace,
                        deadline_seconds=self.deadline_seconds)
        name = pod["metadata"]["name"]
        with translated(f"creating agent pod {self.namespace}/{name} for node {spec.node}",
                        self.api.host):
            # The body is the manifest dict: the client validates it into a V1Pod (and
            # before kubernetes 37 took dicts as they are); the annotation names only V1Pod.
            self.api.core.create_namespaced_pod(
                self.namespace, pod,  # type: ignore[arg-type]
                _request_timeout=self.api.request_timeout)
        return PodHandle(self.api, self.namespace, name, spec.node)

    def cleanup(self, run_id: str) -> list[str]:
        """Deletes every agent pod of RUN_ID. Raises: as `cleanup`."""
        return cleanup(self.api, self.namespace, run_id)


_NEEDED = (("create", "pods", ""), ("get", "pods", ""), ("list", "pods", ""),
           ("watch", "pods", ""), ("delete", "pods", ""), ("get", "pods", "log"))


def _allowed(api: Api, namespace: str, verb: str, resource: str, subresource: str) -> str | None:
    """None if RBAC allows VERB on RESOURCE in NAMESPACE, else what it denies."""
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"namespace": namespace, "verb": verb, "group": "",
                                              "resource": resource, "subresource": subresource}}}
    with translated(f"reviewing access to {verb} {resource} in namespace {namespace}", api.host):
        status = (api.raw(api.authorization.create_self_subject_access_review, review)
                  or {}).get("status") or {}
    if status.get("allowed"):
        return None
    why = status.get("reason") or status.get("evaluationError") or "not allowed"
    target = f"{resource}/{subresource}" if subresource else resource
    return f"RBAC: cannot {verb} {target} in namespace {namespace} ({why})"


def _pod_security(api: Api, namespace: str) -> str | None:
    """The problem if NAMESPACE is missing or its Pod Security level refuses agent pods.

    Only a level that is set and not `privileged` is a problem: without the
    label the cluster's default applies (privileged, unless an admission
    configuration says otherwise), and a user who may not read namespaces is
    not stopped for that; in both cases a refusal comes, clearly worded, when
    the pod is created.
    """
    try:
        with translated(f"reading namespace {namespace}", api.host):
            body = api.raw(api.core.read_namespace, namespace)
    except errors.K8sNotFound:
        return (f"namespace {namespace} does not exist (create it with "
                "'kubectl apply -f agents/namespace.yaml')")
    except errors.K8sForbidden:
        return None
    level = ((body or {}).get("metadata", {}).get("labels") or {}).get(ENFORCE)
    if level in (None, "privileged"):
        return None
    return (f"Pod Security: namespace {namespace} label {ENFORCE} is {level!r}; agent pods "
            "need 'privileged' (hostNetwork, NET_RAW, NET_ADMIN)")


def preflight(api: Api, namespace: str = "netprobe") -> list[str]:
    """What would stop agent pods in NAMESPACE, before anything is created; [] if nothing.

    Checks with SelfSubjectAccessReviews that RBAC allows create/get/list/watch/delete
    on pods and get on pods/log, that the namespace exists, and that its Pod Security
    `enforce` level, when set, is `privileged`. The caller raises K8sForbidden listing
    the problems.

    Raises:
        K8sError: the reviews themselves failed (the server is unreachable, ...).
    """
    problems = [_allowed(api, namespace, *needed) for needed in _NEEDED]
    return [problem for problem in [_pod_security(api, namespace), *problems] if problem]
