"""Compiled fast paths of the capture analysis, with the numpy code as reference.

Owns: finding the compiled modules (`pcap`, `pcapng`, `decode`, `tcp`, `flows`,
`jsonrows`, built from the `.c` files next to this one by `pip install`) and the switch
`NETPROBE_NATIVE=0` that turns them off. Each compiled function gives
exactly the result of the numpy function it replaces; tests check that on
every capture they read.
Must not: hold any logic of its own.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

NAMES = ("pcap", "pcapng", "decode", "tcp", "flows", "jsonrows")


def enabled() -> bool:
    """False when `NETPROBE_NATIVE=0`: use the numpy code everywhere."""
    return os.environ.get("NETPROBE_NATIVE", "1").strip() not in ("0", "false", "no", "off")


def module(name: str) -> ModuleType | None:
    """The compiled module `name`, or None when it is switched off or was not built."""
    if not enabled():
        return None
    try:
        return importlib.import_module(f"netprobe._native.{name}")
    except ImportError:
        return None


def choose(name: str, native: bool | None) -> ModuleType | None:
    """The compiled module for a caller's `native` argument.

    None: the compiled module when it is available, else None (numpy).
    False: None. True: the compiled module.

    Raises:
        RuntimeError: `native` is True and the module is switched off or not built.
    """
    if native is False:
        return None
    compiled = module(name)
    if compiled is None and native:
        raise RuntimeError(f"netprobe._native.{name} is not available (not built, or "
                           f"NETPROBE_NATIVE=0); build it with scripts/build_native.sh {name}")
    return compiled
