"""Old import path, kept working: the planning loop moved to `planner.optimize` (loop, world, assumptions, result)."""

from planner.optimize.loop import *  # noqa: F401,F403
from planner.optimize.world import *  # noqa: F401,F403
from planner.optimize.assumptions import *  # noqa: F401,F403
from planner.optimize.result import *  # noqa: F401,F403
