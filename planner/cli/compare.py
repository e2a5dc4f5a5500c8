"""`planner compare`: placeholder until its issue lands (the owner replaces this module)."""

from planner.cli._app import app, fail


@app.command("compare")
def compare_cmd() -> None:
    """Not built yet."""
    raise fail("'planner compare' is not built yet")
