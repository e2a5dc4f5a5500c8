"""A scheduled pod pool's start/stop times in UTC, from the plan's pods per slot and the traffic's clock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from planner import billing
from planner.inputs.profile import Profile


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def traffic_clock(profile: Profile) -> tuple[int, float, str]:
    """(weekday at t = 0, Monday = 0; local hour at t = 0; IANA zone) of the traffic's clock.

    A diurnal profile says them (start_weekday, start_hour, timezone); other traffic starts at
    Monday 00:00 UTC by convention.
    """
    arrivals: Any = getattr(profile.traffic, "arrivals", None)
    if getattr(arrivals, "process", None) == "diurnal":
        days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        return days.index(arrivals.start_weekday), float(arrivals.start_hour), str(arrivals.timezone)
    return 0, 0.0, "UTC"


def pod_schedule_utc(profile: Profile, pods_per_slot: Sequence[int]) -> dict[str, Any]:
    """A pod pool's schedule as weekly start/stop times in UTC: what a cron job or scaler applies.

    Scale-ups start `pod_provisioning_delay_seconds` before their slot (the simulator does the
    same), scale-downs stop pods at the slot's start once they drain. Local clock times convert
    with the zone's UTC offset in the first week of 2026 (a zone with daylight saving time moves
    the UTC times by an hour in summer: said in `note`).
    """
    import datetime as dt  # noqa: PLC0415
    import zoneinfo  # noqa: PLC0415

    slot_s = float(profile.optimizer.slot_seconds)
    lead_s = float(billing.setting(profile.billing, "pod_provisioning_delay_seconds"))
    weekday, hour, zone = traffic_clock(profile)
    # 2026-01-05 is a Monday: the reference week for the zone's offset.
    local0 = dt.datetime(2026, 1, 5, tzinfo=zoneinfo.ZoneInfo(zone)) + dt.timedelta(days=weekday, hours=hour)
    utc0 = local0.astimezone(dt.timezone.utc)
    events = []
    n = len(pods_per_slot)
    for h in range(n):
        before = pods_per_slot[h - 1] if h else pods_per_slot[-1]  # the horizon repeats
        now = pods_per_slot[h]
        if now == before:
            continue
        at = utc0 + dt.timedelta(seconds=h * slot_s - (lead_s if now > before else 0.0))
        events.append({
            "at_utc": f"{_DAYS[at.weekday()]} {at:%H:%M}",
            "offset_s": h * slot_s - (lead_s if now > before else 0.0),
            "action": "start" if now > before else "stop",
            "pods": abs(now - before),
            "running_after": now,
        })
    return {
        "slot_seconds": slot_s,
        "pods_per_slot": list(pods_per_slot),
        "events": events,
        "repeats_every_s": n * slot_s,
        "note": (f"traffic clock {zone} (UTC offset {local0.utcoffset()} in the week of 2026-01-05); "
                 f"scale-ups start {lead_s:g} s early to be ready at their slot"),
    }
