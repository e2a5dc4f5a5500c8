"""`planner optimize`: the cheapest GPU mix and billing under the profile's SLO, verified by simulation.

Exit codes: 0 with a plan (check `verified` in the output: false means the plan missed the SLO in
simulation after every refinement round, said on stderr too); 2 when no plan exists (no candidate
fits, the SLO is below any GPU's prefill time, or the limits leave nothing): the one stderr line
says what would make it feasible.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from planner.cli._app import app, emit_json, handle_errors


def _summary(result) -> str:  # noqa: ANN001
    from planner.optimize.result import describe  # noqa: PLC0415

    v = result.verification
    rows = [
        ("plan", describe(result.plan)),
        ("cost", f"${result.cost_per_month_usd:,.2f} per month (${result.cost_usd:,.2f} for the "
                 f"{result.horizon_s:g} s horizon; MILP estimate ${result.milp_cost_usd:,.2f})"),
        ("per token", "n/a" if result.usd_per_million_output_tokens is None
         else f"${result.usd_per_million_output_tokens:,.2f} per million output tokens"),
        ("SLO", "not simulated (see the notes)" if result.slo_attainment is None else
                f"{result.slo_attainment:.1%} of {v.num_requests:,} requests in simulation "
                f"(target {result.slo_target:.0%}: {'met' if result.verified else 'NOT met'})"),
        ("rounds", str(len(result.rounds))),
    ]
    for a in result.alternatives:
        if a.kind == "optimized":
            continue
        if not a.feasible or a.cost_per_month_usd is None:
            rows.append((a.kind.replace("_", " "), f"infeasible ({a.note})"))
        else:
            rows.append((a.kind.replace("_", " "),
                         f"{a.name.split(': ', 1)[-1]}: ${a.cost_per_month_usd:,.2f}/month, SLO "
                         f"{'unverified' if a.slo_attainment is None else f'{a.slo_attainment:.1%}'}"
                         f"{f', below the {result.slo_target:.0%} target' if a.slo_attainment is not None and not a.verified else ''}; "
                         f"the optimized mix saves {a.savings_of_optimized_pct:.1f}%"))
    rows += [("note", n) for n in result.notes]
    rows.append(("time", f"{result.wall_seconds:.1f} s (capacities {result.capacity_seconds:.1f} s, "
                         f"simulation {result.simulate_seconds:.1f} s, MILP {result.solve_seconds:.2f} s)"))
    return "\n".join(f"{k:<17} {v}" for k, v in rows)


@app.command("optimize")
@handle_errors
def optimize_cmd(
    profile: Annotated[Path, typer.Option("--profile", "-p", help="Profile YAML: model, traffic, SLO, candidates, billing.")],
    seed: Annotated[Optional[int], typer.Option("--seed", help="Traffic and simulation seed (default: the profile's traffic.seed).")] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Processes for the capacity simulations (default: CPU count).")] = max(1, os.cpu_count() or 1),
    report: Annotated[Optional[str], typer.Option("--report", help="Report folder (default: reports/<profile>-<date>/ under the current directory).")] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Write no report files.")] = False,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Capacity cache folder (default: ~/.cache/planner or $PLANNER_CACHE_DIR).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute capacities; do not read or write the cache.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object (the result) on stdout and nothing else there.")] = False,
) -> None:
    """Find the cheapest fleet (GPU types, counts, pods vs serverless) that meets the SLO."""
    from planner.optimize.loop import plan  # noqa: PLC0415
    from planner.inputs.profile import load_profile  # noqa: PLC0415
    from planner.report.optimize_report import check_report_dir, write_report  # noqa: PLC0415

    prof = load_profile(profile)
    folder: Path | None = None
    if not no_report:  # refuse an unusable folder before the capacity simulations
        folder = check_report_dir(
            report if report is not None else Path.cwd() / "reports" / f"{prof.name}-{_dt.date.today().isoformat()}")
    result, arts = plan(prof, seed=seed, workers=workers, cache_dir=cache_dir, use_cache=not no_cache)
    written: list[Path] = []
    if folder is not None:
        written = write_report(result, arts, folder, profile=prof)
    if json_out:
        emit_json(result)
    else:
        typer.echo(_summary(result))
        if written:
            typer.echo(f"{'report':<17} {written[0].parent / 'report.html'}")
    if written:
        from planner.report.deploy import deploy_problems  # noqa: PLC0415

        for problem in deploy_problems(result.deploy):
            typer.echo(f"warning: no deploy file for {problem}", err=True)
    if not result.verified:
        typer.echo(f"warning: {result.notes[-1] if result.notes else 'the plan missed the SLO in simulation'}", err=True)
