"""The answer of `planner optimize`: the plan's lines, its simulated runs, the rounds, alternatives.

`OptimizeResult` is what `planner optimize --json` prints (built by `planner.optimize.loop.plan`);
`FleetRun` / `EndpointRun` are a plan simulated on the horizon (`planner.optimize.verify`);
`PlanArtifacts` carries the per-request arrays the report plots but the JSON leaves out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from planner.assumption import Assumption
from planner.optimize.demand import DemandSeries
from planner.optimize.finance import Finance
from planner.optimize.milp import endpoint_name


class PlanEntry(BaseModel):
    """One line of a fleet plan: replicas of one (GPU, TP) under one billing mode."""

    gpu: str
    tensor_parallel_size: int
    billing: Literal["pod", "serverless"]
    count: int = Field(description="pods; for serverless the endpoint's max workers")
    active_workers: int = Field(0, description="serverless: always-on workers")
    max_flex_workers: int = Field(0, description="serverless: flex workers at the busiest level")
    flex_workers_per_level: list[int] = Field(
        default_factory=list, description="flex workers per slot demand level, slot-major"
    )
    gpus: int = Field(description="GPUs at the plan's peak (count x tensor_parallel_size)")
    pods_per_slot: list[int] = Field(
        default_factory=list, description="scheduled pods: pods per time slot (empty: `count` for the whole horizon)"
    )
    pod_starts: int = Field(0, description="scheduled pods: pod starts per horizon (it repeats)")
    traffic_share: float = Field(description="share of the provisioned requests routed here")
    capacity_per_s: dict[str, float] = Field(description="bucket -> req/s one replica carries (as planned)")
    milp_cost_usd: float = Field(description="the MILP's estimate for the horizon")

    @property
    def endpoint(self) -> str:
        return endpoint_name(self.gpu, self.tensor_parallel_size)


class EndpointRun(BaseModel):
    """The simulated outcome of one endpoint (GPU type) of a plan."""

    gpu: str
    tensor_parallel_size: int
    num_requests: int
    slo_attainment: float
    cost_usd: float
    cold_starts: int = 0
    utilization: float | None = Field(None, description="billed GPU-seconds with any request in flight "
                                      "(billing.CostBreakdown.utilization); not how full the batch is")
    ttft_p99_s: float | None = None
    tpot_p99_s: float | None = None
    p99_limits_missed: list[str] = Field(default_factory=list, description="the SLO's p99 limits this endpoint exceeds")


class CostLineItem(BaseModel):
    """One line of a plan's bill: the workers of one billing kind on one endpoint, and their price."""

    line: str = Field(description="the key in FleetRun.cost_lines, e.g. 'l40s-tp1 flex'")
    gpu: str
    tensor_parallel_size: int
    billing: Literal["pod", "active", "flex"]
    num_workers: int = Field(description="pods, or serverless workers started over the horizon")
    billed_gpu_seconds: float
    usd_per_gpu_hour: float = Field(description="the per-GPU rate billed (serverless per-second rates x 3600)")
    cost_usd: float = Field(description="over the horizon")
    price_as_of: str | None = None
    price_source: str | None = None


class FleetRun(BaseModel):
    """A plan simulated on the horizon's actual arrivals (or, when it cannot be, priced by the MILP)."""

    slo_attainment: float | None = Field(description="None: the plan could not be simulated")
    verified: bool
    simulated: bool = True
    not_simulated_reason: str | None = None
    cost_usd: float
    cost_per_month_usd: float
    usd_per_million_output_tokens: float | None = Field(
        description="cost_usd per million output tokens produced (completed requests'; as billing.price_outcome)")
    num_requests: int
    output_tokens: int = Field(description="output tokens produced: completed requests' (unsimulated: all requests')")
    ttft_p50_s: float | None = None
    ttft_p99_s: float | None = None
    tpot_p50_s: float | None = None
    tpot_p99_s: float | None = None
    cold_starts: int = 0
    cost_lines: dict[str, float] = Field(default_factory=dict, description="kind -> USD")
    endpoints: list[EndpointRun] = Field(default_factory=list)
    input_tokens: int = Field(0, description="prompt tokens of every request offered (what a hosted API would bill)")
    slo_misses: int = Field(0, description="requests that missed the SLO (rejected and unfinished included)")
    misses_after_cold_start: int = Field(
        0, description="misses served by a worker still starting when they arrived (waited for a cold start)")
    p99_limits_missed: list[str] = Field(
        default_factory=list, description="the SLO's p99 limits (ttft/tpot_p99_seconds) the run exceeds; any = not verified")
    line_items: list[CostLineItem] = Field(default_factory=list, description="cost_lines with their prices and dates")
    simulated_on: str = Field("full horizon", description="'full horizon' or the sample of days simulated")


class RoundReport(BaseModel):
    """One solve-and-verify round."""

    round: int
    milp_status: str
    milp_cost_per_month_usd: float | None
    cost_per_month_usd: float | None
    slo_attainment: float | None
    verified: bool
    plan: str = Field(description="the plan in words")
    tightened: dict[str, float] = Field(
        default_factory=dict, description="pool -> capacity factor applied for the next round"
    )
    repriced: dict[str, float] = Field(
        default_factory=dict, description="flex pool -> price factor (simulated / estimated billing) for the next round"
    )
    solve_seconds: float = 0.0
    simulate_seconds: float = 0.0
    milp_status_text: str = Field("", description="what the solver proved (SolverStatus.text)")
    simulated_on: str = Field("full horizon", description="the traffic the round's plan was simulated on")


class SolverStatus(BaseModel):
    """What the MILP solver proved about the chosen plan, on which model."""

    solver: str = Field(description="highs | cbc")
    status: str = Field(description="PuLP's status string")
    proven_optimal: bool
    time_limited: bool
    gap: float | None = Field(description="relative gap to the best bound (None: unknown, CBC after a time limit)")
    best_bound_usd: float | None = Field(description="the solver's lower bound on the horizon's cost (HiGHS)")
    model_scope: str = Field(description="'full horizon' or the reduction solved (e.g. typical days)")
    text: str = Field(description="the status in words")
    num_variables: int = 0
    num_constraints: int = 0


class ScenarioRun(BaseModel):
    """The chosen plan simulated on one independent draw of the traffic."""

    scenario: int
    seed: int
    simulated_on: str = Field(description="'full horizon' or the sample of days simulated")
    slo_attainment: float | None
    cost_per_month_usd: float


class ScenarioSummary(BaseModel):
    """The chosen plan over the scenarios (min / median / max)."""

    num_scenarios: int
    runs: list[ScenarioRun]
    slo_attainment_min: float | None
    slo_attainment_median: float | None
    slo_attainment_max: float | None
    cost_per_month_usd_min: float
    cost_per_month_usd_median: float
    cost_per_month_usd_max: float
    met_on_all: bool = Field(description="the SLO target met on every scenario")


class Alternative(BaseModel):
    """A reference plan for the alternatives table."""

    kind: Literal["single_gpu_pods", "all_serverless", "optimized"]
    name: str
    plan: list[PlanEntry] = Field(default_factory=list)
    feasible: bool = True
    note: str | None = None
    milp_cost_per_month_usd: float | None = None
    cost_usd: float | None = None
    cost_per_month_usd: float | None = None
    usd_per_million_output_tokens: float | None = None
    slo_attainment: float | None = None
    verified: bool = False
    savings_of_optimized_pct: float | None = Field(
        None, description="(this plan's monthly cost - the optimized plan's) / this plan's, percent"
    )
    simulated_on: str | None = Field(
        None, description="what its figures were simulated on: 'full horizon', or the sample of days of a "
        "long horizon (the optimized entry too, so the table compares like with like)"
    )


class DeployEngine(BaseModel):
    """The vLLM engine settings of one plan line (vLLM's names) and the model they serve."""

    model_config = ConfigDict(extra="allow")

    model: str
    tensor_parallel_size: int
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    gpu_memory_utilization: float
    block_size: int
    enable_chunked_prefill: bool = True
    precision: str | None = None
    quantization: str = "none"
    kv_cache_dtype: str = "auto"
    repo: str | None = None
    max_concurrency: float | None = Field(None, description="requests of max_model_len the KV cache holds")


class DeployServerless(BaseModel):
    """The serverless endpoint settings of one plan line."""

    model_config = ConfigDict(extra="allow")

    active_workers: int
    max_workers: int
    idle_timeout_seconds: float
    scaler: str
    scaler_value: float
    max_concurrency_per_worker: int | None = None
    cached_model: bool = False


class DeploySettings(BaseModel):
    """How to deploy one plan line: `deploy`'s dict, typed."""

    model_config = ConfigDict(extra="allow")

    gpu: str
    tensor_parallel_size: int
    billing: Literal["pod", "serverless"]
    count: int
    engine: DeployEngine | None = None
    engine_note: str | None = None
    serverless: DeployServerless | None = None


class OptimizeResult(BaseModel):
    """What `planner optimize` answers (its --json output)."""

    profile: str
    model: str
    seed: int
    plan: list[PlanEntry]
    flex_workers: dict[str, list[int]] = Field(
        default_factory=dict, description="serverless endpoint -> flex workers per slot level"
    )
    cost_usd: float = Field(description="simulated billing of the plan over the horizon")
    cost_per_month_usd: float
    milp_cost_usd: float = Field(description="the MILP's estimate for the horizon")
    usd_per_million_output_tokens: float | None
    slo_attainment: float | None = Field(
        description="verified by simulating the plan on the horizon (None: it could not be simulated)"
    )
    slo_target: float
    verified: bool
    rounds: list[RoundReport]
    alternatives: list[Alternative]
    solve_seconds: float = Field(description="time in the MILP solver, all rounds and alternatives")
    capacity_seconds: float
    simulate_seconds: float
    wall_seconds: float
    horizon_s: float
    users: int | None = Field(
        None, description="closed-loop traffic: the users planned for (capacities, demand and capacity_per_s "
        "are then in users); None for open-loop traffic (requests per second)"
    )
    buckets: list[str]
    capacities: list[Any] = Field(default_factory=list, description="CapacityResult per candidate/bucket")
    candidates: list[Any] = Field(default_factory=list, description="CandidateCheck per (GPU, TP)")
    demand: DemandSeries
    verification: FleetRun
    assumptions: list[str] = Field(
        default_factory=list, description="the estimated inputs the chosen plan relies on, one line each"
    )
    alternative_assumptions: list[str] = Field(
        default_factory=list,
        description="the further estimated inputs only the alternatives shown rely on (none repeated from assumptions)",
    )
    assumption_items: list[Assumption] = Field(
        default_factory=list, description="`assumptions` as data (topic, GPU, name, value, unit, source, concerns)"
    )
    alternative_assumption_items: list[Assumption] = Field(
        default_factory=list, description="`alternative_assumptions` as data"
    )
    deploy: list[dict[str, Any]] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    # What the report's text needs besides the plan, so it renders from plan.json alone (None in a
    # plan.json written before these fields existed).
    slo_ttft_seconds: float | None = Field(None, description="the SLO's TTFT threshold, seconds")
    slo_tpot_seconds: float | None = Field(None, description="the SLO's TPOT threshold, seconds")
    headroom: float | None = Field(None, description="replicas are loaded to this fraction of their capacity")
    demand_percentile: float | None = Field(None, description="each slot is planned for this quantile of one-minute rates")
    deploy_settings: list[DeploySettings] = Field(default_factory=list, description="`deploy`, typed")
    slo_ttft_p99_seconds: float | None = Field(None, description="the SLO's optional limit on the run's p99 TTFT")
    slo_tpot_p99_seconds: float | None = Field(None, description="the SLO's optional limit on the run's p99 TPOT")
    description: str | None = Field(None, description="the profile's description")
    planner_version: str | None = Field(None, description="the planner that made this plan")
    finance: Finance | None = Field(None, description="month and year of cost and traffic; the hosted API beside it")
    solver: SolverStatus | None = Field(None, description="what the MILP solver proved about the chosen plan")
    scenarios: ScenarioSummary | None = Field(None, description="the chosen plan on each traffic draw")
    pod_schedule: str = Field("fixed", description="fixed | per_slot: how pods were planned")


@dataclass
class PlanArtifacts:
    """Arrays the report plots but the JSON leaves out (per-request latencies of the plan)."""

    ttft_s: np.ndarray
    tpot_s: np.ndarray
    ok: np.ndarray
    provisioned_per_window: np.ndarray  # requests/s the plan can carry in each demand window


def cost_line(endpoint: str, kind: str) -> str:
    """The key of one line of `FleetRun.cost_lines`, e.g. "l40s-tp1 flex"."""
    return f"{endpoint} {kind}"


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


def alternatives_basis_usd_per_month(result: Any) -> float:
    """The answer's monthly cost to set against its alternatives: its own entry in the table when
    there is one (on a long horizon the alternatives are simulated on a sample of days, and so is
    that entry; the headline figure is the whole horizon's), else the headline."""
    for a in getattr(result, "alternatives", None) or []:
        if a.kind == "optimized" and a.cost_per_month_usd:
            return float(a.cost_per_month_usd)
    return float(result.cost_per_month_usd)
