"""`planner traffic`: placeholder until its issue lands (the owner replaces this module)."""

from planner.cli._app import app, fail


@app.command("traffic")
def traffic() -> None:
    """Not built yet."""
    raise fail("'planner traffic' is not built yet")
