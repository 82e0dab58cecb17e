"""The `netprobe` command line: the only code that prints or exits.

Owns: the click group, the mapping of `NetprobeError` to exit codes and
one-line messages. Must not: decide anything about the network; it calls
`netprobe.api` / `netprobe.lab` and renders what they return.

Exit codes (a contract, see README): 0 the call succeeded, 1 a failure was
diagnosed, 2 usage error, 3 netprobe itself failed.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from netprobe.core import errors
from netprobe.core.exits import ExitCode


class NetprobeGroup(click.Group):
    """A click group that turns netprobe's errors into one-line messages.

    Sub-commands are loaded on first use (`_COMMANDS`).
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            import importlib

            module_name, attribute = _COMMANDS[cmd_name]
            module = importlib.import_module(f"netprobe.cli.{module_name}")
            self.add_command(getattr(module, attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except errors.NetprobeError as exc:
            click.echo(f"netprobe: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("netprobe: interrupted", err=True)
            ctx.exit(ExitCode.INTERRUPTED)
        except (click.exceptions.Exit, click.exceptions.ClickException, SystemExit):
            raise
        except BrokenPipeError:  # `netprobe ... | head`: the reader left; say nothing more
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(ExitCode.BROKEN_PIPE)
        except Exception as exc:  # a bug: one line, the traceback only on request
            if os.environ.get("NETPROBE_DEBUG"):
                raise
            click.echo(f"netprobe: internal error: {type(exc).__name__}: {exc} "
                       "(set NETPROBE_DEBUG=1 for the traceback, and please report it)", err=True)
            ctx.exit(ExitCode.FAILURE)


@click.group(cls=NetprobeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="netprobe")
def cli() -> None:
    """Find where and why the Kubernetes API server cannot reach a webhook."""


# command name -> (module under netprobe.cli, click command in it). A command's module is
# imported only when that command runs (or help lists it): `netprobe analyze` does not pay
# for the lab's, the replay's and the trace's imports (about 0.3 s).
_COMMANDS: dict[str, tuple[str, str]] = {
    "lab": ("lab", "lab"), "replay": ("replay", "replay"), "trace": ("trace", "trace"),
    "analyze": ("analyze", "analyze")}


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="netprobe", standalone_mode=True)
    except click.exceptions.Exit as exc:  # pragma: no cover - click handles it
        sys.exit(exc.exit_code)
