"""An independent client for the lab tests: run inside a namespace with `ip netns exec`.

It uses only the standard library (no netprobe code), connects to the
ClusterIP, does TLS against a CA file and POSTs an AdmissionReview, and
prints one JSON line: how far it got and the error it saw.
"""

import errno
import json
import socket
import ssl
import sys
import time


def main() -> None:
    host, ip, port, ca = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    timeout = float(sys.argv[5])
    result = {"stage": "tcp", "error": None, "errno": None}
    start = time.monotonic()
    try:
        sock = socket.create_connection((ip, port), timeout=timeout)
    except OSError as exc:
        result.update(error=type(exc).__name__, errno=errno.errorcode.get(exc.errno or 0))
        result["elapsed"] = time.monotonic() - start
        print(json.dumps(result))
        return
    result["stage"] = "tls"
    context = ssl.create_default_context(cafile=ca)
    try:
        tls = context.wrap_socket(sock, server_hostname=host)
        result["stage"] = "http"
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "request": {"uid": "lab-test"}}).encode()
        tls.sendall(b"POST /validate?timeout=10s HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                    b"application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (host.encode(), len(body), body))
        reply = tls.recv(65536).decode("latin-1")
        result["status"] = int(reply.split(" ")[1])
        result["body"] = reply.split("\r\n\r\n", 1)[-1]
        result["stage"] = "done"
    except ssl.SSLCertVerificationError as exc:
        result.update(error="SSLCertVerificationError", verify_message=exc.verify_message)
    except (OSError, ssl.SSLError) as exc:
        result.update(error=type(exc).__name__,
                      errno=errno.errorcode.get(exc.errno or 0)
                      if isinstance(exc.errno, int) else None)
    result["elapsed"] = time.monotonic() - start
    print(json.dumps(result))


main()
