"""Demand per time slot: what the fleet must carry, cut from the workload's arrivals.

The optimizer plans for rates, not requests. `slot_demands` bins the arrivals into one-minute
windows per request-size bucket, cuts each time slot into demand levels (its load-duration curve)
and returns them as the MILP's `SlotDemand`s, plus the `DemandSeries` the report plots. Pure numpy;
no simulator, no solver.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, Field

from planner.errors import PlannerError
from planner.optimize.milp import SlotDemand

LEVEL_TIME_FRACTIONS = (0.05, 0.25, 0.5, 1.0)
"""Cumulative shares of a slot's one-minute windows, busiest first, that bound its demand levels.

The busiest 5% of minutes form the peak level (provisioned at the demand percentile), the next
20%, 25% and 50% the lower levels (each provisioned at its busiest minute). Always-on capacity
sees the peak; flex workers added for a level are billed only for that level's time. This is the
load-duration curve of power-system planning (screening curves), applied to GPU fleets.
"""


class DemandSeries(BaseModel):
    """The one-minute request rates the slots were built from (for reports and plots)."""

    window_s: float
    bucket_names: list[str]
    rate_per_s: list[list[float]] = Field(description="[window][bucket] requests/s")
    slot_seconds: float
    slot_peak_per_s: list[dict[str, float]] = Field(description="per slot: bucket -> planned rate")
    window_level: list[int] = Field(description="per window: index into the slot demands list")


def slot_demands(
    arrival_s: np.ndarray,
    bucket_idx: np.ndarray,
    bucket_names: list[str],
    horizon_s: float,
    *,
    slot_s: float = 3600.0,
    percentile: float = 0.99,
    window_s: float = 60.0,
    level_fractions: tuple[float, ...] = LEVEL_TIME_FRACTIONS,
) -> tuple[list[SlotDemand], DemandSeries]:
    """Demand levels per time slot from the arrivals, per request-size bucket.

    Each slot's one-minute rates are sorted busiest first and cut into levels at
    `level_fractions`. The peak level asks for the `percentile` of the slot's one-minute rates
    (per bucket, so every bucket's bursts count); lower levels ask for their busiest minute. A
    level lasts as long as its minutes; its scale-ups are the runs of minutes at or above it.
    A level's total rate is split over buckets in the proportions of its own minutes.

    Args:
        arrival_s: request arrival times, seconds from the start.
        bucket_idx: each request's bucket index into bucket_names.
        horizon_s: the period the arrivals cover.
        slot_s: time-slot length (the MILP decides flex workers per slot level).
        percentile: in (0, 1]: the quantile of one-minute rates planned for at the peak.
    """
    if slot_s <= 0 or horizon_s <= 0:
        raise PlannerError("optimizer.slot_seconds and the traffic horizon must be > 0")
    if not 0 < percentile <= 1:
        raise PlannerError(f"optimizer.demand_percentile must be in (0, 1], got {percentile}")
    arrival_s = np.asarray(arrival_s, dtype=np.float64)
    bucket_idx = np.asarray(bucket_idx, dtype=np.int64)
    window_s = min(window_s, slot_s)
    num_windows = max(1, math.ceil(horizon_s / window_s - 1e-9))
    win = np.minimum((arrival_s // window_s).astype(np.int64), num_windows - 1)
    nb = len(bucket_names)
    counts = np.zeros((num_windows, nb))
    np.add.at(counts, (win, bucket_idx), 1.0)
    # The last window may be shorter than window_s when the horizon is not a multiple of it.
    lengths = np.minimum(window_s, horizon_s - np.arange(num_windows) * window_s)
    rates = counts / lengths[:, None]
    per_slot = max(1, int(round(slot_s / window_s)))
    demands: list[SlotDemand] = []
    peaks: list[dict[str, float]] = []
    window_level = np.zeros(num_windows, dtype=np.int64)
    for t, first in enumerate(range(0, num_windows, per_slot)):
        idx = np.arange(first, min(first + per_slot, num_windows))
        r, lens = rates[idx], lengths[idx]
        order = np.argsort(-r.sum(axis=1), kind="stable")
        n = len(idx)
        cuts = sorted({min(n, max(1, math.ceil(f * n - 1e-9))) for f in level_fractions} | {n})
        prev_cut = 0
        prev_level: float | None = None
        for level, cut in enumerate(cuts):
            members = order[prev_cut:cut]
            total = r.sum(axis=1)
            if level == 0:
                # Nearest rank, rounding up: a lone busy minute in an hour is not averaged away.
                level_total = float(np.quantile(total, percentile, method="higher"))
            else:
                level_total = float(total[members].max())
            if prev_level is not None:
                level_total = min(level_total, prev_level)
            prev_level = level_total
            # Split the level's total over buckets by the bucket mix of its own minutes (the
            # per-bucket peaks of different minutes do not add up).
            volume = r[members].sum(axis=0)
            mix = volume / volume.sum() if volume.sum() > 0 else np.zeros(nb)
            want = level_total * mix
            at_or_above = np.zeros(n, dtype=bool)
            at_or_above[order[:cut]] = True
            runs = int(np.count_nonzero(at_or_above & ~np.concatenate([[False], at_or_above[:-1]])))
            demands.append(
                SlotDemand(
                    start_s=float(idx[0] * window_s),
                    slot=t,
                    level=level,
                    duration_s=float(lens[members].sum()),
                    rate_per_s={b: float(want[j]) for j, b in enumerate(bucket_names)},
                    busy_s=float(lens[members].sum()),
                    num_bursts=runs,
                )
            )
            if level == 0:
                peaks.append({b: float(want[j]) for j, b in enumerate(bucket_names)})
            window_level[idx[members]] = len(demands) - 1
            prev_cut = cut
    series = DemandSeries(
        window_s=window_s,
        bucket_names=list(bucket_names),
        rate_per_s=rates.round(6).tolist(),
        slot_seconds=slot_s,
        slot_peak_per_s=peaks,
        window_level=window_level.tolist(),
    )
    return demands, series
