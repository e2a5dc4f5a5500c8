"""Planning for closed-loop users: N users constant over the horizon, capacities in users.

With `arrivals: {process: closed, users: N}` the question is "how many replicas of which GPU
serve N users". Each candidate's capacity is the most users one replica serves under the SLO
(planner.capacity.closed); the demand is N users in every slot of the horizon, one level (no
bursts: the users are always there), so the MILP (unit-agnostic: demand / capacity in replicas)
buys ceil-style replica counts of users; verification plays the users' loop on the planned
fleet, the users split over endpoints as the MILP routed them (planner.optimize.verify).
"""

from __future__ import annotations

import math
from typing import Any

from planner.errors import PlannerError
from planner.optimize.demand import DemandSeries
from planner.optimize.milp import SlotDemand
from planner.inputs.profile import Profile


def closed_loop_for_plan(profile: Profile, seed: int) -> Any:
    """The profile's closed loop, checked for what planning needs (a horizon to price)."""
    from planner.traffic import closed_loop  # noqa: PLC0415

    if profile.traffic.horizon_seconds is None:
        raise PlannerError(
            "traffic.horizon_seconds: planner optimize prices N users over a horizon; set it (e.g. 3600) "
            "for the closed loop (traffic.requests alone bounds a simulation, not a month)"
        )
    if profile.capacity is not None:
        raise PlannerError(
            "capacity: measured capacities are in requests per second; remove the capacity section for "
            "closed-loop traffic (its capacities are simulated in users)"
        )
    if profile.optimizer.size_buckets:
        raise PlannerError(
            "optimizer.size_buckets: closed-loop users send every size in turn, so capacities are per "
            "user over the whole size mix; remove size_buckets for closed-loop traffic"
        )
    return closed_loop(profile, seed)


def constant_demand(users: int, horizon_s: float, *, window_s: float = 60.0) -> tuple[list[SlotDemand], DemandSeries]:
    """N users for the whole horizon: one slot, one level, one start (the MILP's demand), and the
    per-window series the report plots (users, not requests per second)."""
    num_windows = max(1, math.ceil(horizon_s / window_s - 1e-9))
    slot = SlotDemand(
        start_s=0.0, slot=0, level=0, duration_s=float(horizon_s), rate_per_s={"all": float(users)},
        busy_s=float(horizon_s), num_bursts=1,
    )
    series = DemandSeries(
        window_s=window_s,
        bucket_names=["all"],
        rate_per_s=[[float(users)]] * num_windows,
        slot_seconds=float(horizon_s),
        slot_peak_per_s=[{"all": float(users)}],
        window_level=[0] * num_windows,
    )
    return [slot], series
