"""`planner optimize`: placeholder until its issue lands (the owner replaces this module)."""

from planner.cli._app import app, fail


@app.command("optimize")
def optimize_cmd() -> None:
    """Not built yet."""
    raise fail("'planner optimize' is not built yet")
