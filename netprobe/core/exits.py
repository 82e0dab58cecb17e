"""The exit codes of every netprobe command: a contract that scripts rely on (README).

Owns: the codes and the one rule that turns results into one. Must not:
exit (only `netprobe.cli` does) or import outside the standard library.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What a netprobe command's exit status means."""

    OK = 0
    """Every call (or flow, or scenario) succeeded."""
    DIAGNOSED = 1
    """A failure of the probed path was diagnosed (or an error finding, with --static)."""
    USAGE = 2
    """Bad input: a usage error, unreadable or damaged files, not root, a missing tool."""
    FAILURE = 3
    """netprobe itself failed (an agent died, tcpdump failed, a bug)."""
    INTERRUPTED = 130
    """Ctrl-C (128 + SIGINT), after cleaning up."""
    BROKEN_PIPE = 141
    """The reader of standard output went away (128 + SIGPIPE)."""


def diagnosed(any_failed: bool) -> ExitCode:
    """OK, or DIAGNOSED when something failed."""
    return ExitCode.DIAGNOSED if any_failed else ExitCode.OK
