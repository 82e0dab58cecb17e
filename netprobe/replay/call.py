"""Driving one replayed webhook call over a real socket, phase by phase.

Owns: the order and the timers of kube-apiserver's call (resolve, TCP
connect, TLS with the service name as ServerName, POST with the review,
wait for the answer), per-phase timings, and the *early* stall decisions
(the kernel's TCP_INFO says the SYN or the ClientHello went unanswered).
TLS runs over memory BIOs so this loop owns every wait. Must not: classify
beyond naming the failure, or capture (the caller starts the capture in
`on_bound`, once the local port is known).
"""

from __future__ import annotations

import datetime as dt
import errno
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import h11

from netprobe.core.model import (
    CallKind,
    CallTarget,
    CertificateInfo,
    Failure,
    HttpOutcome,
    Phase,
    PhaseResult,
    Status,
)
from netprobe.core.packets import ip_version
from netprobe.core.settings import Timeouts
from netprobe.replay import apiserver, certs, review, sockets

TICK = 0.05
"""Longest single wait: how often stall evidence and cancellation are re-read."""


class Cancelled(Exception):
    """The caller asked the call to stop (Ctrl-C, an aborted agent)."""


_CANCEL: threading.local = threading.local()


def _check_cancel() -> None:
    event = getattr(_CANCEL, "event", None)
    if event is not None and event.is_set():
        raise Cancelled()


@dataclass
class CallOutcome:
    """What the call did (built up phase by phase)."""

    phases: list[PhaseResult] = field(default_factory=list)
    failure: Failure | None = None
    detail: str = ""
    """Go's error text for TLS errors, status text for HTTP errors."""
    stall: str | None = None
    """`syn-unanswered`, `clienthello-unanswered`, `clienthello-not-acked`,
    `response-unanswered` when a phase ran out of time."""
    early: bool = False
    errno_name: str | None = None
    certificate: CertificateInfo | None = None
    http: HttpOutcome | None = None
    dialed: tuple[str, int] | None = None
    local: tuple[str, int] | None = None
    connected_after: float = 0.0


class _Clock:
    def __init__(self) -> None:
        self.start = time.time()
        self._mono = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._mono


def _phase(outcome: CallOutcome, phase: Phase, status: Status, clock: _Clock, began: float,
           detail: str, error: str | None = None) -> None:
    outcome.phases.append(PhaseResult(phase, status, clock.start + began,
                                      clock.elapsed() - began, detail, error))


def _errno_name(code: int) -> str:
    return errno.errorcode.get(code, str(code))


# --- DNS and TCP ----------------------------------------------------------------


def _lookup(netns: str | None, host: str, wait: float) -> tuple[bool, str | None]:
    """(answered, address) of a DNS lookup given WAIT seconds.

    getaddrinfo cannot be cancelled: it runs in a daemon thread that ends by
    itself when the resolver gives up.
    """
    import threading

    answer: list[str | None] = []
    worker = threading.Thread(target=lambda: answer.append(sockets.resolve(netns, host)),
                              name="netprobe-dns", daemon=True)
    worker.start()
    worker.join(wait)
    return (True, answer[0]) if answer else (False, None)


def _resolve(target: CallTarget, netns: str | None, out: CallOutcome, clock: _Clock,
             timeouts: Timeouts) -> str | None:
    began = clock.elapsed()
    if target.resolve_ip:
        _phase(out, Phase.DNS, Status.OK, clock, began,
               f"{target.host} -> {target.resolve_ip} (service resolver, --resolve)")
        return target.resolve_ip
    if ip_version(target.host.strip("[]")) is not None:
        _phase(out, Phase.DNS, Status.OK, clock, began, f"{target.host} is an address: no lookup")
        return target.host.strip("[]")
    wait = target.timeout_seconds if timeouts.full else min(timeouts.dns_stall,
                                                             target.timeout_seconds)
    answered, address = _lookup(netns, target.host, wait)
    if not answered:
        out.failure, out.errno_name, out.early = Failure.DNS, "timeout", not timeouts.full
        out.detail = f"dial tcp: lookup {target.host}: i/o timeout"
        _phase(out, Phase.DNS, Status.TIMEOUT, clock, began,
               f"no answer from the resolver for {target.host}"
               + (" (early verdict)" if out.early else ""), "timeout")
        return None
    if address is None:
        out.failure, out.errno_name = Failure.DNS, "ENOTFOUND"
        out.detail = f"dial tcp: lookup {target.host}: no such host"
        _phase(out, Phase.DNS, Status.FAILED, clock, began, f"{target.host} does not resolve",
               "ENOTFOUND")
        return None
    _phase(out, Phase.DNS, Status.OK, clock, began, f"{target.host} -> {address} (DNS)")
    return address


_CONNECT_FAILURES = {errno.ECONNREFUSED: Failure.REFUSED, errno.EHOSTUNREACH: Failure.NO_ROUTE,
                     errno.ENETUNREACH: Failure.NET_UNREACHABLE}


def _connect(sock: socket.socket, address: str, target: CallTarget, timeouts: Timeouts,
             out: CallOutcome, clock: _Clock) -> bool:
    began = clock.elapsed()
    limit = min(began + timeouts.dial, target.timeout_seconds)
    port = target.connect_port or target.port
    code = sockets.start_connect(sock, address, port)
    out.local = sock.getsockname()[:2]  # the address the kernel chose for the SYN
    # No ICMP host unreachable by then from a last hop whose ARP/ND gave up: a silent drop.
    not_before = began + timeouts.neighbour_give_up + timeouts.neighbour_grace
    while code == errno.EINPROGRESS:
        _check_cancel()
        remaining = limit - clock.elapsed()
        if remaining <= 0:
            return _tcp_stall(out, clock, began, early=False)
        _, writable, _ = select.select([], [sock], [], min(TICK, remaining))
        if writable:
            code = sockets.pending_error(sock)
        elif (not timeouts.full and clock.elapsed() >= not_before
              and sockets.tcp_info(sock).retransmits >= timeouts.syn_retransmissions):
            return _tcp_stall(out, clock, began, early=True)
    if code != 0:
        out.failure = _CONNECT_FAILURES.get(code, Failure.REFUSED)
        out.errno_name = _errno_name(code)
        _phase(out, Phase.TCP, Status.FAILED, clock, began,
               f"connect to {address}:{port}: {errno.errorcode.get(code, code)}",
               out.errno_name)
        return False
    out.connected_after = clock.elapsed()
    _phase(out, Phase.TCP, Status.OK, clock, began, f"connected to {address}:{port}")
    return True


def _tcp_stall(out: CallOutcome, clock: _Clock, began: float, early: bool) -> bool:
    out.failure, out.stall = Failure.DIAL_STALL, "syn-unanswered"
    out.early, out.errno_name = early, "ETIMEDOUT"
    _phase(out, Phase.TCP, Status.TIMEOUT, clock, began,
           "SYN retransmitted, never answered" + (" (early verdict)" if early else ""), "timeout")
    return False


# --- socket plumbing for TLS over memory BIOs ---------------------------------------


class _Pipe:
    """A TLS object over memory BIOs and the socket that carries its bytes."""

    def __init__(self, sock: socket.socket, tls: ssl.SSLObject, incoming: ssl.MemoryBIO,
                 outgoing: ssl.MemoryBIO) -> None:
        self.sock, self.tls, self.incoming, self.outgoing = sock, tls, incoming, outgoing
        self.received = 0
        self.first_bytes = b""

    def flush(self) -> int:
        data = self.outgoing.read()
        view = memoryview(data)
        while view:
            select.select([], [self.sock], [], TICK)
            try:
                sent = self.sock.send(view)
            except BlockingIOError:
                continue
            view = view[sent:]
        return len(data)

    def pump(self, wait: float) -> bool | None:
        """Waits up to WAIT for bytes; True if some came, None at EOF, False if none."""
        readable, _, _ = select.select([self.sock], [], [], max(0.0, wait))
        if not readable:
            return False
        data = self.sock.recv(65536)
        if not data:
            self.incoming.write_eof()
            return None
        if not self.first_bytes:
            self.first_bytes = data[:8]
        self.received += len(data)
        self.incoming.write(data)
        return True


def _go_tls_error(exc: ssl.SSLError, first_bytes: bytes = b"") -> str:
    reason = (exc.reason or "").upper()
    if "WRONG_VERSION_NUMBER" in reason or "PACKET_LENGTH_TOO_LONG" in reason:
        if first_bytes.startswith(b"HTTP/"):
            return "http: server gave HTTP response to HTTPS client"
        return "tls: first record does not look like a TLS handshake"
    if "ALERT_" in reason:
        return "remote error: tls: " + reason.split("ALERT_", 1)[1].lower().replace("_", " ")
    return f"tls: {exc.reason or exc}".lower()


def _read_error(out: CallOutcome, exc: OSError) -> str:
    local, remote = out.local or ("", 0), out.dialed or ("", 0)
    text = {errno.ECONNRESET: "connection reset by peer"}.get(exc.errno or 0, exc.strerror or "")
    return f"read tcp {local[0]}:{local[1]}->{remote[0]}:{remote[1]}: read: {text}"


# --- TLS ------------------------------------------------------------------------


def _tls_context() -> ssl.SSLContext:
    # Verification happens afterwards in Go's order (certs.verify_go).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


def _handshake(sock: socket.socket, target: CallTarget, timeouts: Timeouts,
               out: CallOutcome, clock: _Clock) -> _Pipe | None:
    began = clock.elapsed()
    limit = min(began + timeouts.tls, target.timeout_seconds)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    sni = None if ip_version(target.host.strip("[]")) is not None else target.host
    pipe = _Pipe(sock, _tls_context().wrap_bio(incoming, outgoing, server_hostname=sni),
                 incoming, outgoing)
    hello_sent: float | None = None
    while True:
        _check_cancel()
        try:
            pipe.tls.do_handshake()
            pipe.flush()
            break
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError as exc:
            pipe.flush()
            _tls_failed(out, clock, began, _go_tls_error(exc, pipe.first_bytes))
            return None
        if pipe.flush() and hello_sent is None:
            hello_sent = clock.elapsed()
        remaining = limit - clock.elapsed()
        if remaining <= 0:
            _tls_stall(out, clock, began, pipe, early=False)
            return None
        try:
            got = pipe.pump(min(TICK, remaining))
        except OSError as exc:
            _tls_failed(out, clock, began, _read_error(out, exc))
            return None
        if got is None:
            _tls_failed(out, clock, began, "EOF")
            return None
        if not got and not timeouts.full and pipe.received == 0 and hello_sent is not None \
                and clock.elapsed() - hello_sent >= timeouts.tls_stall:
            info = sockets.tcp_info(sock)
            if info.unacked == 0 or info.retransmits >= timeouts.syn_retransmissions:
                _tls_stall(out, clock, began, pipe, early=True)
                return None
    _verify(pipe, target, out, clock, began)
    return pipe if out.failure is None else None


def _tls_failed(out: CallOutcome, clock: _Clock, began: float, detail: str) -> None:
    out.failure, out.detail, out.errno_name = Failure.TLS_ERROR, detail, "tls"
    _phase(out, Phase.TLS, Status.FAILED, clock, began, detail, "tls")
    return None


def _tls_stall(out: CallOutcome, clock: _Clock, began: float, pipe: _Pipe, early: bool) -> None:
    acked = sockets.tcp_info(pipe.sock).unacked == 0
    out.failure, out.early, out.errno_name = Failure.TLS_STALL, early, "timeout"
    out.stall = "clienthello-unanswered" if acked else "clienthello-not-acked"
    what = ("ClientHello ACKed, no ServerHello" if acked else "ClientHello never ACKed")
    if pipe.received:
        what = f"handshake incomplete after {pipe.received} bytes from the server"
    _phase(out, Phase.TLS, Status.TIMEOUT, clock, began,
           what + (" (early verdict)" if early else ""), "timeout")
    return None


def _verify(pipe: _Pipe, target: CallTarget, out: CallOutcome, clock: _Clock,
            began: float) -> None:
    der = pipe.tls.getpeercert(binary_form=True)
    if not der:
        _tls_failed(out, clock, began, "tls: server sent no certificate")
        return
    chain_getter = getattr(pipe.tls, "get_unverified_chain", None)  # Python >= 3.13
    chain = [item if isinstance(item, bytes) else item.public_bytes()
             for item in (chain_getter() or [])] if chain_getter else []
    roots = certs.trust_roots(target.ca_bundle)
    info = certs.describe(der, target.host, roots, dt.datetime.now(dt.UTC), chain)
    out.certificate = info
    if info.verify_error and target.insecure_skip_verify:
        version = pipe.tls.version() or "TLS"
        _phase(out, Phase.TLS, Status.OK, clock, began,
               f"{version}, certificate not verified (insecureSkipTLSVerify: {info.verify_error})")
        return
    if info.verify_error:
        out.failure, out.errno_name = Failure.TLS_ERROR, "x509"
        out.detail = f"tls: failed to verify certificate: {info.verify_error}"
        _phase(out, Phase.TLS, Status.FAILED, clock, began, out.detail, "x509")
        return
    version = pipe.tls.version() or "TLS"
    _phase(out, Phase.TLS, Status.OK, clock, began,
           f"{version}, certificate for {', '.join(info.dns_names) or info.subject} verified")


# --- HTTP -----------------------------------------------------------------------


def _request_bytes(connection: h11.Connection, target: CallTarget, body: bytes) -> bytes:
    if target.kind.method == "GET":
        return _get_request(connection, target)
    url = apiserver.call_url(target)
    path = url.split(f":{target.port}", 1)[1] if f":{target.port}" in url else target.path
    headers = [("Host", f"{target.host}:{target.port}"), ("User-Agent", "kube-apiserver-admission"),
               ("Accept", "application/json, */*"), ("Content-Type", "application/json"),
               ("Content-Length", str(len(body)))]
    return (connection.send(h11.Request(method="POST", target=path, headers=headers))
            + connection.send(h11.Data(data=body)) + connection.send(h11.EndOfMessage()))


def _get_request(connection: h11.Connection, target: CallTarget) -> bytes:
    """A GET: kube-aggregator's availability check of /apis/GROUP/VERSION with the
    front-proxy identity headers (available_controller.go: system:kube-aggregator in
    system:masters), or the apiserver's request to a kubelet."""
    host = target.url.split("://", 1)[1].split("/", 1)[0]
    headers = [("Host", host), ("User-Agent", "kube-apiserver"), ("Accept", "*/*")]
    if target.kind is CallKind.DISCOVERY:
        headers += [("X-Remote-User", "system:kube-aggregator"),
                    ("X-Remote-Group", "system:masters")]
    return (connection.send(h11.Request(method="GET", target=target.path, headers=headers))
            + connection.send(h11.EndOfMessage()))


def _exchange(pipe: _Pipe, target: CallTarget, timeouts: Timeouts, out: CallOutcome,
              clock: _Clock) -> None:
    began = clock.elapsed()
    uid, body = review.request_body(target.kind)
    parser = h11.Connection(our_role=h11.CLIENT)
    pipe.tls.write(_request_bytes(parser, target, body))
    pipe.flush()
    status, answered = 0, False
    chunks: list[bytes] = []
    response: list[int] = []
    while True:
        _check_cancel()
        try:
            plain = pipe.tls.read(65536)
            answered = answered or bool(plain)
            parser.receive_data(plain)
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            parser.receive_data(b"")
        except ssl.SSLError as exc:
            return _http_failed(out, clock, began, _go_tls_error(exc))
        try:
            done = _drain_events(parser, response, chunks)
        except h11.RemoteProtocolError as exc:
            return _http_failed(out, clock, began, f"malformed HTTP response: {exc}")
        if done is not None:
            status = done
            break
        pipe.flush()
        remaining = target.timeout_seconds - clock.elapsed()
        if remaining <= 0:
            return _response_stall(out, clock, began, early=False)
        try:
            got = pipe.pump(min(TICK, remaining))
        except OSError as exc:
            return _http_failed(out, clock, began, _read_error(out, exc))
        if got is False and not answered and not timeouts.full \
                and clock.elapsed() - began >= timeouts.response_stall \
                and sockets.tcp_info(pipe.sock).unacked == 0:
            return _response_stall(out, clock, began, early=True)
    _judge_response(target, uid, status, b"".join(chunks), out, clock, began)


def _drain_events(parser: h11.Connection, response: list[int],
                  chunks: list[bytes]) -> int | None:
    """Feeds h11's events; returns the status once the whole response is in."""
    while True:
        event = parser.next_event()
        if event is h11.NEED_DATA:
            return None
        if isinstance(event, h11.Response):
            response.append(event.status_code)
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            if not response:
                raise h11.RemoteProtocolError("connection closed before a response")
            return response[0]


def _http_failed(out: CallOutcome, clock: _Clock, began: float, detail: str) -> None:
    out.failure, out.detail, out.errno_name = Failure.TLS_ERROR, detail, "http"
    _phase(out, Phase.HTTP, Status.FAILED, clock, began, detail, "http")


def _response_stall(out: CallOutcome, clock: _Clock, began: float, early: bool) -> None:
    out.failure, out.stall, out.early, out.errno_name = (Failure.RESPONSE_STALL,
                                                         "response-unanswered", early, "timeout")
    _phase(out, Phase.HTTP, Status.TIMEOUT, clock, began,
           "request ACKed, no response" + (" (early verdict)" if early else ""), "timeout")


def _judge_response(target: CallTarget, uid: str, status: int, body: bytes,
                    out: CallOutcome, clock: _Clock, began: float) -> None:
    excerpt = body[:200].decode("utf-8", "replace")
    if target.kind is CallKind.DISCOVERY:
        return _judge_discovery(target, status, excerpt, out, clock, began)
    if target.kind is CallKind.KUBELET:  # any answer: TLS and HTTP reach the kubelet
        out.http = HttpOutcome(status, True, "the kubelet answered", excerpt)
        _phase(out, Phase.HTTP, Status.OK, clock, began,
               f"HTTP {status} from the kubelet (netprobe has not the apiserver's client "
               "certificate: any answer means the path works)")
        return
    if status != 200:
        out.failure, out.errno_name = Failure.HTTP_STATUS, f"http-{status}"
        out.detail = apiserver.status_error(status, body.decode("utf-8", "replace"))
        out.http = HttpOutcome(status, False, out.detail, excerpt)
        _phase(out, Phase.HTTP, Status.FAILED, clock, began, f"HTTP {status}", out.errno_name)
        return
    problem = review.check_response(target.kind, uid, body)
    out.http = HttpOutcome(status, problem is None, problem or "valid review", excerpt)
    if problem:
        out.failure, out.detail, out.errno_name = Failure.BAD_REVIEW, problem, "invalid-review"
        _phase(out, Phase.HTTP, Status.FAILED, clock, began, problem, "invalid-review")
        return
    decision = review.allowed(body)
    verdict = "" if decision is None else (" allowed" if decision else " denied")
    _phase(out, Phase.HTTP, Status.OK, clock, began, f"HTTP 200, valid review{verdict}")


def _judge_discovery(target: CallTarget, status: int, excerpt: str, out: CallOutcome,
                     clock: _Clock, began: float) -> None:
    """The aggregator takes any 2xx or 3xx as available (available_controller.go)."""
    if 200 <= status < 300 or 300 <= status < 400:
        out.http = HttpOutcome(status, True, "discovery answered", excerpt)
        _phase(out, Phase.HTTP, Status.OK, clock, began, f"HTTP {status}, discovery answered")
        return
    out.failure, out.errno_name = Failure.HTTP_STATUS, f"http-{status}"
    out.detail = f"bad status from {target.url}: {status}"
    out.http = HttpOutcome(status, False, out.detail, excerpt)
    _phase(out, Phase.HTTP, Status.FAILED, clock, began, f"HTTP {status}", out.errno_name)


# --- the call -------------------------------------------------------------------


def _skip_rest(out: CallOutcome, clock: _Clock) -> None:
    done = {phase.phase for phase in out.phases}
    for phase in Phase:
        if phase not in done:
            out.phases.append(PhaseResult(phase, Status.SKIPPED, clock.start + clock.elapsed(),
                                          0.0, "not reached"))


def run(target: CallTarget, timeouts: Timeouts, netns: str | None = None,
        on_bound: Callable[[socket.socket], None] | None = None,
        cancel: threading.Event | None = None) -> CallOutcome:
    """Replays the apiserver's call to TARGET from NETNS; returns what happened.

    ON_BOUND is called with the bound socket before the SYN (start a capture there).
    Path failures are returned in the outcome, never raised. Setting CANCEL makes
    the call raise `Cancelled` within a tick.
    """
    _CANCEL.event = cancel
    clock, out = _Clock(), CallOutcome()
    address = _resolve(target, netns, out, clock, timeouts)
    if address is not None:
        sock = sockets.open_socket(netns, address)
        try:
            out.local = sock.getsockname()[:2]
            out.dialed = (address, target.connect_port or target.port)
            if on_bound is not None:
                on_bound(sock)
            if _connect(sock, address, target, timeouts, out, clock):
                out.local = sock.getsockname()[:2]
                pipe = _handshake(sock, target, timeouts, out, clock)
                if pipe is not None:
                    _exchange(pipe, target, timeouts, out, clock)
        finally:
            sock.close()
    _skip_rest(out, clock)
    return out
