"""What a run costs: worker spans to USD with the platform's billing rules (per-second pods, active and flex workers)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from planner.billing.defaults import _ROUNDING_SLACK_S, WorkerKind
from planner.billing.prices import ResolvedPrices, WorkerSpanLike
from planner.errors import PlannerError

# The month convention lives with the units (traffic and billing both scale to it).
from planner.units import MONTH_ASSUMPTION, SECONDS_PER_MONTH, per_month

# ----------------------------------------------------------------------------------------------
# Billing arithmetic
# ----------------------------------------------------------------------------------------------


def billed_seconds(duration_s: float, granularity_s: float = 1.0) -> float:
    """Duration rounded up to whole billing units ("rounded up to the nearest second")."""
    if duration_s <= 0:
        return 0.0
    units = math.ceil(duration_s / granularity_s - _ROUNDING_SLACK_S)
    return units * granularity_s


class WorkerCost(BaseModel):
    """One billing line: the workers of one kind."""

    model_config = ConfigDict(extra="forbid")

    kind: WorkerKind
    num_workers: int
    usd_per_gpu_s: float
    cost_usd: float
    billed_gpu_seconds: float
    busy_gpu_seconds: float = Field(description="GPU-seconds with at least one request in flight (the engine "
                                    "running steps); says nothing of how full the running batch is")
    idle_usd: float = Field(description="spend on billed GPU-seconds with no request in flight (cold starts included)")
    cold_starts: int
    cold_start_seconds: float


class CostBreakdown(BaseModel):
    """The money side of one simulated run.

    `cost_per_month_usd` scales the horizon's cost to a 730-hour month, assuming the simulated
    horizon is representative and repeats (`month_extrapolation` says so in words).
    """

    model_config = ConfigDict(extra="forbid")

    cost_usd: float
    cost_per_month_usd: float
    cost_per_million_output_tokens_usd: float | None
    cost_per_1000_requests_usd: float | None
    horizon_s: float
    billed_gpu_seconds: float
    busy_gpu_seconds: float = Field(description="GPU-seconds with at least one request in flight (the engine "
                                    "running steps); says nothing of how full the running batch is")
    utilization: float | None = Field(
        description="busy_gpu_seconds / billed_gpu_seconds: the share of billed time with any request in "
        "flight. Not how full the GPUs are: one request keeps a GPU 'in flight', so this reads near 100% at "
        "almost any load; compare the mean running batch with max_num_seqs (SimMetrics.batch_size_mean)")
    idle_usd: float = Field(description="spend on billed GPU-seconds with no request in flight (cold starts included)")
    cold_starts: int
    cold_start_seconds: float
    cold_start_usd: float
    output_tokens: int
    num_requests: int
    lines: list[WorkerCost]
    prices: ResolvedPrices
    month_extrapolation: str
    billed_through_s: float | None = Field(
        None, description="always-on workers billed until this time instead of the horizon: an overloaded "
        "run's drain (the replicas kept serving the horizon's backlog)")
    month_sustainable: bool = Field(
        True, description="False when the run was overloaded: its backlog outlived the horizon, so repeating "
        "the horizon all month is not what this fleet can do (the monthly figure is a lower bound)")


def cost_of(
    workers: Sequence[WorkerSpanLike],
    prices: ResolvedPrices,
    horizon_s: float,
    *,
    output_tokens: int = 0,
    num_requests: int = 0,
    end_s: float | None = None,
    pod_billing_granularity_s: float = 1.0,
    bill_through_s: float | None = None,
) -> CostBreakdown:
    """Turn the simulator's worker spans into USD.

    Args:
        workers: spans with kind "pod" | "active" | "flex", started_at, ready_at, stopped_at
            (None = still running), busy_s and gpus.
        prices: from `resolve_prices`.
        horizon_s: the traffic horizon; the per-month figure scales cost by a month / horizon.
        output_tokens: output tokens served (for USD per million output tokens).
        num_requests: requests served (for USD per 1,000 requests).
        end_s: when spans with stopped_at None stop being billed (default: horizon_s).
        pod_billing_granularity_s: pod billing unit (1 = per second).
        bill_through_s: an overloaded run's end: pods and active workers are billed until then (the
            horizon's backlog kept them busy), and the month is marked not sustainable.

    Returns:
        CostBreakdown for one horizon. A flex worker is billed from start to stop rounded up to a
        whole second (all of it: this horizon's traffic caused it); pods (rounded up to their
        granularity) and active workers (per second) are billed for their time inside
        [0, horizon_s], so the monthly figure of a fixed fleet is exactly rate × 730 h.
    """
    if horizon_s <= 0:
        raise PlannerError(f"horizon must be > 0 seconds to price a run, got {horizon_s}")
    stop_default = horizon_s if end_s is None else end_s
    lines: list[WorkerCost] = []
    cold_start_usd = 0.0
    for kind in ("pod", "active", "flex"):
        spans = [w for w in workers if w.kind == kind]
        if not spans:
            continue
        rate = {"pod": lambda: prices.pod_usd_per_hour(1) / 3600.0,
                "active": lambda: prices.active_usd_per_s(1),
                "flex": lambda: prices.flex_usd_per_s(1)}[kind]()
        granularity = pod_billing_granularity_s if kind == "pod" else 1.0
        cost = billed = busy = idle = cold_s = 0.0
        num_cold = 0
        for span in spans:
            stop = stop_default if span.stopped_at is None else span.stopped_at
            start = span.started_at
            if kind != "flex":
                # Always-on capacity is counted inside the horizon only: past it (the run draining
                # its last requests) is the next repetition's time, already in the monthly figure.
                # Not so for an overloaded run: its drain is work the horizon's traffic needs.
                until = horizon_s if bill_through_s is None else max(horizon_s, bill_through_s)
                start, stop = min(start, until), min(stop, until)
            span_billed_s = billed_seconds(stop - start, granularity)
            span_busy_s = min(max(span.busy_s, 0.0), span_billed_s)
            cost += rate * span.gpus * span_billed_s
            billed += span_billed_s * span.gpus
            busy += span_busy_s * span.gpus
            idle += rate * span.gpus * (span_billed_s - span_busy_s)
            ready = stop if span.ready_at is None else min(span.ready_at, stop)  # None: stopped while starting
            start_delay = max(ready - start, 0.0)
            if kind == "flex" or (kind == "active" and start_delay > 0):
                num_cold += 1
                cold_s += start_delay
                cold_start_usd += rate * span.gpus * start_delay
        lines.append(WorkerCost(kind=kind, num_workers=len(spans), usd_per_gpu_s=rate, cost_usd=cost,
                                billed_gpu_seconds=billed, busy_gpu_seconds=busy, idle_usd=idle,
                                cold_starts=num_cold, cold_start_seconds=cold_s))
    total = sum(line.cost_usd for line in lines)
    billed_total = sum(line.billed_gpu_seconds for line in lines)
    busy_total = sum(line.busy_gpu_seconds for line in lines)
    return CostBreakdown(
        cost_usd=total,
        cost_per_month_usd=per_month(total, horizon_s),
        cost_per_million_output_tokens_usd=total / output_tokens * 1e6 if output_tokens > 0 else None,
        cost_per_1000_requests_usd=total / num_requests * 1e3 if num_requests > 0 else None,
        horizon_s=horizon_s,
        billed_gpu_seconds=billed_total,
        busy_gpu_seconds=busy_total,
        utilization=busy_total / billed_total if billed_total > 0 else None,
        idle_usd=sum(line.idle_usd for line in lines),
        cold_starts=sum(line.cold_starts for line in lines),
        cold_start_seconds=sum(line.cold_start_seconds for line in lines),
        cold_start_usd=cold_start_usd,
        output_tokens=int(output_tokens),
        num_requests=int(num_requests),
        lines=lines,
        prices=prices,
        month_extrapolation=(
            f"cost for the {horizon_s / 3600:.3g} h horizon × {SECONDS_PER_MONTH / horizon_s:.4g}: {MONTH_ASSUMPTION}"
            if bill_through_s is None else
            f"not sustainable: the run was overloaded (its backlog took {bill_through_s - horizon_s:,.0f} s after "
            f"the {horizon_s:,.0f} s horizon to drain, billed); repeating the horizon all month needs a larger fleet"
        ),
        billed_through_s=bill_through_s,
        month_sustainable=bill_through_s is None,
    )


def price_outcome(
    outcome: Any,
    prices: ResolvedPrices,
    horizon_s: float,
    *,
    pod_billing_granularity_s: float = 1.0,
) -> CostBreakdown:
    """The cost of a simulated run: its worker spans priced (`cost_of`), per completed request and
    per output token actually produced (completed requests' tokens), the same everywhere."""
    records = outcome.records
    completed = ~np.isnan(np.asarray(records.finished_at, dtype=np.float64))
    metrics = getattr(outcome, "metrics", None)
    end_s = getattr(metrics, "simulated_seconds", None)
    overloaded = bool(getattr(metrics, "overloaded", False)) and end_s is not None
    return cost_of(
        outcome.workers,
        prices,
        float(horizon_s),
        output_tokens=int(np.asarray(records.output_tokens)[completed].sum()),
        num_requests=int(np.count_nonzero(completed)),
        end_s=None if end_s is None else float(end_s),
        pod_billing_granularity_s=float(pod_billing_granularity_s),
        bill_through_s=float(end_s) if overloaded else None,  # type: ignore[arg-type]
    )


def headline(cost: CostBreakdown) -> dict[str, Any]:
    """The cost fields `planner simulate --json` adds at its top level."""
    return {
        "cost_usd": cost.cost_usd,
        "cost_per_month_usd": cost.cost_per_month_usd,
        "cost_per_million_output_tokens_usd": cost.cost_per_million_output_tokens_usd,
        "cost_per_1000_requests_usd": cost.cost_per_1000_requests_usd,
        "cold_starts": cost.cold_starts,
        "cold_start_seconds": cost.cold_start_seconds,
        "billed_gpu_seconds": cost.billed_gpu_seconds,
        "busy_gpu_seconds": cost.busy_gpu_seconds,
        "utilization": cost.utilization,
        "idle_usd": cost.idle_usd,
    }


