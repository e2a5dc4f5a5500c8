"""`planner catalog`: placeholder until its issue lands (the owner replaces this module)."""

from planner.cli._app import app, fail


@app.command("catalog")
def catalog() -> None:
    """Not built yet."""
    raise fail("'planner catalog' is not built yet")
