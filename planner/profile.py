"""Old import path, kept working: moved to `planner.inputs.profile`."""

from planner.inputs.profile import *  # noqa: F401,F403
