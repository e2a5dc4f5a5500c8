"""Old import path, kept working: the schema moved to `planner.inputs.calibration`, the offline fit
to `planner.perf.fit`."""

from planner.inputs.calibration import *  # noqa: F401,F403
from planner.perf.fit import *  # noqa: F401,F403
from planner.perf.fit import _gemm_ceilings, _predict_all  # noqa: F401  (bench/calibration.py uses them)
