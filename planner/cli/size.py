"""`planner size`: placeholder until its issue lands (the owner replaces this module)."""

from planner.cli._app import app, fail


@app.command("size")
def size() -> None:
    """Not built yet."""
    raise fail("'planner size' is not built yet")
