"""The planning loop behind `planner optimize`: the cheapest fleet under the SLO, verified.

`plan()` runs the design card's main command: candidates -> capacities (`planner.capacity`) ->
demand per slot (`planner.optimize.demand`) -> MILP (`planner.optimize.milp`) -> verify by
simulation (`planner.optimize.verify`) -> refine -> alternatives. Everything that touches the
simulator, the catalog or prices goes through a `PlanningBackend`, so tests can run the loop on hand-made
numbers. The result models (`OptimizeResult`, what `planner optimize --json` prints, and
`PlanArtifacts`, the arrays the report plots) are in `planner.optimize.result`.
"""

from __future__ import annotations

import time
from typing import Any

from planner.assumption import render_lines
from planner import __version__
from planner.errors import PlannerError
from planner.inputs.profile import Profile
from planner.optimize.result import ScenarioRun, ScenarioSummary, SolverStatus
from planner.optimize.verify import NotSimulable, verify_many
from planner.optimize.alternatives import _alternatives
from planner.optimize.assumptions import _assumptions
from planner.optimize.finance import plan_finance
from planner.optimize.backend import CatalogBackend, PlanningBackend
from planner.optimize.closed import closed_loop_for_plan
from planner.optimize.result import (
    DeploySettings,
    OptimizeResult,
    PlanArtifacts,
    _fmt_pct,
    describe,
)
from planner.optimize.search import _better, _run_searches, _Search, meets_every_draw
from planner.optimize.world import Progress, _deploy, _infeasible_message, _prepare


def _traffic(workload: Any, run: Any) -> tuple[int, int, int]:
    """(requests, input tokens, output tokens) of the horizon: the offered requests of an open loop;
    a closed loop's requests are only known from its simulated run."""
    if hasattr(workload, "prompt_tokens"):
        return len(workload), int(workload.prompt_tokens.sum()), int(workload.output_tokens.sum())
    return int(run.num_requests), int(run.input_tokens), int(run.output_tokens)


# How notes name the searches (plain words, not the kind ids of the JSON).
_PLAN_NAMES = {"single_gpu_pods": "pods-on-one-GPU-type", "all_serverless": "all-serverless"}


def plan(
    profile: Profile,
    *,
    seed: int | None = None,
    workers: int = 1,
    cache_dir: Any = None,
    use_cache: bool = True,
    backend: PlanningBackend | None = None,
    workload: Any = None,
    progress: Progress | None = None,
) -> tuple[OptimizeResult, PlanArtifacts]:
    """Cheapest fleet under the profile's SLO, verified by simulation (the main command).

    Args:
        profile: a loaded Profile.
        seed: traffic and simulation seed (None: the profile's traffic.seed).
        workers: processes for the capacity simulations.
        cache_dir: capacity cache folder (None: the user cache folder); use_cache False: no cache.
        backend: stand-ins for the simulator, catalog and prices (tests).
        workload: the requests to plan for (None: generated from the profile).
        progress: progress(phase, done, total) for each long phase (capacities, plans, the final
            simulation); nothing is printed here.
    Returns:
        (the result model, arrays for the report's plots).
    Raises:
        PlannerError: nothing can serve the profile, or the limits leave no plan; the message
            says what would make it feasible.
    """
    from planner import capacity  # noqa: PLC0415

    started = time.perf_counter()
    backend = backend or CatalogBackend()
    if use_cache and cache_dir is not None:
        capacity.check_cache_dir(cache_dir)
    if profile.capacity is None:  # measured capacities name their own GPUs and need no catalog
        backend.check_names(profile)
    seed = int(profile.traffic.seed if seed is None else seed)
    draws: list[tuple[int, Any]] = []
    planned: Any = None
    capacity_draw = None
    if workload is None and profile.traffic.closed_loop:
        workload = closed_loop_for_plan(profile, seed)  # N users: capacities and demand in users
    if workload is None:
        from planner.traffic import generate_workload  # noqa: PLC0415

        workload = generate_workload(profile, seed)
        # The further traffic draws the plan must also meet the SLO on (a given workload is one draw).
        num = int(profile.optimizer.scenarios)
        # More draws sharpen the mean demand the MILP plans for, as long as they are cheap to make.
        num_demand = max(num, min(DEMAND_DRAWS, DEMAND_DRAW_REQUESTS // max(len(workload), 1)))
        seeds = scenario_seeds(seed, num)
        draws = [(s, generate_workload(profile, s)) for s in seeds[1:num]]
        made = {seed: workload, **dict(draws)}
        # The MILP plans for the mean demand of the profile's own traffic.seed draws whatever
        # --seed (as the capacities do): the plan belongs to the traffic's distribution, and
        # --seed picks the draws it is verified on. With the profile's seed these are the run's draws.
        base_seed = int(profile.traffic.seed)
        if base_seed not in made:
            made[base_seed] = generate_workload(profile, base_seed)
        planned = (made[s] if s in made else generate_workload(profile, s) for s in scenario_seeds(base_seed, num_demand))
        capacity_draw = (base_seed, made[base_seed])
    users = getattr(workload, "users", None)
    if users is None and len(workload) == 0:
        raise PlannerError("the profile's traffic has no requests over the horizon: raise the rate or the horizon")
    cache = capacity.CapacityCache(None if not use_cache else (cache_dir or capacity.default_cache_dir()))
    t0 = time.perf_counter()
    world = _prepare(profile, workload, seed, workers, cache, backend, scenario_workloads=draws, progress=progress,
                     capacity_draw=capacity_draw, planned_demand=planned)
    capacity_seconds = time.perf_counter() - t0

    searches = _run_searches(world, backend, workers, progress)
    main = searches["main"]
    found = [label for label in ("main", "single_gpu_pods", "all_serverless")
             if searches.get(label) is not None and searches[label].best is not None]
    if not found:
        raise PlannerError(_infeasible_message(world, main.rounds[-1].milp_status if main.rounds else "no pools"))
    notes: list[str] = []
    chosen = found[0]
    for label in found[1:]:
        if (_better(searches[label].best[2], searches[chosen].best[2],  # type: ignore[index]
                    searches[label].best[1], searches[chosen].best[1])  # type: ignore[index]
                and (not searches[label].best[2].verified  # type: ignore[index]
                     or meets_every_draw(world, backend, searches[label], workers))):
            chosen = label
    # The answer over the whole horizon, when the main search simulated it beside the further draws.
    full_run = main.full if chosen == "main" else None
    if chosen != "main":
        # NOTE: the MILP's flex costs are estimates; when a restricted plan simulates cheaper (or
        # alone meets the SLO), it is the better answer and the mix is reported as a round.
        if main.best is not None:
            m = main.best[2]
            notes.append(
                f"the mix the MILP chose ({describe(main.best[1])}) simulated at "
                f"${m.cost_per_month_usd:,.2f}/month with {_fmt_pct(m.slo_attainment)} SLO attainment; "
                f"the {_PLAN_NAMES.get(chosen, chosen)} plan does better in simulation and is the answer"
            )
        searches["main"] = _Search(
            best=searches[chosen].best, rounds=main.rounds, factors=main.factors,
            solve_s=main.solve_s, sim_s=main.sim_s, scenario_runs=searches[chosen].scenario_runs,
        )
        main = searches["main"]
    result, entries, run, arts, inputs = main.best  # type: ignore[misc]  # not None: chosen is in found
    scenario_runs = list(main.scenario_runs)
    final_sim_s = 0.0
    # The draws the answer was not simulated on yet (a reference plan was simulated on the run's
    # own draw only): simulated now, beside the whole horizon's run when the rounds used a sample
    # and the main search did not simulate it already.
    missing = [d for d in world.draws if d.scenario >= len(scenario_runs)] if run.simulated and scenario_runs else []
    full = world.sample is not None and run.simulated and full_run is None
    sampled = run
    if full or missing:
        t1 = time.perf_counter()
        horizon_s = float(workload.horizon_s)
        report = None if progress is None else (
            lambda x: progress("simulated seconds of the horizon", x * horizon_s, horizon_s))
        jobs = ([(inputs, result, entries, None, None)] if full else []) + [
            (inputs, result, entries, d, world.sample) for d in missing]
        runs = verify_many(world, backend, jobs, workers=workers, progress=report)
        final_sim_s = time.perf_counter() - t1
        if full and not isinstance(runs[0], NotSimulable):
            full_run = runs[0]
        for d, done in zip(missing, runs[1:] if full else runs):
            r = done[0] if not isinstance(done, NotSimulable) else None
            scenario_runs.append(ScenarioRun(
                scenario=d.scenario, seed=d.seed, simulated_on=r.simulated_on if r else "not simulated",
                slo_attainment=r.slo_attainment if r else None, cost_per_month_usd=r.cost_per_month_usd if r else 0.0))
    if full_run is not None:
        run, arts = full_run
        scenario_runs[0] = scenario_runs[0].model_copy(update={
            "simulated_on": run.simulated_on, "slo_attainment": run.slo_attainment,
            "cost_per_month_usd": run.cost_per_month_usd})
    if full or full_run is not None or missing:
        others_ok = all(r.slo_attainment is not None and r.slo_attainment >= profile.slo.attainment
                        for r in scenario_runs[1:])
        run = run.model_copy(update={"verified": run.verified and others_ok})
        if full_run is not None and world.sample is not None:
            notes.append(
                f"verification: the plan was simulated over the whole horizon once ({run.slo_attainment:.1%} SLO "
                f"attainment, ${run.cost_per_month_usd:,.2f}/month); refinement rounds, the other traffic draws and "
                f"the reference plans on {world.sample.describe()} (there: {_fmt_pct(sampled.slo_attainment)}, "
                f"${sampled.cost_per_month_usd:,.2f}/month)"
            )
    rounds = main.rounds
    alts = _alternatives(world, searches)
    solve_s = sum(x.solve_s for x in searches.values())
    sim_s = sum(x.sim_s for x in searches.values()) + final_sim_s
    # Every plan in the report counts for the assumptions: the answer's, then the alternatives'.
    plan_items, alt_items = _assumptions(world, backend, entries, [e for a in alts for e in a.plan])
    deploy = [_deploy(world, backend, e) for e in entries]
    if world.measured and world.profile.capacity is not None:
        measured_gpus = sorted({e.gpu for e in world.profile.capacity.entries})
        ignored = sorted(set(world.profile.candidates.gpus) - set(measured_gpus))
        if ignored:
            notes.append(
                f"capacities come from the profile's capacity section, which measures {', '.join(measured_gpus)} "
                f"only; candidates {', '.join(ignored)} were not considered (remove the capacity section "
                "to simulate every candidate)"
            )
    if not run.simulated:
        notes.append(
            f"the plan was not simulated ({run.not_simulated_reason}): its cost is the MILP's and its "
            "SLO attainment is unverified; add the GPUs to the catalog (gpu_catalog/) to verify it"
        )
    elif not run.verified:
        attained = run.slo_attainment or 0.0
        short = (f"reached {attained:.1%} SLO attainment in simulation, below the "
                 f"{world.profile.slo.attainment:.0%} target" if attained < world.profile.slo.attainment
                 else f"missed the SLO's p99 limits in simulation ({'; '.join(run.p99_limits_missed)})")
        notes.append(
            f"the plan {short}, after {len(rounds)} round(s): raise "
            "optimizer.max_rounds, lower optimizer.headroom, or relax the SLO"
        )
    out = OptimizeResult(
        profile=profile.name,
        model=profile.model.name,
        seed=seed,
        plan=entries,
        flex_workers={e.endpoint: e.flex_workers_per_level for e in entries if e.billing == "serverless"},
        cost_usd=run.cost_usd,
        cost_per_month_usd=run.cost_per_month_usd,
        milp_cost_usd=float(result.cost_usd or 0.0),
        usd_per_million_output_tokens=run.usd_per_million_output_tokens,
        slo_attainment=run.slo_attainment,
        slo_target=profile.slo.attainment,
        verified=run.verified,
        rounds=rounds,
        alternatives=alts,
        solve_seconds=solve_s,
        capacity_seconds=capacity_seconds,
        simulate_seconds=sim_s,
        wall_seconds=time.perf_counter() - started,
        horizon_s=float(workload.horizon_s),
        users=users,
        buckets=world.bucket_names,
        capacities=[c.model_dump() for c in world.capacity_results],
        candidates=[c.model_dump() for c in world.checks],
        demand=world.series,
        verification=run,
        assumptions=render_lines(plan_items),
        alternative_assumptions=render_lines(alt_items),
        assumption_items=plan_items,
        alternative_assumption_items=alt_items,
        deploy=deploy,
        notes=notes,
        slo_ttft_seconds=profile.slo.ttft_seconds,
        slo_tpot_seconds=profile.slo.tpot_seconds,
        headroom=profile.optimizer.headroom,
        demand_percentile=profile.optimizer.demand_percentile,
        deploy_settings=[DeploySettings.model_validate(d) for d in deploy],
        slo_ttft_p99_seconds=profile.slo.ttft_p99_seconds,
        slo_tpot_p99_seconds=profile.slo.tpot_p99_seconds,
        description=profile.description,
        planner_version=__version__,
        finance=plan_finance(profile, float(workload.horizon_s), *_traffic(workload, run), inputs,
                             result.cost_per_month_usd, run.cost_per_month_usd),
        solver=SolverStatus(
            solver=result.solver, status=result.status, proven_optimal=result.proven_optimal,
            time_limited=result.time_limited, gap=result.gap, best_bound_usd=result.best_bound_usd,
            model_scope=result.model_scope, text=result.status_text,
            num_variables=result.num_variables, num_constraints=result.num_constraints,
        ),
        scenarios=summarize_scenarios(scenario_runs, profile.slo.attainment) if scenario_runs else None,
        pod_schedule=inputs.pod_schedule,
    )
    return out, arts


DEMAND_DRAWS = 8
"""Traffic draws the MILP's demand is averaged over (the first optimizer.scenarios are also verified)."""
DEMAND_DRAW_REQUESTS = 2_000_000
"""At most this many requests are generated for the demand-only draws (a week gets none)."""


def scenario_seeds(seed: int, num_scenarios: int) -> list[int]:
    """The run's seed, then one independent seed per further traffic draw (numpy's SeedSequence)."""
    import numpy as np  # noqa: PLC0415

    spawned = np.random.SeedSequence(seed).spawn(max(0, num_scenarios - 1))
    return [seed] + [int(s.generate_state(1)[0]) for s in spawned]


def summarize_scenarios(runs: list[ScenarioRun], target: float) -> ScenarioSummary:
    """Min / median / max of the chosen plan's attainment and cost over the draws."""
    import statistics  # noqa: PLC0415

    att = [r.slo_attainment for r in runs if r.slo_attainment is not None]
    cost = [r.cost_per_month_usd for r in runs]
    return ScenarioSummary(
        num_scenarios=len(runs), runs=runs,
        slo_attainment_min=min(att) if att else None,
        slo_attainment_median=statistics.median(att) if att else None,
        slo_attainment_max=max(att) if att else None,
        cost_per_month_usd_min=min(cost), cost_per_month_usd_median=statistics.median(cost),
        cost_per_month_usd_max=max(cost),
        met_on_all=bool(att) and len(att) == len(runs) and min(att) >= target,
    )


