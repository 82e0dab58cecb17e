"""netprobe's own error tree.

Owns: the exceptions netprobe raises when *the tool* cannot do its job.
Must not: be used for failures of the probed path (a refused SYN, a timeout,
an x509 error); those are data (`PhaseResult`, `Verdict`), never raised.
"""

from __future__ import annotations

from netprobe.core.exits import ExitCode


class NetprobeError(Exception):
    """netprobe itself failed; the CLI maps it to exit code 3."""

    exit_code = ExitCode.FAILURE
    retryable = False


class UsageError(NetprobeError):
    """The user asked for something impossible or malformed (exit code 2)."""

    exit_code = ExitCode.USAGE


class NotRootError(UsageError):
    """An operation needs root (network namespaces, raw capture)."""


class MissingToolError(UsageError):
    """A system program netprobe needs is not installed."""

    def __init__(self, tool: str, package: str) -> None:
        super().__init__(
            f"finding {tool}: not installed; install the Debian/Ubuntu package "
            f"'{package}' (apt-get install {package}) or run 'sudo make setup'"
        )
        self.tool = tool
        self.package = package


class LabError(NetprobeError):
    """Building or tearing down the network-namespace lab failed."""


class AgentError(NetprobeError):
    """A probe agent could not run, died, or returned a damaged result."""


class K8sError(NetprobeError):
    """The Kubernetes API refused or failed a request."""

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class K8sNotFound(K8sError):
    """The API says the object does not exist (404)."""


class K8sForbidden(K8sError):
    """RBAC or admission denied the request (403)."""

    exit_code = ExitCode.USAGE


class CaptureError(NetprobeError):
    """Capturing packets failed (tcpdump missing, no permission, ...)."""


class CaptureFormatError(UsageError):
    """A capture file is malformed or of an unsupported format."""
