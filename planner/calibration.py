"""Old import path, kept working: the schema moved to `planner.inputs.calibration`."""

from planner.inputs.calibration import *  # noqa: F401,F403
