"""Text renderers of a billed run shared by `planner simulate --billing` and `planner compare`."""

from __future__ import annotations

from planner.billing import ColdStart, CostBreakdown, per_month
from planner.units import format_usd


def format_batch(mean_batch: float | None, max_num_seqs: int | None) -> str:
    """How full the replicas are: mean running batch per replica against its max_num_seqs cap."""
    if mean_batch is None:
        return "n/a"
    if not max_num_seqs:
        return f"mean {mean_batch:,.1f} running sequences per replica"
    return (f"mean {mean_batch:,.1f} running sequences per replica of max_num_seqs {max_num_seqs:,} "
            f"({mean_batch / max_num_seqs:.1%} full)")


def format_cost(cost: CostBreakdown) -> str:
    """Readable lines for a CostBreakdown (shared by `simulate --billing` and `compare`).

    `utilization` and `idle_usd` are shown by what they measure (time with any request in flight),
    not as "utilization": a GPU with one request in flight counts as fully in use, so the share
    reads near 100% at almost any load; the batch line (`format_batch`) says how full GPUs are.
    """
    util = "n/a" if cost.utilization is None else f"{cost.utilization:.1%}"
    p = cost.prices
    price_bits = []
    for line in cost.lines:
        unit = (f"${line.usd_per_gpu_s * 3600:,.3f} per GPU-hour" if line.kind == "pod"
                else f"${line.usd_per_gpu_s:g} per GPU-second")
        price_bits.append(f"{line.kind} {line.num_workers} × {unit}")
    month = (f"{format_usd(cost.cost_per_month_usd)} per month (horizon × {per_month(1.0, cost.horizon_s):.4g})"
             if cost.month_sustainable else "no monthly figure: overloaded, see above")
    drained = "" if cost.billed_through_s is None else f" and its {cost.billed_through_s - cost.horizon_s:,.0f} s drain"
    rows = [
        ("cost", f"{format_usd(cost.cost_usd)} for the {cost.horizon_s / 3600:.3g} h horizon{drained}, {month}"),
        ("unit cost", f"{format_usd(cost.cost_per_million_output_tokens_usd)} per million output tokens, "
                      f"{format_usd(cost.cost_per_1000_requests_usd)} per 1,000 requests"),
        ("GPU-seconds", f"{cost.billed_gpu_seconds:,.0f} billed, {cost.busy_gpu_seconds:,.0f} with requests in "
                        f"flight ({util}); spend with no request in flight {format_usd(cost.idle_usd)}"),
        ("cold starts", f"{cost.cold_starts} ({cost.cold_start_seconds:,.0f} s, {format_usd(cost.cold_start_usd)})"),
        ("billed as", "; ".join(price_bits) or "nothing"),
        ("prices", f"pod: {p.pod_price_label}" + (f" as of {p.pod_price_as_of}" if p.pod_price_as_of else "")
                   + (f"; serverless tier {p.serverless_tier}" if p.serverless_tier else "")),
    ]
    return "\n".join(f"{k:<15} {v}" for k, v in rows)


def format_cold_start(cold: ColdStart) -> str:
    """One serverless worker's start in words, by part (shared by `simulate --billing` and `compare`)."""
    if cold.cached:
        return f"{cold.total_s:.1f} s per worker (cached model start)"
    return (f"{cold.total_s:.1f} s per worker (container {cold.container_start_s:.1f} s + weights load "
            f"{cold.weights_load_s:.1f} s + engine warm-up {cold.engine_warmup_s:.1f} s)")
