"""Sampled vs full-horizon verification of a week plan: attainment, cost and time of each.

`planner optimize` verifies refinement rounds, further traffic draws and reference plans of a
horizon of 3+ days on a sample (the busiest and a typical day, back to back) and the chosen plan
once over the whole horizon. This solves the MILP for traffic_profiles/week.yaml, simulates its
plan both ways on the run's own draw and prints the difference, so the sample's bias is a
measured figure, not a guess. Prints the figures; asserts nothing.

    python bench/week_verify.py [--profile traffic_profiles/week.yaml] [--seed 0] [--workers 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    from planner import capacity
    from planner.inputs.profile import load_profile
    from planner.optimize.search import solve_for
    from planner.optimize.verify import verify
    from planner.optimize.backend import CatalogBackend
    from planner.optimize.world import _entries, _milp_inputs, _prepare
    from planner.traffic import generate_workload

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default=str(ROOT / "traffic_profiles" / "week.yaml"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache-dir", default=None, help="capacity cache folder (default: the user cache)")
    args = ap.parse_args()

    profile = load_profile(args.profile)
    workload = generate_workload(profile, args.seed)
    backend = CatalogBackend()
    t0 = time.perf_counter()
    world = _prepare(profile, workload, args.seed, args.workers, capacity.CapacityCache(args.cache_dir or capacity.default_cache_dir()), backend)
    print(f"capacities: {time.perf_counter() - t0:.1f} s; {len(workload):,} requests over {workload.horizon_s:g} s")
    if world.sample is None:
        raise SystemExit("the horizon is shorter than three days: nothing is sampled")
    inputs = _milp_inputs(world, {}, backend)
    result = solve_for(world, inputs)
    entries = _entries(result, inputs, world)
    print(f"MILP: {result.status_text}; {result.model_scope}; {result.solve_seconds:.2f} s")
    rows = []
    for label, sample in (("full horizon", None), (world.sample.describe(), world.sample)):
        t1 = time.perf_counter()
        run, _ = verify(world, inputs, result, entries, backend, sample=sample)
        rows.append((label, run, time.perf_counter() - t1))
    print(f"{'simulated on':<44} {'requests':>10} {'SLO attained':>13} {'$/month':>10} {'seconds':>8}")
    for label, run, secs in rows:
        print(f"{label:<44} {run.num_requests:>10,} {run.slo_attainment:>13.2%} {run.cost_per_month_usd:>10,.2f} {secs:>8.1f}")
    (_, full, full_s), (_, samp, samp_s) = rows
    print(f"sample - full: SLO attainment {100 * (samp.slo_attainment - full.slo_attainment):+.2f} points, "
          f"cost per month {100 * (samp.cost_per_month_usd / full.cost_per_month_usd - 1):+.1f}%, "
          f"time x{samp_s / full_s:.2f}")


if __name__ == "__main__":
    main()
