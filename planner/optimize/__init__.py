"""The optimizer: demand per slot, the fleet MILP, the planning loop that verifies its plans by simulation.

Modules in data-flow order: demand (slot demand from the arrivals), milp (the PuLP model: the only
PuLP import), world (the planning backend and the world prepared once per run), endpoints (a
plan's endpoints simulated, in turn or side by side), verify (a plan simulated and billed), search
(solve-verify-refine), alternatives, assumptions, result (the result models), loop (`plan()`). This package re-exports the MILP names (`planner.optimize` was
the MILP module before it grew into a package).
"""

from planner.optimize.milp import (
    Billing,
    Limits,
    MilpInputs,
    Pool,
    PoolUse,
    SlotDemand,
    SolverResult,
    build_model,
    endpoint_name,
    pool_name,
    solve,
)

__all__ = [
    "Billing",
    "endpoint_name",
    "pool_name",
    "Pool",
    "SlotDemand",
    "Limits",
    "MilpInputs",
    "PoolUse",
    "SolverResult",
    "build_model",
    "solve",
]
