"""Verify a MILP plan by simulation: the plan's fleet run on the horizon's actual arrivals.

`verify` splits the requests over the plan's endpoints as the MILP routed them (per demand level
and size bucket), simulates each endpoint's pods and serverless workers through the `PlanningBackend`,
and bills the simulated workers (`planner.billing.price_outcome`). A plan the simulator cannot model
raises `NotSimulable`; `unsimulated_run` then reports the MILP's own figures instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from planner import billing
from planner.errors import PlannerError
from planner.optimize.draws import Draw, Sample
from planner.optimize.endpoints import EndpointJob, NotSimulable, simulate_endpoints
from planner.optimize.milp import MilpInputs, SolverResult, endpoint_name
from planner.optimize.result import (
    CostLineItem,
    EndpointRun,
    FleetRun,
    PlanArtifacts,
    PlanEntry,
    cost_line,
)

if TYPE_CHECKING:
    from planner.optimize.backend import PlanningBackend
    from planner.optimize.world import _World


def unsimulated_run(world: _World, inputs: MilpInputs, result: SolverResult, reason: str) -> tuple[FleetRun, PlanArtifacts]:
    """The MILP's own figures for a plan that cannot be simulated (no SLO attainment)."""
    wl = world.workload
    horizon = float(wl.horizon_s)
    cost = float(result.cost_usd or 0.0)
    out_tokens = int(wl.output_tokens.sum())
    lines: dict[str, float] = {}
    items: list[CostLineItem] = []
    pools = {(p.gpu_id, p.tensor_parallel_size, p.billing): p for p in inputs.pools}
    for u in result.pools:
        key = cost_line(endpoint_name(u.gpu_id, u.tensor_parallel_size), u.billing)
        lines[key] = lines.get(key, 0.0) + u.cost_usd
        pool = pools.get((u.gpu_id, u.tensor_parallel_size, u.billing))
        if pool is not None:
            rate_s = pool.usd_per_replica_s / u.tensor_parallel_size
            items.append(_line_item(world, key, u.gpu_id, u.tensor_parallel_size, u.billing, u.count,
                                    u.cost_usd / rate_s if rate_s > 0 else 0.0, rate_s, u.cost_usd))
    run = FleetRun(
        slo_attainment=None, verified=False, simulated=False, not_simulated_reason=reason,
        cost_usd=cost, cost_per_month_usd=billing.per_month(cost, horizon),
        usd_per_million_output_tokens=cost / out_tokens * 1e6 if out_tokens else None,
        num_requests=len(wl), output_tokens=out_tokens, cost_lines=lines,
        input_tokens=int(np.sum(getattr(wl, "prompt_tokens", 0))), line_items=items,
    )
    nan = np.full(len(wl), np.nan)
    arts = PlanArtifacts(ttft_s=nan, tpot_s=nan.copy(), ok=np.zeros(len(wl), dtype=bool),
                         provisioned_per_window=_provisioned(world, inputs, result))
    return run, arts


def _line_item(world: _World, key: str, gpu: str, tp: int, kind: str, workers: int, billed_gpu_s: float,
               usd_per_gpu_s: float, cost_usd: float) -> CostLineItem:
    """One bill line with the date and source of its price (the finance summary and the CSV)."""
    prices = _prices_for(world, gpu, tp)
    pod = kind == "pod"
    return CostLineItem(
        line=key, gpu=gpu, tensor_parallel_size=tp, billing=kind, num_workers=workers,
        billed_gpu_seconds=billed_gpu_s, usd_per_gpu_hour=usd_per_gpu_s * 3600.0, cost_usd=cost_usd,
        price_as_of=None if prices is None else (prices.pod_price_as_of if pod else prices.serverless_as_of),
        price_source=None if prices is None else (
            (prices.pod_price_source or prices.pod_price_label) if pod else prices.serverless_source),
    )


def _endpoint_weights(inputs: MilpInputs, result: SolverResult) -> list[dict[str, dict[str, float]]]:
    """Per slot level: bucket -> endpoint -> requests/s the solution routes there."""
    pools = {p.name: p for p in inputs.pools}
    weights: list[dict[str, dict[str, float]]] = []
    for per_bucket in result.routing:
        level: dict[str, dict[str, float]] = {}
        for b, per_pool in per_bucket.items():
            w = level.setdefault(b, {})
            for name, rate in per_pool.items():
                ep = pools[name].endpoint
                w[ep] = w.get(ep, 0.0) + rate
        weights.append(level)
    return weights


def _prices_for(world: _World, gpu: str, tp: int) -> Any:
    ep = endpoint_name(gpu, tp)
    if ep in world.pod_usd_per_hour:
        return billing.ResolvedPrices(
            gpu_id=gpu, pod_cloud=world.profile.billing.pod_cloud, pod_provider="measured",
            pod_usd_per_gpu_hour=world.pod_usd_per_hour[ep] / tp,
            pod_price_label="capacity section (user-measured)",
        )
    return world.prices.get(gpu)


def _fleet_of(entries: Sequence[PlanEntry], slot_index: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    """endpoint -> its pods (and their schedule: pods per slot simulated, `slot_index` picking the
    sampled days' slots), active workers and max serverless workers in the plan."""
    fleet: dict[str, dict[str, Any]] = {}
    for e in entries:
        f = fleet.setdefault(e.endpoint, {"pods": 0, "active": 0, "max": 0, "schedule": None})
        if e.billing == "pod":
            f["pods"] += e.count
            if e.pods_per_slot and len(set(e.pods_per_slot)) > 1:
                sched = np.asarray(e.pods_per_slot, dtype=np.int64)
                f["schedule"] = (sched if slot_index is None else sched[np.minimum(slot_index, len(sched) - 1)]).tolist()
        else:
            f["active"] += e.active_workers
            f["max"] += e.count
    return fleet


def sample_times(wl: Any, sample: Sample | None, slot_s: float) -> tuple[np.ndarray, np.ndarray, float, np.ndarray | None]:
    """(indices of the requests simulated, their simulated arrival times, the simulated horizon, the
    slots simulated) for the whole horizon or a sample of days played back to back."""
    if sample is None:
        return np.arange(len(wl)), np.asarray(wl.arrival_s, dtype=np.float64), float(wl.horizon_s), None
    parts, times, slots = [], [], []
    per_day = int(round(sample.day_s / slot_s))
    for k, d in enumerate(sample.days):
        lo, hi = d * sample.day_s, (d + 1) * sample.day_s
        idx = np.flatnonzero((wl.arrival_s >= lo) & (wl.arrival_s < hi))
        parts.append(idx)
        times.append(wl.arrival_s[idx] - lo + k * sample.day_s)
        slots.append(np.arange(d * per_day, (d + 1) * per_day))
    return np.concatenate(parts), np.concatenate(times), sample.day_s * len(sample.days), np.concatenate(slots)


def _open_shares(
    world: _World, inputs: MilpInputs, result: SolverResult, ep_names: list[str], draw: Draw, chosen: np.ndarray,
    sim_t: np.ndarray, horizon: float,
) -> list[tuple[Any, np.ndarray]]:
    """Per endpoint: its share of the draw's `chosen` requests (a Workload at times `sim_t`) and
    their indices into the draw.

    Each request follows the routing of its minute's demand level: busy minutes spill onto flex
    workers, quiet minutes stay on always-on capacity, as the MILP planned.
    """
    from planner.traffic import Workload  # noqa: PLC0415

    wl = draw.workload
    n = len(chosen)
    windows = np.asarray(draw.window_level, dtype=np.int64)
    req_level = windows[np.minimum((wl.arrival_s[chosen] // world.series.window_s).astype(np.int64), len(windows) - 1)]
    bucket_idx = draw.bucket_idx[chosen]
    weights = _endpoint_weights(inputs, result)
    fallback = np.zeros(len(ep_names))
    for level in weights:
        for level_weights in level.values():
            for ep, v in level_weights.items():
                if ep in ep_names:
                    fallback[ep_names.index(ep)] += v
    if fallback.sum() <= 0:
        fallback[:] = 1.0
    assign = np.zeros(n, dtype=np.int64)
    u = np.random.default_rng(draw.seed + 7919).random(len(wl))[chosen]
    for li in range(len(weights)):
        for bi, b in enumerate(world.bucket_names):
            sel = np.flatnonzero((req_level == li) & (bucket_idx == bi))
            if len(sel) == 0:
                continue
            w = np.array([weights[li].get(b, {}).get(ep, 0.0) for ep in ep_names])
            if w.sum() <= 0:
                w = fallback
            cdf = np.cumsum(w / w.sum())
            assign[sel] = np.minimum(np.searchsorted(cdf, u[sel], side="right"), len(ep_names) - 1)
    shares = []
    for k, ep in enumerate(ep_names):
        sel = np.flatnonzero(assign == k)
        rows = chosen[sel]
        shares.append((Workload(sim_t[sel], wl.prompt_tokens[rows], wl.output_tokens[rows], horizon,
                                f"{wl.source}; {ep} share"), rows))
    return shares


def split_users(users: int, weights: np.ndarray) -> list[int]:
    """`users` whole users in proportion to `weights` (largest remainder; all equal when no weight)."""
    w = np.asarray(weights, dtype=float)
    w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
    raw = users * w
    out = np.floor(raw).astype(np.int64)
    for i in np.argsort(-(raw - out), kind="stable")[: users - int(out.sum())]:
        out[i] += 1
    return [int(x) for x in out]


def _closed_shares(world: _World, inputs: MilpInputs, result: SolverResult, ep_names: list[str]) -> list[tuple[Any, None]]:
    """Per endpoint: a closed loop of its share of the users (routed as the MILP planned, in whole
    users; a request budget split the same way), or no requests when it gets no user."""
    from planner.traffic import Workload  # noqa: PLC0415

    loop = world.workload
    routed = np.zeros(len(ep_names))
    for level in _endpoint_weights(inputs, result):
        for per_ep in level.values():
            for ep, v in per_ep.items():
                if ep in ep_names:
                    routed[ep_names.index(ep)] += v
    shares: list[tuple[Any, None]] = []
    for users in split_users(loop.users, routed):
        if users == 0:
            empty = np.zeros(0)
            shares.append((Workload(empty, empty.astype(np.int64), empty.astype(np.int64), float(loop.horizon_s),
                                    "no users"), None))
            continue
        budget = None if loop.max_requests is None else max(1, round(loop.max_requests * users / loop.users))
        shares.append((replace(loop.with_users(users), max_requests=budget), None))
    return shares


def verify(
    world: _World, inputs: MilpInputs, result: SolverResult, entries: Sequence[PlanEntry], backend: PlanningBackend,
    *, draw: Draw | None = None, sample: Sample | None = None, progress: Callable[[float], None] | None = None,
    workers: int = 1,
) -> tuple[FleetRun, PlanArtifacts]:
    """Simulate the plan on one draw of the traffic: requests split over endpoints as routed (a
    closed loop: its users split over endpoints, each endpoint playing its users' loop).

    Args:
        draw: the traffic (None: the run's own workload, scenario 0; open loop only).
        sample: simulate only these whole days, back to back, with the pods each day's slots
            schedule; the cost is that of the sampled days (per month: scaled by their length).
        progress: called with the fraction of the plan's requests simulated so far.
        workers: processes to simulate the endpoints in (each endpoint is its own simulation, so
            running them side by side changes no figure; 1: in turn, in this process).
    Returns:
        (the simulated and billed run, the per-request arrays for the report's plots; requests
        outside the sample are NaN / not ok there).
    Raises:
        NotSimulable: the backend's simulator refused an endpoint (the caller falls back to
            `unsimulated_run`).
    """
    prepared = _prepare_jobs(world, inputs, result, entries, draw, sample)
    outcomes = simulate_endpoints(world.profile, backend, prepared.jobs, workers=workers, progress=progress)
    return _assemble(world, inputs, result, prepared, outcomes)


@dataclass(frozen=True)
class _Prepared:
    """A plan cut into endpoint simulations for one draw (and sample)."""

    jobs: list[EndpointJob]
    closed: bool
    n_all: int  # requests of the draw (open loop)
    horizon: float  # seconds simulated
    sample: Sample | None


def _prepare_jobs(
    world: _World, inputs: MilpInputs, result: SolverResult, entries: Sequence[PlanEntry], draw: Draw | None,
    sample: Sample | None,
) -> _Prepared:
    """The plan's endpoints with their shares of the draw's requests (see `verify`)."""
    profile = world.profile
    closed = getattr(world.workload, "users", None) is not None
    slot_s = float(profile.optimizer.slot_seconds)
    provision_s = float(billing.setting(profile.billing, "pod_provisioning_delay_seconds"))
    shares: list[tuple[Any, np.ndarray | None]]
    if closed:
        horizon = float(world.workload.horizon_s)
        fleet = _fleet_of(entries)
        ep_names = list(fleet)
        shares = list(_closed_shares(world, inputs, result, ep_names))
        n_all = 0
        draw_seed = world.seed
    else:
        draw = draw or Draw(0, world.seed, world.workload, world.bucket_idx, np.asarray(world.series.window_level))
        chosen, sim_t, horizon, slot_index = sample_times(draw.workload, sample, slot_s)
        fleet = _fleet_of(entries, slot_index)
        ep_names = list(fleet)
        shares = list(_open_shares(world, inputs, result, ep_names, draw, chosen, sim_t, horizon))
        n_all = len(draw.workload)
        draw_seed = draw.seed
    jobs: list[EndpointJob] = []
    for ep, (sub, sel) in zip(ep_names, shares):
        gpu, tp = world.endpoints[ep]
        f = fleet[ep]
        if f["schedule"] is not None and max(f["schedule"]) == 0 and f["max"] == 0 and sel is not None and len(sel) == 0:
            continue  # scheduled pods with none up in the days simulated, and no request for them: nothing to run
        extra: dict[str, Any] = {} if f["schedule"] is None else {
            "pod_schedule": f["schedule"], "pod_schedule_slot_s": slot_s, "pod_provision_s": provision_s,
        }
        jobs.append(EndpointJob(ep, gpu, tp, sub, sel, dict(pods=f["pods"], active_workers=f["active"],
                                                             max_workers=f["max"], seed=draw_seed, **extra)))
    return _Prepared(jobs=jobs, closed=closed, n_all=n_all, horizon=horizon, sample=sample)


def _assemble(
    world: _World, inputs: MilpInputs, result: SolverResult, prepared: _Prepared, outcomes: Sequence[Any],
) -> tuple[FleetRun, PlanArtifacts]:
    """The endpoints' outcomes billed and put back together as the plan's run."""
    from planner.sim.metrics import LatencyStats, p99_limits_missed, request_slo, waited_for_start  # noqa: PLC0415

    profile = world.profile
    jobs, closed, n_all, horizon, sample = (prepared.jobs, prepared.closed, prepared.n_all, prepared.horizon,
                                            prepared.sample)
    total_cost = 0.0
    cold_starts = 0
    out_tokens = 0  # produced: completed requests' output tokens (as billing.price_outcome counts them)
    lines: dict[str, float] = {}
    eps: list[EndpointRun] = []
    parts: list[tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]] = []  # (indices, ttft, tpot, ok)
    waited: list[np.ndarray] = []  # per part: the request waited for a worker to start
    items: list[CostLineItem] = []
    input_tokens = 0
    for job, outcome in zip(jobs, outcomes):
        ep, gpu, tp, sub, sel = job.endpoint, job.gpu, job.tp, job.workload, job.rows
        prices = _prices_for(world, gpu, tp)
        rec = outcome.records
        ttft_sub, tpot_sub, ok_sub = request_slo(rec.arrival_at, rec.first_token_at, rec.finished_at,
                                                 rec.output_tokens, profile.slo.ttft_seconds, profile.slo.tpot_seconds)
        parts.append((sel, ttft_sub, tpot_sub, ok_sub))
        waited.append(waited_for_start(rec, outcome.workers))
        input_tokens += int(np.sum(getattr(rec, "prompt_tokens", getattr(sub, "prompt_tokens", 0))))
        cost = billing.price_outcome(outcome, prices, horizon,
                                     pod_billing_granularity_s=profile.billing.pod_billing_granularity_seconds)
        out_tokens += cost.output_tokens
        total_cost += cost.cost_usd
        cold_starts += cost.cold_starts
        for line in cost.lines:
            key = cost_line(ep, line.kind)
            lines[key] = lines.get(key, 0.0) + line.cost_usd
            items.append(_line_item(world, key, gpu, tp, line.kind, line.num_workers, line.billed_gpu_seconds,
                                    line.usd_per_gpu_s, line.cost_usd))
        ep_ttft, ep_tpot = LatencyStats.of(ttft_sub).p99, LatencyStats.of(tpot_sub).p99
        eps.append(EndpointRun(
            gpu=gpu, tensor_parallel_size=tp, num_requests=len(ok_sub),
            slo_attainment=float(ok_sub.mean()) if len(ok_sub) else 1.0, cost_usd=cost.cost_usd,
            cold_starts=cost.cold_starts, utilization=cost.utilization, ttft_p99_s=ep_ttft, tpot_p99_s=ep_tpot,
            p99_limits_missed=p99_limits_missed(profile.slo, ep_ttft, ep_tpot) if len(ok_sub) else [],
        ))
    # Open loop: back into the draw's order; closed loop: the endpoints' requests one after another.
    n = n_all if not closed else sum(len(p[3]) for p in parts)
    simulated = sum(len(p[3]) for p in parts)
    ok = np.zeros(n, dtype=bool)
    cold = np.zeros(n, dtype=bool)
    ttft = np.full(n, np.nan)
    tpot = np.full(n, np.nan)
    offset = 0
    for (sel, ttft_sub, tpot_sub, ok_sub), waited_sub in zip(parts, waited):
        idx = sel if sel is not None else np.arange(offset, offset + len(ok_sub))
        offset += len(ok_sub)
        ok[idx], ttft[idx], tpot[idx], cold[idx] = ok_sub, ttft_sub, tpot_sub, waited_sub
    done = np.zeros(n, dtype=bool)
    offset = 0
    for sel, _, _, ok_sub in parts:
        done[sel if sel is not None else np.arange(offset, offset + len(ok_sub))] = True
        offset += len(ok_sub)
    att = float(ok[done].mean()) if simulated else 0.0
    ttft_stats, tpot_stats = LatencyStats.of(ttft), LatencyStats.of(tpot)
    # A run meets the SLO when attainment reaches the target and no p99 limit is exceeded.
    limits_missed = p99_limits_missed(profile.slo, ttft_stats.p99, tpot_stats.p99)
    run = FleetRun(
        slo_attainment=att,
        verified=att >= profile.slo.attainment and not limits_missed,
        cost_usd=total_cost,
        cost_per_month_usd=billing.per_month(total_cost, horizon),
        usd_per_million_output_tokens=total_cost / out_tokens * 1e6 if out_tokens else None,
        num_requests=simulated,
        output_tokens=out_tokens,
        ttft_p50_s=ttft_stats.p50, ttft_p99_s=ttft_stats.p99,
        tpot_p50_s=tpot_stats.p50, tpot_p99_s=tpot_stats.p99,
        cold_starts=cold_starts,
        cost_lines=lines,
        endpoints=eps,
        input_tokens=input_tokens,
        slo_misses=int(simulated - ok[done].sum()),
        misses_after_cold_start=int((~ok & cold).sum()),
        p99_limits_missed=limits_missed,
        line_items=items,
        simulated_on="full horizon" if sample is None or closed else sample.describe(),
    )
    arts = PlanArtifacts(ttft_s=ttft, tpot_s=tpot, ok=ok, provisioned_per_window=_provisioned(world, inputs, result))
    return run, arts


def verify_many(
    world: _World, backend: PlanningBackend,
    plans: Sequence[tuple[MilpInputs, SolverResult, Sequence[PlanEntry], Draw | None, Sample | None]],
    *, workers: int = 1, progress: Callable[[float], None] | None = None, reuse: bool = False,
) -> list[tuple[FleetRun, PlanArtifacts] | NotSimulable]:
    """`verify` of several (plan, draw, sample)s, their endpoints simulated side by side over
    `workers` processes (the largest first), so a long full-horizon run and short sampled ones
    share the cores. A plan the simulator refuses gets its NotSimulable in its place.

    `reuse`: an endpoint simulated before (with `reuse`) with the same requests and fleet, as in a
    round whose plan did not change or kept an endpoint as it was, takes that outcome instead of
    being simulated again; these simulations are kept for later calls (the newest
    SIMULATIONS_KEPT: each holds its requests' records)."""
    prepared = [_prepare_jobs(world, inputs, result, entries, draw, sample)
                for inputs, result, entries, draw, sample in plans]
    jobs = [job for p in prepared for job in p.jobs]
    keys = [_job_key(job) if reuse else None for job in jobs]
    todo = [k for k, key in enumerate(keys) if key is None or key not in world.simulated]
    try:
        fresh = simulate_endpoints(world.profile, backend, [jobs[k] for k in todo], workers=workers, progress=progress)
        outcomes: list[Any] | None = [world.simulated.get(key) if key is not None else None for key in keys]
        for k, outcome in zip(todo, fresh):
            outcomes[k] = outcome  # type: ignore[index]
            _remember(world, keys[k], outcome)
    except NotSimulable:
        outcomes = None  # find which plan: in turn below
    out: list[tuple[FleetRun, PlanArtifacts] | NotSimulable] = []
    first = 0
    for (inputs, result, _, _, _), p in zip(plans, prepared):
        mine = None if outcomes is None else outcomes[first:first + len(p.jobs)]
        first += len(p.jobs)
        if mine is None:
            try:
                mine = simulate_endpoints(world.profile, backend, p.jobs)
            except NotSimulable as why:
                out.append(why)
                continue
        out.append(_assemble(world, inputs, result, p, mine))
    return out


SIMULATIONS_KEPT = 4
"""Endpoint simulations `verify_many(reuse=True)` keeps (the newest; each holds per-request arrays)."""


def _job_key(job: EndpointJob) -> bytes | None:
    """What an endpoint simulation depends on beyond the run's fixed profile and backend: the
    endpoint, its fleet and its requests (their arrays' bytes). None: not keyable (not reused)."""
    wl = job.workload
    arrays = [getattr(wl, name, None) for name in ("arrival_s", "prompt_tokens", "output_tokens")]
    if any(not isinstance(a, np.ndarray) for a in arrays):
        return None
    fleet = sorted((name, np.asarray(v).tolist() if isinstance(v, np.ndarray) else v) for name, v in job.fleet.items())
    digest = hashlib.blake2b(repr((job.endpoint, job.gpu, job.tp, float(wl.horizon_s), fleet)).encode(),
                             digest_size=32)
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.digest()


def _remember(world: _World, key: bytes | None, outcome: Any) -> None:
    """Keep an endpoint simulation for reuse: the newest SIMULATIONS_KEPT only (bounded memory)."""
    if key is None:
        return
    world.simulated[key] = outcome
    while len(world.simulated) > SIMULATIONS_KEPT:
        world.simulated.popitem(last=False)


def _provisioned(world: _World, inputs: MilpInputs, result: SolverResult) -> np.ndarray:
    """Requests/s of the planned fleet in each demand window (at the traffic's bucket mix)."""
    mix = np.bincount(world.bucket_idx, minlength=len(world.bucket_names)).astype(float)
    mix = mix / mix.sum() if mix.sum() else np.full(len(mix), 1.0 / len(mix))
    counts = {(u.gpu_id, u.tensor_parallel_size, u.billing): u for u in result.pools}
    per_level = np.zeros(len(inputs.slots))
    for p in inputs.pools:
        use = counts.get((p.gpu_id, p.tensor_parallel_size, p.billing))
        if use is None:
            continue
        inv = sum(m / p.capacity_per_s[b] for m, b in zip(mix, world.bucket_names) if p.capacity_per_s.get(b, 0) > 0 and m > 0)
        cap = 1.0 / inv if inv > 0 else 0.0
        for i, level in enumerate(inputs.slots):
            if p.billing == "flex":
                n = use.flex_per_slot[i]
            elif len(use.pods_per_slot) > 1:
                n = use.pods_per_slot[inputs.slot_ids.index(level.slot)]
            else:
                n = use.count
            per_level[i] += n * cap
    return per_level[np.asarray(world.series.window_level, dtype=np.int64)]
