"""The planning world, prepared once per run through the `PlanningBackend` (`_World`: capacities,
demand, prices, scale-up times), and the MILP's inputs from it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from planner import billing
from planner.errors import PlannerError
from planner.inputs.profile import Profile
from planner.optimize.backend import PlanningBackend
from planner.optimize.closed import constant_demand
from planner.optimize.demand import DemandSeries, slot_demands
from planner.optimize.milp import (
    Limits,
    MilpInputs,
    Pool,
    SlotDemand,
    SolverResult,
    endpoint_name,
)
from planner.optimize.result import (
    PlanEntry,
)
from planner.optimize.draws import Draw, Sample, sample_days
from planner.optimize.schedule import pod_schedule_utc

Progress = Callable[[str, float, float], None]
"""progress(phase, done, total): how far a long phase is (the CLI draws it on stderr)."""


@dataclass
class _World:
    """Everything fixed before the first solve."""

    profile: Profile
    workload: Any
    bucket_names: list[str]
    bucket_idx: np.ndarray
    slots: list[SlotDemand]
    series: DemandSeries
    checks: list[Any]
    caps: dict[str, dict[str, float]]  # endpoint -> bucket -> req/s (a closed loop: users)
    endpoints: dict[str, tuple[str, int]]  # endpoint -> (gpu, tp)
    pod_usd_per_hour: dict[str, float]  # endpoint -> USD/h of one replica (measured mode)
    prices: dict[str, Any]  # gpu -> ResolvedPrices
    limits: Limits
    seed: int
    capacity_results: list[Any] = field(default_factory=list)
    measured: bool = False
    in_flight: dict[str, dict[str, float]] = field(default_factory=dict)  # endpoint -> bucket -> requests
    worker_concurrency: int | None = None  # serverless max_concurrency_per_worker
    draws: list[Draw] = field(default_factory=list)  # the traffic draws (scenarios), the run's own first
    sample: Sample | None = None  # the days simulated instead of a long horizon (None: all of it)
    # endpoint simulations already run in this process, by what they simulate (planner.optimize.verify)
    simulated: OrderedDict[bytes, Any] = field(default_factory=OrderedDict)


def _demand(profile: Profile, workload: Any, bucket_idx: np.ndarray, names: list[str]) -> tuple[list[SlotDemand], DemandSeries]:
    """One draw's demand levels per slot (measured capacities: the total split by the buckets' shares)."""
    opt = profile.optimizer
    if profile.capacity is None:
        return slot_demands(workload.arrival_s, bucket_idx, names, workload.horizon_s,
                            slot_s=opt.slot_seconds, percentile=opt.demand_percentile)
    from planner import capacity  # noqa: PLC0415

    shares = capacity.measured_shares(profile.capacity)
    total_slots, series = slot_demands(
        workload.arrival_s, np.zeros(len(workload), dtype=np.int64), ["all"], workload.horizon_s,
        slot_s=opt.slot_seconds, percentile=opt.demand_percentile,
    )
    slots = [
        s.model_copy(update={"rate_per_s": {b: s.rate_per_s["all"] * shares.get(b, 0.0) for b in names}})
        for s in total_slots
    ]
    series = series.model_copy(
        update={"slot_peak_per_s": [{b: p["all"] * shares.get(b, 0.0) for b in names} for p in series.slot_peak_per_s]}
    )
    return slots, series


def _prepare(
    profile: Profile, workload: Any, seed: int, workers: int, cache: Any, backend: PlanningBackend,
    scenario_workloads: Sequence[tuple[int, Any]] = (), progress: Progress | None = None,
    capacity_draw: tuple[int, Any] | None = None, planned_demand: Sequence[Any] | None = None,
) -> _World:
    """Buckets, demand levels, candidates and their capacities: everything before the MILP.

    `scenario_workloads` ((seed, workload) of the further traffic draws): the MILP plans for the
    mean of every draw's demand levels, and each draw is kept to verify the plan on.
    `capacity_draw` ((seed, workload)): the draw the capacity probes sample request sizes and
    burstiness from, with that seed (None: the run's own). The loop passes the profile's own
    traffic.seed draw, so a replica's capacity is the same whatever --seed: it belongs to the
    candidate and the traffic's distributions, not to one draw (verification uses the run's draws).
    `planned_demand`: when given, the draws the MILP's demand is the mean of, instead of the run's
    own draws (the loop passes the profile's own traffic.seed draws, so the
    MILP plans for the same demand whatever --seed, as the capacities do; the run's draws are
    what the plan is verified on).
    """
    from planner import capacity  # noqa: PLC0415

    opt = profile.optimizer
    measured = profile.capacity is not None
    closed = getattr(workload, "users", None) is not None  # a closed loop (planner.optimize.closed)
    checks: list[Any] = []
    pod_usd_per_hour: dict[str, float] = {}
    if measured:
        buckets, results, pod_usd_per_hour = capacity.measured_capacities(profile.capacity)
    else:
        buckets = capacity.buckets_from_ranges(opt.size_buckets)
    names = [b.name for b in buckets]
    draws: list[Draw] = []
    if closed:  # N users all the time; sizes: the first ones the users will send
        bucket_idx = np.zeros(0, dtype=np.int64)
        slots, series = constant_demand(workload.users, float(workload.horizon_s))
        prompt, output = workload.sizes_sample()
    else:
        bucket_idx = capacity.assign_buckets(workload.prompt_tokens, workload.output_tokens, buckets)
        slots, series = _demand(profile, workload, bucket_idx, names)
        prompt, output = workload.prompt_tokens, workload.output_tokens
        draws = [Draw(0, seed, workload, bucket_idx, np.asarray(series.window_level, dtype=np.int64))]
        per_draw = [slots]
        for k, (draw_seed, wl) in enumerate(scenario_workloads, start=1):
            idx = capacity.assign_buckets(wl.prompt_tokens, wl.output_tokens, buckets)
            draw_slots, draw_series = _demand(profile, wl, idx, names)
            if len(draw_slots) != len(slots):
                raise PlannerError("traffic draws differ in their slots: keep traffic.horizon_seconds fixed")
            draws.append(Draw(k, draw_seed, wl, idx, np.asarray(draw_series.window_level, dtype=np.int64)))
            per_draw.append(draw_slots)
        if planned_demand is not None:
            per_draw = []
        for wl in planned_demand or ():
            idx = capacity.assign_buckets(wl.prompt_tokens, wl.output_tokens, buckets)
            draw_slots, _ = _demand(profile, wl, idx, names)
            if len(draw_slots) == len(slots):
                per_draw.append(draw_slots)
        per_draw = per_draw or [slots]
        if len(per_draw) > 1:
            slots = mean_demand(per_draw)
    if not measured:
        p50 = int(np.median(prompt))
        p99 = int(np.percentile(prompt + output, 99))
        checks = [
            backend.check_candidate(profile, gpu, tp, p50, p99)
            for gpu in profile.candidates.gpus
            for tp in profile.candidates.tensor_parallel_sizes
        ]
        fits = [c for c in checks if c.fits]
        if not fits:
            raise PlannerError(_no_candidate_message(profile, checks))
        chosen = [(c.gpu_id, c.tensor_parallel_size) for c in fits]
        fingerprints = {c.gpu_id: backend.gpu_fingerprint(c.gpu_id) for c in fits}
        probe_seed, probe_workload = capacity_draw or (seed, workload)
        tasks = (capacity.make_closed_tasks(profile, chosen, workload, seed=seed, gpu_fingerprints=fingerprints)
                 if closed else
                 capacity.make_tasks(profile, chosen, buckets, probe_workload, seed=probe_seed, gpu_fingerprints=fingerprints))
        report: dict[str, Any] = {} if progress is None else {"progress": lambda k, n: progress("capacities", k, n)}
        results = backend.capacities(tasks, cache=cache, workers=workers, **report)
    caps: dict[str, dict[str, float]] = {}
    in_flight: dict[str, dict[str, float]] = {}
    endpoints: dict[str, tuple[str, int]] = {}
    for r in results:
        ep = endpoint_name(r.gpu_id, r.tensor_parallel_size)
        endpoints[ep] = (r.gpu_id, r.tensor_parallel_size)
        # A closed loop's capacity is in users (demand: users too); else requests/s.
        cap = getattr(r, "max_users", None) if closed else r.max_rate_per_s
        caps.setdefault(ep, {})[r.bucket] = float(cap or 0.0)
        in_flight_at_max = getattr(r, "in_flight_at_max", None)
        if in_flight_at_max:
            in_flight.setdefault(ep, {})[r.bucket] = float(in_flight_at_max)
    prices: dict[str, Any] = {}
    for gpu, _ in endpoints.values():
        try:
            prices[gpu] = backend.resolve_prices(profile, gpu)
        except PlannerError:
            prices[gpu] = None
    unknown = sorted(set(opt.max_gpus_per_type or {}) - {gpu for gpu, _ in endpoints.values()} - set(profile.candidates.gpus))
    if unknown:
        raise PlannerError(
            f"optimizer.max_gpus_per_type names {', '.join(unknown)}, not in candidates.gpus: "
            "use the candidates' catalog ids"
        )
    limits = Limits(
        max_gpus=dict(opt.max_gpus_per_type or {}),
        max_serverless_workers=(
            opt.max_serverless_workers
            if opt.max_serverless_workers is not None
            else profile.billing.serverless.max_workers
        ),
        min_replicas=opt.min_replicas,
        budget_usd_per_month=opt.budget_usd_per_month,
        max_gpu_types=opt.max_gpu_types,
        max_serverless_endpoints=opt.max_serverless_endpoints,
    )
    return _World(
        profile=profile, workload=workload, bucket_names=names, bucket_idx=bucket_idx, slots=slots,
        series=series, checks=checks, caps=caps, endpoints=endpoints, pod_usd_per_hour=pod_usd_per_hour,
        prices=prices, limits=limits, seed=seed, capacity_results=list(results), measured=measured,
        in_flight=in_flight, worker_concurrency=_worker_concurrency(profile), draws=draws,
        sample=sample_days(draws[0], float(workload.horizon_s), float(opt.slot_seconds)) if draws else None,
    )


def mean_demand(per_draw: Sequence[Sequence[SlotDemand]]) -> list[SlotDemand]:
    """Each slot level's demand averaged over the traffic draws (the same slots and levels each).

    The mean of K draws' one-minute-rate percentiles varies about 1/sqrt(K) as much between runs
    as one draw's, which is what keeps the plan from flipping with the seed; verification then
    checks the plan on every draw.
    """
    out = []
    for levels in zip(*per_draw):
        first = levels[0]
        buckets = dict.fromkeys(b for lv in levels for b in lv.rate_per_s)
        k = len(levels)
        out.append(first.model_copy(update={
            "rate_per_s": {b: sum(lv.rate_per_s.get(b, 0.0) for lv in levels) / k for b in buckets},
            "busy_s": sum(lv.busy_s for lv in levels) / k,
            "num_bursts": int(round(sum(lv.num_bursts for lv in levels) / k)),
        }))
    return out


def _worker_concurrency(profile: Profile) -> int | None:
    """Requests one serverless worker holds at once (Runpod vLLM worker MAX_CONCURRENCY)."""
    try:
        value = billing.setting(profile.billing, "max_concurrency_per_worker")
    except (PlannerError, KeyError):
        return None
    return int(value) if value else None


def _serverless_caps(world: _World, ep: str, caps: dict[str, float]) -> dict[str, float]:
    """A serverless worker's capacity: a pod's, scaled down when its concurrency cap binds.

    At its SLO capacity a replica holds `in_flight` requests on average (Little's law, measured
    in the capacity probe); a worker that takes at most `worker_concurrency` at once carries at
    most that fraction of the rate (an estimate: it ignores the shape of the queue).
    """
    if not world.worker_concurrency:
        return caps
    out = {}
    for b, v in caps.items():
        held = world.in_flight.get(ep, {}).get(b)
        out[b] = v * min(1.0, world.worker_concurrency / held) if held and held > 0 else v
    return out


def _no_candidate_message(profile: Profile, checks: Sequence[Any]) -> str:
    reasons = []
    for c in checks:
        line = f"{c.gpu_id} tp{c.tensor_parallel_size}: {c.reason}"
        if line not in reasons:
            reasons.append(line)
    shown = "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")
    return (
        f"no candidate can serve {profile.model.name} under the SLO ({shown}); to make it feasible: "
        "quantize (model.quantization awq/fp8 or kv_cache_dtype fp8), allow larger "
        "candidates.tensor_parallel_sizes, add bigger GPUs, lower serving.max_model_len, or relax "
        "slo.ttft_seconds / slo.tpot_seconds"
    )


def _infeasible_message(world: _World, status: str) -> str:
    lim = world.limits
    active = []
    if lim.budget_usd_per_month is not None:
        active.append(f"optimizer.budget_usd_per_month {lim.budget_usd_per_month:g}")
    if lim.max_gpus:
        active.append(f"optimizer.max_gpus_per_type {lim.max_gpus}")
    if lim.max_serverless_workers is not None:
        active.append(f"max serverless workers {lim.max_serverless_workers}")
    peak = max((sum(s.rate_per_s.values()) for s in world.slots), default=0.0)
    demand = f"{peak:.0f} users" if getattr(world.workload, "users", None) is not None else f"{peak:.2f} req/s"
    return (
        f"no fleet carries the peak demand ({demand}) within the limits ({status}; "
        f"{', '.join(active) or 'no limits set'}): raise the budget or the GPU/worker limits, "
        "allow more candidates.gpus or billing modes, or relax the SLO"
    )


def _milp_inputs(
    world: _World, factors: dict[str, float], backend: PlanningBackend, price_factors: dict[str, float] | None = None
) -> MilpInputs:
    """Pools for every (endpoint, billing) the profile allows and prices allow.

    `factors` (pool name -> multiplier) are the refinement rounds' tightened capacities.
    """
    profile = world.profile
    allowed = set(profile.candidates.billing)
    pools: list[Pool] = []
    for ep, (gpu, tp) in world.endpoints.items():
        caps = {b: v for b, v in world.caps.get(ep, {}).items() if v > 0}
        if not caps:
            continue
        pr = world.prices.get(gpu)
        if ep in world.pod_usd_per_hour:
            pools.append(Pool(gpu_id=gpu, tensor_parallel_size=tp, billing="pod", capacity_per_s=caps,
                              usd_per_replica_s=world.pod_usd_per_hour[ep] / 3600.0))
        elif "pod" in allowed and pr is not None and pr.pod_usd_per_gpu_hour is not None:
            pools.append(Pool(gpu_id=gpu, tensor_parallel_size=tp, billing="pod", capacity_per_s=caps,
                              usd_per_replica_s=pr.pod_usd_per_hour(tp) / 3600.0))
        if "serverless" in allowed and pr is not None and pr.flex_usd_per_gpu_s is not None:
            caps = _serverless_caps(world, ep, caps)
            pools.append(Pool(gpu_id=gpu, tensor_parallel_size=tp, billing="flex", capacity_per_s=caps,
                              usd_per_replica_s=pr.flex_usd_per_s(tp),
                              scale_up_s=backend.scale_up_seconds(profile, gpu, tp)))
            if pr.active_usd_per_gpu_s is not None:
                pools.append(Pool(gpu_id=gpu, tensor_parallel_size=tp, billing="active", capacity_per_s=caps,
                                  usd_per_replica_s=pr.active_usd_per_s(tp)))
    price_factors = price_factors or {}
    pools = [
        p.model_copy(update={
            "capacity_per_s": {b: v * factors.get(p.name, 1.0) for b, v in p.capacity_per_s.items()},
            "usd_per_replica_s": p.usd_per_replica_s * price_factors.get(p.name, 1.0),
        })
        if factors.get(p.name, 1.0) != 1.0 or price_factors.get(p.name, 1.0) != 1.0 else p
        for p in pools
    ]
    if not pools:
        raise PlannerError(
            "no candidate has both a capacity under the SLO and a price for the allowed billing "
            f"modes ({', '.join(sorted(allowed))}): add prices: entries to the profile or allow "
            "other candidates.gpus / billing"
        )
    schedule, start_s, min_run = pod_schedule_settings(profile, world.slots)
    return MilpInputs(pools=pools, slots=world.slots, headroom=profile.optimizer.headroom, limits=world.limits,
                      pod_schedule=schedule, pod_start_s=start_s, pod_min_run_slots=min_run)


def pod_schedule_settings(profile: Profile, slots: Sequence[SlotDemand]) -> tuple[str, float, int]:
    """(pod_schedule, seconds billed per pod start, minimum run in slots) from the profile.

    per_slot is the default when the horizon has more than one slot. A start is billed the pod
    provisioning delay (`billing.pod_provisioning_delay_seconds`, the one setting the simulator
    also uses); the minimum run is `billing.pod_min_run_seconds` rounded up to whole slots
    (default one slot).
    """
    opt = profile.optimizer
    num_slots = len({s.slot for s in slots})
    schedule = opt.pod_schedule or ("per_slot" if num_slots > 1 else "fixed")
    start_s = float(billing.setting(profile.billing, "pod_provisioning_delay_seconds"))
    min_run_s = getattr(profile.billing, "pod_min_run_seconds", None)
    min_run = 1 if min_run_s is None else max(1, int(np.ceil(min_run_s / opt.slot_seconds - 1e-9)))
    return schedule, start_s, min_run


def day_period_slots(profile: Profile) -> int | None:
    """Slots per day when a day is a whole number of slots (the typical-day reduction's period)."""
    per_day = 86400.0 / profile.optimizer.slot_seconds
    return int(round(per_day)) if abs(per_day - round(per_day)) < 1e-9 and per_day >= 1 else None


def _entries(result: SolverResult, inputs: MilpInputs, world: _World) -> list[PlanEntry]:
    """The solver's pools grouped into plan lines: pods, and serverless endpoints (active + flex)."""
    volume = sum(sum(s.rate_per_s.values()) * s.duration_s for s in inputs.slots) or 1.0
    routed: dict[str, float] = {}
    for s, per_bucket in zip(inputs.slots, result.routing):
        for pools in per_bucket.values():
            for name, rate in pools.items():
                routed[name] = routed.get(name, 0.0) + rate * s.duration_s
    out: dict[tuple[str, str], PlanEntry] = {}
    for use in result.pools:
        pool = next(p for p in inputs.pools if p.gpu_id == use.gpu_id and p.tensor_parallel_size == use.tensor_parallel_size and p.billing == use.billing)
        mode = "pod" if use.billing == "pod" else "serverless"
        key = (pool.endpoint, mode)
        entry = out.get(key) or PlanEntry(
            gpu=use.gpu_id, tensor_parallel_size=use.tensor_parallel_size, billing=mode, count=0, gpus=0,
            traffic_share=0.0, capacity_per_s=dict(pool.capacity_per_s), milp_cost_usd=0.0,
        )
        if use.billing == "pod":
            entry.count = use.count
            entry.pods_per_slot = list(use.pods_per_slot)
            entry.pod_starts = use.pod_starts
        elif use.billing == "active":
            entry.active_workers = use.count
        else:
            entry.flex_workers_per_level = use.flex_per_slot
            entry.max_flex_workers = max(use.flex_per_slot, default=0)
        if mode == "serverless":
            entry.count = entry.active_workers + entry.max_flex_workers
        entry.gpus = entry.count * entry.tensor_parallel_size
        entry.traffic_share += routed.get(pool.name, 0.0) / volume
        entry.milp_cost_usd += use.cost_usd
        out[key] = entry
    return [e for e in out.values() if e.count > 0 or e.traffic_share > 1e-9]


def _deploy(world: _World, backend: PlanningBackend, entry: PlanEntry) -> dict[str, Any]:
    """Settings to deploy one plan line (the report renders the vllm command and env vars)."""
    out: dict[str, Any] = {
        "gpu": entry.gpu, "tensor_parallel_size": entry.tensor_parallel_size, "billing": entry.billing,
        "count": entry.count,
    }
    try:
        out["engine"] = backend.engine_settings(world.profile, entry.gpu, entry.tensor_parallel_size)
    except (PlannerError, ImportError, AttributeError) as err:
        out["engine"] = None
        out["engine_note"] = f"engine settings unavailable: {err}"
    if entry.billing == "pod" and entry.pods_per_slot and len(set(entry.pods_per_slot)) > 1:
        out["schedule"] = pod_schedule_utc(world.profile, entry.pods_per_slot)
    if entry.billing == "serverless":
        sl = world.profile.billing.serverless
        out["serverless"] = {
            "active_workers": entry.active_workers,
            "max_workers": entry.count,
            "idle_timeout_seconds": sl.idle_timeout_seconds,
            "scaler": sl.scaler,
            "scaler_value": sl.scaler_value_resolved,
            "max_concurrency_per_worker": sl.max_concurrency_per_worker,
            "cached_model": sl.cold_start.cached_model,
        }
    return out
