"""Old import path, kept working: moved to `planner.inputs.catalog`."""

from planner.inputs.catalog import *  # noqa: F401,F403
