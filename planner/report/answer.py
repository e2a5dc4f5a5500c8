"""The top of the `planner optimize` report: the answer in a few lines a reader acts on.

What the plan is and costs (a month, a year), whether it meets the SLO, its tail latency (how
many requests miss, p99 TTFT and TPOT, how many misses waited for a worker to start), the
alternatives and the hosted API in plain words ("costs 23.2% less"), and the dates of the prices.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from planner.optimize.result import alternatives_basis_usd_per_month
from planner.report.finance_text import break_even_text, hosted_verdict, price_dates, relative_cost
from planner.units import format_usd

# How the answer names each reference plan (Alternative.kind).
ALTERNATIVE_LABELS = {
    "single_gpu_pods": "the cheapest pods on one GPU type",
    "all_serverless": "the all-serverless plan",
    "optimized": "the optimized plan",
}


def slo_of(result: Any) -> Any:
    """The result's SLO as one object (thresholds, attainment target, p99 limits); None when the
    result does not carry its thresholds (a plan.json from before they were added)."""
    if result.slo_ttft_seconds is None or result.slo_tpot_seconds is None:
        return None
    return SimpleNamespace(ttft_seconds=result.slo_ttft_seconds, tpot_seconds=result.slo_tpot_seconds,
                           attainment=result.slo_target, ttft_p99_seconds=result.slo_ttft_p99_seconds,
                           tpot_p99_seconds=result.slo_tpot_p99_seconds)


def pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x * 100:.{digits}f}%"


def seconds(x: float | None) -> str:
    """A latency in the unit that reads best: '42 ms', '1.25 s', '3.2 min'."""
    if x is None:
        return "n/a"
    if x < 1.0:
        return f"{x * 1e3:.3g} ms"
    if x < 120.0:
        return f"{x:.3g} s"
    return f"{x / 60:.3g} min"


def tail_latency(v: Any, slo: Any) -> str:
    """The simulated run's tail: misses, p99 TTFT and TPOT against the SLO, misses after a cold start."""
    if not v.simulated:
        return "Tail latency: not simulated (see the note below)."
    n = max(int(v.num_requests), 1)
    misses = int(v.slo_misses)
    text = (f"Tail latency: {pct(misses / n, 2)} of requests miss the SLO ({misses:,} of {v.num_requests:,}); "
            f"p99 TTFT {seconds(v.ttft_p99_s)} (SLO {seconds(slo.ttft_seconds)}), "
            f"p99 TPOT {seconds(v.tpot_p99_s)} (SLO {seconds(slo.tpot_seconds)})")
    if misses:
        text += (f"; {v.misses_after_cold_start:,} of the misses waited for a worker to start (cold start)"
                 if v.misses_after_cold_start else "; none of the misses waited for a worker to start")
    limits = [f"p99 TTFT at most {seconds(slo.ttft_p99_seconds)}"] if slo.ttft_p99_seconds else []
    limits += [f"p99 TPOT at most {seconds(slo.tpot_p99_seconds)}"] if slo.tpot_p99_seconds else []
    if limits:
        missed = list(v.p99_limits_missed)
        text += f". The profile's limits ({' and '.join(limits)}): " + (
            "met" if not missed else "NOT met: " + "; ".join(missed))
    return text + "."


def alternative_line(a: Any, plan_usd_per_month: float, slo_target: float) -> str:
    """'Against the all-serverless plan (l40s serverless, $3,790.98/month, SLO 94.7%, below the 95%
    target): this plan costs 23.2% less.'"""
    below = a.slo_attainment is not None and not a.verified
    plan = a.name.split(": ", 1)[-1]
    return (f"Against {ALTERNATIVE_LABELS.get(a.kind, a.kind)} ({plan}, {format_usd(a.cost_per_month_usd)}/month, "
            f"SLO {pct(a.slo_attainment)}" + (f", below the {pct(slo_target, 0)} target" if below else "")
            + f"): this plan {relative_cost(plan_usd_per_month, a.cost_per_month_usd)}"
            + (f" (both simulated on {a.simulated_on}, where this plan costs {format_usd(plan_usd_per_month)}/month)"
               if a.simulated_on not in (None, "full horizon") else "") + ".")


def answer_markdown(result: Any, slo: Any, plan_text: str) -> list[str]:
    """The '## Answer' section."""
    v = result.verification
    f = getattr(result, "finance", None)
    year = f" ({format_usd(f.cost_per_year_usd)} a year)" if f is not None else ""
    verdict = ("SLO attainment **not simulated** (unverified; see the note)." if result.slo_attainment is None else
               f"SLO attainment **{pct(result.slo_attainment)}** in simulation "
               f"({'meets' if result.verified else 'MISSES'} the {pct(result.slo_target, 0)} target"
               + (" and the p99 limits" if (slo.ttft_p99_seconds or slo.tpot_p99_seconds) and result.verified else "")
               + ").")
    md = ["## Answer", "",
          f"**{plan_text}** for **{format_usd(result.cost_per_month_usd)} per month**{year}, "
          f"{format_usd(result.usd_per_million_output_tokens)} per million output tokens. {verdict}", ""]
    md.append(f"- {tail_latency(v, slo)}")
    for a in result.alternatives:
        if a.kind != "optimized" and a.feasible and a.cost_per_month_usd:
            md.append(f"- {alternative_line(a, alternatives_basis_usd_per_month(result), result.slo_target)}")
    if f is not None and f.hosted is not None:
        md.append(f"- {hosted_verdict(f.hosted, result.cost_per_month_usd)} {break_even_text(f.hosted)}")
    if v.line_items:
        md.append("- Prices: " + "; ".join(price_dates(v.line_items)) + ".")
    md.append("")
    return md
