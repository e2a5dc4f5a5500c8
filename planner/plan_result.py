"""Old import path, kept working: moved to `planner.optimize.result`."""

from planner.optimize.result import *  # noqa: F401,F403
