"""The report's pod schedule plot: drawn for a plan whose pods change by slot, stacked by GPU type."""

from __future__ import annotations

from types import SimpleNamespace

from planner.report.schedule import schedule_figure


def test_the_schedule_figure_stacks_pods_by_type_and_is_absent_without_a_schedule():
    demand = SimpleNamespace(rate_per_s=[[1.0], [2.0], [1.0]], window_s=3600.0, slot_seconds=3600.0)
    day = SimpleNamespace(gpu="a", tensor_parallel_size=1, billing="pod", count=1, pods_per_slot=[0, 1, 0])
    night = SimpleNamespace(gpu="b", tensor_parallel_size=2, billing="pod", count=2, pods_per_slot=[2, 1, 2])
    png = schedule_figure(SimpleNamespace(plan=[day, night], demand=demand))
    assert png is not None and png.startswith(b"\x89PNG")
    fixed = SimpleNamespace(gpu="a", tensor_parallel_size=1, billing="pod", count=1, pods_per_slot=[1, 1, 1])
    assert schedule_figure(SimpleNamespace(plan=[fixed], demand=demand)) is None
