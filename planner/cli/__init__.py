"""The `planner` command line: one module per command group, all registered on one typer app."""

from planner.cli._app import app
from planner.cli import catalog, compare, optimize, perf, simulate, size, traffic  # noqa: F401  (registers commands)


def main() -> None:
    """Console-script entry point."""
    app()
