"""The rest of the optimizer's world per (GPU, TP) candidate: fleet simulation, prices, scale-up time,
engine settings, assumptions. Each is one function over the real modules; tests hand the planning loop
stand-ins through its backend.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from planner.assumption import Assumption, render
from planner.inputs.profile import Profile
from planner.perf.corrections import calibration_assumption_items
from planner.scenario import Candidate
from planner.sim.metrics import ENGINE_LATENCY_NOTE
from planner.sim.scheduler import ASYNC_SCHEDULING_NOTE, SYNC_SCHEDULING_NOTE

# What `planner.optimize.loop.plan` needs besides capacities, each one function over a
# `planner.scenario.Candidate` (tests hand `plan` stand-ins through its backend).


def simulate_fleet(
    profile: Profile,
    gpu_id: str,
    tensor_parallel_size: int,
    workload: Any,
    *,
    pods: int,
    active_workers: int = 0,
    max_workers: int = 0,
    seed: int = 0,
    pod_schedule: list[int] | None = None,
    pod_schedule_slot_s: float = 3600.0,
    pod_provision_s: float = 0.0,
    progress: Callable[[float], None] | None = None,
) -> Any:
    """Simulate one endpoint of a plan (pods and/or a serverless endpoint of one GPU type).

    `pod_schedule` (pods per slot of `pod_schedule_slot_s`) replaces `pods`: scale-ups start
    `pod_provision_s` before their slot so they are ready when its traffic arrives (billed from
    their start), scale-downs drain.
    Returns the simulator's SimOutcome (records, workers spans).
    """
    from planner import sim  # noqa: PLC0415

    cand = Candidate.build(profile, gpu_id, tensor_parallel_size)
    serverless = None
    peak_pods = max(pod_schedule) if pod_schedule else pods
    if max_workers > 0:
        serverless = cand.serverless_spec(profile.billing, pods=peak_pods, active_workers=active_workers,
                                          max_workers=max_workers)
    if pod_schedule:
        fleet = sim.FleetSpec(pods=peak_pods, pod_schedule=list(pod_schedule), pod_schedule_slot_s=pod_schedule_slot_s,
                              pod_provision_s=pod_provision_s, pod_prewarm=True, serverless=serverless)
    else:
        fleet = sim.FleetSpec(pods=pods, serverless=serverless)
    return sim.simulate(workload, cand.replica_setup(), fleet, profile.slo, seed=seed, progress=progress)


def resolve_prices(profile: Profile, gpu_id: str) -> Any:
    """The billing module's ResolvedPrices for a GPU under the profile's cloud and overrides."""
    from planner import billing  # noqa: PLC0415
    from planner.inputs import catalog  # noqa: PLC0415

    return billing.resolve_prices(catalog.get_gpu(gpu_id), profile.billing, profile.prices)


def scale_up_seconds(profile: Profile, gpu_id: str, tensor_parallel_size: int) -> float:
    """Seconds a flex worker is billed per scale-up beyond its busy time: cold start + idle timeout."""
    return Candidate.build(profile, gpu_id, tensor_parallel_size).scale_up_seconds(profile.billing)


def engine_settings(profile: Profile, gpu_id: str, tensor_parallel_size: int) -> dict[str, Any]:
    """The resolved vLLM engine arguments of a candidate (for the deploy settings)."""
    return Candidate.build(profile, gpu_id, tensor_parallel_size).engine_settings()


def assumptions(profile: Profile, uses: Mapping[str, Collection[str]]) -> list[Assumption]:
    """Every estimated input plans using these GPUs relied on, each with the plans it concerns.

    Args:
        profile: the run's profile.
        uses: GPU id -> the billing modes ("pod", "serverless") the plans shown use it in: a price
            is listed only for a mode some plan uses; the serverless settings once, naming every
            GPU they apply to. An item concerns (GPU, mode) pairs ("*": the GPU in any mode); none:
            the whole run (the month).
    """
    from planner import billing  # noqa: PLC0415
    from planner.perf import transfer  # noqa: PLC0415
    from planner.perf.step_time import PREFIX_CACHING_NOTE  # noqa: PLC0415
    from planner.inputs import catalog, models  # noqa: PLC0415

    model = models.get_model(profile.model.name).name
    pod_gpus = [g for g in uses if "pod" in uses[g]]
    sls_gpus = [g for g in uses if "serverless" in uses[g]]
    items: list[Assumption] = []
    seen: set[str] = set()

    def add(item: Assumption, concerns: Iterable[tuple[str, str]]) -> None:
        key = render(item)
        if key not in seen:
            seen.add(key)
            items.append(item.model_copy(update={"concerns": sorted(concerns)}))

    versions = sorted({t.vllm_version for t in (transfer.tables_for(catalog.get_gpu(g)) for g in uses) if t})
    if versions:
        add(Assumption(topic="note", name="step times", value=", ".join(versions),
                       source=f"vLLM {', '.join(versions)} kernel latencies (aiconfigurator-core 0.12.0 tables, "
                       "gpu_catalog/kernels/) plus two engine constants fitted on H100 vLLM runs (docs/perf.md)"), ())
    add(Assumption(topic="note", name="prefix caching", source=PREFIX_CACHING_NOTE.removeprefix("prefix caching is ")), ())
    add(Assumption(topic="note", name="latencies", source=ENGINE_LATENCY_NOTE), ())
    scheduling = ASYNC_SCHEDULING_NOTE if profile.serving.async_scheduling else SYNC_SCHEDULING_NOTE
    add(Assumption(topic="note", name="async scheduling", source=scheduling), ())
    # Settings: once for all GPUs. The pod setting concerns the pod GPUs, the rest the serverless ones.
    for item in billing.assumption_items(profile.billing, None, pods=bool(pod_gpus), serverless=bool(sls_gpus),
                                         model=model, gpu_ids=sls_gpus):
        if item.name == billing.setting_path("pod_provisioning_delay_seconds"):
            add(item, ((g, "pod") for g in pod_gpus))
        elif item.topic == "setting":
            add(item, ((g, "serverless") for g in sls_gpus))
        else:
            add(item, ())
    for gpu_id in uses:
        gpu = catalog.get_gpu(gpu_id)
        prices = billing.resolve_prices(gpu, profile.billing, profile.prices)
        for mode in ("pod", "serverless"):
            if mode in uses[gpu_id]:
                for item in billing.price_assumption_items(prices, pods=mode == "pod", serverless=mode == "serverless"):
                    add(item, [(gpu_id, mode)])
        for name in gpu.estimated:
            add(Assumption(topic="gpu_spec", name=name, gpu=gpu_id, source=gpu.notes.get(name, "estimated")),
                [(gpu_id, "*")])
        tables = transfer.tables_for(gpu)
        if tables is not None and not tables.measured:
            add(Assumption(topic="gpu_spec", name="step times", gpu=gpu_id, source=tables.source), [(gpu_id, "*")])
        cal = gpu.calibration
        if cal is not None:
            for key, value in cal.model_dump().items():
                if isinstance(value, dict) and value.get("estimated"):
                    add(Assumption(topic="efficiency", name=key, gpu=gpu_id, value=value.get("value"),
                                   source=value.get("source", "no source")), [(gpu_id, "*")])
        m = profile.model
        for item in calibration_assumption_items(gpu, model, None, m.precision, m.quantization, m.kv_cache_dtype):
            add(item, [(gpu_id, "*")])
    return items
