"""The plots of the `planner optimize` report, as PNG bytes (report/optimize_report.py writes them).

Each figure is drawn for a page that may be read on a phone: at most ~7 inches wide with labels a
reader can still make out when the image is scaled to the screen, time axes in the unit that fits
the horizon (minutes for an hour, hours for a day), and log axes labelled only where labels do not
collide.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from planner.units import format_usd

_DPI = 110
_PLAN = "#117733"
_OTHER = "#ddcc77"
_MISS = "#cc3311"


def time_axis(horizon_s: float) -> tuple[float, str]:
    """(seconds per unit, axis label) for a time axis across `horizon_s`: minutes up to 3 hours, else hours."""
    return (60.0, "minutes from start") if horizon_s <= 3 * 3600 else (3600.0, "hours from start")


def log_ticks(ax: Any, axis: str, lo: float, hi: float) -> None:
    """Readable ticks on a log axis from lo to hi: 1-2-5 steps within two decades, powers of ten beyond.

    Matplotlib's default labels minor ticks when the range is under a decade, and they overlap.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator  # noqa: PLC0415

    lo, hi = max(lo, 1e-12), max(hi, lo * 1.0001)
    decades = math.log10(hi / lo)
    steps = (1.0, 2.0, 5.0) if decades <= 2 else (1.0,)
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    ticks = [m * 10.0**e for e in range(first, last + 1) for m in steps if lo <= m * 10.0**e <= hi]
    if len(ticks) < 2:  # a range inside one 1-2-5 step: its two ends
        ticks = [lo, hi]
    if decades > 2 and len(ticks) > 6:  # many decades: every other power of ten
        ticks = ticks[:: math.ceil(len(ticks) / 6)]
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(FixedLocator(ticks))
    target.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.3g}"))
    target.set_minor_locator(NullLocator())
    target.set_minor_formatter(NullFormatter())


def _save(fig: Any) -> bytes:
    import matplotlib.pyplot as plt  # noqa: PLC0415

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=_DPI)
    plt.close(fig)
    return buf.getvalue()


def _pyplot() -> Any:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt  # noqa: PLC0415

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "legend.fontsize": 8})
    return plt


def demand_figure(demand: Any, provisioned: np.ndarray | None, headroom: float, horizon_s: float,
                  unit: str = "requests/s") -> bytes:
    """Demand per window against the plan's capacity and its load limit (capacity x headroom), in
    `unit` (requests/s; users for closed-loop traffic)."""
    plt = _pyplot()
    rates = np.asarray(demand.rate_per_s, dtype=float).sum(axis=1) if demand.rate_per_s else np.zeros(0)
    unit_s, label = time_axis(horizon_s)
    t = np.arange(len(rates)) * demand.window_s / unit_s
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    ax.step(t, rates, where="post", color="#4477aa", label=f"demand ({unit} per {demand.window_s:g} s window)")
    prov = np.asarray(provisioned, dtype=float) if provisioned is not None else np.zeros(0)
    if len(prov) == len(rates) and len(prov):
        ax.step(t, prov, where="post", color="#cc6677", label="planned capacity (replicas' SLO capacity)")
        ax.step(t, prov * headroom, where="post", linestyle="--", color="#cc6677", alpha=0.6,
                label=f"planned load limit (capacity x {headroom:g})")
    ax.set_xlabel(label)
    ax.set_xlim(0, horizon_s / unit_s)
    if unit_s == 3600.0 and horizon_s >= 12 * 3600:
        ax.set_xticks(np.arange(0, horizon_s / 3600.0 + 1e-9, 3 if horizon_s <= 48 * 3600 else 12))
    ax.set_ylabel(unit)
    ax.set_title("Demand vs provisioned capacity")
    top = max(float(rates.max()) if len(rates) else 1.0, float(prov.max()) if len(prov) else 0.0)
    ax.set_ylim(0, top * 1.45 or 1.0)
    ax.legend(loc="upper left", ncol=1, framealpha=0.9)
    return _save(fig)


def latency_figure(ttft_s: np.ndarray, tpot_s: np.ndarray, slo_ttft_s: float | None, slo_tpot_s: float | None) -> bytes:
    """Histograms of TTFT and TPOT of the simulated plan (log axes), the SLO thresholds dashed."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(7.2, 5.6))
    for ax, values, slo, label in ((axes[0], ttft_s, slo_ttft_s, "TTFT (s)"), (axes[1], tpot_s, slo_tpot_s, "TPOT (s)")):
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v) & (v > 0)]
        if len(v):
            lo, hi = max(float(v.min()), 1e-4), max(float(v.max()), float(v.min()) * 1.01)
            if slo:
                lo, hi = min(lo, slo), max(hi, slo)
            ax.hist(v, bins=np.geomspace(lo, hi * 1.0001, 50), color="#88ccee", edgecolor="#4477aa")
            ax.set_xscale("log")
            log_ticks(ax, "x", lo, hi)
        else:
            ax.text(0.5, 0.5, "no request has this quantity", transform=ax.transAxes, ha="center")
        if slo:
            ax.axvline(slo, color=_MISS, linestyle="--", label=f"SLO {slo:g} s")
            ax.legend()
        ax.set_xlabel(label)
        ax.set_ylabel("requests")
    fig.suptitle("Latency of the plan, simulated on the horizon")
    return _save(fig)


def cost_figure(lines: dict[str, float], per_month: float) -> bytes:
    """Monthly cost of each line of the plan (USD over the horizon x `per_month`), labelled."""
    plt = _pyplot()
    names = list(lines)
    monthly = [lines[n] * per_month for n in names]
    # NOTE: a fixed part for title, axis and labels plus a band per bar: one bar still has height.
    fig, ax = plt.subplots(figsize=(7.2, 1.6 + 0.5 * len(names)))
    ax.barh(names, monthly, color=_PLAN, height=0.6)
    for i, value in enumerate(monthly):
        ax.text(value, i, f" {format_usd(value)}", va="center", fontsize=9)
    ax.set_xlim(0, max(monthly, default=1.0) * 1.35 or 1.0)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel("USD per month")
    ax.set_title("Cost of the plan by line")
    return _save(fig)


def alternatives_figure(labels: Sequence[str], costs: Sequence[float], texts: Sequence[str],
                        is_plan: Sequence[bool], misses: Sequence[bool], any_miss_title: str) -> bytes:
    """Monthly cost of each alternative plan; one that misses the SLO target is hatched and said so."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 1.4 + 0.6 * len(labels)))
    bars = ax.barh(list(labels), list(costs), color=[_PLAN if p else _OTHER for p in is_plan], height=0.6)
    for i, (text, miss) in enumerate(zip(texts, misses)):
        if miss:
            bars[i].set_hatch("//")
            bars[i].set_edgecolor(_MISS)
        ax.text(costs[i], i, text, va="center", fontsize=8, color=_MISS if miss else "black")
    ax.set_xlim(0, max(costs) * 2.1)
    ax.invert_yaxis()
    ax.set_xlabel("USD per month (simulated)")
    ax.set_title("Alternatives" + (any_miss_title if any(misses) else ""))
    return _save(fig)
