"""`planner simulate`: replay a profile's traffic against N replicas and report what users would see."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from planner.cli._app import app, emit_json, handle_errors
from planner.cli._app import (
    BillingChoice, GpuOption, JsonOption, ProfileOption, RouterChoice, ScalerChoice, SeedOption, TpOption,
)
from planner.errors import PlannerError
from planner.units import format_duration
from planner.sim.metrics import LatencyStats, SimMetrics


def _ms(stats: LatencyStats) -> str:
    """Latency percentiles, each in the unit its size calls for (ms, s, min)."""
    if stats.count == 0:
        return "n/a"
    d = format_duration
    return (f"mean {d(stats.mean)}  p50 {d(stats.p50)}  p90 {d(stats.p90)}  "
            f"p95 {d(stats.p95)}  p99 {d(stats.p99)}")


def _summary(m: SimMetrics, title: str, max_num_seqs: int | None = None) -> str:
    rows = [
        ("run", title),
        ("requests", f"{m.requests:,} ({m.completed:,} completed, {m.rejected:,} rejected"
                     + (f": {', '.join(f'{k} {v}' for k, v in m.rejected_by_reason.items())}" if m.rejected else "")
                     + f"; {m.preemptions:,} preemptions)"),
        ("TTFT", _ms(m.ttft_seconds)),
        ("TPOT", _ms(m.tpot_seconds)),
        ("end-to-end", _ms(m.e2e_seconds)),
        ("queue wait", _ms(m.queue_seconds)),
        ("throughput", f"{m.throughput.requests_per_second:,.2f} req/s, "
                       f"{m.throughput.output_tokens_per_second:,.0f} output tok/s"),
    ]
    if m.overloaded:
        rows.append(("overloaded", f"{m.queued_at_horizon:,} requests were still queued at the {m.horizon_seconds:,.0f} s "
                                   f"horizon; the backlog took {m.drain_seconds:,.0f} s more to drain (billed): "
                                   "this fleet cannot keep up with the traffic"))
    if m.slo is not None and m.slo_attainment is not None:
        verdict = "met" if m.slo_met else "NOT met"
        if m.slo_p99_limits_missed:  # attainment may be enough; a p99 limit of the SLO is not kept
            verdict += f": {'; '.join(m.slo_p99_limits_missed)}"
        rows.append(("SLO", f"{m.slo_attainment:.1%} of requests within TTFT {m.slo.ttft_seconds:g} s and "
                            f"TPOT {m.slo.tpot_seconds:g} s (target {m.slo.attainment:.0%}: {verdict}); "
                            f"goodput {m.goodput_requests_per_second:,.2f} req/s"))
    from planner.report.billing_text import format_batch

    # busy_fraction counts any time with a request in flight: near 100% at almost any load, so it
    # is named for what it is and shown after the batch size, which says how full the GPUs are.
    busy = [w.busy_fraction for w in m.workers]
    rows += [
        ("KV cache usage", f"mean {m.kv_cache_usage_mean:.1%} (max bin {max(m.series.kv_cache_usage, default=0):.1%})"),
        ("batch size", format_batch(m.batch_size_mean, max_num_seqs)),
        ("in flight", f"{sum(busy) / max(len(busy), 1):.1%} of the time a replica has any request running "
                      f"(mean over {len(busy)} replica{'' if len(busy) == 1 else 's'}; says nothing of batch size)"),
        ("simulated", f"{m.simulated_seconds:,.1f} s in {m.wall_seconds:,.2f} s wall "
                      f"({m.requests_per_wall_second:,.0f} requests/s)"),
    ]
    return "\n".join(f"{k:<15} {v}" for k, v in rows)


def _progress_bar():
    """A stderr progress bar fed by simulate(progress=...); returns (callback, close)."""
    import click

    bar = click.progressbar(length=1000, label="simulating", file=sys.stderr)
    bar.__enter__()
    state = {"done": 0}

    def update(fraction: float) -> None:
        target = int(fraction * 1000)
        if target > state["done"]:
            bar.update(target - state["done"])
            state["done"] = target

    return update, lambda: bar.__exit__(None, None, None)


@app.command("simulate")
@handle_errors
def simulate(
    profile: ProfileOption,
    gpu: GpuOption,
    replicas: Annotated[int, typer.Option("--replicas", "-n", min=1, max=10_000, help="Replicas (pods) serving the traffic.")] = 1,
    tensor_parallel_size: TpOption = 1,
    seed: SeedOption = None,
    router: Annotated[RouterChoice, typer.Option("--router", help="How requests pick a replica.")] = "least_outstanding",
    step_by_step: Annotated[bool, typer.Option("--step-by-step", help="Simulate every decode step (slow; jump mode is exact).")] = False,
    records: Annotated[Optional[str], typer.Option("--records", help="Write one CSV row per request to this file (its folder must exist).")] = None,
    json_out: JsonOption = False,
    # Billing options: the fleet a billing mode describes, and its cost.
    billing: Annotated[Optional[BillingChoice], typer.Option("--billing", help="pod (--replicas pods), serverless (the profile's endpoint) or mix (pods first, serverless overflow). Default: pods, priced when the catalog has a price.")] = None,
    active_workers: Annotated[Optional[int], typer.Option("--active-workers", help="Serverless always-on workers (default: the profile's).")] = None,
    max_workers: Annotated[Optional[int], typer.Option("--max-workers", help="Serverless worker cap, active included (platform default 3).")] = None,
    idle_timeout: Annotated[Optional[float], typer.Option("--idle-timeout", help="Seconds an idle flex worker stays up (default 5).")] = None,
    scaler: Annotated[Optional[ScalerChoice], typer.Option("--scaler", help="Serverless autoscaler.")] = None,
    scaler_value: Annotated[Optional[float], typer.Option("--scaler-value", help="Queue delay threshold (s) or requests per worker.")] = None,
    pod_schedule: Annotated[Optional[str], typer.Option("--pod-schedule", help="Pods per hour instead of --replicas, e.g. 1,2,4,2 (scale-ups take billing.pod_provisioning_delay_seconds).")] = None,
) -> None:
    """Simulate a continuous-batching fleet on the profile's traffic: TTFT, TPOT, throughput, SLO."""
    from planner.compare import ServerlessOverrides

    schedule = None
    if pod_schedule is not None:
        try:
            schedule = [int(x) for x in pod_schedule.split(",") if x.strip()]
        except ValueError:
            raise PlannerError(f"--pod-schedule {pod_schedule!r}: give pods per hour as integers, e.g. 1,2,4,2") from None
        if not schedule or min(schedule) < 0 or (billing == "pod" and max(schedule) == 0):
            raise PlannerError(f"--pod-schedule {pod_schedule!r}: give counts >= 0 per hour, at least one > 0")
    billing_options = (billing or "pod", ServerlessOverrides(active_workers=active_workers, max_workers=max_workers,
                                                    idle_timeout_seconds=idle_timeout, scaler=scaler,
                                                    scaler_value=scaler_value), schedule, billing is not None)
    _simulate(profile, gpu, replicas, tensor_parallel_size, seed, router, not step_by_step, records, json_out,
              billing_options)


def _simulate(profile_path: Path, gpu: str, replicas: int, tp: int, seed: int | None, router: str, jump: bool,
              records_path: str | Path | None, json_out: bool, billing_options=None) -> None:
    from planner.inputs.profile import load_profile
    from planner.sim import FleetSpec
    from planner.sim import simulate as run_simulation
    from planner.scenario import replica_setup
    from planner.traffic import long_run_note, traffic_for_simulation

    if records_path is not None:  # refuse a bad path before the (possibly long) simulation
        from planner.report.files import check_output_path

        records_path = check_output_path(records_path, "--records", example="records.csv")
    profile = load_profile(profile_path)
    setup = replica_setup(profile, gpu, tp)
    workload = traffic_for_simulation(profile, seed=seed, max_model_len=setup.engine_args.max_model_len)
    closed = profile.traffic.closed_loop
    note = None if closed else long_run_note(len(workload))
    if note is not None:
        typer.echo(note, err=True)
    show_bar = not json_out and (closed or len(workload) >= 20_000) and sys.stderr.isatty()
    progress, close = _progress_bar() if show_bar else (None, lambda: None)
    try:
        if billing_options is None:
            outcome = run_simulation(workload, setup, FleetSpec(pods=replicas), profile.slo, jump=jump, router=router)
            cost = None
        else:  # simulate the billing mode's fleet and price it
            from planner.inputs.catalog import get_gpu
            from planner.compare import billing_notes, simulate_billed

            gpu_spec = get_gpu(gpu)
            notes = billing_notes(profile, gpu_spec, billing_options[0], billing_options[1], tensor_parallel_size=tp)
            outcome, cost = simulate_billed(profile, gpu_spec, setup, workload, billing_options[0],
                                            replicas=replicas, overrides=billing_options[1],
                                            pod_schedule=billing_options[2], require_price=billing_options[3],
                                            jump=jump,
                                            router=router, progress=progress)
    finally:
        close()
    if records_path is not None:
        from planner.report.records import write_records_csv

        write_records_csv(outcome.records, records_path)
    if json_out:
        if cost is None:
            emit_json(outcome.metrics)
        else:
            from planner.billing import headline

            if isinstance(cost, str):  # no price for an unpriced default run: metrics, and why no cost
                emit_json({**outcome.metrics.model_dump(mode="json"), "max_num_seqs": int(setup.engine_args.max_num_seqs),
                           "billing": billing_options[0], "cost": None,
                           "cost_note": cost, **notes.model_dump(mode="json")})
            else:
                emit_json({**outcome.metrics.model_dump(mode="json"), "max_num_seqs": int(setup.engine_args.max_num_seqs),
                           **headline(cost),
                           "billing": billing_options[0], "cost": cost.model_dump(mode="json"),
                           **notes.model_dump(mode="json")})
    else:
        fleet_desc = f"{replicas} x {setup.gpu_id}" if billing_options is None or billing_options[0] == "pod" else \
            f"{billing_options[0]} on {setup.gpu_id}" + (f" ({replicas} pods first)" if billing_options[0] == "mix" else "")
        load = (f"{workload.users:,} users in a closed loop, {len(outcome.records):,} requests sent" if closed
                else f"{len(workload):,} requests")
        typer.echo(_summary(outcome.metrics, f"{profile.name}: {fleet_desc} (TP {tp}), {load}",
                            max_num_seqs=int(setup.engine_args.max_num_seqs)))
        if isinstance(cost, str):
            typer.echo(f"{'cost':<15} n/a: {cost}")
        elif cost is not None:
            from planner.report.billing_text import format_cost

            typer.echo(format_cost(cost))
        if cost is not None:
            from planner.report.billing_text import format_cold_start

            if notes.cold_start is not None:
                typer.echo(f"{'cold start':<15} {format_cold_start(notes.cold_start)}")
            typer.echo("\n".join(["Assumptions:", *[f"- {a}" for a in notes.assumptions]]))
