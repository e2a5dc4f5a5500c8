"""Demand per slot: the load-duration levels cut from the arrivals (planner.optimize.demand)."""

from __future__ import annotations

import numpy as np
import pytest

from planner.optimize.demand import slot_demands


def _bursty_arrivals(seed=0, horizon=3600.0):
    rng = np.random.default_rng(seed)
    t, x = [], 0.0
    while True:
        rate = 12.0 if (x % 360) < 60 else 1.5
        x += rng.exponential(1 / rate)
        if x >= horizon:
            return np.array(t)
        t.append(x)


def test_slot_demand_levels():
    arr = _bursty_arrivals()
    demands, series = slot_demands(arr, np.zeros(len(arr), dtype=np.int64), ["all"], 3600.0)
    assert sum(d.duration_s for d in demands) == pytest.approx(3600.0)
    rates = [d.rate_per_s["all"] for d in demands]
    assert rates == sorted(rates, reverse=True)
    assert rates[0] > 10.0 and rates[-1] < 2.5
    assert demands[-1].num_bursts == 1 and demands[1].num_bursts >= 5  # ten bursts, some merged
    full = slot_demands(arr, np.zeros(len(arr), dtype=np.int64), ["all"], 3600.0, percentile=1.0)[0]
    assert full[0].rate_per_s["all"] == pytest.approx(max(series.rate_per_s)[0])
    hourly = slot_demands(arr, np.zeros(len(arr), dtype=np.int64), ["all"], 3600.0, slot_s=600.0)[0]
    assert {d.slot for d in hourly} == set(range(6))
