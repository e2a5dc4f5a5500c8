"""Request-size buckets and the short-scale burstiness a capacity probe reproduces."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from planner.errors import PlannerError

CAPACITY_ALGORITHM_VERSION = 5
"""Bump when the bisection or its settings change: old cache entries stop matching."""

DEFAULT_NUM_REQUESTS = 1200
"""Requests per bisection step. A few hundred leave the replica near its empty start for most of
the probe (optimistic); 1,200 at the simulator's speed still cost well under a second."""

WARMUP_FRACTION = 0.1
"""The first requests of a probe meet an empty replica; they are simulated but not scored."""

DEMAND_WINDOW_S = 60.0
"""Rates are measured over one-minute windows (the issue's definition of burst demand)."""


# ------------------------------------------------------------------------------ size buckets ---


class Bucket(BaseModel):
    """A request-size class: prompt and output token ranges [lo, hi], both inclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    prompt_tokens: tuple[int, int]
    output_tokens: tuple[int, int]


ALL_SIZES = Bucket(name="all", prompt_tokens=(0, 2**62), output_tokens=(0, 2**62))


def buckets_from_ranges(ranges: Sequence[Any] | None) -> list[Bucket]:
    """Buckets from `optimizer.size_buckets` (or `capacity` entries); None → one bucket, all sizes."""
    if not ranges:
        return [ALL_SIZES]
    out = []
    for r in ranges:
        p, o = tuple(r.prompt_tokens), tuple(r.output_tokens)
        out.append(Bucket(name=f"p{p[0]}-{p[1]}_o{o[0]}-{o[1]}", prompt_tokens=p, output_tokens=o))
    if len({b.name for b in out}) != len(out):
        raise PlannerError("optimizer.size_buckets has duplicate ranges: give each bucket once")
    return out


def assign_buckets(prompt: np.ndarray, output: np.ndarray, buckets: Sequence[Bucket]) -> np.ndarray:
    """Index of each request's bucket: the first whose ranges contain it.

    A request outside every range goes to the bucket whose upper bounds it exceeds least (so the
    tail of a lognormal is served as the biggest class, not dropped).
    """
    prompt = np.asarray(prompt)
    output = np.asarray(output)
    idx = np.full(len(prompt), -1, dtype=np.int64)
    for i, b in enumerate(buckets):
        inside = (
            (idx < 0)
            & (prompt >= b.prompt_tokens[0])
            & (prompt <= b.prompt_tokens[1])
            & (output >= b.output_tokens[0])
            & (output <= b.output_tokens[1])
        )
        idx[inside] = i
    left = idx < 0
    if left.any():
        excess = np.stack(
            [
                np.maximum(prompt[left] - b.prompt_tokens[1], 0)
                + np.maximum(output[left] - b.output_tokens[1], 0)
                + np.maximum(b.prompt_tokens[0] - prompt[left], 0)
                + np.maximum(b.output_tokens[0] - output[left], 0)
                for b in buckets
            ]
        )
        idx[left] = np.argmin(excess, axis=0)
    return idx


# ------------------------------------------------------------------------------- burstiness ---


def local_burstiness_cv(arrival_s: np.ndarray, window_s: float = DEMAND_WINDOW_S) -> float:
    """Coefficient of variation of the inter-arrival gaps shorter than `window_s`.

    Gaps longer than a demand window separate bursts; the time-slot demand (a high percentile of
    one-minute rates) already provisions for those. What a single replica feels inside a burst is
    the short-scale irregularity, which this measures (1 = Poisson). Clipped to [0.5, 4].
    """
    gaps = np.diff(np.asarray(arrival_s, dtype=np.float64))
    gaps = gaps[(gaps > 0) & (gaps < window_s)]
    if len(gaps) < 10:
        return 1.0
    cv = float(np.std(gaps) / np.mean(gaps))
    return float(min(max(cv, 0.5), 4.0))


def unit_gaps(num: int, cv: float, seed: int) -> np.ndarray:
    """Inter-arrival gaps of mean 1 s with the given CV (gamma renewal; cv 1 = Poisson)."""
    rng = np.random.default_rng(seed)
    shape = 1.0 / (cv * cv)
    return rng.gamma(shape, 1.0 / shape, size=num)


