"""The `planner` command line: one module per command group, all registered on one typer app."""

from planner.cli._app import app
from planner.cli import calibrate, catalog, compare, init, optimize, perf, simulate, size, traffic  # noqa: F401  (registers commands)


def main() -> None:
    """Console-script entry point: the app exits 0, 2 on bad input (one stderr line), 1 if aborted."""
    app()
