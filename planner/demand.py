"""Old import path, kept working: moved to `planner.optimize.demand`."""

from planner.optimize.demand import *  # noqa: F401,F403
