"""The `planner traffic --plot` figure: arrivals per minute over the horizon and the size histograms."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from planner.report import files
from planner.report.files import write_atomic
from planner.traffic import Workload, trace_stats


def _log_bins(values: np.ndarray, count: int = 50) -> np.ndarray:
    """Log-spaced histogram edges covering values (token counts span several decades)."""
    lo = max(1.0, float(values.min())) if len(values) else 1.0
    hi = max(lo * 1.01, float(values.max()) if len(values) else 2.0)
    return np.geomspace(lo, hi * 1.0001, count + 1)


# `planner traffic --plot` checks its path with this before drawing.
check_plot_path = partial(files.check_plot_path, example="traffic.png")


def plot_traffic(workload: Workload, path: str | Path, title: str | None = None) -> Path:
    """Write a PNG: requests per minute (with the mean), prompt and output token histograms.

    The file appears whole or not at all (drawn to a temporary file, then renamed).

    Args:
        workload: the requests to draw.
        path: where the PNG goes (a .png name); its folder must exist and be writable.
        title: the figure's title (default: the workload's source).
    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = check_plot_path(path)
    stats = trace_stats(workload)
    minutes = max(1, int(np.ceil(workload.horizon_s / 60.0)))
    per_minute = np.bincount(
        np.minimum((workload.arrival_s // 60.0).astype(np.int64), minutes - 1), minlength=minutes
    )

    fig = plt.figure(figsize=(11, 7), layout="constrained")
    grid = fig.add_gridspec(2, 2)
    ax_t = fig.add_subplot(grid[0, :])
    ax_t.step(np.arange(minutes) / (60.0 if minutes > 360 else 1.0), per_minute, where="post", lw=0.8)
    ax_t.axhline(stats.mean_rate_per_s * 60, color="tab:red", ls="--", lw=1,
                 label=f"mean {stats.mean_rate_per_s:.2f} req/s")
    ax_t.set_xlabel("hours from the start" if minutes > 360 else "minutes from the start")
    ax_t.set_ylabel("requests per minute")
    ax_t.set_title(
        f"{len(workload):,} requests; busiest sliding minute {stats.peak_rate_1min_per_s:.2f} req/s "
        f"({stats.peak_to_mean_1min:.1f}x mean); inter-arrival CV {stats.interarrival_cv:.2f}",
        fontsize=9,
    )
    ax_t.legend(loc="upper right", fontsize=8)
    for col, (name, values, tok) in enumerate(
        (("prompt tokens", workload.prompt_tokens, stats.prompt_tokens),
         ("output tokens", workload.output_tokens, stats.output_tokens))
    ):
        ax = fig.add_subplot(grid[1, col])
        if len(values):
            # matplotlib takes an array of bin edges; its stubs only list Sequence[float]
            ax.hist(values, bins=_log_bins(values), color="tab:blue" if col == 0 else "tab:green")  # type: ignore[arg-type]
            ax.set_xscale("log")
            for q, style in ((tok.p50, ":"), (tok.p90, "--"), (tok.p99, "-.")):
                ax.axvline(q, color="k", ls=style, lw=0.8)
        ax.set_xlabel(f"{name} (log scale; lines p50, p90, p99)")
        ax.set_ylabel("requests")
        ax.set_title(f"{name}: mean {tok.mean:.0f}, p50 {tok.p50:.0f}, p90 {tok.p90:.0f}, p99 {tok.p99:.0f}, "
                     f"max {tok.max}", fontsize=9)
    fig.suptitle(title or workload.source, fontsize=10)

    try:
        return write_atomic(path, lambda fh: fig.savefig(fh, format="png", dpi=110), binary=True, what="--plot",
                            suffix=".png")
    finally:
        plt.close(fig)
