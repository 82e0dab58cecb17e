"""One connection to an API server, and the one place its failures are mapped.

Owns: `Api` (the client, its address, per-request timeouts), `translated`
(ApiException and urllib3 errors to `K8sError`/`K8sNotFound`/`K8sForbidden`,
"verb-ing noun: cause"), and the two long reads agents need: a pod watch and a
followed pod log, both ending quietly at their deadline. Must not: decide
anything about webhooks or agents; hand `kubernetes` models to callers.
"""

from __future__ import annotations

import contextlib
import errno
import json
import time
from collections.abc import Iterator
from typing import Any, cast

import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from netprobe.core import errors


class Api:
    """An API server connection: typed API groups over one `ApiClient`."""

    def __init__(self, api_client: client.ApiClient, *, request_timeout: float = 30.0) -> None:
        self.client = api_client
        self.host: str = api_client.configuration.host
        """The server's URL, for messages."""
        self.request_timeout = request_timeout
        """Seconds for connect and for each read of an ordinary request."""
        self.core = client.CoreV1Api(api_client)
        self.admission = client.AdmissionregistrationV1Api(api_client)
        self.extensions = client.ApiextensionsV1Api(api_client)
        self.discovery = client.DiscoveryV1Api(api_client)
        self.registration = client.ApiregistrationV1Api(api_client)
        self.authorization = client.AuthorizationV1Api(api_client)

    @classmethod
    def from_host(cls, host: str, *, request_timeout: float = 30.0) -> Api:
        """An unauthenticated connection to HOST (an emulator, `kubectl proxy`)."""
        configuration = client.Configuration()
        configuration.host = host.rstrip("/")
        return cls(client.ApiClient(configuration), request_timeout=request_timeout)

    def raw(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        """Calls a generated API METHOD and returns the response body as plain JSON."""
        response = method(*args, _preload_content=False,
                          _request_timeout=self.request_timeout, **kwargs)
        return json.loads(response.data or b"null")

    def close(self) -> None:
        self.client.close()


def _status_message(exc: ApiException) -> str:
    """The `Status.message` the server sent, or the HTTP reason."""
    try:
        body = json.loads(exc.body or "")
        message = body.get("message") if isinstance(body, dict) else None
    except ValueError:
        message = None
    return str(message or exc.reason or "no message").strip().splitlines()[0]


def _from_api(exc: ApiException, doing: str, host: str) -> errors.K8sError:
    status, reason, message = exc.status or 0, str(exc.reason or ""), _status_message(exc)
    if status == 0:  # the client wraps TLS failures as status 0
        mapped = errors.K8sError(f"reaching the API server at {host}: TLS: {message}", 0, reason)
    elif status == 401:
        mapped = errors.K8sForbidden(f"{doing}: unauthorized: the API server at {host} "
                                     f"rejected the credentials ({message})", status, reason)
    elif status == 403:
        mapped = errors.K8sForbidden(f"{doing}: forbidden: {message}", status, reason)
    elif status == 404:
        mapped = errors.K8sNotFound(f"{doing}: not found: {message}", status, reason)
    else:
        mapped = errors.K8sError(f"{doing}: {status} {reason}: {message}", status, reason)
    mapped.retryable = status == 429 or status >= 500
    return mapped


def _errno_name(exc: BaseException) -> str:
    """The errno name found along EXC's causes, or ''."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None and seen.errno in errno.errorcode:
            return errno.errorcode[seen.errno]
        seen = getattr(seen, "reason", None) if isinstance(seen, urllib3.exceptions.MaxRetryError) \
            else seen.__cause__ or seen.__context__
    return ""


_NAME_RESOLUTION = getattr(urllib3.exceptions, "NameResolutionError", ())  # urllib3 >= 2 only
_PLAIN = {"ECONNREFUSED": "connection refused", "EHOSTUNREACH": "no route to host",
          "ENETUNREACH": "network unreachable", "ETIMEDOUT": "connection timed out",
          "ECONNRESET": "connection reset"}


def _from_transport(exc: urllib3.exceptions.HTTPError, host: str) -> errors.K8sError:
    name = _errno_name(exc)
    if name:
        cause = _PLAIN.get(name, name)
    elif isinstance(exc, urllib3.exceptions.TimeoutError) or \
            isinstance(getattr(exc, "reason", None), urllib3.exceptions.TimeoutError):
        cause, name = "timed out", "ETIMEDOUT"
    elif isinstance(getattr(exc, "reason", None), _NAME_RESOLUTION):
        cause, name = "cannot resolve the host name", "EAI_NONAME"
    else:
        cause = f"{type(exc).__name__}: {exc}"
    mapped = errors.K8sError(f"reaching the API server at {host}: {cause}", 0, name)
    mapped.retryable = True
    return mapped


@contextlib.contextmanager
def translated(doing: str, host: str) -> Iterator[None]:
    """Maps the client's failures inside the block, once, to netprobe's errors.

    DOING reads like "listing pods in namespace default".

    Raises:
        K8sForbidden: 401 or 403 (exit code 2).
        K8sNotFound: 404.
        K8sError: any other status (retryable for 429 and 5xx), TLS failures, and an
            unreachable server (retryable; `reason` is the errno name, e.g. ECONNREFUSED).
    """
    try:
        yield
    except ApiException as exc:
        raise _from_api(exc, doing, host) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise _from_transport(exc, host) from exc


def watch_pod(api: Api, namespace: str, name: str,
              timeout: float) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yields (event type, pod dict) for pod NAME until TIMEOUT seconds have passed.

    A watch without a resourceVersion starts with the pod's current state (ADDED),
    so no change between a read and the watch can be missed. The watch is reopened
    if the server ends it early. Raises: as `translated`.
    """
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0:
        stream = watch.Watch()
        with translated(f"watching pod {namespace}/{name}", api.host):
            events = stream.stream(api.core.list_namespaced_pod, namespace,
                                   field_selector=f"metadata.name={name}",
                                   timeout_seconds=max(1, int(remaining)),
                                   _request_timeout=(api.request_timeout, remaining))
            try:
                for event in events:
                    pod = event.get("raw_object") or {}
                    if pod.get("metadata", {}).get("name") == name:  # the selector is a hint
                        yield event["type"], pod
                    if time.monotonic() >= deadline:
                        return
            except urllib3.exceptions.ReadTimeoutError:
                return
            finally:
                stream.stop()
                events.close()  # closes the response now, not when garbage-collected


def follow_log(api: Api, namespace: str, name: str, timeout: float) -> Iterator[str]:
    """Yields the lines of pod NAME's log as they are written, until the container
    exits (the stream ends) or TIMEOUT seconds have passed. Raises: as `translated`."""
    deadline = time.monotonic() + timeout
    with translated(f"following the log of pod {namespace}/{name}", api.host):
        # kubernetes annotates the decoded str; with _preload_content=False it is the
        # urllib3 response, unread
        response = cast("urllib3.HTTPResponse", api.core.read_namespaced_pod_log(
            name, namespace, follow=True, _preload_content=False,
            _request_timeout=(api.request_timeout, timeout)))
        pending = b""
        try:
            for chunk in response.stream(amt=None, decode_content=False):
                *lines, pending = (pending + chunk).split(b"\n")
                yield from (line.decode(errors="replace") for line in lines)
                if time.monotonic() >= deadline:
                    return
            if pending:
                yield pending.decode(errors="replace")
        except urllib3.exceptions.ReadTimeoutError:
            return
        finally:  # the stream may be unread: close it rather than reuse the connection
            response.close()
            response.release_conn()


def read_log(api: Api, namespace: str, name: str) -> str:
    """The whole log of pod NAME's container. Raises: as `translated`."""
    with translated(f"reading the log of pod {namespace}/{name}", api.host):
        response = cast("urllib3.HTTPResponse", api.core.read_namespaced_pod_log(
            name, namespace, _preload_content=False, _request_timeout=api.request_timeout))
        return bytes(response.data).decode(errors="replace")
