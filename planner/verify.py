"""Old import path, kept working: moved to `planner.optimize.verify`."""

from planner.optimize.verify import *  # noqa: F401,F403
