"""The `planner compare --plot` PNG: monthly cost versus mean load for pods, serverless and a mix.

Reads a `planner.compare.CompareResult` (its `sweep` points) and writes one PNG; nothing else
writes files for `compare`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402

from planner.billing import HOURS_PER_MONTH  # noqa: E402
from planner.errors import PlannerError  # noqa: E402
from planner.report import files  # noqa: E402
from planner.report.files import write_atomic  # noqa: E402

_STYLES = {
    "pods": {"color": "#1f77b4", "marker": "s", "label": "dedicated pods"},
    "serverless": {"color": "#d62728", "marker": "o", "label": "serverless"},
    "mix": {"color": "#2ca02c", "marker": "^", "label": "pods + serverless bursts"},
}


# `planner compare --plot` checks its path with this before simulating.
check_plot_path = partial(files.check_plot_path, example="compare.png")


def write_compare_plot(result: Any, path: str | Path) -> Path:
    """Plot cost per month against mean request rate for each option and save it as a PNG.

    Points whose option misses the SLO are drawn hollow, so a cheap but too-slow option is visible
    as such. The break-even rate (pods become cheaper) is a dashed vertical line.

    Args:
        result: a CompareResult (gpu_id, tensor_parallel_size, profile, sweep, break_even_rate_per_s,
            mean_rate_per_s).
        path: where the PNG goes (a .png name); its folder must exist and be writable.
    """
    out = check_plot_path(path)
    sweep = sorted(result.sweep, key=lambda p: p.mean_rate_per_s)
    if not sweep:
        raise PlannerError("nothing to plot: the comparison has no load points")
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for option, style in _STYLES.items():
        points = [(p.mean_rate_per_s, p.cost_per_month_usd[option], p.meets_slo[option])
                  for p in sweep if p.cost_per_month_usd.get(option) is not None]
        if not points:
            continue
        xs, ys, ok = zip(*points)
        ax.plot(xs, ys, color=style["color"], label=style["label"], linewidth=1.5)
        for x, y, met in zip(xs, ys, ok):
            ax.plot([x], [y], marker=style["marker"], color=style["color"], markersize=6,
                    markerfacecolor=style["color"] if met else "white")
    if result.break_even_rate_per_s is not None:
        ax.axvline(result.break_even_rate_per_s, color="grey", linestyle="--", linewidth=1)
        ax.annotate(f"break-even ≈ {result.break_even_rate_per_s:.3g} req/s",
                    (result.break_even_rate_per_s, ax.get_ylim()[1]), textcoords="offset points",
                    xytext=(4, -14), fontsize=8, color="grey")
    ax.axvline(result.mean_rate_per_s, color="black", linestyle=":", linewidth=1)
    ax.annotate("profile's load", (result.mean_rate_per_s, ax.get_ylim()[0]), textcoords="offset points",
                xytext=(4, 6), fontsize=8)
    ax.set_xscale("log")  # the sweep spans decades of load
    ax.set_xlabel("mean load (requests/s, log scale)")
    ax.set_ylabel(f"cost per month (USD, {HOURS_PER_MONTH:g} h)")
    ax.set_title(f"{result.profile}: {result.gpu_id} × TP{result.tensor_parallel_size} "
                 "(hollow = misses the SLO)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        return write_atomic(out, lambda fh: fig.savefig(fh, format="png"), binary=True, what="--plot", suffix=".png")
    finally:
        plt.close(fig)
