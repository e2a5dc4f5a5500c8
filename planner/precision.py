"""Old import path, kept working: moved to `planner.inputs.precision`."""

from planner.inputs.precision import *  # noqa: F401,F403
