"""`planner simulate`: placeholder until its issue lands (the owner replaces this module)."""

from planner.cli._app import app, fail


@app.command("simulate")
def simulate() -> None:
    """Not built yet."""
    raise fail("'planner simulate' is not built yet")
