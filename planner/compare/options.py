"""Pods vs serverless vs mix on the same arrivals, over a load sweep, and the break-even load."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from planner import billing
from planner.billing import ResolvedPrices
from planner.compare.billed_run import (
    DEFAULT_LOAD_FACTORS,
    MAX_EXTEND_FACTOR,
    MIN_EXTEND_FACTOR,
    OPTIONS,
    BilledRun,
    Option,
    ServerlessOverrides,
    SimulateFn,
    _batch_fields,
    _calibration_lines,
    _default_simulate,
    _price,
    model_id,
    model_weights_bytes,
    pod_saturation,
    run_billed,
)
from planner.errors import PlannerError
from planner.inputs.profile import Profile

# ------------------------------------------------------------------------------------------------
# Comparison and break-even
# ------------------------------------------------------------------------------------------------


class LoadPoint(BaseModel):
    """The three options at one load."""

    model_config = ConfigDict(extra="forbid")

    load_factor: float
    mean_rate_per_s: float = Field(description="requests per second (a closed loop's: as simulated on the pods)")
    users: int | None = Field(None, description="closed loop: the users at this load (None: open-loop traffic)")
    pods_needed: int
    cost_per_month_usd: dict[str, float | None]
    meets_slo: dict[str, bool | None]
    slo_attainment: dict[str, float | None] = Field(default_factory=dict)


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
    users: int | None = Field(None, description="closed loop: the profile's users (requests and rate as simulated "
                              "on the pods that meet the SLO); None: open-loop traffic")
    cold_start_s: float
    options: list[BilledRun] = Field(description="pods, serverless and mix at the profile's load")
    cheapest_meeting_slo: Option | None
    break_even_rate_per_s: float | None = Field(
        description="mean req/s above which pods are cheaper than serverless (None: no crossing in the sweep)"
    )
    break_even_note: str
    never_meets_slo: list[Option] = Field(
        default_factory=list, description="options that miss the SLO at every load swept (their cost is no answer)")
    sweep: list[LoadPoint]
    assumptions: list[str]


# A sweep past 1000x the profile's rate is a typo (and would draw billions of requests).
MAX_LOAD_FACTOR = 1000.0


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
) -> tuple[int, dict[str, BilledRun], Any]:
    """Pods needed, the three options priced, and the requests as simulated on the pods."""
    n, outcome = pods_needed(workload, setup, slo, start=start_pods, max_pods=max_pods, simulate=simulate)
    simulated = getattr(outcome, "workload", None)
    sent = simulated if simulated is not None else workload  # a closed loop's requests, as sent
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
    return n, runs, sent


def _better(a: BilledRun, b: BilledRun) -> bool:
    """Prefer meeting the SLO, then lower cost, then higher attainment."""
    a_ok, b_ok = a.meets_slo is not False, b.meets_slo is not False
    if a_ok != b_ok:
        return a_ok
    if not a_ok:
        return (a.slo_attainment or 0.0) > (b.slo_attainment or 0.0)
    return a.cost.cost_usd < b.cost.cost_usd


def never_meeting(points: Sequence[LoadPoint]) -> list[Option]:
    """Options that miss the SLO at every load swept."""
    return [o for o in OPTIONS if points and all(p.meets_slo.get(o) is False for p in points)]


def _rates(points: Sequence[LoadPoint]) -> str:
    return f"{points[0].mean_rate_per_s:.3g} to {points[-1].mean_rate_per_s:.3g} req/s"


Crossing = Literal["found", "below", "above", "none"]


def _crossing(points: Sequence[LoadPoint]) -> tuple[float | None, str, Crossing]:
    """The break-even, its note, and where to look further ("below"/"above" the sweep, or "none")."""
    pts = sorted((p for p in points if p.cost_per_month_usd.get("pods") is not None
                  and p.cost_per_month_usd.get("serverless") is not None), key=lambda p: p.mean_rate_per_s)
    if not pts:
        return None, "no load point priced both options", "none"
    missing = [o for o in never_meeting(pts) if o != "mix"]
    if missing:
        best, at = max(((p.slo_attainment.get(m) or 0.0, p.mean_rate_per_s) for m in missing for p in pts),
                       default=(0.0, 0.0))
        only = {"serverless": "only pods meet it", "pods": "only serverless meets it"}.get(
            missing[0]) if len(missing) == 1 else "neither meets it"
        return None, (f"none: {' and '.join(missing)} {'misses' if len(missing) == 1 else 'miss'} the SLO at every load "
                      f"swept ({_rates(pts)}; best attainment {best:.1%}, at {at:.3g} req/s), so {only}"), "none"
    both = [p for p in pts if p.meets_slo.get("pods") is not False and p.meets_slo.get("serverless") is not False]
    if not both:
        return None, f"none: pods and serverless never meet the SLO at the same load ({_rates(pts)})", "none"
    scope = "" if len(both) == len(pts) else f" (compared where both meet the SLO: {_rates(both)})"
    diffs = [p.cost_per_month_usd["pods"] - p.cost_per_month_usd["serverless"] for p in both]  # type: ignore[operator]
    if diffs[0] <= 0:
        return None, (f"pods are already cheaper at the lowest load where both meet the SLO "
                      f"({both[0].mean_rate_per_s:.3g} req/s): the break-even is below it{scope}"), "below"
    for (p0, d0), (p1, d1) in zip(zip(both, diffs), zip(both[1:], diffs[1:])):
        if d0 > 0 >= d1:
            x = p0.mean_rate_per_s + (p1.mean_rate_per_s - p0.mean_rate_per_s) * d0 / (d0 - d1)
            return x, (f"pods become cheaper than serverless above ≈ {x:.3g} req/s mean load (linear interpolation "
                       f"between {p0.mean_rate_per_s:.3g} and {p1.mean_rate_per_s:.3g} req/s){scope}"), "found"
    return None, (f"serverless is cheaper at every load where both meet the SLO (up to "
                  f"{both[-1].mean_rate_per_s:.3g} req/s): the break-even is above it{scope}"), "above"


def break_even(points: Sequence[LoadPoint]) -> tuple[float | None, str]:
    """Mean req/s above which pods cost less than serverless, both meeting the SLO.

    Only loads where both meet the SLO are compared (a cheaper option that misses it is no
    alternative); when one of them misses it at every load, the note says so plainly instead of
    naming a crossing. Between two compared loads the crossing is interpolated linearly.
    """
    rate, note, _ = _crossing(points)
    return rate, note


def compare(
    profile: Profile,
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
        profile: planner.inputs.profile.Profile.
        gpu: catalog GpuSpec (its prices are resolved with the profile's billing and prices).
        tensor_parallel_size: GPUs per replica / worker.
        seed: traffic seed (None: the profile's).
        overrides: CLI values for the serverless endpoint.
        load_factors: rate multipliers of the sweep (1.0 is always included).
        max_pods: upper bound of the pods search.
        extend_steps: extra load points allowed to bracket the break-even (lower loads ÷ 4 when
            pods win everywhere, higher × 2 when serverless does, within 1/32 .. 16 x the
            profile's load, and only when both meet the SLO somewhere); 0 = the given sweep only.
        workload, setup, simulate: injectable (tests); built from the profile when None.
    """
    if any(not (0 < f <= MAX_LOAD_FACTOR) for f in load_factors):
        raise PlannerError(f"--load-factors: each must be a number > 0 and at most {MAX_LOAD_FACTOR:g} (e.g. 0.25,0.5,1,2)")
    settings = (overrides or ServerlessOverrides()).merged(profile.billing)
    prices = billing.resolve_prices(gpu, settings, getattr(profile, "prices", ()))
    prices.flex_usd_per_s()  # fail early and clearly: both prices are needed to compare
    prices.pod_usd_per_hour()
    if setup is None:
        from planner.scenario import replica_setup

        setup = replica_setup(profile, gpu, tensor_parallel_size)
    if workload is None:
        from planner.traffic import traffic_for_simulation

        workload = traffic_for_simulation(profile, seed=seed, max_model_len=setup.engine_args.max_model_len)
    closed_users = getattr(workload, "users", None)  # a closed loop: its load is users, its rate simulated
    if closed_users is None and len(workload) == 0:
        raise PlannerError("the profile's traffic has no requests in its horizon; raise the rate or the horizon")
    weights = model_weights_bytes(profile)
    explicit_max = overrides.max_workers if overrides is not None else None
    points: dict[float, LoadPoint] = {}
    at_profile: dict[str, BilledRun] = {}
    sent_at_profile: list[Any] = []

    def evaluate(factor: float) -> None:
        scaled = workload if factor == 1.0 else workload.scale_rate(factor)
        if closed_users is not None and factor != 1.0 and any(p.users == scaled.users for p in points.values()):
            return  # a closed loop's load is whole users: this factor rounds to a load already swept
        # More load never needs fewer pods: start the search at the pods of the next lower load.
        start = max([p.pods_needed for f, p in points.items() if f < factor], default=1)
        n, runs, sent = _evaluate_load(scaled, setup, profile.slo, prices, settings, weights, start_pods=start,
                                       max_pods=max_pods, max_workers=explicit_max, simulate=simulate)
        points[factor] = LoadPoint(
            load_factor=factor,
            mean_rate_per_s=len(sent) / sent.horizon_s,
            users=getattr(scaled, "users", None),
            pods_needed=n,
            cost_per_month_usd={k: r.cost.cost_per_month_usd for k, r in runs.items()},
            meets_slo={k: r.meets_slo for k, r in runs.items()},
            slo_attainment={k: r.slo_attainment for k, r in runs.items()},
        )
        if factor == 1.0:
            at_profile.update(runs)
            sent_at_profile.append(sent)

    factors = sorted(set(float(f) for f in load_factors) | {1.0})
    if closed_users is not None:  # the profile's own load first: other factors may round to its users
        factors = [1.0] + [f for f in factors if f != 1.0]
    for factor in factors:
        evaluate(factor)
    # Extend the sweep until it brackets the break-even (within [MIN, MAX]_EXTEND_FACTOR).
    # Only where both options meet the SLO somewhere: a side that never meets it has no break-even.
    for _ in range(extend_steps):
        _rate, _note, where = _crossing(list(points.values()))
        lowest, highest = min(points), max(points)
        if where == "below" and lowest / 4 >= MIN_EXTEND_FACTOR:
            evaluate(lowest / 4)
        elif where == "above" and highest * 2 <= MAX_EXTEND_FACTOR:
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
        horizon_s=float(sent_at_profile[0].horizon_s),
        num_requests=len(sent_at_profile[0]),
        mean_rate_per_s=len(sent_at_profile[0]) / float(sent_at_profile[0].horizon_s),
        users=closed_users,
        cold_start_s=billing.cold_start_seconds(weights, settings),
        options=options,
        cheapest_meeting_slo=cheapest,
        break_even_rate_per_s=rate,
        break_even_note=note,
        never_meets_slo=never_meeting(sweep),
        sweep=sweep,
        assumptions=billing.assumptions(profile.billing, prices, model=model_id(profile))
        + _calibration_lines(profile, gpu, tensor_parallel_size) + [
            "serverless max workers raised to at least 2 × the pods needed at each load unless --max-workers "
            "is given; in the mix, a pod holds at most min(max_num_seqs, requests of mean size its KV cache "
            "holds) and the overflow goes to serverless workers",
            "queue-delay scaler: an endpoint with no live worker starts one at once for a queued request "
            "(scale from zero); Runpod's docs do not say (estimated)",
        ],
    )
