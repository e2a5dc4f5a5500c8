"""Simulator speed: simulated requests per wall-clock second (prints figures; not a test).

(a) the shipped real trace (traffic_profiles/azure_conv.yaml: one hour of Azure's conversation
    service, 19,366 requests) on 2 replicas of llama-3.1-8b on h100-sxm;
(b) one simulated day at 20 requests/s (Poisson, steady.yaml's Azure-like sizes) on 8 replicas
    of llama-3.1-8b on h100-sxm (the target: >= 20,000 requests per wall second);
(c) half an hour at 10, 15 and 20 requests/s on ONE such replica: large batches, as capacity
    search sees them near (and past) a replica's capacity;
(d) a closed loop of 400 users (exponential think time, mean 20 s: about 18 requests/s) on 8
    such replicas for --closed-hours (default 2) hours: the arrivals come from completions.

Usage: python bench/sim_speed.py [--hours H] [--closed-hours H] [--step-check] [--profile-out FILE] [--skip-day]
  --hours H        shorten (b) to H hours (default 24)
  --closed-hours H length of (d) (default 2; 0 skips it)
  --step-check     also time (a) with jump=False (step by step) for comparison
  --profile-out F  run (b) under cProfile and write the 25 top functions by total time to F
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from dataclasses import replace

from planner.inputs.profile import ExponentialThink, load_profile
from planner.resources import data_dir
from planner.sim import FleetSpec, simulate
from planner.sim.setup import replica_setup
from planner.traffic import generate_workload
from planner.traffic.closed_loop import closed_loop


def _run(name: str, workload, setup, pods: int, slo, jump: bool = True) -> None:
    # CPU time of this process as well as wall time: the machine is shared, and CPU time is what
    # one core spends on the simulation (the simulator is single-threaded).
    t0, c0 = time.perf_counter(), time.process_time()
    out = simulate(workload, setup, FleetSpec(pods=pods), slo, jump=jump)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    workload = out.workload  # a closed loop's requests as its users sent them
    m = out.metrics
    print(
        f"{name}: {len(workload):,} requests, {m.simulated_seconds:,.0f} simulated s, {pods} replicas: "
        f"{wall:,.2f} s wall, {cpu:,.2f} s CPU = {len(workload) / wall:,.0f} requests per wall s, "
        f"{len(workload) / cpu:,.0f} per CPU s "
        f"(TTFT p50 {m.ttft_seconds.p50 * 1e3:.0f} ms, batch {m.batch_size_mean:.1f}, "
        f"requests in flight {sum(w.busy_fraction for w in m.workers) / len(m.workers):.0%})"
    )
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--step-check", action="store_true")
    parser.add_argument("--profile-out", default=None)
    parser.add_argument("--skip-day", action="store_true", help="skip (b)")
    parser.add_argument("--closed-hours", type=float, default=2.0)
    args = parser.parse_args()
    profiles = data_dir("traffic_profiles")

    trace = load_profile(profiles / "azure_conv.yaml")
    setup = replica_setup(trace, "h100-sxm", 1)
    wl = generate_workload(trace, max_model_len=setup.engine_args.max_model_len)
    _run("(a) azure_conv trace", wl, setup, 2, trace.slo)
    if args.step_check:
        _run("(a) azure_conv trace, step by step", wl, setup, 2, trace.slo, jump=False)

    steady = load_profile(profiles / "steady.yaml")

    def at_rate(rate_per_s: float, hours: float):
        traffic = steady.traffic.model_copy(
            update={
                "arrivals": steady.traffic.arrivals.model_copy(update={"rate_per_s": rate_per_s}),
                "horizon_seconds": hours * 3600.0,
            }
        )
        return steady.model_copy(update={"traffic": traffic})

    setup = replica_setup(steady, "h100-sxm", 1)
    for rate in (10.0, 15.0, 20.0):
        wl = generate_workload(at_rate(rate, 0.5), max_model_len=setup.engine_args.max_model_len)
        _run(f"(c) 0.5 h at {rate:g} req/s on one replica", wl, setup, 1, steady.slo)
    if args.closed_hours > 0:
        closed = load_profile(profiles / "closed.yaml")
        loop = closed_loop(closed, max_model_len=setup.engine_args.max_model_len)
        loop = replace(loop.with_users(400), think=ExponentialThink(distribution="exponential", mean_seconds=20.0),
                       horizon_s=args.closed_hours * 3600.0)
        _run(f"(d) closed loop, 400 users, {args.closed_hours:g} h", loop, setup, 8, closed.slo)
    if args.skip_day:
        return
    day = at_rate(20.0, args.hours)
    t0 = time.perf_counter()
    wl = generate_workload(day, max_model_len=setup.engine_args.max_model_len)
    print(f"(b) workload generation: {time.perf_counter() - t0:.2f} s")
    name = f"(b) {args.hours:g} h at 20 req/s"
    if args.profile_out:
        prof = cProfile.Profile()
        prof.enable()
        _run(name, wl, setup, 8, steady.slo)
        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
        with open(args.profile_out, "w") as fh:
            fh.write(buf.getvalue())
    else:
        _run(name, wl, setup, 8, steady.slo)


if __name__ == "__main__":
    main()
