"""The finance summary of a plan: a month and a year of cost and traffic, and a hosted API beside it.

Pure arithmetic on figures the planning loop already has (the simulated monthly cost, the
horizon's requests and tokens, the month of `billing.per_month`), plus the break-even search:
at what traffic self-hosting costs the same as the hosted API the profile names (`compare_to`).
The search re-solves the plan's MILP at scaled demand (the caller passes that as a function), so
no simulation runs for it; each re-solved cost is scaled by the ratio of simulated to MILP cost
at the profile's traffic, so the curve meets the simulated answer at 1x.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field

from planner import billing
from planner.errors import PlannerError
from planner.units import MONTHS_PER_YEAR
from planner.inputs.profile import Profile

TOKENIZER_NOTE = (
    "the hosted API bills tokens counted by its own tokenizer; the counts here are the profile's "
    "(this model's tokenizer), so the hosted cost is an estimate that shifts with the tokenizers' difference"
)


class CostPoint(BaseModel):
    """Self-hosted and hosted monthly cost at one traffic scale (the break-even search's points)."""

    scale: float = Field(description="traffic relative to the profile's (1 = the profile)")
    requests_per_s: float = Field(description="mean request rate at this scale")
    self_hosted_usd_per_month: float | None = Field(description="None: no plan within the limits at this scale")
    hosted_usd_per_month: float


class HostedComparison(BaseModel):
    """The plan against a hosted API priced per token (the profile's `compare_to`)."""

    name: str
    usd_per_million_input_tokens: float
    usd_per_million_output_tokens: float
    as_of: str | None = None
    source: str | None = None
    cost_per_month_usd: float = Field(description="the hosted API's bill for this traffic's tokens")
    cheaper: Literal["self-hosted", "hosted", "same"]
    self_hosted_vs_hosted_pct: float = Field(
        description="(self-hosted - hosted) / hosted monthly cost, percent: > 0 self-hosting costs more")
    break_even_scale: float | None = Field(
        None, description="traffic scale where both cost the same (None: no crossing in the range searched)")
    break_even_requests_per_s: float | None = None
    break_even_tokens_per_month: float | None = Field(None, description="input + output tokens a month there")
    break_even_note: str
    points: list[CostPoint] = Field(default_factory=list)
    tokenizer_note: str = TOKENIZER_NOTE


class Finance(BaseModel):
    """A plan's cost and traffic over a month and a year, as a budget reads them."""

    cost_per_month_usd: float
    cost_per_year_usd: float = Field(description=f"{MONTHS_PER_YEAR} months of {billing.HOURS_PER_MONTH:g} hours")
    requests_per_month: float = Field(description="the horizon's requests scaled to a month (all offered)")
    input_tokens_per_month: float
    output_tokens_per_month: float
    usd_per_million_tokens: float | None = Field(description="monthly cost per million input + output tokens")
    month_note: str = Field(description="how the horizon becomes a month")
    hosted: HostedComparison | None = None


def summarize(
    cost_per_month_usd: float, horizon_s: float, num_requests: int, input_tokens: int, output_tokens: int,
) -> Finance:
    """The month and year of a plan whose horizon offered `num_requests` with these tokens."""
    per_month = billing.per_month(1.0, horizon_s)
    tokens = (input_tokens + output_tokens) * per_month
    return Finance(
        cost_per_month_usd=cost_per_month_usd,
        cost_per_year_usd=cost_per_month_usd * MONTHS_PER_YEAR,
        requests_per_month=num_requests * per_month,
        input_tokens_per_month=input_tokens * per_month,
        output_tokens_per_month=output_tokens * per_month,
        usd_per_million_tokens=cost_per_month_usd / tokens * 1e6 if tokens > 0 else None,
        month_note=f"{billing.MONTH_ASSUMPTION} (simulated horizon: {horizon_s:g} s)",
    )


def hosted_cost_per_month(finance: Finance, usd_per_million_input: float, usd_per_million_output: float,
                          scale: float = 1.0) -> float:
    """The hosted API's monthly bill for this traffic scaled by `scale` (linear in tokens)."""
    return scale * (finance.input_tokens_per_month * usd_per_million_input
                    + finance.output_tokens_per_month * usd_per_million_output) / 1e6


def find_break_even(
    self_hosted_at: Callable[[float], float | None],
    hosted_at: Callable[[float], float],
    *,
    max_doublings: int = 10,
    bisections: int = 8,
) -> tuple[float | None, list[tuple[float, float | None, float]], str]:
    """The traffic scale where self-hosting starts to cost no more than the hosted API.

    Self-hosting has a floor (replicas that are always up) and grows in whole replicas; the
    hosted bill is linear in traffic. Starting at the profile's traffic (scale 1), the search
    doubles (self-hosting dearer now) or halves (cheaper now) the traffic until the sign of
    self-hosted minus hosted flips, then bisects that bracket in log space.

    Args:
        self_hosted_at: scale -> monthly cost of the cheapest plan at that traffic (None: no plan).
        hosted_at: scale -> the hosted API's monthly cost.
    Returns:
        (the break-even scale or None, every point evaluated as (scale, self-hosted, hosted), a note).
    """
    seen: dict[float, tuple[float | None, float]] = {}

    def diff(scale: float) -> float | None:
        if scale not in seen:
            seen[scale] = (self_hosted_at(scale), hosted_at(scale))
        own, hosted = seen[scale]
        return None if own is None else own - hosted

    def points() -> list[tuple[float, float | None, float]]:
        return [(s, *seen[s]) for s in sorted(seen)]

    d1 = diff(1.0)
    if d1 is None:
        return None, points(), "no plan at the profile's traffic"
    step = 2.0 if d1 > 0 else 0.5
    near, far = 1.0, None
    for k in range(1, max_doublings + 1):
        scale = step**k
        d = diff(scale)
        if d is None:
            reason = "the limits leave no plan" if step > 1 else "no plan"
            return None, points(), (f"no crossing up to {near:g}x the traffic ({reason} at {scale:g}x)")
        if (d <= 0) == (step > 1):  # the sign flipped: the crossing lies between near and scale
            far = scale
            break
        near = scale
    if far is None:
        span = f"{step ** max_doublings:g}x"
        return None, points(), (f"self-hosting stays dearer up to {span} the traffic" if step > 1
                                else f"self-hosting stays cheaper down to {span} the traffic")
    # Bisect in log space; `hi` is always a scale where self-hosting costs no more.
    lo, hi = (near, far) if step > 1 else (far, near)
    for _ in range(bisections):
        mid = math.sqrt(lo * hi)
        d = diff(mid)
        if d is not None and d <= 0:
            hi = mid
        else:
            lo = mid
    return hi, points(), "found by re-solving the plan's MILP at scaled traffic"


def compare_hosted(
    finance: Finance, name: str, usd_per_million_input: float, usd_per_million_output: float,
    self_hosted_at: Callable[[float], float | None], mean_rate_per_s: float, *,
    as_of: str | None = None, source: str | None = None,
) -> HostedComparison:
    """Which is cheaper at this traffic, and the traffic where self-hosting breaks even.

    Args:
        finance: the plan's month (its cost is the simulated one).
        self_hosted_at: scale -> estimated monthly cost of the cheapest plan at that traffic; at
            scale 1 it should equal `finance.cost_per_month_usd` (see the module docstring).
        mean_rate_per_s: the profile's mean request rate (scale 1).
    """
    hosted = hosted_cost_per_month(finance, usd_per_million_input, usd_per_million_output)
    own = finance.cost_per_month_usd
    pct = (own - hosted) / hosted * 100.0 if hosted > 0 else math.inf
    cheaper: Literal["self-hosted", "hosted", "same"] = (
        "same" if abs(own - hosted) <= 1e-9 * max(own, hosted, 1.0) else ("self-hosted" if own < hosted else "hosted"))
    scale, pts, note = find_break_even(
        self_hosted_at, lambda s: hosted_cost_per_month(finance, usd_per_million_input, usd_per_million_output, s))
    tokens = finance.input_tokens_per_month + finance.output_tokens_per_month
    return HostedComparison(
        name=name, usd_per_million_input_tokens=usd_per_million_input,
        usd_per_million_output_tokens=usd_per_million_output, as_of=as_of, source=source,
        cost_per_month_usd=hosted, cheaper=cheaper, self_hosted_vs_hosted_pct=pct,
        break_even_scale=scale,
        break_even_requests_per_s=None if scale is None else scale * mean_rate_per_s,
        break_even_tokens_per_month=None if scale is None else scale * tokens,
        break_even_note=note,
        points=[CostPoint(scale=s, requests_per_s=s * mean_rate_per_s, self_hosted_usd_per_month=o,
                          hosted_usd_per_month=h) for s, o, h in pts],
    )


def plan_finance(profile: Profile, horizon_s: float, num_requests: int, input_tokens: int, output_tokens: int,
                 inputs: Any, milp_cost_per_month_usd: float | None, cost_per_month_usd: float) -> Finance:
    """The finance summary of a solved and simulated plan, with the profile's hosted API beside it.

    Args:
        profile: the Profile (its `compare_to`, if any).
        horizon_s, num_requests, input_tokens, output_tokens: the horizon's traffic (every offered
            request counts: a hosted API would bill them all).
        inputs: the `MilpInputs` the plan was solved from (pools with the rounds' factors, slots, limits).
        milp_cost_per_month_usd: the MILP's estimate for the plan; cost_per_month_usd: its simulated cost.
    """
    from planner.optimize.milp import solve  # noqa: PLC0415

    horizon = float(horizon_s)
    f = summarize(cost_per_month_usd, horizon, num_requests, input_tokens, output_tokens)
    api = getattr(profile, "compare_to", None)
    if api is None:
        return f
    # NOTE: the re-solves keep every limit but the budget (a budget caps the plan at one traffic).
    limits = inputs.limits.model_copy(update={"budget_usd_per_month": None})
    ratio = cost_per_month_usd / milp_cost_per_month_usd if milp_cost_per_month_usd else 1.0

    def self_hosted_at(scale: float) -> float | None:
        if scale == 1.0:
            return cost_per_month_usd
        slots = [s.model_copy(update={"rate_per_s": {b: r * scale for b, r in s.rate_per_s.items()}})
                 for s in inputs.slots]
        try:
            res = solve(inputs.model_copy(update={"slots": slots, "limits": limits}))
        except PlannerError:
            return None
        return None if not res.optimal or res.cost_per_month_usd is None else res.cost_per_month_usd * ratio

    return f.model_copy(update={"hosted": compare_hosted(
        f, api.name, api.usd_per_million_input_tokens, api.usd_per_million_output_tokens, self_hosted_at,
        num_requests / horizon, as_of=api.as_of, source=api.source)})
