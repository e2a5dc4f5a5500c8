"""Pods, serverless or a mix? Simulate each on the same arrivals, price them, find the break-even.

Glue between the simulator (`planner.sim`, which says when each worker ran) and billing
(`planner.billing`, which turns that into USD); used by `planner simulate --billing` and
`planner compare`. No SimPy, no file writing and no typer here.

The options, each simulated on the same requests:
- pods: the smallest number of dedicated replicas that meets the SLO (searched upward);
- serverless: the profile's endpoint (active + flex workers, scaler, idle timeout, cold starts);
  unless max workers is given explicitly, it is raised to at least twice the pods needed, so
  that "serverless" is not just "3 workers" at high load (the raise is reported);
- mix: b pods for the base load, each holding at most `pod_saturation` requests (its batch or KV
  limit), with a serverless endpoint taking the overflow (the router prefers pods); the cheapest b
  in 1 .. pods-1 that meets the SLO.
The load sweep scales the workload's rate (`Workload.scale_rate`: the same requests, time
compressed; by default 1/8 to 2 x the profile's load) and repeats the three; the break-even is
where the pods' monthly cost crosses below serverless among the loads where both meet the SLO,
interpolated linearly in mean requests per second. When one of them misses the SLO at every load
swept, there is no break-even and the answer says so.

Modules: billed_run (one billed run), options (pods vs serverless vs mix, break-even).
"""

from planner.compare.billed_run import (
    DEFAULT_LOAD_FACTORS,
    OPTIONS,
    BilledRun,
    BillingNotes,
    Option,
    ServerlessOverrides,
    SimulateFn,
    billing_notes,
    fleet_for,
    model_id,
    model_weights_bytes,
    pod_saturation,
    run_billed,
    simulate_billed,
)
from planner.compare.options import (
    CompareResult,
    LoadPoint,
    break_even,
    compare,
    never_meeting,
    pods_needed,
)

__all__ = [
    "Option",
    "OPTIONS",
    "DEFAULT_LOAD_FACTORS",
    "ServerlessOverrides",
    "model_weights_bytes",
    "model_id",
    "fleet_for",
    "pod_saturation",
    "simulate_billed",
    "BillingNotes",
    "billing_notes",
    "BilledRun",
    "SimulateFn",
    "run_billed",
    "LoadPoint",
    "CompareResult",
    "pods_needed",
    "break_even",
    "never_meeting",
    "compare",
]
