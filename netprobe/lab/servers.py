"""The lab's servers: webhook, healthz, kubelet stand-ins and broken look-alikes.

Owns: one daemon process (`python -m netprobe.lab.servers SPEC.json`) that
opens every listener of a plan in its namespace (setns per socket), serves
them all from one asyncio loop, and prints `ready` once every socket
listens. Must not: listen anywhere but inside lab namespaces.

The HTTP handling is deliberately small: one request per read, keep-alive,
`Content-Length` bodies, which is what kube-apiserver's client sends.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from netprobe.host import nsenter
from netprobe.lab import pki
from netprobe.lab.topology import Listener, Node, Plan, Serve

MAX_BODY = 3 * 1024 * 1024
"""kube-apiserver caps admission bodies at 3 MiB; so does the lab."""


@dataclass(frozen=True)
class ListenerSpec:
    """One socket the daemon opens (JSON-serialisable)."""

    netns: str
    port: int
    serve: str
    cert: str | None = None
    key: str | None = None
    ipv6: bool = False
    """Listen on `::` for both families (a dual-stack socket), not on IPv4's 0.0.0.0 only."""


def _spec(netns: str, listener: Listener, pki_dir: Path, node: Node,
          ipv6: bool = False) -> ListenerSpec:
    """LISTENER's socket in NETNS, with the certificate it serves (NODE's, for a kubelet)."""
    cert: Path | None
    key: Path | None
    if listener.serve in (Serve.KUBELET, Serve.KUBELET_SELF_SIGNED):
        cert, key = pki.kubelet_cert_path(pki_dir, node,
                                          listener.serve is Serve.KUBELET_SELF_SIGNED)
    elif listener.serve in (Serve.WEBHOOK, Serve.TLS_HANG, Serve.HTTP_ERROR):
        cert, key = pki_dir / "serving.crt", pki_dir / "serving.key"
    else:
        cert = key = None
    return ListenerSpec(netns, listener.port, listener.serve.value,
                        str(cert) if cert else None, str(key) if key else None, ipv6)


def listener_specs(plan: Plan, pki_dir: Path) -> list[ListenerSpec]:
    """Returns every socket PLAN's servers listen on (on both families when the plan has
    IPv6, as Go's servers listen on `:PORT`)."""
    specs = []
    ipv6 = plan.has_ipv6
    for node in plan.nodes:
        specs += [_spec(node.netns, item, pki_dir, node, ipv6) for item in node.listeners]
    for pod in plan.network_pods:
        node = plan.node(pod.node)
        netns = node.netns if pod.in_node_netns else pod.netns
        specs += [_spec(netns, item, pki_dir, node, ipv6) for item in pod.listeners]
    return specs


def write_spec(specs: list[ListenerSpec], path: Path) -> None:
    path.write_text(json.dumps([asdict(spec) for spec in specs], indent=1))


# --- the daemon ---------------------------------------------------------------


def _response(status: str, body: bytes, content_type: str = "application/json") -> bytes:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def _review_response(path: str, body: bytes) -> bytes:
    """Answers an AdmissionReview (validate/mutate) or a ConversionReview."""
    try:
        review = json.loads(body)
        request = review["request"]
        uid = request["uid"]
    except (ValueError, KeyError, TypeError):
        return _response("400 Bad Request", b'{"error":"expected an AdmissionReview"}')
    if path.startswith("/convert"):
        desired = request.get("desiredAPIVersion", "")
        objects = [dict(obj, apiVersion=desired) for obj in request.get("objects", [])]
        answer: dict[str, Any] = {"uid": uid, "convertedObjects": objects,
                                  "result": {"status": "Success"}}
    else:
        answer = {"uid": uid, "allowed": True}
    reply = {"apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
             "kind": review.get("kind", "AdmissionReview"), "response": answer}
    return _response("200 OK", json.dumps(reply).encode())


def _discovery_response(path: str) -> bytes:
    """An aggregated API server's discovery document (metrics-server's resources)."""
    group_version = path.removeprefix("/apis/").strip("/")
    resources = [{"name": name, "singularName": "", "namespaced": namespaced, "kind": kind,
                  "verbs": ["get", "list"]}
                 for name, namespaced, kind in (("nodes", False, "NodeMetrics"),
                                                ("pods", True, "PodMetrics"))]
    document = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
                "resources": resources}
    return _response("200 OK", json.dumps(document).encode())


def _answer(serve: str, method: str, path: str, body: bytes) -> bytes | None:
    """Returns the HTTP response bytes, or None to never answer."""
    if serve == Serve.TLS_HANG.value:
        return None
    if serve == Serve.HTTP_ERROR.value:
        return _response("500 Internal Server Error", b"internal error\n", "text/plain")
    if serve in (Serve.KUBELET.value, Serve.KUBELET_SELF_SIGNED.value):
        return _response("401 Unauthorized", b"Unauthorized\n", "text/plain")
    if serve == Serve.HEALTHZ.value:
        if path in ("/healthz", "/livez", "/readyz"):
            return _response("200 OK", b"ok", "text/plain")
        return _response("404 Not Found", b"404 page not found\n", "text/plain")
    if method == "POST" and path.split("?")[0] in ("/validate", "/mutate", "/convert"):
        return _review_response(path, body)
    if method == "GET" and path.startswith("/apis/"):
        return _discovery_response(path)
    if method == "GET" and path in ("/readyz", "/livez", "/healthz"):
        return _response("200 OK", b"ok", "text/plain")
    return _response("404 Not Found", b"404 page not found\n", "text/plain")


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 2:
        return None
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            length = min(int(value.strip()), MAX_BODY)
    try:
        body = await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return parts[0], parts[1], body


def _handler(serve: str) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if serve == Serve.TCP_SINK.value:
                while await reader.read(65536):
                    pass
                return
            if serve == Serve.KUBELET_NO_CERT.value:
                await reader.read(65536)  # the ClientHello
                writer.write(INTERNAL_ERROR_ALERT)
                await writer.drain()
                return
            while (request := await _read_request(reader)) is not None:
                reply = _answer(serve, *request)
                if reply is None:
                    await reader.read()  # hold the connection open until the client gives up
                    return
                writer.write(reply)
                await writer.drain()
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            writer.close()
    return handle


def _open_socket(spec: ListenerSpec) -> socket.socket:
    family = socket.AF_INET6 if spec.ipv6 else socket.AF_INET
    with nsenter.entered(spec.netns):
        sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if spec.ipv6:  # IPv4 too, as v4-mapped addresses, whatever net.ipv6.bindv6only says
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::" if spec.ipv6 else "0.0.0.0", spec.port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


INTERNAL_ERROR_ALERT = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50])
"""A TLS record: alert, TLS 1.2 record version, length 2, fatal (2), internal_error (80)."""


def _tls_context(spec: ListenerSpec) -> ssl.SSLContext | None:
    if not spec.cert or spec.serve in (Serve.TCP_SINK.value, Serve.KUBELET_NO_CERT.value):
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(spec.cert, spec.key)
    context.set_alpn_protocols(["http/1.1"])
    return context


async def serve_all(specs: list[ListenerSpec]) -> None:
    """Listens on every SPEC, prints `ready`, and serves until SIGTERM."""
    stop = asyncio.get_running_loop().create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.cancel)
    servers = [await asyncio.start_server(_handler(spec.serve), sock=_open_socket(spec),
                                          ssl=_tls_context(spec)) for spec in specs]
    print("ready", flush=True)
    sys.stdout.close()
    try:
        await stop
    except asyncio.CancelledError:
        pass
    for server in servers:
        server.close()


def main(argv: list[str]) -> int:
    specs = [ListenerSpec(**item) for item in json.loads(Path(argv[0]).read_text())]
    asyncio.run(serve_all(specs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
