"""Traffic draws (scenarios) a plan is verified on, and the sample of days a long horizon is verified on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Draw:
    """One draw of the traffic (a scenario): its requests, their size buckets and demand levels."""

    scenario: int
    seed: int
    workload: Any
    bucket_idx: np.ndarray
    window_level: np.ndarray  # per demand window (world.series.window_s): index into the MILP's slot levels


@dataclass(frozen=True)
class Sample:
    """Whole days of the horizon simulated instead of all of it, back to back (busiest, typical)."""

    days: tuple[int, ...]
    labels: tuple[str, ...]
    day_s: float = 86400.0

    def describe(self) -> str:
        return "sample days " + ", ".join(f"{d + 1} ({label})" for d, label in zip(self.days, self.labels))


def sample_days(draw: Draw, horizon_s: float, slot_s: float) -> Sample | None:
    """The busiest day and a typical day (median volume of the others), for horizons of 3+ days.

    Requests of a long horizon cost simulation time in proportion; the busiest day is where the
    SLO binds, a typical day keeps the cost estimate from being all peak. None when the horizon is
    shorter than three whole days or a day is not a whole number of slots.
    """
    day_s = 86400.0
    num_days = int(horizon_s // day_s)
    if num_days < 3 or abs(day_s / slot_s - round(day_s / slot_s)) > 1e-9:
        return None
    volume = np.bincount(np.minimum((draw.workload.arrival_s // day_s).astype(np.int64), num_days - 1),
                         minlength=num_days)[:num_days]
    busiest = int(np.argmax(volume))
    others = sorted((int(v), d) for d, v in enumerate(volume) if d != busiest)
    typical = others[len(others) // 2][1]
    days = sorted({busiest, typical})
    labels = tuple("busiest" if d == busiest else "typical" for d in days)
    return Sample(days=tuple(days), labels=labels, day_s=day_s)
