"""A Kubernetes API emulator (kmock) over real HTTP, and a test that plays the kubelet.

kmock runs in its own event loop on a background thread; the synchronous
`kubernetes` client under test talks to `cluster.url` over 127.0.0.1. What
kmock does not emulate is added here, the way the real API server behaves:

- SelfSubjectAccessReviews are answered (allowed unless denied in the test) and
  never stored (kmock would store the first and answer 409 to the next).
- `pods/{name}/log` is served as text/plain by the `Kubelet`, which the test
  drives: it writes log lines and ends the container; `?follow=true` is a live
  chunked stream that ends when the container does.
- Pod status is changed only by the test, through `patch_namespaced_pod_status`.
- `GET /api/v1/namespaces/{name}` is served from `Cluster.namespaces`: kmock
  reads that path as "namespace {name}, no resource" and cannot serve it.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import functools
import re
import threading
from collections.abc import Iterator
from typing import Any

import kmock
import pytest
from kmock._internal import apps
from kubernetes import client

from netprobe.k8s.client import Api

RESOURCES = {  # kind: (kmock resource, namespaced)
    "ValidatingWebhookConfiguration":
        ("admissionregistration.k8s.io/v1/validatingwebhookconfigurations", False),
    "MutatingWebhookConfiguration":
        ("admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", False),
    "CustomResourceDefinition": ("apiextensions.k8s.io/v1/customresourcedefinitions", False),
    "APIService": ("apiregistration.k8s.io/v1/apiservices", False),
    "Service": ("v1/services", True),
    "EndpointSlice": ("discovery.k8s.io/v1/endpointslices", True),
    "Pod": ("v1/pods", True),
    "Node": ("v1/nodes", False),
    "Secret": ("v1/secrets", True),
    "Namespace": ("v1/namespaces", False),
    "Deployment": ("apps/v1/deployments", True),
    "ConfigMap": ("v1/configmaps", True),
}
SSAR = kmock.resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews")
PODS = kmock.resource("", "v1", "pods")
NAMESPACE_PATH = re.compile(r"^/api/v1/namespaces/[^/]+$")


class Emulator(kmock.KubernetesEmulator):
    """kmock's emulator, with access reviews answered and not stored (as the API does)."""

    async def _handle(self, request: kmock.Request) -> Any:
        if request.resource is not None and request.resource.plural == SSAR.plural:
            return await apps.RawHandler._handle(self, request)
        return await super()._handle(request)


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A `Status` body as the API server sends with an error."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class Kubelet:
    """Plays the node: pod logs (plain and followed) and status patches."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.logs: dict[str, bytes] = collections.defaultdict(bytes)
        self.exited: set[str] = set()
        self._changed = asyncio.Condition()  # used on the emulator's loop only

    def serve(self, request: kmock.Request) -> Any:
        """The reaction to GET pods/{name}/log."""
        if request.params.get("follow") == "true":
            return self._follow(request.name)
        return self.logs[request.name]

    def _unread(self, name: str, sent: int) -> bool:
        """Whether pod NAME has logged more than SENT bytes, or has exited."""
        return len(self.logs[name]) > sent or name in self.exited

    async def _follow(self, name: str) -> Any:
        sent = 0
        while True:
            async with self._changed:
                await self._changed.wait_for(functools.partial(self._unread, name, sent))
                chunk, sent = self.logs[name][sent:], len(self.logs[name])
            if chunk:
                yield chunk
            elif name in self.exited:
                return

    async def _update(self, name: str, data: bytes, exited: bool) -> None:
        async with self._changed:
            self.logs[name] += data
            if exited:
                self.exited.add(name)
            self._changed.notify_all()

    def write(self, name: str, text: str, *, exit: bool = False) -> None:
        """The container of pod NAME prints TEXT (and exits, if EXIT)."""
        self.cluster.call(self._update(name, text.encode(), exit))

    def set_status(self, name: str, status: dict[str, Any], namespace: str = "netprobe") -> None:
        self.cluster.core.patch_namespaced_pod_status(name, namespace, {"status": status})

    def run(self, name: str) -> None:
        self.set_status(name, {"phase": "Pending"})
        self.set_status(name, {"phase": "Running", "containerStatuses": [
            {"name": "agent", "ready": True, "restartCount": 0, "image": "netprobe-agent:0.1.0",
             "imageID": "", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]})

    def end(self, name: str, output: str, exit_code: int = 0, reason: str = "Completed") -> None:
        """The container prints OUTPUT and exits with EXIT_CODE; the phase follows."""
        self.write(name, output, exit=True)
        self.set_status(name, {
            "phase": "Succeeded" if exit_code == 0 else "Failed",
            "containerStatuses": [{"name": "agent", "ready": False, "restartCount": 0,
                                   "image": "netprobe-agent:0.1.0", "imageID": "",
                                   "state": {"terminated": {"exitCode": exit_code,
                                                            "reason": reason}}}]})

    async def close(self) -> None:
        async with self._changed:
            self.exited.update(self.logs)
            self._changed.notify_all()


class Cluster:
    """The emulator on its own thread and loop, and clients for it."""

    def __init__(self) -> None:
        self.denied: set[tuple[str, str, str]] = set()
        """(verb, resource, subresource) the access reviews deny."""
        self.namespaces: dict[str, dict[str, Any]] = {}
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the emulator did not start")
        self.core = client.CoreV1Api(self._client())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.emulator = Emulator()
        self.kubelet = Kubelet(self)
        for resource, _ in RESOURCES.values():
            self.emulator.resources[resource] = {}
        self.emulator[kmock.method.GET, PODS, kmock.subresource("log")] << \
            {"Content-Type": "text/plain"} << self.kubelet.serve
        self.emulator["create", SSAR] << self._review
        self.emulator[kmock.method.GET, NAMESPACE_PATH] << self._namespace
        async with self.emulator, kmock.Server(self.emulator) as server:
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()
            await self.kubelet.close()

    def _review(self, request: kmock.Request) -> dict[str, Any]:
        attributes = request.data["spec"]["resourceAttributes"]
        key = (attributes["verb"], attributes["resource"], attributes.get("subresource", ""))
        allowed = key not in self.denied
        reason = "" if allowed else "no RBAC policy matched"
        return dict(request.data, status={"allowed": allowed, "reason": reason})

    def _namespace(self, request: kmock.Request) -> Any:
        found = self.namespaces.get(request.url.path.rsplit("/", 1)[-1])
        return found if found is not None else kmock.KubernetesObjectNotFoundError()

    def call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)

    def _client(self) -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)

    def api(self, request_timeout: float = 2.0) -> Api:
        return Api(self._client(), request_timeout=request_timeout)

    def add(self, *objects: dict[str, Any]) -> None:
        """Stores OBJECTS as the API would serve them (without kind, as in a list)."""
        for obj in objects:
            if obj["kind"] == "Namespace":
                self.namespaces[obj["metadata"]["name"]] = obj
                continue
            resource, namespaced = RESOURCES[obj["kind"]]
            meta = obj["metadata"]
            stored = {key: value for key, value in obj.items() if key not in ("kind", "apiVersion")}
            self.emulator.objects[resource, meta.get("namespace") if namespaced else None,
                                  meta["name"]] = stored

    def pods(self, namespace: str = "netprobe") -> list[str]:
        """The names of the pods that exist (not deleted) in NAMESPACE."""
        return sorted(pod.metadata.name for pod in self.core.list_namespaced_pod(namespace).items)

    def requests(self, *criteria: Any) -> list[kmock.Request]:
        return list(self.emulator[criteria])

    def close(self) -> None:
        self.core.api_client.close()
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    running = Cluster()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def api(cluster: Cluster) -> Iterator[Api]:
    connection = cluster.api()
    try:
        yield connection
    finally:
        connection.close()
