"""One billed run: simulate a billing mode's fleet (pods, serverless or a mix) on a workload and price it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from planner import billing
from planner.billing import ColdStart, CostBreakdown, ResolvedPrices
from planner.errors import PlannerError
from planner.inputs.profile import Profile
from planner.scenario import model_weights_bytes

Option = Literal["pods", "serverless", "mix"]
OPTIONS: tuple[Option, ...] = ("pods", "serverless", "mix")
# The sweep: an eighth of the profile's load to twice it, the loads a plan for this traffic
# meets. The extension that brackets a break-even stays within 1/32 .. 16 x the profile's load.
DEFAULT_LOAD_FACTORS = (0.125, 0.25, 0.5, 1.0, 2.0)
MIN_EXTEND_FACTOR, MAX_EXTEND_FACTOR = 1 / 32, 16.0


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


def model_id(profile: Profile) -> str:
    """The profile model's preset id (what billing compares with a default's measured model)."""
    from planner.inputs.models import get_model

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
    from planner.scenario import serverless_spec
    from planner.sim import FleetSpec

    pod_fields: dict[str, Any] = {"pods": pods}
    if pod_schedule is not None:
        pod_fields.update(pod_schedule=list(pod_schedule), pod_schedule_slot_s=3600.0,
                          pod_provision_s=float(billing.setting(settings, "pod_provisioning_delay_seconds")))
    if option in ("pods", "pod"):
        return FleetSpec(**pod_fields)
    spec = serverless_spec(settings, weights_bytes, pods=pods if option == "mix" else 0, max_workers=max_workers)
    if option == "serverless":
        return FleetSpec(pods=0, serverless=spec)
    cap = pod_max_outstanding if pod_max_outstanding is not None else spec.max_concurrency_per_worker
    return FleetSpec(**pod_fields, pod_max_outstanding=cap, serverless=spec)


def pod_saturation(setup: Any, workload: Any) -> int:
    """Requests a pod holds before it is saturated: its running-batch cap (max_num_seqs) or, if
    smaller, the requests of mean size its KV cache holds. Past this, requests only queue inside
    the engine, so a mix sends them to serverless instead."""
    cfg = setup.scheduler_config
    # A closed loop has no request list before it runs: the sizes its users will send.
    prompt, output = (workload.sizes_sample() if hasattr(workload, "sizes_sample")
                      else (workload.prompt_tokens, workload.output_tokens))
    mean_tokens = float(np.mean(np.asarray(prompt) + np.asarray(output)))
    kv_requests = int(setup.num_gpu_blocks * cfg.block_size // max(mean_tokens, 1.0))
    return max(1, min(int(cfg.max_num_seqs), kv_requests))


def _price(outcome: Any, workload: Any, prices: ResolvedPrices, settings: Any) -> CostBreakdown:
    """`billing.price_outcome` with the profile's pod billing granularity, over the horizon of what
    was simulated (a closed loop's: the run's, when only a request budget bounds it)."""
    simulated = getattr(outcome, "workload", None)
    return billing.price_outcome(
        outcome, prices, float((simulated if simulated is not None else workload).horizon_s),
        pod_billing_granularity_s=float(billing.setting(settings, "pod_billing_granularity_seconds")),
    )


def simulate_billed(
    profile: Profile,
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
    profile: Profile, gpu: Any, mode: Literal["pod", "serverless", "mix"] = "pod", overrides: ServerlessOverrides | None = None,
    tensor_parallel_size: int | None = None,
) -> BillingNotes:
    """The cold start and the estimated or dated inputs behind `simulate_billed`'s cost for `mode`
    (and, for a GPU calibrated by `planner calibrate`, its corrections, checked at this TP)."""
    settings = (overrides or ServerlessOverrides()).merged(profile.billing)
    prices = billing.resolve_prices(gpu, settings, getattr(profile, "prices", ()))
    serverless = mode != "pod"
    return BillingNotes(
        cold_start=billing.cold_start(model_weights_bytes(profile), settings) if serverless else None,
        assumptions=billing.assumptions(profile.billing, prices, serverless=serverless, model=model_id(profile))
        + _calibration_lines(profile, gpu, tensor_parallel_size),
    )


def _calibration_lines(profile: Profile, gpu: Any, tensor_parallel_size: int | None = None) -> list[str]:
    """The assumption lines of a GPU that runs on the user's `planner calibrate` corrections."""
    from planner.inputs.catalog import get_gpu
    from planner.perf.corrections import calibration_assumptions

    spec = get_gpu(gpu) if isinstance(gpu, str) else gpu
    m = profile.model
    return calibration_assumptions(spec, model_id(profile), tensor_parallel_size, m.precision, m.quantization,
                                   m.kv_cache_dtype)


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


