"""A week of traffic: weekday/weekend multipliers, the traffic clock's time zone, the schedule in UTC."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from planner.inputs.traffic_sections import DiurnalArrivals
from planner.optimize.schedule import pod_schedule_utc
from planner.resources import data_dir
from planner.inputs.profile import load_profile
from planner.traffic import diurnal_rate_per_s


def _week(**kw) -> DiurnalArrivals:
    return DiurnalArrivals(process="diurnal", mean_rate_per_s=2.0, peak_to_trough=6, **kw)


def test_weekday_and_weekend_multipliers_keep_the_weekly_mean():
    spec = _week(weekday_multiplier=1.0, weekend_multiplier=0.6)
    hours = np.arange(0, 7 * 24, 1 / 60)
    rate = diurnal_rate_per_s(spec, hours)
    assert rate.mean() == pytest.approx(2.0, rel=1e-6)
    per_day = rate.reshape(7, -1).mean(axis=1)
    assert per_day[:5] == pytest.approx([2.0 * 7 / 6.2] * 5, rel=1e-6)
    assert per_day[5:] == pytest.approx([2.0 * 0.6 * 7 / 6.2] * 2, rel=1e-6)


def test_start_weekday_and_per_day_multipliers():
    spec = _week(day_multipliers=[1, 1, 1, 1, 1, 1, 3], start_weekday="sunday")
    day0 = diurnal_rate_per_s(spec, np.arange(0, 24, 0.25)).mean()
    day1 = diurnal_rate_per_s(spec, np.arange(24, 48, 0.25)).mean()
    assert day0 == pytest.approx(3 * day1)  # t = 0 is a Sunday
    peak = DiurnalArrivals(process="diurnal", peak_rate_per_s=6.0, peak_to_trough=6, day_multipliers=[1, 2, 1, 1, 1, 1, 1])
    assert diurnal_rate_per_s(peak, np.arange(0, 7 * 24, 0.25)).max() == pytest.approx(6.0, rel=1e-3)


def test_an_unknown_time_zone_is_refused_with_the_fix():
    with pytest.raises(ValidationError, match="IANA name"):
        _week(timezone="Europe/Berlinn")


def test_the_week_profile_loads_and_plans_per_slot():
    profile = load_profile(str(data_dir("traffic_profiles") / "week.yaml"))
    assert profile.traffic.horizon_seconds == 604800
    assert profile.optimizer.pod_schedule == "per_slot" and profile.optimizer.scenarios == 3
    assert len(profile.candidates.gpus) == 10 and profile.candidates.tensor_parallel_sizes == [1, 2]


def test_the_pod_schedule_is_given_in_utc_with_the_provisioning_lead():
    profile = load_profile(str(data_dir("traffic_profiles") / "week.yaml"))  # Europe/Berlin, UTC+1 in January
    pods = [1] * 6 + [2] * 16 + [1] * 2  # a second pod from 06:00 to 22:00 local time
    sched = pod_schedule_utc(profile, pods)
    lead = 60.0  # billing.pod_provisioning_delay_seconds default
    assert [(e["action"], e["at_utc"], e["running_after"]) for e in sched["events"]] == [
        ("start", "Mon 04:59", 2), ("stop", "Mon 21:00", 1)]
    assert sched["events"][0]["offset_s"] == 6 * 3600 - lead
    assert "Europe/Berlin" in sched["note"]
