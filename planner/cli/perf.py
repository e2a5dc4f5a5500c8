"""`planner perf`: placeholder until its issue lands (the owner replaces this module)."""

from planner.cli._app import app, fail


@app.command("perf")
def perf() -> None:
    """Not built yet."""
    raise fail("'planner perf' is not built yet")
