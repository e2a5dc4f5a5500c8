"""Old import path, kept working: moved to `planner.perf.summary`."""

from planner.perf.summary import *  # noqa: F401,F403
