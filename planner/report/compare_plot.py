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

import numpy as np  # noqa: E402

from planner.billing import HOURS_PER_MONTH  # noqa: E402
from planner.errors import PlannerError  # noqa: E402
from planner.report import files  # noqa: E402
from planner.report.files import write_atomic  # noqa: E402
from planner.report.plan_plots import log_ticks  # noqa: E402

_STYLES = {
    "pods": {"color": "#1f77b4", "marker": "s", "label": "dedicated pods"},
    "serverless": {"color": "#d62728", "marker": "o", "label": "serverless"},
    "mix": {"color": "#2ca02c", "marker": "^", "label": "pods + serverless bursts"},
}


# `planner compare --plot` checks its path with this before simulating.
check_plot_path = partial(files.check_plot_path, example="compare.png")


def _miss_spans(xs: list[float], ok: list[bool | None]) -> list[tuple[float, float]]:
    """Load ranges where an option misses the SLO: around each missing point, halfway (in log
    space) to its neighbours, merged; the ends of the sweep are padded by half a step."""
    if not xs:
        return []
    logs = np.log(np.asarray(xs, dtype=float))
    half = np.diff(logs) / 2 if len(logs) > 1 else np.array([np.log(2.0)])
    left = np.concatenate([[logs[0] - half[0]], logs[1:] - half])
    right = np.concatenate([logs[:-1] + half, [logs[-1] + half[-1]]])
    spans: list[tuple[float, float]] = []
    for lo, hi, met in zip(left, right, ok):
        if met is not False:
            continue
        if spans and abs(spans[-1][1] - float(np.exp(lo))) < 1e-12 * spans[-1][1]:
            spans[-1] = (spans[-1][0], float(np.exp(hi)))
        else:
            spans.append((float(np.exp(lo)), float(np.exp(hi))))
    return spans


def write_compare_plot(result: Any, path: str | Path) -> Path:
    """Plot cost per month against mean request rate for each option and save it as a PNG.

    Where an option misses the SLO its line is dotted, its points hollow and the loads are shaded
    in its colour in a band under the curves (one band per option), so a cheap but too-slow option
    reads as such. The break-even rate (pods become cheaper, both meeting the SLO) is a dashed
    vertical line; the profile's own load a dotted one.

    Args:
        result: a CompareResult (gpu_id, tensor_parallel_size, profile, sweep, break_even_rate_per_s,
            mean_rate_per_s).
        path: where the PNG goes (a .png name); its folder must exist and be writable.
    """
    out = check_plot_path(path)
    sweep = sorted(result.sweep, key=lambda p: p.mean_rate_per_s)
    if not sweep:
        raise PlannerError("nothing to plot: the comparison has no load points")
    fig, ax = plt.subplots(figsize=(8, 5.2), dpi=110)
    top = max((v for p in sweep for v in p.cost_per_month_usd.values() if v is not None), default=1.0)
    band = top * 0.06  # each option's "misses the SLO" band under the curves
    for row, (option, style) in enumerate(_STYLES.items()):
        points = [(p.mean_rate_per_s, p.cost_per_month_usd[option], p.meets_slo.get(option))
                  for p in sweep if p.cost_per_month_usd.get(option) is not None]
        if not points:
            continue
        xs, ys, ok = (list(v) for v in zip(*points))
        for (x0, y0, m0), (x1, y1, m1) in zip(points, points[1:]):  # dotted where either end misses
            ax.plot([x0, x1], [y0, y1], color=style["color"], linewidth=1.6,
                    linestyle="-" if m0 is not False and m1 is not False else ":")
        ax.plot([], [], color=style["color"], marker=style["marker"], label=style["label"])
        for x, y, met in zip(xs, ys, ok):
            ax.plot([x], [y], marker=style["marker"], color=style["color"], markersize=6,
                    markerfacecolor=style["color"] if met is not False else "white")
        for k, (x0, x1) in enumerate(_miss_spans(xs, ok)):
            y0 = -band * (row + 1)
            ax.fill_between([x0, x1], y0, y0 + band * 0.8, color=style["color"], alpha=0.35, hatch="//",
                            linewidth=0, label=f"{style['label']} misses the SLO" if k == 0 else None)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylim(-band * (len(_STYLES) + 0.5), top * 1.15)
    if result.break_even_rate_per_s is not None:
        ax.axvline(result.break_even_rate_per_s, color="grey", linestyle="--", linewidth=1)
        ax.annotate(f"break-even ≈ {result.break_even_rate_per_s:.3g} req/s",
                    (result.break_even_rate_per_s, top * 1.1), textcoords="offset points",
                    xytext=(4, -4), fontsize=8, color="grey")
    ax.axvline(result.mean_rate_per_s, color="black", linestyle=":", linewidth=1)
    ax.annotate("profile's load", (result.mean_rate_per_s, top * 1.02), textcoords="offset points",
                xytext=(4, 0), fontsize=8)
    ax.set_xscale("log")  # the sweep spans decades of load
    xs_all = [p.mean_rate_per_s for p in sweep]
    log_ticks(ax, "x", min(xs_all), max(xs_all))
    if len(xs_all) <= 8:  # few loads: label each one swept
        ax.set_xticks(xs_all, [f"{x:.3g}" for x in xs_all])
    ax.set_yticks([t for t in ax.get_yticks() if 0 <= t <= top * 1.15])  # the bands have no dollar axis
    ax.set_xlabel("mean load (requests/s, log scale)")
    ax.set_ylabel(f"cost per month (USD, {HOURS_PER_MONTH:g} h)")
    ax.set_title(f"{result.profile}: {result.gpu_id} × TP{result.tensor_parallel_size} "
                 "(dotted, hollow and banded below: misses the SLO)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    try:
        return write_atomic(out, lambda fh: fig.savefig(fh, format="png"), binary=True, what="--plot", suffix=".png")
    finally:
        plt.close(fig)
