"""The bisection on the arrival rate, its results, and capacities a user measured (the profile's `capacity:` section)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from planner.capacity.buckets import Bucket, buckets_from_ranges
from planner.errors import PlannerError

# ------------------------------------------------------------------------------- bisection ---


@dataclass
class Bisection:
    """What the search found: the highest passing rate and the evaluations it took."""

    rate_per_s: float
    attainment: float
    evaluations: list[tuple[float, float]] = field(default_factory=list)  # (rate, attainment)


def max_rate_under_slo(
    attainment_at: Callable[[float], float],
    target: float,
    rate_hint: float,
    *,
    max_evaluations: int = 12,
    rel_tol: float = 0.05,
    min_rate: float = 1e-4,
) -> Bisection:
    """Highest rate whose attainment meets `target`, assuming attainment falls as rate grows.

    Doubling (or halving) from `rate_hint` brackets the answer, then a geometric bisection
    narrows the bracket to `rel_tol`. Returns rate 0 when even `min_rate` misses the SLO (a
    request alone is too slow on this replica).
    """
    evals: list[tuple[float, float]] = []

    def check(rate: float) -> bool:
        att = float(attainment_at(rate))
        evals.append((rate, att))
        return att >= target

    lo, hi = 0.0, math.inf
    lo_att = 0.0
    rate = max(rate_hint, min_rate)
    while len(evals) < max_evaluations:
        if check(rate):
            lo, lo_att = rate, evals[-1][1]
            if math.isinf(hi):
                rate *= 2.0
                continue
        else:
            hi = rate
            if lo == 0.0:
                if rate <= min_rate:
                    break
                rate = max(rate / 4.0, min_rate)
                continue
        if hi / lo <= 1.0 + rel_tol:
            break
        rate = math.sqrt(lo * hi)
    return Bisection(rate_per_s=lo, attainment=lo_att, evaluations=evals)


# -------------------------------------------------------------------------------- results ---


class CapacityResult(BaseModel):
    """Max requests/s one replica of (gpu, TP) sustains for one bucket under the SLO."""

    model_config = ConfigDict(extra="forbid")

    gpu_id: str
    tensor_parallel_size: int
    bucket: str
    max_rate_per_s: float = Field(ge=0)
    attainment_at_max: float | None = None
    source: str = Field(description="simulated | cached | measured")
    evaluations: int = 0
    num_requests: int = 0
    burstiness_cv: float | None = None
    seconds: float = 0.0
    cache_key: str | None = None
    in_flight_at_max: float | None = Field(
        None, description="mean requests inside the replica at max_rate_per_s (Little's law)"
    )
    max_users: int | None = Field(
        None, description="closed-loop traffic: the most users one replica serves under the SLO (then "
        "max_rate_per_s is their request rate as simulated); None for open-loop traffic"
    )


class CandidateCheck(BaseModel):
    """Whether a (GPU, TP) can serve the profile at all, and why not."""

    model_config = ConfigDict(extra="forbid")

    gpu_id: str
    tensor_parallel_size: int
    fits: bool
    reason: str | None = None
    max_concurrency: float | None = Field(None, description="max_model_len-long requests the KV cache holds")
    kv_cache_tokens: int | None = None
    num_gpu_blocks: int | None = None
    weights_bytes: int | None = None
    unloaded_ttft_s: float | None = Field(None, description="prefill of the p50 prompt, alone")
    unloaded_tpot_s: float | None = Field(None, description="one decode step, batch 1")


def measured_capacities(section: Any) -> tuple[list[Bucket], list[CapacityResult], dict[str, float]]:
    """Buckets, capacities and hourly prices from the profile's `capacity:` section.

    Returns:
        (buckets in order of first appearance, one CapacityResult per entry and bucket,
        "gpu-tpN" -> USD per hour of one replica).
    """
    buckets: dict[tuple, Bucket] = {}
    results: list[CapacityResult] = []
    prices: dict[str, float] = {}
    for entry in section.entries:
        key = f"{entry.gpu}-tp{entry.tensor_parallel_size}"
        if key in prices:
            raise PlannerError(f"capacity.entries lists {entry.gpu} tp{entry.tensor_parallel_size} twice")
        prices[key] = float(entry.usd_per_hour)
        for b in entry.buckets:
            rng = (tuple(b.prompt_tokens), tuple(b.output_tokens))
            if rng not in buckets:
                bucket = buckets_from_ranges([b])[0]
                buckets[rng] = bucket
            results.append(
                CapacityResult(
                    gpu_id=entry.gpu,
                    tensor_parallel_size=entry.tensor_parallel_size,
                    bucket=buckets[rng].name,
                    max_rate_per_s=float(b.max_requests_per_second),
                    source="measured",
                )
            )
    return list(buckets.values()), results, prices


def measured_shares(section: Any) -> dict[str, float]:
    """bucket name -> share of traffic, from the capacity section (first entry that gives it)."""
    shares: dict[str, float] = {}
    for entry in section.entries:
        for b in entry.buckets:
            name = buckets_from_ranges([b])[0].name
            shares.setdefault(name, float(b.share))
    total = sum(shares.values())
    if not total > 0:
        raise PlannerError("capacity buckets' shares sum to 0: give each bucket its share of traffic")
    return {k: v / total for k, v in shares.items()}


