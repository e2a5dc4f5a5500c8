"""`planner optimize`: the cheapest GPU mix and billing under the profile's SLO, verified by simulation.

Exit codes: 0 with a plan (check `verified` in the output: false means the plan missed the SLO in
simulation after every refinement round, said on stderr too); 2 when no plan exists (no candidate
fits, the SLO is below any GPU's prefill time, or the limits leave nothing): the one stderr line
says what would make it feasible.
"""

from __future__ import annotations

import datetime as _dt
import os
import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer

from planner.cli._app import app, emit_json, handle_errors
from planner.cli._app import JsonOption, ProfileOption, SeedOption
from planner.units import format_duration, format_usd


def _users_line(result) -> str:  # noqa: ANN001
    """A closed loop's question and each planned GPU's capacity, in users."""
    caps = ", ".join(f"{e.gpu}{f' TP{e.tensor_parallel_size}' if e.tensor_parallel_size > 1 else ''} "
                     f"{e.capacity_per_s.get('all', 0.0):,.0f} users per replica"
                     for e in result.plan)
    return (f"{result.users:,} concurrent users (closed loop), constant over the horizon"
            + (f"; capacity under the SLO: {caps}" if caps else ""))


def _summary(result) -> str:  # noqa: ANN001
    from planner.optimize.result import describe  # noqa: PLC0415

    v = result.verification
    rows = [("users", _users_line(result))] if result.users is not None else []
    rows += [
        ("plan", describe(result.plan)),
        ("cost", f"{format_usd(result.cost_per_month_usd)} per month ({format_usd(result.cost_usd)} for the "
                 f"{format_duration(result.horizon_s)} horizon; MILP estimate {format_usd(result.milp_cost_usd)})"),
        ("per token", "n/a" if result.usd_per_million_output_tokens is None
         else f"{format_usd(result.usd_per_million_output_tokens)} per million output tokens"),
        ("SLO", "not simulated (see the notes)" if result.slo_attainment is None else
                f"{result.slo_attainment:.1%} of {v.num_requests:,} requests in simulation "
                f"(target {result.slo_target:.0%}: {'met' if result.verified else 'NOT met'})"),
        ("rounds", str(len(result.rounds))),
    ]
    from planner.report.finance_text import relative_cost  # noqa: PLC0415

    from planner.optimize.result import alternatives_basis_usd_per_month  # noqa: PLC0415

    labels = {"single_gpu_pods": "one GPU type", "all_serverless": "all serverless"}
    basis = alternatives_basis_usd_per_month(result)
    for a in result.alternatives:
        if a.kind == "optimized":
            continue
        if not a.feasible or a.cost_per_month_usd is None:
            rows.append((labels.get(a.kind, a.kind), f"infeasible ({a.note})"))
        else:
            rows.append((labels.get(a.kind, a.kind),
                         f"{a.name.split(': ', 1)[-1]}: {format_usd(a.cost_per_month_usd)}/month, SLO "
                         f"{'unverified' if a.slo_attainment is None else f'{a.slo_attainment:.1%}'}"
                         f"{f', below the {result.slo_target:.0%} target' if a.slo_attainment is not None and not a.verified else ''}; "
                         f"this plan {relative_cost(basis, a.cost_per_month_usd)}"
                         + (f" (both on {a.simulated_on}, where this plan costs {format_usd(basis)}/month)"
                            if a.simulated_on not in (None, "full horizon") else "")))
    hosted = result.finance.hosted if result.finance is not None else None
    if hosted is not None:
        rows.append(("hosted API", f"{hosted.name}: {format_usd(hosted.cost_per_month_usd)}/month for this traffic; this plan "
                                  f"{relative_cost(result.cost_per_month_usd, hosted.cost_per_month_usd)}"
                                  + (f"; break-even ≈ {hosted.break_even_requests_per_s:.3g} req/s"
                                     if hosted.break_even_requests_per_s is not None else "")))
    rows += _solver_rows(result)
    rows += [("note", n) for n in result.notes]
    d = format_duration
    # The verification simulations of the plan and its alternatives run in parallel processes:
    # their time is CPU time summed over those workers and can exceed the wall time.
    rows.append(("time", f"{d(result.wall_seconds)} wall (capacities {d(result.capacity_seconds)}; verification "
                         f"simulations {d(result.simulate_seconds)} of CPU time summed over workers; "
                         f"MILP {d(result.solve_seconds)})"))
    return "\n".join(f"{k:<17} {v}" for k, v in rows)


def _solver_rows(result) -> list[tuple[str, str]]:  # noqa: ANN001
    """What the MILP solver proved, the pod schedule and the traffic draws, one row each."""
    rows = []
    if result.solver is not None:
        rows.append(("MILP", f"{result.solver.text}; model: {result.solver.model_scope}"))
    sched = [e for e in result.plan if e.billing == "pod" and len(set(e.pods_per_slot)) > 1]
    for e in sched:
        rows.append(("pod schedule", f"{e.gpu} (TP{e.tensor_parallel_size}): {min(e.pods_per_slot)}-{max(e.pods_per_slot)} "
                                     f"pods per {result.demand.slot_seconds:g} s slot, {e.pod_starts} starts per horizon"))
    sc = result.scenarios
    if sc is not None and sc.num_scenarios > 1:
        att = "n/a" if sc.slo_attainment_min is None else f"{sc.slo_attainment_min:.1%} / {sc.slo_attainment_median:.1%} / {sc.slo_attainment_max:.1%}"
        rows.append(("traffic draws", f"{sc.num_scenarios}: SLO attainment min/median/max {att}; cost per month "
                                      f"${sc.cost_per_month_usd_min:,.0f} / ${sc.cost_per_month_usd_median:,.0f} / "
                                      f"${sc.cost_per_month_usd_max:,.0f} ({'met on all' if sc.met_on_all else 'NOT met on all'})"))
    return rows


@app.command("optimize")
@handle_errors
def optimize_cmd(
    profile: ProfileOption,
    seed: SeedOption = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Processes for the simulations: capacities, plan verification (default: CPU count).")] = max(1, os.cpu_count() or 1),
    report: Annotated[Optional[str], typer.Option("--report", help="Report folder (default: reports/<profile>-<date>/ under the current directory).")] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Write no report files.")] = False,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Capacity cache folder (default: ~/.cache/planner or $PLANNER_CACHE_DIR).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Recompute capacities; do not read or write the cache.")] = False,
    json_out: JsonOption = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars on stderr (they show only when stderr is a terminal).")] = False,
) -> None:
    """Find the cheapest fleet (GPU types, counts, pods vs serverless) that meets the SLO."""
    from planner.cli._app import stderr_progress, wants_progress  # noqa: PLC0415
    from planner.optimize.loop import plan  # noqa: PLC0415
    from planner.inputs.profile import load_profile, profile_source  # noqa: PLC0415
    from planner.report.optimize_report import check_report_dir, write_report  # noqa: PLC0415

    prof = load_profile(profile)
    folder: Path | None = None
    if not no_report:  # refuse an unusable folder before the capacity simulations
        folder = check_report_dir(
            report if report is not None else Path.cwd() / "reports" / f"{prof.name}-{_dt.date.today().isoformat()}")
    with stderr_progress(wants_progress(quiet)) as progress:
        result, arts = plan(prof, seed=seed, workers=workers, cache_dir=cache_dir, use_cache=not no_cache,
                            progress=progress)
    written: list[Path] = []
    if folder is not None:
        command = ["planner", "optimize", "--profile", str(profile)]
        command += ["--seed", str(seed)] if seed is not None else []
        command += ["--report", str(report)] if report is not None else []
        command += (["--cache-dir", str(cache_dir)] if cache_dir is not None else []) + (["--no-cache"] if no_cache else [])
        written = write_report(result, arts, folder, profile=prof, profile_text=profile_source(profile),
                               command=shlex.join(command))
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
