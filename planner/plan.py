"""Old import path, kept working: the planning loop moved to `planner.optimize` (backend, loop, world, assumptions, result)."""

from planner.optimize.backend import *  # noqa: F401,F403
from planner.optimize.backend import CatalogBackend as Backend  # noqa: F401  (the old name)
from planner.optimize.loop import *  # noqa: F401,F403
from planner.optimize.world import *  # noqa: F401,F403
from planner.optimize.assumptions import *  # noqa: F401,F403
from planner.optimize.result import *  # noqa: F401,F403
