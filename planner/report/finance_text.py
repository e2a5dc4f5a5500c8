"""The finance part of the `planner optimize` report: a month and a year, prices with their dates,
the hosted API beside the plan, and the cost lines as CSV for spreadsheets.

Words only: the figures come from `planner.finance` (the summary and the hosted comparison) and
from the simulated run's cost lines.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import Any

from planner.units import MONTHS_PER_YEAR, format_usd

CSV_NAME = "cost_lines.csv"
CSV_COLUMNS = ("line", "gpu", "tensor_parallel_size", "billing", "workers", "billed_gpu_hours",
               "price_usd_per_gpu_hour", "cost_usd_horizon", "cost_usd_per_month", "cost_usd_per_year",
               "price_as_of", "price_source")


def relative_cost(this_usd: float, other_usd: float) -> str:
    """'costs 82.8% more' / 'costs 23.2% less' / 'costs the same': this cost against the other."""
    if other_usd <= 0:
        return "costs more" if this_usd > 0 else "costs the same"
    pct = (this_usd - other_usd) / other_usd * 100.0
    if abs(pct) < 0.05:
        return "costs the same"
    return f"costs {abs(pct):.1f}% {'more' if pct > 0 else 'less'}"


def count(x: float) -> str:
    """A large count in words a budget reads: '7.56 million', '1.2 billion', '35,000'."""
    for size, word in ((1e12, "trillion"), (1e9, "billion"), (1e6, "million")):
        if abs(x) >= size:
            return f"{x / size:,.3g} {word}"
    return f"{x:,.0f}"


def rate(x: float) -> str:
    """Requests per second, to three significant figures."""
    return f"{x:.3g} requests/s"


def price_text(usd_per_gpu_hour: float, billing: str) -> str:
    """A per-GPU price in the unit its bill uses: per hour for pods, per second for serverless."""
    if billing == "pod":
        return f"{format_usd(usd_per_gpu_hour)} per GPU-hour"
    return f"${usd_per_gpu_hour / 3600:.5f} per GPU-second"


def price_dates(items: Sequence[Any]) -> list[str]:
    """'h100-sxm pod: $3.99 per GPU-hour as of 2026-11-09', one line per (GPU, billing) the plan pays."""
    out: list[str] = []
    for it in items:
        line = f"{it.gpu} {it.billing}: {price_text(it.usd_per_gpu_hour, it.billing)}" + (
            f" as of {it.price_as_of}" if it.price_as_of else " (no date)")
        if line not in out:
            out.append(line)
    return out


def finance_markdown(finance: Any, items: Sequence[Any]) -> list[str]:
    """The '## Finance' section: month and year, unit cost, prices and their dates, the hosted API."""
    f = finance
    tokens = f.input_tokens_per_month + f.output_tokens_per_month
    md = [
        "## Finance",
        "",
        "| | per month | per year |",
        "|---|---|---|",
        f"| cost | {format_usd(f.cost_per_month_usd)} | {format_usd(f.cost_per_year_usd)} |",
        f"| requests | {count(f.requests_per_month)} | {count(f.requests_per_month * MONTHS_PER_YEAR)} |",
        f"| input tokens | {count(f.input_tokens_per_month)} | {count(f.input_tokens_per_month * MONTHS_PER_YEAR)} |",
        f"| output tokens | {count(f.output_tokens_per_month)} | {count(f.output_tokens_per_month * MONTHS_PER_YEAR)} |",
        f"| input + output tokens | {count(tokens)} | {count(tokens * MONTHS_PER_YEAR)} |",
        "",
        f"Cost per million input + output tokens: **{format_usd(f.usd_per_million_tokens)}**. "
        f"A year is {MONTHS_PER_YEAR} months; {f.month_note}.",
        "",
        "Prices the plan is billed at:",
        "",
        "| GPU | billing | price | as of | source |",
        "|---|---|---|---|---|",
    ]
    seen: set[tuple[str, str]] = set()
    for it in items:
        if (it.gpu, it.billing) in seen:
            continue
        seen.add((it.gpu, it.billing))
        md.append(f"| {it.gpu} | {it.billing} | {price_text(it.usd_per_gpu_hour, it.billing)} "
                  f"| {it.price_as_of or 'no date'} | {_cell(it.price_source) or 'no source'} |")
    md += ["", f"Every cost line, for spreadsheets: [{CSV_NAME}]({CSV_NAME}).", ""]
    if f.hosted is not None:
        md += hosted_markdown(f.hosted, f.cost_per_month_usd)
    return md


def hosted_verdict(h: Any, own_usd_per_month: float) -> str:
    """One sentence: which is cheaper at this traffic, by how much."""
    if h.cheaper == "same":
        return f"At this traffic self-hosting costs the same as {h.name} ({format_usd(h.cost_per_month_usd)} per month)."
    return (f"At this traffic self-hosting {relative_cost(own_usd_per_month, h.cost_per_month_usd)} than {h.name}: "
            f"{format_usd(own_usd_per_month)} against {format_usd(h.cost_per_month_usd)} per month, so "
            f"{'self-hosting' if h.cheaper == 'self-hosted' else h.name} is cheaper.")


def break_even_text(h: Any) -> str:
    """Where self-hosting breaks even with the hosted API, or why no such traffic was found."""
    if h.break_even_scale is None:
        return f"No break-even found: {h.break_even_note}."
    return (f"Self-hosting breaks even at about {rate(h.break_even_requests_per_s)} "
            f"({h.break_even_scale:.3g} x this traffic, {count(h.break_even_tokens_per_month)} input + output "
            "tokens a month); above it self-hosting is cheaper.")


def hosted_markdown(h: Any, own_usd_per_month: float) -> list[str]:
    """The hosted API beside the plan: verdict, break-even, the points searched, the tokenizer caveat."""
    price = (f"{format_usd(h.usd_per_million_input_tokens)} per million input tokens, "
             f"{format_usd(h.usd_per_million_output_tokens)} per million output tokens")
    dated = f" (as of {h.as_of})" if h.as_of else ""
    src = f"; source: {h.source}" if h.source else ""
    md = [
        f"### Against {h.name}",
        "",
        f"{h.name} at {price}{dated}{src}.",
        "",
        hosted_verdict(h, own_usd_per_month) + " " + break_even_text(h),
        "",
        "| traffic (x this) | requests/s | self-hosted per month | hosted per month | cheaper |",
        "|---|---|---|---|---|",
    ]
    for p in h.points:
        # The doubling grid and the break-even; the bisection's other points stay in plan.json.
        if not (math.log2(p.scale).is_integer() or p.scale == h.break_even_scale):
            continue
        own = p.self_hosted_usd_per_month
        cheaper = "n/a" if own is None else ("self-hosted" if own < p.hosted_usd_per_month else h.name)
        md.append(f"| {p.scale:.3g} | {p.requests_per_s:.3g} | {format_usd(own) if own is not None else 'no plan'} "
                  f"| {format_usd(p.hosted_usd_per_month)} | {cheaper} |")
    md += [
        "",
        "Self-hosted costs away from this traffic are the plan's MILP re-solved at the scaled demand with the same "
        "replica capacities (not simulated), scaled by this plan's simulated / MILP cost ratio (estimated). "
        f"Note: {h.tokenizer_note}.",
        "",
    ]
    return md


def _cell(text: str | None) -> str:
    """Text safe inside a Markdown table cell."""
    return "" if text is None else str(text).replace("|", "/").replace("\n", " ")


def cost_lines_csv(items: Sequence[Any], per_month: float) -> str:
    """The plan's cost lines as CSV: one row per (endpoint, billing kind), horizon, month and year.

    Args:
        items: the run's cost line items (gpu, tensor_parallel_size, billing, line, num_workers,
            billed_gpu_seconds, usd_per_gpu_hour, cost_usd, price_as_of, price_source).
        per_month: months per horizon (a month / the horizon).
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for it in items:
        w.writerow([it.line, it.gpu, it.tensor_parallel_size, it.billing, it.num_workers,
                    round(it.billed_gpu_seconds / 3600, 4), round(it.usd_per_gpu_hour, 6), round(it.cost_usd, 4),
                    round(it.cost_usd * per_month, 2), round(it.cost_usd * per_month * MONTHS_PER_YEAR, 2),
                    it.price_as_of or "", it.price_source or ""])
    return buf.getvalue()
