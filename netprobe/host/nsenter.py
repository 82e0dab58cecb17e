"""Entering a named network namespace from the current thread.

Owns: `setns(2)` on `/run/netns/NAME` (what `ip netns add` creates), for the
calling thread only, and the way back. One process can so open sockets in
several namespaces; a socket stays in the namespace it was created in.
Must not: change the namespace of any other thread, or leave the calling
thread outside the namespace it started in.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno as errno_mod
import os
from collections.abc import Iterator
from pathlib import Path

from netprobe.core import errors

NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def netns_path(name: str) -> Path:
    """Returns the bind-mount file of the named namespace."""
    if not name or "/" in name or name in {".", ".."}:
        raise errors.UsageError(f"entering network namespace {name!r}: not a valid name")
    return NETNS_DIR / name


def exists(name: str) -> bool:
    """True if `ip netns` knows a namespace called NAME."""
    return netns_path(name).exists()


@contextlib.contextmanager
def entered(name: str | None) -> Iterator[None]:
    """Runs the body with the calling thread inside network namespace NAME.

    None means "stay where you are". Sockets created in the body belong to
    NAME for their whole life.

    Raises:
        UsageError: no namespace called NAME.
        NotRootError: not allowed to enter it (needs CAP_SYS_ADMIN).
    """
    if name is None:
        yield
        return
    path = netns_path(name)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise errors.UsageError(
            f"entering network namespace {name!r}: no such namespace (see 'ip netns list')"
        ) from None
    except PermissionError as exc:
        raise errors.NotRootError(f"entering network namespace {name!r}: {exc.strerror}; "
                                  "run as root") from exc
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            _setns(target)
        except OSError as exc:
            if exc.errno == errno_mod.EPERM:
                raise errors.NotRootError(
                    f"entering network namespace {name!r}: operation not permitted; run as root"
                ) from exc
            raise errors.NetprobeError(f"entering network namespace {name!r}: {exc}") from exc
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)
