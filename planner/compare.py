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
compressed) and repeats the three; the break-even is where the pods' monthly cost crosses below
serverless, interpolated linearly in mean requests per second.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from planner import billing
from planner.billing import ColdStart, CostBreakdown, ResolvedPrices
from planner.errors import PlannerError

Option = Literal["pods", "serverless", "mix"]
OPTIONS: tuple[Option, ...] = ("pods", "serverless", "mix")
DEFAULT_LOAD_FACTORS = (1 / 64, 1 / 16, 0.25, 1.0, 2.0)
MIN_EXTEND_FACTOR, MAX_EXTEND_FACTOR = 1 / 4096, 16.0


class ServerlessOverrides(BaseModel):
    """CLI values that win over the profile's `billing.serverless` (None = the profile's)."""

    model_config = ConfigDict(extra="forbid")

    active_workers: int | None = None
    max_workers: int | None = None
    idle_timeout_seconds: float | None = None
    scaler: str | None = None
    scaler_value: float | None = None

    def merged(self, settings: Any) -> dict[str, Any]:
        """The billing settings as one flat mapping with these overrides applied, validated."""
        flat: dict[str, Any] = {}
        for name in billing.BILLING_DEFAULTS:
            if name == "scaler_value_request_count":
                continue
            flat[name] = billing.setting(settings, name)
        raw_scaler_value = billing._lookup(settings, "scaler_value")[0]
        for name, value in self.model_dump().items():
            if value is not None:
                flat[name] = value
        if self.scaler is not None and self.scaler_value is None and raw_scaler_value is None:
            flat["scaler_value"] = billing.default(
                "scaler_value_request_count" if self.scaler == "request-count" else "scaler_value"
            )
        billing.validate_settings(flat)
        return flat


# ------------------------------------------------------------------------------------------------
# One billed run
# ------------------------------------------------------------------------------------------------


def model_weights_bytes(profile: Any) -> int:
    """Bytes of the profile's model weights at its precision (what a cold start loads)."""
    from planner.memory import weights_bytes
    from planner.models import get_model

    m = profile.model
    return int(weights_bytes(get_model(m.name), m.precision, m.quantization))


def model_id(profile: Any) -> str:
    """The profile model's preset id (what billing compares with a default's measured model)."""
    from planner.models import get_model

    return get_model(profile.model.name).name


def fleet_for(
    option: Option | Literal["pod"],
    settings: Any,
    weights_bytes: int,
    *,
    pods: int = 1,
    max_workers: int | None = None,
    pod_max_outstanding: int | None = None,
    pod_schedule: Sequence[int] | None = None,
) -> Any:
    """The FleetSpec of one billing option.

    Args:
        option: "pods"/"pod" (pods only), "serverless" (no pods) or "mix" (pods + overflow).
        settings: billing settings (profile section, or a flat mapping from ServerlessOverrides).
        weights_bytes: the model's weights, for the cold start.
        pods: dedicated replicas (pods and mix).
        max_workers: serverless cap override (None: the settings').
        pod_max_outstanding: mix only: requests a pod holds before the overflow goes serverless
            (None: max_concurrency_per_worker, like a serverless worker).
        pod_schedule: pods per hour instead of a fixed count (scale-ups become ready after
            billing.pod_provisioning_delay_seconds, billed from their start).
    """
    from planner.sim import FleetSpec
    from planner.sim.serverless import ServerlessSpec

    pod_fields: dict[str, Any] = {"pods": pods}
    if pod_schedule is not None:
        pod_fields.update(pod_schedule=list(pod_schedule), pod_schedule_slot_s=3600.0,
                          pod_provision_s=float(billing.setting(settings, "pod_provisioning_delay_seconds")))
    if option in ("pods", "pod"):
        return FleetSpec(**pod_fields)
    spec = ServerlessSpec.from_settings(settings, weights_bytes, overflow_only=option == "mix",
                                        max_workers=max_workers)
    if option == "serverless":
        return FleetSpec(pods=0, serverless=spec)
    cap = pod_max_outstanding if pod_max_outstanding is not None else spec.max_concurrency_per_worker
    return FleetSpec(**pod_fields, pod_max_outstanding=cap, serverless=spec)


def pod_saturation(setup: Any, workload: Any) -> int:
    """Requests a pod holds before it is saturated: its running-batch cap (max_num_seqs) or, if
    smaller, the requests of mean size its KV cache holds. Past this, requests only queue inside
    the engine, so a mix sends them to serverless instead."""
    cfg = setup.scheduler_config
    mean_tokens = float(np.mean(np.asarray(workload.prompt_tokens) + np.asarray(workload.output_tokens)))
    kv_requests = int(setup.num_gpu_blocks * cfg.block_size // max(mean_tokens, 1.0))
    return max(1, min(int(cfg.max_num_seqs), kv_requests))


def _price(outcome: Any, workload: Any, prices: ResolvedPrices, settings: Any) -> CostBreakdown:
    """`billing.price_outcome` with the profile's pod billing granularity."""
    return billing.price_outcome(
        outcome, prices, float(workload.horizon_s),
        pod_billing_granularity_s=float(billing.setting(settings, "pod_billing_granularity_seconds")),
    )


def simulate_billed(
    profile: Any,
    gpu: Any,
    setup: Any,
    workload: Any,
    mode: Literal["pod", "serverless", "mix"] = "pod",
    *,
    replicas: int = 1,
    overrides: ServerlessOverrides | None = None,
    pod_schedule: Sequence[int] | None = None,
    require_price: bool = True,
    **simulate_kwargs: Any,
) -> tuple[Any, CostBreakdown | str]:
    """`planner simulate --billing`: simulate the fleet a billing mode describes, then price it.

    Args:
        profile: the Profile (billing settings, price overrides, SLO, model for the cold start).
        gpu: its catalog GpuSpec (prices).
        setup: the ReplicaSetup simulated.
        workload: the requests.
        mode: "pod" (`replicas` pods), "serverless" (the endpoint only) or "mix" (`replicas` pods
            taking requests first, the endpoint the overflow).
        replicas: pods for "pod" and "mix".
        overrides: CLI values for the endpoint.
        pod_schedule: pods per hour (replaces `replicas`; the last count holds).
        require_price: False (a plain `simulate` without --billing): pods with no known price
            are still simulated and the cost is replaced by the reason (a str).
        simulate_kwargs: passed to planner.sim.simulate (jump, router, seed, progress).
    Returns:
        (SimOutcome, CostBreakdown, or the one-line reason there is no price).
    """
    from planner.sim import simulate

    settings = (overrides or ServerlessOverrides()).merged(profile.billing)
    prices = billing.resolve_prices(gpu, settings, getattr(profile, "prices", ()))
    if mode == "pod":
        try:
            prices.pod_usd_per_hour()
        except PlannerError as err:
            if require_price:
                raise
            fleet = fleet_for("pods", settings, 0, pods=replicas, pod_schedule=pod_schedule)
            return simulate(workload, setup, fleet, profile.slo, **simulate_kwargs), str(err)
        fleet = fleet_for("pods", settings, 0, pods=replicas, pod_schedule=pod_schedule)
    else:
        prices.flex_usd_per_s()
        if int(settings["active_workers"]) > 0:
            prices.active_usd_per_s()
        if mode == "mix":
            prices.pod_usd_per_hour()
        option: Option = "serverless" if mode == "serverless" else "mix"
        fleet = fleet_for(option, settings, model_weights_bytes(profile), pods=replicas,
                          pod_max_outstanding=pod_saturation(setup, workload) if mode == "mix" else None,
                          pod_schedule=pod_schedule if mode == "mix" else None)
    outcome = simulate(workload, setup, fleet, profile.slo, **simulate_kwargs)
    return outcome, _price(outcome, workload, prices, settings)


class BillingNotes(BaseModel):
    """What `planner simulate --billing` shows beside the cost: a worker's cold start and the assumptions."""

    model_config = ConfigDict(extra="forbid")

    cold_start: ColdStart | None = Field(description="one serverless worker's start, by part (None: pods only)")
    assumptions: list[str]


def billing_notes(
    profile: Any, gpu: Any, mode: Literal["pod", "serverless", "mix"] = "pod", overrides: ServerlessOverrides | None = None
) -> BillingNotes:
    """The cold start and the estimated or dated inputs behind `simulate_billed`'s cost for `mode`."""
    settings = (overrides or ServerlessOverrides()).merged(profile.billing)
    prices = billing.resolve_prices(gpu, settings, getattr(profile, "prices", ()))
    serverless = mode != "pod"
    return BillingNotes(
        cold_start=billing.cold_start(model_weights_bytes(profile), settings) if serverless else None,
        assumptions=billing.assumptions(profile.billing, prices, serverless=serverless, model=model_id(profile)),
    )


class BilledRun(BaseModel):
    """One option simulated and priced."""

    model_config = ConfigDict(extra="forbid")

    option: Option
    pods: int
    serverless_max_workers: int | None = None
    active_workers: int = 0
    slo_attainment: float | None
    meets_slo: bool | None
    ttft_p50_s: float | None
    ttft_p99_s: float | None
    mean_batch_per_replica: float | None = Field(
        None, description="running sequences per live replica, time-averaged (SimMetrics.batch_size_mean): how "
        "full the GPUs are, unlike cost.utilization (time with any request in flight)")
    max_num_seqs: int | None = Field(None, description="the replica's running-batch cap, for comparison")
    cost: CostBreakdown


def _batch_fields(outcome: Any, setup: Any) -> dict[str, Any]:
    """Mean running batch per replica and its cap, for BilledRun."""
    cap = getattr(getattr(setup, "engine_args", None), "max_num_seqs", None)
    return {"mean_batch_per_replica": getattr(outcome.metrics, "batch_size_mean", None),
            "max_num_seqs": None if cap is None else int(cap)}


# The simulator entry point, injectable for tests: (workload, setup, fleet_spec, slo) -> SimOutcome.
SimulateFn = Callable[[Any, Any, Any, Any], Any]


def _default_simulate(workload: Any, setup: Any, fleet: Any, slo: Any) -> Any:
    from planner.sim import simulate

    return simulate(workload, setup, fleet, slo)


def run_billed(
    option: Option,
    workload: Any,
    setup: Any,
    slo: Any,
    prices: ResolvedPrices,
    settings: Any,
    weights_bytes: int,
    *,
    pods: int = 1,
    max_workers: int | None = None,
    pod_max_outstanding: int | None = None,
    simulate: SimulateFn = _default_simulate,
) -> BilledRun:
    """Simulate one option on `workload` and price it."""
    if option != "pods":
        prices.flex_usd_per_s()  # a GPU with no serverless price fails here, before simulating
        if int(billing.setting(settings, "active_workers")) > 0:
            prices.active_usd_per_s()
    else:
        prices.pod_usd_per_hour()
    fleet = fleet_for(option, settings, weights_bytes, pods=pods, max_workers=max_workers,
                      pod_max_outstanding=pod_max_outstanding)
    outcome = simulate(workload, setup, fleet, slo)
    m = outcome.metrics
    spec = fleet.serverless
    return BilledRun(
        option=option,
        pods=fleet.pods,
        serverless_max_workers=None if spec is None else spec.max_workers,
        active_workers=0 if spec is None else spec.active_workers,
        slo_attainment=m.slo_attainment,
        meets_slo=m.slo_met,
        ttft_p50_s=m.ttft_seconds.p50,
        ttft_p99_s=m.ttft_seconds.p99,
        **_batch_fields(outcome, setup),
        cost=_price(outcome, workload, prices, settings),
    )


# ------------------------------------------------------------------------------------------------
# Comparison and break-even
# ------------------------------------------------------------------------------------------------


class LoadPoint(BaseModel):
    """The three options at one load."""

    model_config = ConfigDict(extra="forbid")

    load_factor: float
    mean_rate_per_s: float
    pods_needed: int
    cost_per_month_usd: dict[str, float | None]
    meets_slo: dict[str, bool | None]


class CompareResult(BaseModel):
    """`planner compare`: pods vs serverless vs a mix on the same arrivals, and the break-even."""

    model_config = ConfigDict(extra="forbid")

    profile: str
    gpu_id: str
    tensor_parallel_size: int
    seed: int | None
    horizon_s: float
    num_requests: int
    mean_rate_per_s: float
    cold_start_s: float
    options: list[BilledRun] = Field(description="pods, serverless and mix at the profile's load")
    cheapest_meeting_slo: Option | None
    break_even_rate_per_s: float | None = Field(
        description="mean req/s above which pods are cheaper than serverless (None: no crossing in the sweep)"
    )
    break_even_note: str
    sweep: list[LoadPoint]
    assumptions: list[str]


def pods_needed(
    workload: Any, setup: Any, slo: Any, *, start: int = 1, max_pods: int = 32, simulate: SimulateFn = _default_simulate
) -> tuple[int, Any]:
    """Smallest pod count >= start meeting the SLO (max_pods if none does), and its outcome."""
    from planner.sim import FleetSpec

    outcome = None
    for n in range(max(1, start), max_pods + 1):
        outcome = simulate(workload, setup, FleetSpec(pods=n), slo)
        if outcome.metrics.slo_met is not False:  # met, or no SLO to meet
            return n, outcome
    return max_pods, outcome


def _evaluate_load(
    workload: Any, setup: Any, slo: Any, prices: ResolvedPrices, settings: Any, weights_bytes: int, *,
    start_pods: int, max_pods: int, max_workers: int | None, simulate: SimulateFn,
) -> tuple[int, dict[str, BilledRun]]:
    n, outcome = pods_needed(workload, setup, slo, start=start_pods, max_pods=max_pods, simulate=simulate)
    runs: dict[str, BilledRun] = {}
    m = outcome.metrics
    runs["pods"] = BilledRun(option="pods", pods=n, slo_attainment=m.slo_attainment, meets_slo=m.slo_met,
                             ttft_p50_s=m.ttft_seconds.p50, ttft_p99_s=m.ttft_seconds.p99,
                             **_batch_fields(outcome, setup),
                             cost=_price(outcome, workload, prices, settings))
    base_max = int(billing.setting(settings, "max_workers"))
    sl_max = max_workers if max_workers is not None else max(base_max, 2 * n)
    runs["serverless"] = run_billed("serverless", workload, setup, slo, prices, settings, weights_bytes,
                                    max_workers=sl_max, simulate=simulate)
    best: BilledRun | None = None
    cap = pod_saturation(setup, workload)
    for base in range(1, max(1, n - 1) + 1):
        mix_max = max_workers if max_workers is not None else max(base_max, 2 * (n - base) + 1)
        run = run_billed("mix", workload, setup, slo, prices, settings, weights_bytes, pods=base,
                         max_workers=mix_max, pod_max_outstanding=cap, simulate=simulate)
        if best is None or _better(run, best):
            best = run
    runs["mix"] = best  # type: ignore[assignment]
    return n, runs


def _better(a: BilledRun, b: BilledRun) -> bool:
    """Prefer meeting the SLO, then lower cost, then higher attainment."""
    a_ok, b_ok = a.meets_slo is not False, b.meets_slo is not False
    if a_ok != b_ok:
        return a_ok
    if not a_ok:
        return (a.slo_attainment or 0.0) > (b.slo_attainment or 0.0)
    return a.cost.cost_usd < b.cost.cost_usd


def break_even(points: Sequence[LoadPoint]) -> tuple[float | None, str]:
    """Mean req/s where the pods' monthly cost first drops to serverless', linearly interpolated."""
    pts = sorted((p for p in points if p.cost_per_month_usd.get("pods") is not None
                  and p.cost_per_month_usd.get("serverless") is not None), key=lambda p: p.mean_rate_per_s)
    if len(pts) < 1:
        return None, "no load point priced both options"
    diffs = [p.cost_per_month_usd["pods"] - p.cost_per_month_usd["serverless"] for p in pts]  # type: ignore[operator]
    if diffs[0] <= 0:
        return None, (f"pods are already cheaper at the lowest load swept ({pts[0].mean_rate_per_s:.3g} req/s): "
                      "the break-even is below it")
    for (p0, d0), (p1, d1) in zip(zip(pts, diffs), zip(pts[1:], diffs[1:])):
        if d0 > 0 >= d1:
            x = p0.mean_rate_per_s + (p1.mean_rate_per_s - p0.mean_rate_per_s) * d0 / (d0 - d1)
            note = (f"pods become cheaper than serverless above ≈ {x:.3g} req/s mean load (linear interpolation "
                    f"between {p0.mean_rate_per_s:.3g} and {p1.mean_rate_per_s:.3g} req/s)")
            if p0.meets_slo.get("serverless") is False or p1.meets_slo.get("serverless") is False:
                note += "; serverless misses the SLO near there, so pods win on latency too"
            return x, note
    return None, (f"serverless is cheaper at every load swept (up to {pts[-1].mean_rate_per_s:.3g} req/s): "
                  "the break-even is above it")


def compare(
    profile: Any,
    gpu: Any,
    *,
    tensor_parallel_size: int = 1,
    seed: int | None = None,
    overrides: ServerlessOverrides | None = None,
    load_factors: Sequence[float] = DEFAULT_LOAD_FACTORS,
    max_pods: int = 32,
    extend_steps: int = 4,
    workload: Any = None,
    setup: Any = None,
    simulate: SimulateFn = _default_simulate,
) -> CompareResult:
    """Pods vs serverless vs a mix for `profile` on `gpu`, at its load and over a load sweep.

    Args:
        profile: planner.profile.Profile.
        gpu: catalog GpuSpec (its prices are resolved with the profile's billing and prices).
        tensor_parallel_size: GPUs per replica / worker.
        seed: traffic seed (None: the profile's).
        overrides: CLI values for the serverless endpoint.
        load_factors: rate multipliers of the sweep (1.0 is always included).
        max_pods: upper bound of the pods search.
        extend_steps: extra load points allowed to bracket the break-even (lower loads ÷ 8 when
            pods win everywhere, higher × 2 when serverless does); 0 = the given sweep only.
        workload, setup, simulate: injectable (tests); built from the profile when None.
    """
    if any(not (f > 0 and math.isfinite(f)) for f in load_factors):
        raise PlannerError("load factors must be finite numbers > 0 (e.g. 0.25,0.5,1,2)")
    settings = (overrides or ServerlessOverrides()).merged(profile.billing)
    prices = billing.resolve_prices(gpu, settings, getattr(profile, "prices", ()))
    prices.flex_usd_per_s()  # fail early and clearly: both prices are needed to compare
    prices.pod_usd_per_hour()
    if setup is None:
        from planner.sim.setup import replica_setup

        setup = replica_setup(profile, gpu, tensor_parallel_size)
    if workload is None:
        from planner.traffic import generate_workload

        workload = generate_workload(profile, seed=seed, max_model_len=setup.engine_args.max_model_len)
    if len(workload) == 0:
        raise PlannerError("the profile's traffic has no requests in its horizon; raise the rate or the horizon")
    weights = model_weights_bytes(profile)
    explicit_max = overrides.max_workers if overrides is not None else None
    points: dict[float, LoadPoint] = {}
    at_profile: dict[str, BilledRun] = {}

    def evaluate(factor: float) -> None:
        scaled = workload if factor == 1.0 else workload.scale_rate(factor)
        # More load never needs fewer pods: start the search at the pods of the next lower load.
        start = max([p.pods_needed for f, p in points.items() if f < factor], default=1)
        n, runs = _evaluate_load(scaled, setup, profile.slo, prices, settings, weights, start_pods=start,
                                 max_pods=max_pods, max_workers=explicit_max, simulate=simulate)
        points[factor] = LoadPoint(
            load_factor=factor,
            mean_rate_per_s=len(scaled) / scaled.horizon_s,
            pods_needed=n,
            cost_per_month_usd={k: r.cost.cost_per_month_usd for k, r in runs.items()},
            meets_slo={k: r.meets_slo for k, r in runs.items()},
        )
        if factor == 1.0:
            at_profile.update(runs)

    for factor in sorted(set(float(f) for f in load_factors) | {1.0}):
        evaluate(factor)
    # Extend the sweep until it brackets the break-even (within [MIN, MAX]_EXTEND_FACTOR).
    for _ in range(extend_steps):
        rate, _note = break_even(list(points.values()))
        if rate is not None:
            break
        lowest, highest = min(points), max(points)
        if _note.startswith("pods are already cheaper") and lowest / 8 >= MIN_EXTEND_FACTOR:
            evaluate(lowest / 8)
        elif _note.startswith("serverless is cheaper") and highest * 2 <= MAX_EXTEND_FACTOR:
            evaluate(highest * 2)
        else:
            break
    sweep = [points[f] for f in sorted(points)]
    rate, note = break_even(sweep)
    options = [at_profile[k] for k in OPTIONS]
    meeting = [r for r in options if r.meets_slo is not False]
    cheapest = min(meeting, key=lambda r: r.cost.cost_usd).option if meeting else None
    return CompareResult(
        profile=str(getattr(profile, "name", "profile")),
        gpu_id=prices.gpu_id,
        tensor_parallel_size=int(tensor_parallel_size),
        seed=seed,
        horizon_s=float(workload.horizon_s),
        num_requests=len(workload),
        mean_rate_per_s=len(workload) / float(workload.horizon_s),
        cold_start_s=billing.cold_start_seconds(weights, settings),
        options=options,
        cheapest_meeting_slo=cheapest,
        break_even_rate_per_s=rate,
        break_even_note=note,
        sweep=sweep,
        assumptions=billing.assumptions(profile.billing, prices, model=model_id(profile)) + [
            "serverless max workers raised to at least 2 × the pods needed at each load unless --max-workers "
            "is given; in the mix, a pod holds at most min(max_num_seqs, requests of mean size its KV cache "
            "holds) and the overflow goes to serverless workers",
            "queue-delay scaler: an endpoint with no live worker starts one at once for a queued request "
            "(scale from zero); Runpod's docs do not say (estimated)",
        ],
    )
