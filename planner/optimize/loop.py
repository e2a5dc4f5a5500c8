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
from planner.optimize.search import _better, _run_searches, _Search
from planner.optimize.world import _deploy, _infeasible_message, _prepare


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
) -> tuple[OptimizeResult, PlanArtifacts]:
    """Cheapest fleet under the profile's SLO, verified by simulation (the main command).

    Args:
        profile: a loaded Profile.
        seed: traffic and simulation seed (None: the profile's traffic.seed).
        workers: processes for the capacity simulations.
        cache_dir: capacity cache folder (None: the user cache folder); use_cache False: no cache.
        backend: stand-ins for the simulator, catalog and prices (tests).
        workload: the requests to plan for (None: generated from the profile).
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
    if workload is None and profile.traffic.closed_loop:
        workload = closed_loop_for_plan(profile, seed)  # N users: capacities and demand in users
    if workload is None:
        from planner.traffic import generate_workload  # noqa: PLC0415

        workload = generate_workload(profile, seed)
    users = getattr(workload, "users", None)
    if users is None and len(workload) == 0:
        raise PlannerError("the profile's traffic has no requests over the horizon: raise the rate or the horizon")
    cache = capacity.CapacityCache(None if not use_cache else (cache_dir or capacity.default_cache_dir()))
    t0 = time.perf_counter()
    world = _prepare(profile, workload, seed, workers, cache, backend)
    capacity_seconds = time.perf_counter() - t0

    searches = _run_searches(world, backend, workers)
    main = searches["main"]
    found = [label for label in ("main", "single_gpu_pods", "all_serverless")
             if searches.get(label) is not None and searches[label].best is not None]
    if not found:
        raise PlannerError(_infeasible_message(world, main.rounds[-1].milp_status if main.rounds else "no pools"))
    notes: list[str] = []
    chosen = found[0]
    for label in found[1:]:
        if _better(searches[label].best[2], searches[chosen].best[2]):  # type: ignore[index]
            chosen = label
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
            solve_s=main.solve_s, sim_s=main.sim_s,
        )
        main = searches["main"]
    result, entries, run, arts, inputs = main.best  # type: ignore[misc]  # not None: chosen is in found
    rounds = main.rounds
    alts = _alternatives(world, searches)
    solve_s = sum(x.solve_s for x in searches.values())
    sim_s = sum(x.sim_s for x in searches.values())
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
    )
    return out, arts


