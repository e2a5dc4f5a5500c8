"""Money: which price applies, how long a serverless worker takes to start, and what a run costs.

Pure arithmetic, no I/O and no SimPy: the simulator reports *when* each worker ran
(`WorkerSpan`s), this module turns those spans into USD with the platform's billing rules
(Runpod's documented semantics: runpod/docs serverless/pricing.mdx and
serverless/endpoints/endpoint-configurations.mdx @a900806e, 2026-08-20):

- pods: hourly rate per GPU × GPUs, billed per second (granularity settable);
- serverless active workers: always on, billed at the active per-second rate;
- serverless flex workers: billed at the flex per-second rate "from when a worker starts until it
  fully stops, rounded up to the nearest second" (cold start and idle timeout included).

Every default that has no published source is marked estimated in `BILLING_DEFAULTS`;
`assumptions()` lists those a run relied on, for the report's "Assumptions" section.

Modules: defaults (sourced defaults), prices, cold_start, cost, assumption_list. The month convention
(`per_month`, `SECONDS_PER_MONTH`) lives in `planner.units` and is re-exported here.
"""

from planner.billing.assumption_list import (
    assumption_items,
    month_assumption,
    price_assumption_items,
    assumptions,
    price_assumptions,
)
from planner.billing.cold_start import (
    ColdStart,
    cold_start,
    cold_start_seconds,
    setting,
    validate_settings,
)
from planner.billing.cost import (
    CostBreakdown,
    WorkerCost,
    billed_seconds,
    cost_of,
    headline,
    price_outcome,
)
from planner.billing.defaults import (
    BILLING_DEFAULTS,
    PodCloud,
    SourcedDefault,
    WorkerKind,
    default,
)
from planner.billing.prices import (
    ResolvedPrices,
    WorkerSpanLike,
    _lookup,
    resolve_prices,
    setting_path,
)
from planner.units import (
    HOURS_PER_MONTH,
    MONTH_ASSUMPTION,
    SECONDS_PER_MONTH,
    per_month,
)

__all__ = [
    "assumption_items",
    "month_assumption",
    "price_assumption_items",
    "HOURS_PER_MONTH",
    "MONTH_ASSUMPTION",
    "SECONDS_PER_MONTH",
    "per_month",
    "WorkerKind",
    "PodCloud",
    "SourcedDefault",
    "BILLING_DEFAULTS",
    "default",
    "WorkerSpanLike",
    "ResolvedPrices",
    "setting_path",
    "_lookup",
    "resolve_prices",
    "validate_settings",
    "setting",
    "ColdStart",
    "cold_start",
    "cold_start_seconds",
    "billed_seconds",
    "WorkerCost",
    "CostBreakdown",
    "cost_of",
    "price_outcome",
    "headline",
    "assumptions",
    "price_assumptions",
]
