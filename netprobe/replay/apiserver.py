"""What kube-apiserver would say: its webhook error messages, in its own words.

Owns: the exact shapes of the messages kube-apiserver (Go >= 1.20 net/http
and crypto/tls, the k8s.io/apiserver webhook client) produces for each
outcome, and the timer races between the webhook's timeoutSeconds, the
dialer's timeout and the TLS handshake timeout. Must not: decide what
happened on the path (classify does); it only words it.

Shape: `failed calling webhook "NAME": failed to call webhook: Post "URL": ERR`
where URL is `https://HOST:PORT/PATH?timeout=Ns` and ERR comes from Go's net,
net/http, crypto/tls or x509.
"""

from __future__ import annotations

from netprobe.core.model import ApiserverError, CallKind, CallTarget, Failure

CONTEXT_DEADLINE = "context deadline exceeded"
TLS_HANDSHAKE_TIMEOUT = "net/http: TLS handshake timeout"


def go_duration(seconds: float) -> str:
    """Go's time.Duration.String() for whole or fractional seconds below an hour."""
    if seconds >= 60:
        minutes, rest = divmod(seconds, 60)
        return f"{int(minutes)}m{go_duration(rest) if rest else '0s'}"
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


CLIENT_TIMEOUT = "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
"""Go's net/http text when an http.Client's Timeout ends a request (the aggregator's 5 s)."""
CLIENT_TIMEOUT_OLD = ("net/http: request canceled while waiting for connection "
                      "(Client.Timeout exceeded while awaiting headers)")
"""The same, as Go before 1.14 (and some dial stalls of later ones) words it."""


def call_url(target: CallTarget) -> str:
    """The URL the apiserver posts to, with its `?timeout=` parameter (the aggregator's
    discovery check: the URL it GETs, on the Service's resolved address)."""
    if target.kind.method == "GET":  # no ?timeout= on the aggregator's or a kubelet's URL
        return target.url
    base = f"https://{_host_port(target.host, target.port)}{target.path}"
    separator = "&" if "?" in target.path else "?"
    return f"{base}{separator}timeout={go_duration(target.timeout_seconds)}"


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _wrap(target: CallTarget, err: str) -> str:
    if target.kind is CallKind.KUBELET:  # the kubelet client's url.Error, as kubectl shows it
        return f'Get "{target.url}": {err}'
    if target.kind is CallKind.DISCOVERY:
        # available_controller.go: "failing or missing response from %v: %v", the error a
        # url.Error from http.Client.Do.
        return f'failing or missing response from {target.url}: Get "{target.url}": {err}'
    if target.kind is CallKind.CONVERSION:
        return (f'conversion webhook for {target.conversion_gvk} failed: '
                f'Post "{call_url(target)}": {err}')
    return (f'failed calling webhook "{target.webhook_name}": failed to call webhook: '
            f'Post "{call_url(target)}": {err}')


def _answered(error: ApiserverError, target: CallTarget) -> ApiserverError:
    """Adds what the API client is told: the dispatchers wrap it in an InternalError; for an
    unavailable APIService the aggregator answers 503 (what `kubectl top` prints)."""
    client = f"Internal error occurred: {error.message}"
    if target.kind is CallKind.KUBELET:
        client = f"Error from server: {error.message}"
    if target.kind is CallKind.DISCOVERY:
        client = ("Error from server (ServiceUnavailable): the server is currently unable to "
                  "handle the request")
    return ApiserverError(error.message, error.alternatives, client)


def _dial(dialed: tuple[str, int], err: str) -> str:
    return f"dial tcp {_host_port(*dialed)}: {err}"


def _predict(target: CallTarget, failure: Failure, *, dialed: tuple[str, int] | None = None,
             dial_timeout: float, tls_timeout: float, connected_after: float,
             detail: str) -> ApiserverError:
    address = dialed or (target.host, target.port)
    deadline = target.timeout_seconds
    if target.kind is CallKind.DISCOVERY:
        discovery = _discovery(target, failure, address, detail)
        if discovery is not None:
            return discovery
    if target.kind is CallKind.KUBELET and failure is Failure.DIAL_STALL:
        # The kubelet client's dialer gives up first (the error kubectl logs shows).
        return ApiserverError(_wrap(target, _dial(address, "i/o timeout")),
                              (_wrap(target, CONTEXT_DEADLINE),))
    if failure in (Failure.REFUSED, Failure.NO_ROUTE, Failure.NET_UNREACHABLE):
        return ApiserverError(_wrap(target, _dial(address, f"connect: {failure.value}")))
    if failure is Failure.DIAL_STALL:
        # Go <= 1.22 maps a dial cut by the request's context to "i/o timeout"
        # (net.mapErr), so both texts are seen; Go >= 1.23 always says context.
        io_timeout = _wrap(target, _dial(address, "i/o timeout"))
        context = _wrap(target, CONTEXT_DEADLINE)
        if deadline <= dial_timeout:
            return ApiserverError(context, (io_timeout,))
        return ApiserverError(io_timeout)
    if failure is Failure.TLS_STALL:
        handshake = _wrap(target, TLS_HANDSHAKE_TIMEOUT)
        context = _wrap(target, CONTEXT_DEADLINE)
        if deadline <= connected_after + tls_timeout:
            return ApiserverError(context, (handshake,))
        return ApiserverError(handshake)
    if failure is Failure.RESPONSE_STALL:
        # No ResponseHeaderTimeout is set: the request deadline ends the wait.
        return ApiserverError(_wrap(target, CONTEXT_DEADLINE))
    if failure is Failure.TLS_ERROR:
        return ApiserverError(_wrap(target, detail))
    if failure is Failure.HTTP_STATUS:
        return ApiserverError(f'failed calling webhook "{target.webhook_name}": '
                              f"failed to call webhook: {detail}")
    if failure is Failure.BAD_REVIEW:
        return ApiserverError(f'failed calling webhook "{target.webhook_name}": {detail}')
    if failure is Failure.HTTP_STATUS and target.kind is CallKind.CONVERSION:
        return ApiserverError(f"conversion webhook for {target.conversion_gvk} failed: {detail}")
    if failure is Failure.NO_SERVICE:
        return ApiserverError(_wrap(target, f'service "{detail}" not found'))
    if failure is Failure.NO_TUNNEL_AGENT:
        # konnectivity-client's dial fails with the server's DIAL_RSP error
        # (apiserver-network-proxy pkg/server/backend_manager.go: "No agent available").
        return ApiserverError(_wrap(target, Failure.NO_TUNNEL_AGENT.value))
    if failure is Failure.BAD_CA_BUNDLE:
        # The webhook's REST client is never built: client-go's rootCertPool (transport)
        # fails, and the dispatcher wraps it (ErrCallingWebhook{Reason: "could not get REST
        # client: %w"}).
        return ApiserverError(f'failed calling webhook "{target.webhook_name}": could not get '
                              "REST client: unable to load root certificates: unable to parse "
                              "bytes as PEM block")
    return ApiserverError(_wrap(target, detail or f"dial tcp: lookup {target.host}: no such host"))


def _discovery(target: CallTarget, failure: Failure, address: tuple[str, int],
               detail: str) -> ApiserverError | None:
    """The aggregator's FailedDiscoveryCheck message, where it differs from a webhook's: its
    http.Client has a 5 s Timeout (no request context), and any status outside 2xx/3xx is
    "bad status"."""
    if failure in (Failure.DIAL_STALL, Failure.TLS_STALL, Failure.RESPONSE_STALL):
        return ApiserverError(_wrap(target, CLIENT_TIMEOUT),
                              (_wrap(target, CLIENT_TIMEOUT_OLD),))
    if failure is Failure.HTTP_STATUS:
        return ApiserverError(f"failing or missing response from {target.url}: {detail}")
    if failure is Failure.NO_SERVICE:  # ServiceNotFound: its host is SVC.NS.svc
        name, namespace = (target.host.split(".") + [""])[:2]
        return ApiserverError(f'service/{name} in "{namespace}" is not present')
    return None


def predict(target: CallTarget, failure: Failure, *, dialed: tuple[str, int] | None = None,
            dial_timeout: float = 30.0, tls_timeout: float = 10.0,
            connected_after: float = 0.0, detail: str = "") -> ApiserverError:
    """Returns the message the apiserver logs, its race alternatives and what clients see.

    CONNECTED_AFTER is when TCP connected, counted from the call's start: the
    TLS timer starts then, the request deadline (timeoutSeconds) at 0.
    DETAIL carries the Go error text for TLS_ERROR, the status text for
    HTTP_STATUS, the complaint for BAD_REVIEW and the service for NO_SERVICE.
    """
    return _answered(_predict(target, failure, dialed=dialed, dial_timeout=dial_timeout,
                              tls_timeout=tls_timeout, connected_after=connected_after,
                              detail=detail), target)


def status_error(status: int, body: str) -> str:
    """client-go's message for a non-2xx answer that is not a Kubernetes Status."""
    text = body.strip() if body.strip() else "unknown"
    reasons = {
        400: "the server rejected our request for an unknown reason",
        401: "the server has asked for the client to provide credentials",
        403: "forbidden",  # client-go shapes 403 from the body; see README
        404: "the server could not find the requested resource",
        429: "the server has received too many requests and has asked us to try again later",
        500: f'an error on the server ("{text}") has prevented the request from succeeding',
        503: "the server is currently unable to handle the request",
        504: "the server was unable to return a response in the time allotted, but may still "
             "be processing the request",
    }
    return reasons.get(status, f'an error on the server ("{text}") has prevented the request '
                               "from succeeding")
