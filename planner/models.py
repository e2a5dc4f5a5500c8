"""Old import path, kept working: moved to `planner.inputs.models`."""

from planner.inputs.models import *  # noqa: F401,F403
