"""The `planner` command line: one module per command group, all registered on one typer app."""

import sys
from typing import Any

import typer

from planner.cli._app import app
from planner.cli import catalog, compare, optimize, perf, simulate, size, traffic  # noqa: F401  (registers commands)

# NOTE: recent typer vendors its own copy of click, so the click exception classes are found
# through typer's public BadParameter rather than imported from `click` (hence `type[Any]`: the
# type checker cannot name a class found at runtime).
_UsageError: type[Any] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_NoArgsIsHelpError = getattr(sys.modules[_UsageError.__module__], "NoArgsIsHelpError", None)


def main() -> None:
    """Console-script entry point.

    Usage errors (a missing or unknown option, a value out of range) get the same treatment as bad
    input everywhere else: one line on stderr and exit code 2, instead of click's boxed panel.
    """
    try:
        code = app(standalone_mode=False)
    except _UsageError as err:
        if _NoArgsIsHelpError is not None and isinstance(err, _NoArgsIsHelpError):
            typer.echo(err.ctx.get_help() if err.ctx else "planner --help")
            sys.exit(0)
        command = err.ctx.command_path if err.ctx else "planner"
        typer.echo(f"error: {err.format_message()} (see `{command} --help`)", err=True)
        code = 2
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        code = 1
    sys.exit(code if isinstance(code, int) else 0)
