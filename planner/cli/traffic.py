"""`planner traffic`: the statistics (and optionally a plot) of a profile's traffic or a bare trace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from planner.cli._app import app, emit_json, handle_errors
from planner.cli._app import JsonOption, SeedOption, TraceFormatChoice
from planner.inputs.profile import load_profile
from planner.errors import PlannerError
from planner.traffic import ClosedLoopStats, TrafficStats, closed_loop, closed_loop_stats, describe_traffic


def _table(stats: TrafficStats) -> str:
    """The human-readable summary (the --json output carries the same figures)."""
    lines = [
        ("source", stats.source),
        ("requests", f"{stats.requests:,}"),
        ("horizon", f"{stats.horizon_seconds:,.1f} s ({stats.horizon_seconds / 3600:.2f} h; "
                    f"x{stats.month_factor:,.1f} for a month)"),
        ("duration", f"{stats.duration_seconds:,.1f} s (last arrival - first)"),
        ("mean rate", f"{stats.mean_rate_per_s:.3f} req/s"),
        ("peak rate, 1 min", f"{stats.peak_rate_1min_per_s:.2f} req/s ({stats.peak_requests_1min} requests in "
                             f"the busiest sliding 60 s; {stats.peak_to_mean_1min:.2f}x the mean)"),
        ("peak rate, 1 s", f"{stats.peak_rate_1s_per_s:.0f} req/s"),
        ("inter-arrival CV", f"{stats.interarrival_cv:.2f} (Poisson = 1; {stats.zero_gap_fraction:.1%} zero gaps)"),
    ]
    for name, tok in (("prompt tokens", stats.prompt_tokens), ("output tokens", stats.output_tokens)):
        lines.append((name, f"mean {tok.mean:,.1f}  p50 {tok.p50:,.0f}  p90 {tok.p90:,.0f}  "
                            f"p99 {tok.p99:,.0f}  max {tok.max:,}"))
    if stats.num_capped:
        lines.append(("capped", f"{stats.num_capped:,} requests capped to max_model_len"))
    if stats.seed is not None:
        lines.append(("seed", str(stats.seed)))
    return "\n".join(f"{k:<18} {v}" for k, v in lines)


def _closed_table(stats: ClosedLoopStats) -> str:
    """A closed loop before simulation: what the users do, not when requests arrive."""
    bound = " or ".join(b for b in (f"{stats.horizon_seconds:,.1f} s" if stats.horizon_seconds is not None else "",
                                     f"{stats.requests:,} requests" if stats.requests is not None else "") if b)
    lines = [
        ("source", stats.source),
        ("users", f"{stats.users:,} concurrent (closed loop: the first {stats.users:,} requests at t = 0, "
                  "then each completion sends that user's next request)"),
        ("think time", f"{stats.think_time} (mean {stats.mean_think_time_seconds:,.2f} s)"),
        ("until", bound),
        ("arrival rate", stats.arrival_rate),
    ]
    for name, tok in (("prompt tokens", stats.prompt_tokens), ("output tokens", stats.output_tokens)):
        lines.append((name, f"mean {tok.mean:,.1f}  p50 {tok.p50:,.0f}  p90 {tok.p90:,.0f}  "
                            f"p99 {tok.p99:,.0f}  max {tok.max:,}  (first {stats.sample_requests:,} requests)"))
    if stats.num_capped:
        lines.append(("capped", f"{stats.num_capped:,} of them capped to max_model_len"))
    lines.append(("seed", str(stats.seed)))
    return "\n".join(f"{k:<18} {v}" for k, v in lines)


@app.command("traffic")
@handle_errors
def traffic(
    profile: Annotated[Optional[Path], typer.Option("--profile", "-p", help="Profile YAML whose traffic to draw.")] = None,
    trace: Annotated[Optional[Path], typer.Option("--trace", help="Or a bare trace file, read as recorded.")] = None,
    format: Annotated[Optional[TraceFormatChoice], typer.Option("--format", help="Trace format (default: detected).")] = None,
    jitter: Annotated[Optional[str], typer.Option("--jitter", help="Bare trace only: 'batch' or seconds of uniform jitter (default none).")] = None,
    seed: SeedOption = None,
    json_out: JsonOption = False,
    plot: Annotated[Optional[str], typer.Option("--plot", help="Also write a PNG (a .png file name): arrivals per minute and size histograms.")] = None,
) -> None:
    """Requests, rates, burstiness and token percentiles of a profile's traffic or of a trace."""
    plot_path: Path | None = None
    if plot is not None:  # refuse a bad path before reading a (possibly large) trace
        from planner.report.traffic_plot import check_plot_path

        plot_path = check_plot_path(plot)
    loaded = load_profile(profile) if profile is not None else None
    if loaded is not None and loaded.traffic.closed_loop:
        if plot_path is not None:
            raise PlannerError("--plot needs arrival times; a closed loop has none before simulation "
                               "(planner simulate --records writes them)")
        if format is not None or jitter is not None:
            raise PlannerError("--format and --jitter apply to --trace only")
        closed = closed_loop_stats(closed_loop(loaded, seed), loaded.name)
        if json_out:
            emit_json(closed)
        else:
            typer.echo(_closed_table(closed))
        return
    workload, stats = describe_traffic(loaded, trace, format, seed, jitter)
    if plot_path is not None:
        from planner.report.traffic_plot import plot_traffic

        plot_traffic(workload, plot_path, title=loaded.name if loaded is not None else stats.source)
    if json_out:
        emit_json(stats)
    else:
        typer.echo(_table(stats))
        if plot_path is not None:
            typer.echo(f"{'plot':<18} {plot_path}")
