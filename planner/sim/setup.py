"""Old import path, kept working: replica building moved to `planner.scenario` (the `Candidate` builder)."""

from planner.scenario import model_replica_setup, replica_setup  # noqa: F401
