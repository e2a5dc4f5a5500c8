"""Capacity of one replica under the SLO, found by simulation, cached on disk.

For each candidate (GPU, tensor_parallel_size) that holds the model with room for the concurrency
the SLO needs, and each request-size bucket, `capacities()` finds the highest arrival rate one
replica sustains while the SLO's attainment holds: a bisection on the rate, each step a short
simulation (1,200 requests, ~0.1-0.4 s, with the profile's size mix and short-scale burstiness). The
results are cached on disk, keyed by a hash of everything they depend on (model, engine settings,
GPU spec and calibration, SLO, sizes, burstiness, the simulator's source), and computed in parallel
over a process pool.

Users who measured their GPUs skip all this: the profile's `capacity:` section gives per-bucket
capacities directly (`measured_capacities`).

This module does no SimPy or PuLP itself: the simulation goes through one function,
`simulate_replica`, which calls `planner.sim.simulate` (tests replace it with a stub).

Closed-loop traffic (`arrivals: {process: closed}`) has its capacity in users instead: the most
users one replica serves under the SLO (`closed`, a bisection on whole users, same cache and pool).

Modules: buckets, search (bisection, results), cache (disk cache, source fingerprint), tasks (the
process pool), closed (capacity in users), world (the rest of the optimizer's per-candidate world).
"""

from planner.capacity.buckets import (
    ALL_SIZES,
    CAPACITY_ALGORITHM_VERSION,
    DEFAULT_NUM_REQUESTS,
    DEMAND_WINDOW_S,
    WARMUP_FRACTION,
    Bucket,
    assign_buckets,
    buckets_from_ranges,
    local_burstiness_cv,
    unit_gaps,
)
from planner.capacity.cache import (
    FINGERPRINT_MODULES,
    FINGERPRINT_PACKAGES,
    CapacityCache,
    cache_key,
    check_cache_dir,
    default_cache_dir,
    fingerprint_files,
    gpu_fingerprint,
)
from planner.capacity.search import (
    Bisection,
    CandidateCheck,
    CapacityResult,
    max_rate_under_slo,
    measured_capacities,
    measured_shares,
)
from planner.capacity.closed import MAX_USERS, UsersBisection, max_users_under_slo
from planner.capacity.tasks import (
    CapacityTask,
    _attainment_fn,
    capacities,
    check_candidate,
    make_closed_tasks,
    make_tasks,
    replica_setup,
    run_task,
    simulate_replica,
)
from planner.capacity.world import (
    assumptions,
    engine_settings,
    resolve_prices,
    scale_up_seconds,
    simulate_fleet,
)

__all__ = [
    "CAPACITY_ALGORITHM_VERSION",
    "DEFAULT_NUM_REQUESTS",
    "WARMUP_FRACTION",
    "DEMAND_WINDOW_S",
    "Bucket",
    "ALL_SIZES",
    "buckets_from_ranges",
    "assign_buckets",
    "local_burstiness_cv",
    "unit_gaps",
    "Bisection",
    "MAX_USERS",
    "UsersBisection",
    "max_users_under_slo",
    "make_closed_tasks",
    "max_rate_under_slo",
    "CapacityResult",
    "CandidateCheck",
    "measured_capacities",
    "measured_shares",
    "default_cache_dir",
    "check_cache_dir",
    "CapacityCache",
    "FINGERPRINT_PACKAGES",
    "FINGERPRINT_MODULES",
    "fingerprint_files",
    "cache_key",
    "gpu_fingerprint",
    "CapacityTask",
    "simulate_replica",
    "replica_setup",
    "check_candidate",
    "_attainment_fn",
    "run_task",
    "make_tasks",
    "capacities",
    "simulate_fleet",
    "resolve_prices",
    "scale_up_seconds",
    "engine_settings",
    "assumptions",
]
