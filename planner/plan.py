"""The planning loop behind `planner optimize`: the cheapest fleet under the SLO, verified.

`plan()` runs the design card's main command: candidates -> capacities (`planner.capacity`) ->
demand per slot (`planner.demand`) -> MILP (`planner.optimize`) -> verify by simulation
(`planner.verify`) -> refine -> alternatives. Everything that touches the simulator, the catalog
or prices goes through a `Backend`, so tests can run the loop on hand-made numbers. The result
models (`OptimizeResult`, what `planner optimize --json` prints, and `PlanArtifacts`, the arrays
the report plots) are in `planner.plan_result`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from planner import billing
from planner.demand import DemandSeries, slot_demands
from planner.errors import PlannerError
from planner.optimize import (
    Limits,
    MilpInputs,
    Pool,
    SlotDemand,
    SolverResult,
    endpoint_name,
    pool_name,
    solve,
)
from planner.plan_result import (
    Alternative,
    FleetRun,
    OptimizeResult,
    PlanArtifacts,
    PlanEntry,
    RoundReport,
    cost_line,
)
from planner.verify import NotSimulable, unsimulated_run, verify

if TYPE_CHECKING:
    from planner.capacity import Concerns


@dataclass
class Backend:
    """The optimizer's window on the world; the defaults use the real modules."""

    check_candidate: Callable[..., Any] = field(default=None)  # type: ignore[assignment]
    capacities: Callable[..., list[Any]] = field(default=None)  # type: ignore[assignment]
    simulate_fleet: Callable[..., Any] = field(default=None)  # type: ignore[assignment]
    resolve_prices: Callable[[Any, str], Any] = field(default=None)  # type: ignore[assignment]
    scale_up_seconds: Callable[[Any, str, int], float] = field(default=None)  # type: ignore[assignment]
    engine_settings: Callable[[Any, str, int], dict[str, Any]] = field(default=None)  # type: ignore[assignment]
    assumptions: Callable[[Any, Mapping[str, Collection[str]]], list[tuple[str, Concerns]]] = field(default=None)  # type: ignore[assignment]
    gpu_fingerprint: Callable[[str], str] = field(default=None)  # type: ignore[assignment]
    check_names: Callable[[Any], None] = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        from planner import capacity  # noqa: PLC0415

        defaults = {
            "check_names": check_names,
            "check_candidate": capacity.check_candidate,
            "capacities": capacity.capacities,
            "simulate_fleet": capacity.simulate_fleet,
            "resolve_prices": capacity.resolve_prices,
            "scale_up_seconds": capacity.scale_up_seconds,
            "engine_settings": capacity.engine_settings,
            "assumptions": capacity.assumptions,
            "gpu_fingerprint": capacity.gpu_fingerprint,
        }
        for name, fn in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, fn)


@dataclass
class _World:
    """Everything fixed before the first solve."""

    profile: Any
    workload: Any
    bucket_names: list[str]
    bucket_idx: np.ndarray
    slots: list[SlotDemand]
    series: DemandSeries
    checks: list[Any]
    caps: dict[str, dict[str, float]]  # endpoint -> bucket -> req/s
    endpoints: dict[str, tuple[str, int]]  # endpoint -> (gpu, tp)
    pod_usd_per_hour: dict[str, float]  # endpoint -> USD/h of one replica (measured mode)
    prices: dict[str, Any]  # gpu -> ResolvedPrices
    limits: Limits
    seed: int
    capacity_results: list[Any] = field(default_factory=list)
    measured: bool = False
    in_flight: dict[str, dict[str, float]] = field(default_factory=dict)  # endpoint -> bucket -> requests
    worker_concurrency: int | None = None  # serverless max_concurrency_per_worker


def plan(
    profile: Any,
    *,
    seed: int | None = None,
    workers: int = 1,
    cache_dir: Any = None,
    use_cache: bool = True,
    backend: Backend | None = None,
    workload: Any = None,
) -> tuple[OptimizeResult, PlanArtifacts]:
    """Cheapest fleet under the profile's SLO, verified by simulation (the main command).

    Args:
        profile: a loaded Profile.
        seed: traffic and simulation seed (None: the profile's traffic.seed).
        workers: processes for the capacity simulations.
        cache_dir: capacity cache folder (None: the user cache folder); use_cache False: no cache.
        backend: stand-ins for the simulator, catalog and prices (tests).
        workload: the requests to plan for (None: generated from the profile).
    Returns:
        (the result model, arrays for the report's plots).
    Raises:
        PlannerError: nothing can serve the profile, or the limits leave no plan; the message
            says what would make it feasible.
    """
    from planner import capacity  # noqa: PLC0415

    started = time.perf_counter()
    backend = backend or Backend()
    if use_cache and cache_dir is not None:
        capacity.check_cache_dir(cache_dir)
    if profile.capacity is None:  # measured capacities name their own GPUs and need no catalog
        backend.check_names(profile)
    seed = int(profile.traffic.seed if seed is None else seed)
    if workload is None:
        from planner.traffic import generate_workload  # noqa: PLC0415

        workload = generate_workload(profile, seed)
    if len(workload) == 0:
        raise PlannerError("the profile's traffic has no requests over the horizon: raise the rate or the horizon")
    cache = capacity.CapacityCache(None if not use_cache else (cache_dir or capacity.default_cache_dir()))
    t0 = time.perf_counter()
    world = _prepare(profile, workload, seed, workers, cache, backend)
    capacity_seconds = time.perf_counter() - t0

    searches = _run_searches(world, backend, workers)
    main = searches["main"]
    found = [label for label in ("main", "single_gpu_pods", "all_serverless")
             if searches.get(label) is not None and searches[label].best is not None]
    if not found:
        raise PlannerError(_infeasible_message(world, main.rounds[-1].milp_status if main.rounds else "no pools"))
    notes: list[str] = []
    chosen = found[0]
    for label in found[1:]:
        if _better(searches[label].best[2], searches[chosen].best[2]):  # type: ignore[index]
            chosen = label
    if chosen != "main":
        # NOTE: the MILP's flex costs are estimates; when a restricted plan simulates cheaper (or
        # alone meets the SLO), it is the better answer and the mix is reported as a round.
        if main.best is not None:
            m = main.best[2]
            notes.append(
                f"the mix the MILP chose ({describe(main.best[1])}) simulated at "
                f"${m.cost_per_month_usd:,.2f}/month with {_fmt_pct(m.slo_attainment)} SLO attainment; "
                f"the {chosen.replace('_', ' ')} plan does better in simulation and is the answer"
            )
        searches["main"] = _Search(
            best=searches[chosen].best, rounds=main.rounds, factors=main.factors,
            solve_s=main.solve_s, sim_s=main.sim_s,
        )
        main = searches["main"]
    result, entries, run, arts, inputs = main.best  # type: ignore[misc]  # not None: chosen is in found
    rounds = main.rounds
    alts = _alternatives(world, searches)
    solve_s = sum(x.solve_s for x in searches.values())
    sim_s = sum(x.sim_s for x in searches.values())
    # Every plan in the report counts for the assumptions: the answer's, then the alternatives'.
    assumptions, alternative_assumptions = _assumptions(world, backend, entries, [e for a in alts for e in a.plan])
    deploy = [_deploy(world, backend, e) for e in entries]
    if world.measured:
        measured_gpus = sorted({e.gpu for e in world.profile.capacity.entries})
        ignored = sorted(set(world.profile.candidates.gpus) - set(measured_gpus))
        if ignored:
            notes.append(
                f"capacities come from the profile's capacity section, which measures {', '.join(measured_gpus)} "
                f"only; candidates {', '.join(ignored)} were not considered (remove the capacity section "
                "to simulate every candidate)"
            )
    if not run.simulated:
        notes.append(
            f"the plan was not simulated ({run.not_simulated_reason}): its cost is the MILP's and its "
            "SLO attainment is unverified; add the GPUs to the catalog (gpu_catalog/) to verify it"
        )
    elif not run.verified:
        notes.append(
            f"the plan reached {run.slo_attainment:.1%} SLO attainment in simulation, below the "
            f"{world.profile.slo.attainment:.0%} target, after {len(rounds)} round(s): raise "
            "optimizer.max_rounds, lower optimizer.headroom, or relax the SLO"
        )
    out = OptimizeResult(
        profile=profile.name,
        model=profile.model.name,
        seed=seed,
        plan=entries,
        flex_workers={e.endpoint: e.flex_workers_per_level for e in entries if e.billing == "serverless"},
        cost_usd=run.cost_usd,
        cost_per_month_usd=run.cost_per_month_usd,
        milp_cost_usd=float(result.cost_usd or 0.0),
        usd_per_million_output_tokens=run.usd_per_million_output_tokens,
        slo_attainment=run.slo_attainment,
        slo_target=profile.slo.attainment,
        verified=run.verified,
        rounds=rounds,
        alternatives=alts,
        solve_seconds=solve_s,
        capacity_seconds=capacity_seconds,
        simulate_seconds=sim_s,
        wall_seconds=time.perf_counter() - started,
        horizon_s=float(workload.horizon_s),
        buckets=world.bucket_names,
        capacities=[c.model_dump() for c in world.capacity_results],
        candidates=[c.model_dump() for c in world.checks],
        demand=world.series,
        verification=run,
        assumptions=assumptions,
        alternative_assumptions=alternative_assumptions,
        deploy=deploy,
        notes=notes,
    )
    return out, arts


def _fmt_pct(x: float | None) -> str:
    return "unverified" if x is None else f"{x:.1%}"


def describe(entries: Sequence[PlanEntry]) -> str:
    """A plan in words: '2 x l40s pods + h100-sxm serverless (1 active, up to 3 flex)'.

    A serverless part that is zero is left out: 'l4 serverless (up to 1 flex)' scales to zero,
    'l40s serverless (1 active)' never scales up.
    """
    parts = []
    for e in entries:
        tp = f" (TP{e.tensor_parallel_size})" if e.tensor_parallel_size > 1 else ""
        if e.billing == "pod":
            parts.append(f"{e.count} x {e.gpu}{tp} pods")
        else:
            workers = [f"{e.active_workers} active"] if e.active_workers else []
            workers += [f"up to {e.max_flex_workers} flex"] if e.max_flex_workers else []
            parts.append(f"{e.gpu}{tp} serverless ({', '.join(workers) or 'no workers'})")
    return " + ".join(parts) or "nothing"


def check_names(profile: Any) -> None:
    """Refuse an unknown model or candidate GPU once, up front, with the catalog's close names.

    Without this each (GPU, TP) check would fail on its own and the error would repeat per
    candidate, or an unknown GPU would silently drop out of the plan.
    """
    from planner import catalog, models  # noqa: PLC0415

    try:
        models.get_model(profile.model.name)
    except PlannerError as err:
        raise PlannerError(f"model.name: {err}") from None
    unknown = []
    for gpu in dict.fromkeys(profile.candidates.gpus):
        try:
            catalog.get_gpu(gpu)
        except PlannerError as err:
            unknown.append(str(err))
    if unknown:
        raise PlannerError("candidates.gpus: " + "; ".join(unknown))


def _prepare(profile: Any, workload: Any, seed: int, workers: int, cache: Any, backend: Backend) -> _World:
    """Buckets, demand levels, candidates and their capacities: everything before the MILP."""
    from planner import capacity  # noqa: PLC0415

    opt = profile.optimizer
    measured = profile.capacity is not None
    checks: list[Any] = []
    pod_usd_per_hour: dict[str, float] = {}
    if measured:
        buckets, results, pod_usd_per_hour = capacity.measured_capacities(profile.capacity)
        names = [b.name for b in buckets]
        bucket_idx = capacity.assign_buckets(workload.prompt_tokens, workload.output_tokens, buckets)
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
    else:
        buckets = capacity.buckets_from_ranges(opt.size_buckets)
        names = [b.name for b in buckets]
        bucket_idx = capacity.assign_buckets(workload.prompt_tokens, workload.output_tokens, buckets)
        slots, series = slot_demands(
            workload.arrival_s, bucket_idx, names, workload.horizon_s,
            slot_s=opt.slot_seconds, percentile=opt.demand_percentile,
        )
        total_tokens = workload.prompt_tokens + workload.output_tokens
        p50 = int(np.median(workload.prompt_tokens))
        p99 = int(np.percentile(total_tokens, 99))
        checks = [
            backend.check_candidate(profile, gpu, tp, p50, p99)
            for gpu in profile.candidates.gpus
            for tp in profile.candidates.tensor_parallel_sizes
        ]
        fits = [c for c in checks if c.fits]
        if not fits:
            raise PlannerError(_no_candidate_message(profile, checks))
        tasks = capacity.make_tasks(
            profile, [(c.gpu_id, c.tensor_parallel_size) for c in fits], buckets, workload, seed=seed,
            gpu_fingerprints={c.gpu_id: backend.gpu_fingerprint(c.gpu_id) for c in fits},
        )
        results = backend.capacities(tasks, cache=cache, workers=workers)
    caps: dict[str, dict[str, float]] = {}
    in_flight: dict[str, dict[str, float]] = {}
    endpoints: dict[str, tuple[str, int]] = {}
    for r in results:
        ep = endpoint_name(r.gpu_id, r.tensor_parallel_size)
        endpoints[ep] = (r.gpu_id, r.tensor_parallel_size)
        caps.setdefault(ep, {})[r.bucket] = float(r.max_rate_per_s)
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
    )
    return _World(
        profile=profile, workload=workload, bucket_names=names, bucket_idx=bucket_idx, slots=slots,
        series=series, checks=checks, caps=caps, endpoints=endpoints, pod_usd_per_hour=pod_usd_per_hour,
        prices=prices, limits=limits, seed=seed, capacity_results=list(results), measured=measured,
        in_flight=in_flight, worker_concurrency=_worker_concurrency(profile),
    )


def _worker_concurrency(profile: Any) -> int | None:
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


def _no_candidate_message(profile: Any, checks: Sequence[Any]) -> str:
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
    return (
        f"no fleet carries the peak demand ({peak:.2f} req/s) within the limits ({status}; "
        f"{', '.join(active) or 'no limits set'}): raise the budget or the GPU/worker limits, "
        "allow more candidates.gpus or billing modes, or relax the SLO"
    )


def _milp_inputs(
    world: _World, factors: dict[str, float], backend: Backend, price_factors: dict[str, float] | None = None
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
    return MilpInputs(pools=pools, slots=world.slots, headroom=profile.optimizer.headroom, limits=world.limits)


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


@dataclass
class _Search:
    """Rounds of solve-then-verify over a subset of the pools."""

    best: tuple[SolverResult, list[PlanEntry], FleetRun, PlanArtifacts, MilpInputs] | None = None
    rounds: list[RoundReport] = field(default_factory=list)
    factors: dict[str, float] = field(default_factory=dict)  # pool name -> capacity factor
    price_factors: dict[str, float] = field(default_factory=dict)  # pool name -> price factor
    solve_s: float = 0.0
    sim_s: float = 0.0
    note: str | None = None


def _solve_verify(
    world: _World, backend: Backend, keep: Callable[[Pool], bool], *, limits: Limits | None = None,
    max_rounds: int | None = None,
) -> _Search:
    """Solve, simulate the plan, tighten the capacity of what missed the SLO, solve again.

    A pool that missed is tightened: an endpoint's flex workers when it has any
    (their cold starts are what capacity alone does not see), else its pods; x0.85 for a small
    shortfall, x0.7 for a large one. The best verified plan (else the best attainment) wins.
    """
    search = _Search()
    max_rounds = max_rounds or int(getattr(world.profile.optimizer, "max_rounds", 3))
    target = world.profile.slo.attainment
    for rnd in range(1, max_rounds + 1):
        inputs = _milp_inputs(world, search.factors, backend, search.price_factors)
        pools = [p for p in inputs.pools if keep(p)]
        if not pools:
            search.note = "no candidate offers this billing mode (prices or candidates.billing)"
            break
        inputs = inputs.model_copy(update={"pools": pools, **({"limits": limits} if limits else {})})
        try:
            result = solve(inputs)
        except PlannerError as err:
            search.note = str(err)
            break
        search.solve_s += result.solve_seconds
        if not result.optimal:
            search.rounds.append(RoundReport(
                round=rnd, milp_status=result.status, milp_cost_per_month_usd=None, cost_per_month_usd=None,
                slo_attainment=None, verified=False, plan="no plan", solve_seconds=result.solve_seconds,
            ))
            break
        entries = _entries(result, inputs, world)
        t1 = time.perf_counter()
        try:
            run, arts = verify(world, inputs, result, entries, backend)
        except NotSimulable as why:
            run, arts = unsimulated_run(world, inputs, result, str(why))
        elapsed = time.perf_counter() - t1
        search.sim_s += elapsed
        report = RoundReport(
            round=rnd, milp_status=result.status, milp_cost_per_month_usd=result.cost_per_month_usd,
            cost_per_month_usd=run.cost_per_month_usd, slo_attainment=run.slo_attainment,
            verified=run.verified, plan=describe(entries), solve_seconds=result.solve_seconds,
            simulate_seconds=elapsed,
        )
        search.rounds.append(report)
        if _better(run, search.best[2] if search.best else None):
            search.best = (result, entries, run, arts, inputs)
        if not run.simulated:
            search.note = f"not simulated ({run.not_simulated_reason}): costs are the MILP's, SLO unverified"
            break
        if run.verified:
            # Verified: check the MILP's flex-cost estimate against the simulated billing; where
            # flex workers cost clearly more than estimated (more scale-ups, idle tails), price
            # them at what they really cost and solve again.
            for name, ratio in _flex_cost_ratios(result, run).items():
                if ratio > 1.15:
                    search.price_factors[name] = search.price_factors.get(name, 1.0) * ratio
                    report.repriced[name] = search.price_factors[name]
            if not report.repriced:
                break
            continue
        for ep in run.endpoints:
            if not ep.num_requests or ep.slo_attainment >= target:
                continue
            key = endpoint_name(ep.gpu, ep.tensor_parallel_size)
            used = {e.billing for e in entries if e.endpoint == key}
            kinds = ["flex"] if "serverless" in used else ["pod"]
            step = 0.85 if target - ep.slo_attainment < 0.1 else 0.7
            for kind in kinds:
                name = pool_name(key, kind)
                search.factors[name] = search.factors.get(name, 1.0) * step
                report.tightened[name] = search.factors[name]
        if not report.tightened:
            break  # nothing identifiable to tighten
    return search


def _better(run: FleetRun, best: FleetRun | None) -> bool:
    """Verified beats unverified; among verified the cheaper; among unverified the higher attainment."""
    if best is None:
        return True
    if run.verified != best.verified:
        return run.verified
    if run.verified or run.slo_attainment is None or best.slo_attainment is None:
        return run.cost_usd < best.cost_usd - 1e-9
    return run.slo_attainment > best.slo_attainment


def _flex_cost_ratios(result: SolverResult, run: FleetRun) -> dict[str, float]:
    """flex pool name -> simulated flex billing / the MILP's flex cost, per endpoint."""
    ratios = {}
    for use in result.pools:
        if use.billing != "flex" or use.cost_usd <= 0:
            continue
        ep = endpoint_name(use.gpu_id, use.tensor_parallel_size)
        simulated = run.cost_lines.get(cost_line(ep, "flex"), 0.0)
        ratios[pool_name(ep, "flex")] = simulated / use.cost_usd
    return ratios


def _search_specs(world: _World, backend: Backend) -> tuple[dict[str, tuple[str, Limits | None]], float, str | None]:
    """What to search: the mix, the cheapest single GPU type on pods, and all serverless.

    Returns ({label: (pool filter, limits override)}, solver seconds spent ranking, note).
    """
    base = _milp_inputs(world, {}, backend)
    specs: dict[str, tuple[str, Limits | None]] = {"main": ("all", None)}
    if world.limits.min_replicas and not any(p.billing in ("pod", "active") for p in base.pools):
        # Nothing can be always on (no pods allowed, no active-worker price): scale to zero.
        specs["main"] = ("all", world.limits.model_copy(update={"min_replicas": 0}))
    spent = 0.0
    ranked: list[tuple[float, str]] = []
    for pool in base.pools:
        if pool.billing != "pod":
            continue
        try:
            res = solve(base.model_copy(update={"pools": [pool]}))
        except PlannerError:
            continue  # this GPU cannot serve every bucket alone
        spent += res.solve_seconds
        if res.optimal and res.cost_usd is not None:
            ranked.append((res.cost_usd, pool.name))
    if ranked:
        specs["single_gpu_pods"] = ("pool:" + min(ranked)[1], None)
    limits, note = world.limits, None
    if limits.min_replicas and not any(p.billing == "active" for p in base.pools):
        # Without an active-worker price nothing serverless is always on: scale to zero.
        limits = limits.model_copy(update={"min_replicas": 0})
        note = "optimizer.min_replicas not applied: no active-worker price, flex workers scale to zero"
    specs["all_serverless"] = ("serverless", limits)
    return specs, spent, note


def _keep(spec: str) -> Callable[[Pool], bool]:
    if spec == "all":
        return lambda p: True
    if spec == "serverless":
        return lambda p: p.billing != "pod"
    name = spec.removeprefix("pool:")
    return lambda p: p.name == name


_FORKED: tuple[_World, Backend, dict[str, tuple[str, Limits | None]]] | None = None


def _search_in_child(label: str) -> _Search:
    """Pool worker: one search, on the world inherited through fork (nothing big is pickled)."""
    assert _FORKED is not None
    world, backend, specs = _FORKED
    spec, limits = specs[label]
    return _solve_verify(world, backend, _keep(spec), limits=limits)


def _run_searches(world: _World, backend: Backend, workers: int) -> dict[str, _Search]:
    """The three searches, in parallel over forked processes when workers > 1 (else in turn)."""
    import multiprocessing as mp  # noqa: PLC0415

    global _FORKED
    specs, ranking_s, note = _search_specs(world, backend)
    labels = list(specs)
    if workers > 1 and "fork" in mp.get_all_start_methods():
        _FORKED = (world, backend, specs)
        try:
            with mp.get_context("fork").Pool(min(workers, len(labels))) as pool:
                found = dict(zip(labels, pool.map(_search_in_child, labels)))
        finally:
            _FORKED = None
    else:
        found = {label: _solve_verify(world, backend, _keep(specs[label][0]), limits=specs[label][1]) for label in labels}
    found["main"].solve_s += ranking_s
    if "all_serverless" in found:
        found["all_serverless"].note = found["all_serverless"].note or note
        if found["all_serverless"].best is not None:
            found["all_serverless"].note = note
    return found


def _alternatives(world: _World, searches: dict[str, _Search]) -> list[Alternative]:
    """The alternatives table: cheapest single-GPU all-pods plan, all-serverless plan (each
    refined like the main one) and the optimized mix, with the savings of the mix against each."""
    main = searches["main"]
    assert main.best is not None
    result, entries, run, _, _ = main.best
    alts: list[Alternative] = []
    for kind, label in (("single_gpu_pods", "cheapest single-GPU pods"), ("all_serverless", "all serverless")):
        search = searches.get(kind)
        if search is None or search.best is None:
            allowed = world.profile.candidates.billing
            if kind == "single_gpu_pods" and "pod" not in allowed:
                why = "candidates.billing does not allow pods"
            elif kind == "all_serverless" and "serverless" not in allowed:
                why = "candidates.billing does not allow serverless"
            else:
                why = (search.note if search else None) or (
                    "no single GPU type with a pod price carries the demand within the limits"
                    if kind == "single_gpu_pods" else "no plan within the limits"
                )
            alts.append(Alternative(kind=kind, name=label, feasible=False, note=why))
            continue
        res, ents, r, _, _ = search.best
        alts.append(Alternative(
            kind=kind, name=f"{label}: {describe(ents)}", plan=ents,
            milp_cost_per_month_usd=res.cost_per_month_usd, cost_usd=r.cost_usd,
            cost_per_month_usd=r.cost_per_month_usd, usd_per_million_output_tokens=r.usd_per_million_output_tokens,
            slo_attainment=r.slo_attainment, verified=r.verified, note=search.note,
        ))
    alts.append(Alternative(
        kind="optimized", name=f"optimized mix: {describe(entries)}", plan=entries,
        milp_cost_per_month_usd=result.cost_per_month_usd, cost_usd=run.cost_usd,
        cost_per_month_usd=run.cost_per_month_usd, usd_per_million_output_tokens=run.usd_per_million_output_tokens,
        slo_attainment=run.slo_attainment, verified=run.verified,
    ))
    for a in alts:
        if a.cost_per_month_usd:
            a.savings_of_optimized_pct = (a.cost_per_month_usd - run.cost_per_month_usd) / a.cost_per_month_usd * 100.0
    return alts


# How the report names each step-time efficiency (docs/perf.md defines them), and the unit shown.
_EFFICIENCY_LABELS: dict[str, tuple[str, float, str]] = {
    "stream_bandwidth_fraction": ("bandwidth fraction", 1.0, ""),
    "flop_fraction": ("FLOP fraction", 1.0, ""),
    "roofline_exponent": ("roofline exponent", 1.0, ""),
    "kernel_fixed_s": ("per-kernel", 1e6, " us"),
    "layer_fixed_s": ("per-layer", 1e6, " us"),
    "activation_passes": ("activation passes", 1.0, ""),
    "attention_flop_fraction": ("attention FLOP fraction", 1.0, ""),
    "attention_unit_bytes_per_s": ("attention unit", 1e-9, " GB/s"),
    "eager_launch_s_per_layer": ("eager launch per layer", 1e6, " us"),
    "host_overhead_s": ("host overhead per step", 1e3, " ms"),
}
_EFFICIENCY_LINE = re.compile(r"^(?P<gpu>[^:]+): efficiency (?P<name>\w+) = (?P<value>\S+) is estimated \((?P<source>.*)\)$")


def collapse_gpu_lines(items: Sequence[tuple[str, Concerns]]) -> list[tuple[str, Concerns]]:
    """Lines that differ only by GPU become one line naming the GPUs; each keeps what it concerns.

    The catalog's assumptions list each estimated efficiency of each GPU on its own line with its
    source; a budget reader needs the figures once: "h100-sxm: step-time efficiencies: bandwidth
    fraction 0.989, FLOP fraction 0.759, per-layer 75 us, ...; derived from ...", and GPUs with
    the same figures and source share that line. Parameters with a different source (the
    host-overhead setting) get their own line, shared by the GPUs. Other lines pass through in
    order; the collapsed lines take the place of each group's first line and concern every GPU of
    the group (`capacity.Concerns`), so a line shared by the plan's GPU and an alternative's
    counts for the plan. (Billing's serverless settings name their GPUs at the source:
    `billing.assumptions(gpu_ids=...)`.)
    """
    groups: dict[tuple[str, str], list[tuple[str, float]]] = {}
    concerns: dict[tuple[str, str], set[tuple[str, str]]] = {}
    order: list[tuple[str, str] | int] = []  # a group's key, or the index of an item passed through
    for index, (line, about) in enumerate(items):
        m = _EFFICIENCY_LINE.match(line)
        try:
            value = float(m["value"]) if m else None
        except ValueError:
            value = None
        if m is None or value is None:
            order.append(index)
            continue
        key = (m["gpu"].strip(), m["source"])
        if key not in groups:
            groups[key] = []
            concerns[key] = set()
            order.append(key)
        groups[key].append((m["name"], value))
        concerns[key] |= about

    def figures(items: list[tuple[str, float]]) -> str:
        out = []
        for name, value in items:
            label, scale, unit = _EFFICIENCY_LABELS.get(name, (name.replace("_", " "), 1.0, ""))
            out.append(f"{label} {value * scale:.3g}{unit}")
        return ", ".join(out)

    # GPUs whose figures and source are the same share one line.
    merged: dict[tuple[str, str], list[str]] = {}
    merged_concerns: dict[tuple[str, str], set[tuple[str, str]]] = {}
    first: dict[tuple[str, str], tuple[str, str]] = {}
    for key, group in groups.items():
        content = (figures(group), key[1])
        merged.setdefault(content, []).append(key[0])
        merged_concerns.setdefault(content, set()).update(concerns[key])
        first.setdefault(content, key)
    out: list[tuple[str, Concerns]] = []
    for entry in order:
        if isinstance(entry, int):
            out.append(items[entry])
            continue
        content = (figures(groups[entry]), entry[1])
        if first[content] != entry:
            continue
        names = {name for name, _ in groups[entry]}
        what = "step-time" if names <= {"host_overhead_s"} else "step-time efficiencies:"
        out.append((f"{', '.join(merged[content])}: {what} {content[0]}; {content[1]}",
                    frozenset(merged_concerns[content])))
    return out


def collapse_efficiency_lines(lines: Sequence[str]) -> list[str]:
    """`collapse_gpu_lines` for plain lines (what they concern unknown)."""
    return [line for line, _ in collapse_gpu_lines([(line, frozenset()) for line in lines])]


def _uses(entries: Sequence[PlanEntry]) -> dict[str, set[str]]:
    """GPU id -> the billing modes these plan lines use it in (sorted by GPU id)."""
    out: dict[str, set[str]] = {}
    for e in sorted(entries, key=lambda e: e.gpu):
        out.setdefault(e.gpu, set()).add(e.billing)
    return out


def _assumptions(
    world: _World, backend: Backend, plan_entries: Sequence[PlanEntry], shown_entries: Sequence[PlanEntry]
) -> tuple[list[str], list[str]]:
    """Every estimated input behind the answer, for the report's Assumptions section.

    Returns (the chosen plan's lines, the lines only the alternatives shown need). A line counts
    for the plan when it concerns a (GPU, billing mode) the plan uses, or the whole run.
    """
    opt = world.profile.optimizer
    plan_uses = _uses(plan_entries)
    all_uses = _uses([*plan_entries, *shown_entries])

    def for_plan(about: Concerns) -> bool:
        return not about or any(gpu in plan_uses and (mode == "*" or mode in plan_uses[gpu]) for gpu, mode in about)

    plan_lines: list[str] = []
    alt_lines: list[str] = []
    try:
        raw = [(item, frozenset()) if isinstance(item, str) else item
               for item in backend.assumptions(world.profile, all_uses)]
        for line, about in collapse_gpu_lines(raw):
            if line == billing.MONTH_ASSUMPTION:
                continue  # said below with the horizon
            (plan_lines if for_plan(about) else alt_lines).append(line)
    except PlannerError as err:
        plan_lines.append(f"catalog assumptions unavailable: {err}")
    if world.measured:
        src = getattr(world.profile.capacity, "source", None) or "no source given"
        plan_lines.append(f"capacities: measured by the user (profile capacity section; {src}), not simulated")
    else:
        cv = next((c.burstiness_cv for c in world.capacity_results if c.burstiness_cv), None)
        n = next((c.num_requests for c in world.capacity_results if c.num_requests), None)
        plan_lines.append(
            f"capacities: simulated, one replica, {n} requests per bisection step, gamma arrivals "
            f"with CV {cv if cv is None else round(cv, 2)} (the profile's burstiness within one-minute windows); "
            "short runs start empty, so they can be optimistic: the plan is verified on the whole horizon"
        )
    plan_lines.append(
        f"demand: the {opt.demand_percentile:.0%} quantile of one-minute rates in each "
        f"{opt.slot_seconds:g} s slot; lower demand levels at their busiest minute; replicas loaded "
        f"to {opt.headroom:.0%} of capacity"
    )
    flex = ("flex workers in the MILP: billed for their level's time plus (cold start + idle timeout) per "
            "scale-up; the reported cost is the simulated billing of the endpoint's autoscaler")
    plan_serverless = any("serverless" in modes for modes in plan_uses.values())
    (plan_lines if plan_serverless else alt_lines).append(flex)
    plan_lines.append(
        f"{billing.MONTH_ASSUMPTION} (simulated horizon: {world.workload.horizon_s:g} s)"
    )
    return plan_lines, alt_lines


def _deploy(world: _World, backend: Backend, entry: PlanEntry) -> dict[str, Any]:
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
    if entry.billing == "serverless":
        sl = world.profile.billing.serverless
        out["serverless"] = {
            "active_workers": entry.active_workers,
            "max_workers": entry.count,
            "idle_timeout_seconds": sl.idle_timeout_seconds,
            "scaler": sl.scaler,
            "scaler_value": sl.scaler_value_resolved,
        }
    return out

