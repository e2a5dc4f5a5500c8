"""`planner compare`: dedicated pods vs serverless vs a mix on the same arrivals, with the break-even."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from planner.cli._app import app, emit_json, handle_errors
from planner.cli._app import GpuOption, JsonOption, ProfileOption, ScalerChoice, SeedOption, TpOption
from planner.errors import PlannerError
from planner.units import format_usd


def _table(result) -> str:  # noqa: ANN001 (planner.compare.CompareResult)
    hdr = f"{'option':<11}{'pods':>5}{'max wkr':>8}{'per horizon':>13}{'per month':>13}{'per M tok':>11}" \
          f"{'per 1k req':>11}{'batch':>13}{'in flight':>10}{'cold st.':>9}{'SLO att.':>10}  verdict"
    lines = [hdr]
    for r in result.options:
        c = r.cost
        att = "n/a" if r.slo_attainment is None else f"{r.slo_attainment:.1%}"
        verdict = "meets SLO" if r.meets_slo is not False else "misses SLO"
        batch = "n/a" if r.mean_batch_per_replica is None else (
            f"{r.mean_batch_per_replica:.1f}" + (f"/{r.max_num_seqs}" if r.max_num_seqs else ""))
        flight = "n/a" if c.utilization is None else f"{c.utilization:.0%}"
        lines.append(
            f"{r.option:<11}{r.pods:>5}{(r.serverless_max_workers or 0):>8}{format_usd(c.cost_usd):>13}"
            f"{format_usd(c.cost_per_month_usd):>13}{format_usd(c.cost_per_million_output_tokens_usd):>11}"
            f"{format_usd(c.cost_per_1000_requests_usd):>11}{batch:>13}{flight:>10}{c.cold_starts:>9}{att:>10}  {verdict}"
        )
    lines.append("(batch = mean running sequences per replica / max_num_seqs: how full the GPUs are; in flight = "
                 "share of billed GPU-seconds with any request running, near 100% at almost any load)")
    return "\n".join(lines)


def _sweep_table(result) -> str:  # noqa: ANN001
    closed = result.users is not None
    lines = [(f"{'users':>7}" if closed else "")
             + f"{'req/s':>8}{'pods':>6}{'pods $/month':>14}{'serverless $/month':>19}{'mix $/month':>13}"]
    for p in result.sweep:
        def cell(k: str, width: int) -> str:
            v = p.cost_per_month_usd.get(k)
            mark = "" if p.meets_slo.get(k) is not False else "*"
            return f"{format_usd(v) + mark:>{width}}"
        lines.append((f"{p.users:>7}" if closed else "")
                     + f"{p.mean_rate_per_s:>8.3g}{p.pods_needed:>6}{cell('pods', 14)}{cell('serverless', 19)}{cell('mix', 13)}")
    lines.append("(* = misses the SLO)")
    return "\n".join(lines)


def _parse_factors(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise PlannerError(f"--load-factors {text!r}: give comma-separated numbers, e.g. 0.25,0.5,1,2") from None
    if not values:
        raise PlannerError("--load-factors is empty; give comma-separated numbers, e.g. 0.25,0.5,1,2")
    return values


@app.command("compare")
@handle_errors
def compare_cmd(
    profile: ProfileOption,
    gpu: GpuOption,
    tensor_parallel_size: TpOption = 1,
    seed: SeedOption = None,
    active_workers: Annotated[Optional[int], typer.Option("--active-workers", help="Serverless always-on workers.")] = None,
    max_workers: Annotated[Optional[int], typer.Option("--max-workers", help="Serverless worker cap (default: raised to 2 x the pods needed).")] = None,
    idle_timeout: Annotated[Optional[float], typer.Option("--idle-timeout", help="Seconds an idle flex worker stays up.")] = None,
    scaler: Annotated[Optional[ScalerChoice], typer.Option("--scaler", help="Serverless autoscaler.")] = None,
    scaler_value: Annotated[Optional[float], typer.Option("--scaler-value", help="Queue delay (s) or requests per worker.")] = None,
    load_factors: Annotated[Optional[str], typer.Option("--load-factors", help="Rate multipliers to sweep, e.g. 0.25,0.5,1,2.")] = None,
    max_pods: Annotated[int, typer.Option("--max-pods", min=1, help="Upper bound of the pods search.")] = 32,
    plot: Annotated[Optional[str], typer.Option("--plot", help="Write a PNG of cost per month vs mean load to this .png file.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Pods vs serverless vs a mix (pods for the base, serverless for bursts): cost, SLO, break-even."""
    _compare(profile, gpu, tensor_parallel_size, seed, active_workers, max_workers, idle_timeout, scaler,
             scaler_value, _parse_factors(load_factors), max_pods, plot, json_out)


def _compare(profile_path: Path, gpu: str, tp: int, seed: int | None, active_workers: int | None,
             max_workers: int | None, idle_timeout: float | None, scaler: str | None, scaler_value: float | None,
             load_factors: tuple[float, ...] | None, max_pods: int, plot: str | Path | None, json_out: bool) -> None:
    from planner.inputs.catalog import get_gpu
    from planner.compare import DEFAULT_LOAD_FACTORS, ServerlessOverrides, compare
    from planner.inputs.profile import load_profile

    if plot is not None:  # refuse a bad path before the simulations
        from planner.report.compare_plot import check_plot_path

        plot = check_plot_path(plot)
    overrides = ServerlessOverrides(active_workers=active_workers, max_workers=max_workers,
                                    idle_timeout_seconds=idle_timeout, scaler=scaler, scaler_value=scaler_value)
    result = compare(load_profile(profile_path), get_gpu(gpu), tensor_parallel_size=tp, seed=seed,
                     overrides=overrides, load_factors=load_factors or DEFAULT_LOAD_FACTORS, max_pods=max_pods)
    if plot is not None:
        from planner.report.compare_plot import write_compare_plot

        write_compare_plot(result, plot)
    if json_out:
        emit_json(result)
        return
    closed = result.users is not None
    load = (f"{result.users:,} users in a closed loop ({result.num_requests:,} requests over "
            f"{result.horizon_s / 3600:.3g} h on the pods, {result.mean_rate_per_s:.3g} req/s mean)" if closed else
            f"{result.num_requests:,} requests over {result.horizon_s / 3600:.3g} h ({result.mean_rate_per_s:.3g} req/s mean)")
    out = [
        f"{result.profile}: {result.gpu_id} × TP{result.tensor_parallel_size}, {load}; serverless cold start "
        f"{result.cold_start_s:.1f} s",
        "",
        _table(result),
        "",
        f"cheapest meeting the SLO: {result.cheapest_meeting_slo or 'none'}",
        f"break-even: {result.break_even_note}",
        "",
        ("cost per month versus load (users scaled; req/s as simulated on the pods):" if closed else
         "cost per month versus load (the same requests, time scaled):"),
        _sweep_table(result),
        "",
        "Assumptions:",
        *[f"- {a}" for a in result.assumptions],
    ]
    if plot is not None:
        out.append(f"\nplot written to {plot}")
    typer.echo("\n".join(out))
