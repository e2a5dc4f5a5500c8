"""Solve-and-verify searches: the MILP under limits, verified by simulation, refined; run in forked workers."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from planner.errors import PlannerError
from planner.optimize.backend import PlanningBackend
from planner.optimize.milp import (
    Limits,
    MilpInputs,
    Pool,
    SolverResult,
    endpoint_name,
    pool_name,
    prune_dominated,
    solve,
)
from planner.optimize.result import (
    FleetRun,
    PlanArtifacts,
    PlanEntry,
    RoundReport,
    ScenarioRun,
    cost_line,
    describe,
)
from planner.optimize.draws import Draw, Sample
from planner.optimize.verify import NotSimulable, unsimulated_run, verify_many
from planner.optimize.world import Progress, _entries, _milp_inputs, _World, day_period_slots


@dataclass
class _Search:
    """Rounds of solve-then-verify over a subset of the pools."""

    best: tuple[SolverResult, list[PlanEntry], FleetRun, PlanArtifacts, MilpInputs] | None = None
    rounds: list[RoundReport] = field(default_factory=list)
    factors: dict[str, float] = field(default_factory=dict)  # pool name -> capacity factor
    price_factors: dict[str, float] = field(default_factory=dict)  # pool name -> price factor
    flex_simulated: set[str] = field(default_factory=set)  # flex pools whose billing a round simulated
    solve_s: float = 0.0
    sim_s: float = 0.0
    note: str | None = None
    scenario_runs: list[ScenarioRun] = field(default_factory=list)  # the best plan on each draw simulated
    # The best plan on the run's own draw over the whole horizon, when the rounds simulate a sample
    # and it was simulated beside the further draws (None: not simulated yet).
    full: tuple[FleetRun, PlanArtifacts] | None = None


def solve_for(world: _World, inputs: MilpInputs) -> SolverResult:
    """The MILP as the profile asks: its gap and time limit, dominated pods left out (exact), and
    the typical-day reduction when the horizon has several alike days."""
    opt = world.profile.optimizer
    pruned, _ = prune_dominated(inputs)
    return solve(pruned, time_limit_s=opt.solver_time_limit_seconds, gap_rel=opt.mip_gap,
                 period_slots=day_period_slots(world.profile))


def verify_draws(
    world: _World, inputs: MilpInputs, result: SolverResult, entries: list[PlanEntry], backend: PlanningBackend,
    draws: Sequence[Draw | None], *, workers: int = 1, with_full: bool = False,
    progress: Callable[[float], None] | None = None, reuse: bool = False,
) -> tuple[FleetRun, PlanArtifacts, list[ScenarioRun], tuple[FleetRun, PlanArtifacts] | None]:
    """The plan simulated on the given traffic draws (None: the run's own), on the world's sample,
    their endpoints side by side over `workers` processes.

    The run returned is the first draw's (its cost, its arrays), with the worst attainment of the
    draws, `verified` only when every draw met the target, and the endpoints of the worst draw
    that missed (what the next round tightens). `with_full` (and a sample): the run's own draw over
    the whole horizon is simulated beside them and returned last (else None). `reuse`: as in
    `verify_many` (a round's own verification).
    """
    jobs: list[tuple[MilpInputs, SolverResult, Sequence[PlanEntry], Draw | None, Sample | None]] = [
        (inputs, result, entries, draw, world.sample) for draw in draws]
    with_full = with_full and world.sample is not None
    if with_full:
        jobs.append((inputs, result, entries, None, None))
    done = verify_many(world, backend, jobs, workers=workers, progress=progress, reuse=reuse)
    runs: list[tuple[FleetRun, PlanArtifacts]] = []
    for out in done[:len(draws)]:
        if isinstance(out, NotSimulable):
            return (*unsimulated_run(world, inputs, result, str(out)), [], None)
        runs.append(out)
    full = done[-1] if with_full and not isinstance(done[-1], NotSimulable) else None
    scenario_runs = [
        ScenarioRun(scenario=d.scenario if d else 0, seed=d.seed if d else world.seed, simulated_on=r.simulated_on,
                    slo_attainment=r.slo_attainment, cost_per_month_usd=r.cost_per_month_usd)
        for d, (r, _) in zip(draws, runs)
    ]
    run, arts = runs[0]
    return _worst_of(run, [r for r, _ in runs]), arts, scenario_runs, full


def _percent(progress: Progress | None, phase: str) -> Callable[[float], None] | None:
    """A fraction-done callback drawn as the phase's percent (None: no progress wanted)."""
    if progress is None:
        return None
    label = f"{phase} (% of requests)"
    return lambda x: progress(label, round(100.0 * x, 1), 100.0)


def _worst_of(run: FleetRun, runs: Sequence[FleetRun]) -> FleetRun:
    """`run` (its cost) with the worst attainment of `runs`, verified only when all are, and the
    endpoints of the worst run that missed."""
    attainments = [r.slo_attainment for r in runs if r.slo_attainment is not None]
    if not attainments:
        return run
    missed = [r for r in runs if not r.verified]
    update: dict[str, object] = {"slo_attainment": min(attainments), "verified": run.verified and not missed}
    if missed:
        update["endpoints"] = min(missed, key=lambda r: r.slo_attainment or 0.0).endpoints
    return run.model_copy(update=update)


def _solve_verify(
    world: _World, backend: PlanningBackend, keep: Callable[[Pool], bool], *, limits: Limits | None = None,
    max_rounds: int | None = None, all_draws: bool = True, workers: int = 1,
    progress: Progress | None = None,
) -> _Search:
    """Solve, simulate the plan, tighten the capacity of what missed the SLO, solve again.

    With `all_draws`, a plan that meets the SLO on the run's own draw is simulated on the further
    draws and, when the rounds simulate a sample of days, over the whole horizon beside them (the
    answer's figures; wasted only if a further draw misses). The simulations use `workers`
    processes; `progress` gets each round's simulations, in percent of their requests.

    A verified plan whose flex workers billed over 15% more than the MILP priced them is priced
    again: those pools at their simulated ratio, the flex pools no round simulated yet at the
    mildest such ratio.

    A pool that missed is tightened: an endpoint's flex workers when it has any
    (their cold starts are what capacity alone does not see; then every flex pool, as all wait
    out the same cold starts), else its pods; x0.85 for a small shortfall, x0.7 for a large one.
    The best verified plan (else the best attainment) wins.
    """
    search = _Search()
    max_rounds = max_rounds or int(getattr(world.profile.optimizer, "max_rounds", 3))
    target = world.profile.slo.attainment
    for rnd in range(1, max_rounds + 1):
        inputs = _milp_inputs(world, search.factors, backend, search.price_factors)
        pools = [p for p in inputs.pools if keep(p)]
        if not pools:
            search.note = "no candidate offers this billing mode (prices or candidates.billing)"
            break
        inputs = inputs.model_copy(update={"pools": pools, **({"limits": limits} if limits else {})})
        try:
            result = solve_for(world, inputs)
        except PlannerError as err:
            search.note = str(err)
            break
        search.solve_s += result.solve_seconds
        if not result.optimal:
            search.rounds.append(RoundReport(
                round=rnd, milp_status=result.status, milp_cost_per_month_usd=None, cost_per_month_usd=None,
                slo_attainment=None, verified=False, plan="no plan", solve_seconds=result.solve_seconds,
                milp_status_text=result.status_text,
            ))
            break
        entries = _entries(result, inputs, world)
        t1 = time.perf_counter()
        run, arts, scenario_runs, _ = verify_draws(world, inputs, result, entries, backend,
                                                   world.draws[:1] or [None], workers=workers, reuse=True,
                                                   progress=_percent(progress, f"round {rnd}: the plan on the run's draw"))
        repriced = _repricing(search, result, run) if run.verified else {}
        if run.simulated:
            search.flex_simulated |= set(_flex_cost_ratios(result, run))
        full = None
        if run.verified and not repriced and all_draws and len(world.draws) > 1:
            # The round would end the search: the plan must also meet the SLO on the further draws
            # (simulated only now, not for plans a round replaces anyway).
            more_what = "the further draws" + (" and the whole horizon" if world.sample is not None else "")
            more, _, more_runs, full = verify_draws(world, inputs, result, entries, backend, world.draws[1:],
                                                    workers=workers, with_full=True,
                                                    progress=_percent(progress, f"round {rnd}: {more_what}"))
            scenario_runs += more_runs
            run = _worst_of(run, [run, more]) if more.simulated else run.model_copy(update={"verified": False})
        elapsed = time.perf_counter() - t1
        search.sim_s += elapsed
        report = RoundReport(
            round=rnd, milp_status=result.status, milp_cost_per_month_usd=result.cost_per_month_usd,
            cost_per_month_usd=run.cost_per_month_usd, slo_attainment=run.slo_attainment,
            verified=run.verified, plan=describe(entries), solve_seconds=result.solve_seconds,
            simulate_seconds=elapsed, milp_status_text=f"{result.status_text}; {result.model_scope}",
            simulated_on=run.simulated_on + (f", {len(scenario_runs)} traffic draws" if len(scenario_runs) > 1 else ""),
        )
        search.rounds.append(report)
        if _better(run, search.best[2] if search.best else None, entries, search.best[1] if search.best else None):
            search.best = (result, entries, run, arts, inputs)
            search.scenario_runs = scenario_runs
            search.full = full
        if not run.simulated:
            search.note = f"not simulated ({run.not_simulated_reason}): costs are the MILP's, SLO unverified"
            break
        if run.verified:
            report.repriced.update(repriced)
            if not repriced:
                break
            search.price_factors.update(repriced)
            # The flex pools not simulated yet would meet the same bursts and idle tails: priced
            # up by the mildest ratio seen, the next round cannot move to one that only looks cheaper.
            ratios = _flex_cost_ratios(result, run)
            mildest = min(ratios[name] for name in repriced)
            for p in inputs.pools:
                if p.billing == "flex" and p.name not in search.flex_simulated:
                    search.price_factors[p.name] = search.price_factors.get(p.name, 1.0) * mildest
            continue
        flex_steps: list[float] = []
        for ep in run.endpoints:
            # An endpoint misses when its attainment is short or it exceeds a p99 limit of the SLO.
            if not ep.num_requests or (ep.slo_attainment >= target and not ep.p99_limits_missed):
                continue
            key = endpoint_name(ep.gpu, ep.tensor_parallel_size)
            used = {e.billing for e in entries if e.endpoint == key}
            kind = "flex" if "serverless" in used else "pod"
            step = 0.85 if target - ep.slo_attainment < 0.1 else 0.7  # a p99 miss alone: the small step
            name = pool_name(key, kind)
            search.factors[name] = search.factors.get(name, 1.0) * step
            report.tightened[name] = search.factors[name]
            if kind == "flex":
                flex_steps.append(step)
        if flex_steps:
            # Every flex pool waits out the same cold starts in the same bursts: tightening only
            # the pools that missed sends the next round to an untried flex pool with the same
            # blind spot. The others take the mildest step that a missed flex pool took.
            for p in inputs.pools:
                if p.billing == "flex" and p.name not in report.tightened:
                    search.factors[p.name] = search.factors.get(p.name, 1.0) * max(flex_steps)
                    report.tightened[p.name] = search.factors[p.name]
        if not report.tightened:
            break  # nothing identifiable to tighten
    return search


def meets_every_draw(world: _World, backend: PlanningBackend, search: _Search, workers: int = 1) -> bool:
    """A reference search's best plan (verified on the run's own draw) simulated on the further
    draws too, side by side, before it may replace the main search's answer: the answer must meet
    the SLO on every draw. Fills the search's scenario runs."""
    assert search.best is not None
    result, entries, _, _, inputs = search.best
    missing = [d for d in world.draws if d.scenario >= max(len(search.scenario_runs), 1)]
    if not missing:
        return True
    runs = verify_many(world, backend, [(inputs, result, entries, d, world.sample) for d in missing], workers=workers)
    ok = True
    for d, out in zip(missing, runs):
        r = None if isinstance(out, NotSimulable) else out[0]
        search.scenario_runs.append(ScenarioRun(
            scenario=d.scenario, seed=d.seed, simulated_on=r.simulated_on if r else "not simulated",
            slo_attainment=r.slo_attainment if r else None, cost_per_month_usd=r.cost_per_month_usd if r else 0.0))
        ok = ok and r is not None and r.verified
    return ok


def _better(
    run: FleetRun, best: FleetRun | None, entries: list[PlanEntry] | None = None, best_entries: list[PlanEntry] | None = None,
) -> bool:
    """Verified beats unverified; among verified the cheaper; among unverified the higher attainment.

    Ties (costs within a millionth, or equal attainment) break deterministically: fewer GPU
    types, then fewer GPUs, then the earlier GPU in catalog order (the candidates' order).
    """
    if best is None:
        return True
    if run.verified != best.verified:
        return run.verified
    if run.verified or run.slo_attainment is None or best.slo_attainment is None:
        if abs(run.cost_usd - best.cost_usd) > 1e-6 * max(abs(best.cost_usd), 1e-9):
            return run.cost_usd < best.cost_usd
    elif run.slo_attainment != best.slo_attainment:
        return run.slo_attainment > best.slo_attainment
    if entries is None or best_entries is None:
        return False
    return _tie_key(entries) < _tie_key(best_entries)


def _tie_key(entries: list[PlanEntry]) -> tuple[int, int, list[str]]:
    """(GPU types, GPUs at the peak, GPU ids in order): smaller is preferred among equal plans."""
    return (len({e.gpu for e in entries}), sum(e.gpus for e in entries), sorted(e.gpu for e in entries))


def _repricing(search: _Search, result: SolverResult, run: FleetRun) -> dict[str, float]:
    """flex pool name -> its new price factor, where a verified plan's flex workers cost clearly
    more in simulation than the MILP estimated (more scale-ups, idle tails): priced at what they
    really cost, the next round solves again. Empty: the estimate held."""
    return {name: search.price_factors.get(name, 1.0) * ratio
            for name, ratio in _flex_cost_ratios(result, run).items() if ratio > 1.15}


def _flex_cost_ratios(result: SolverResult, run: FleetRun) -> dict[str, float]:
    """flex pool name -> simulated flex billing / the MILP's flex cost, per endpoint."""
    ratios = {}
    for use in result.pools:
        if use.billing != "flex" or use.cost_usd <= 0:
            continue
        ep = endpoint_name(use.gpu_id, use.tensor_parallel_size)
        simulated = run.cost_lines.get(cost_line(ep, "flex"), 0.0)
        ratios[pool_name(ep, "flex")] = simulated / use.cost_usd
    return ratios


def _search_specs(world: _World, backend: PlanningBackend) -> tuple[dict[str, tuple[str, Limits | None]], float, str | None]:
    """What to search: the mix, the cheapest single GPU type on pods, and all serverless.

    Returns ({label: (pool filter, limits override)}, solver seconds spent ranking, note).
    """
    base = _milp_inputs(world, {}, backend)
    specs: dict[str, tuple[str, Limits | None]] = {"main": ("all", None)}
    if world.limits.min_replicas and not any(p.billing in ("pod", "active") for p in base.pools):
        # Nothing can be always on (no pods allowed, no active-worker price): scale to zero.
        specs["main"] = ("all", world.limits.model_copy(update={"min_replicas": 0}))
    spent = 0.0
    ranked: list[tuple[float, str]] = []
    for pool in base.pools:
        if pool.billing != "pod":
            continue
        try:
            res = solve_for(world, base.model_copy(update={"pools": [pool]}))
        except PlannerError:
            continue  # this GPU cannot serve every bucket alone
        spent += res.solve_seconds
        if res.optimal and res.cost_usd is not None:
            ranked.append((res.cost_usd, pool.name))
    if ranked:
        specs["single_gpu_pods"] = ("pool:" + min(ranked)[1], None)
    limits, note = world.limits, None
    if limits.min_replicas and not any(p.billing == "active" for p in base.pools):
        # Without an active-worker price nothing serverless is always on: scale to zero.
        limits = limits.model_copy(update={"min_replicas": 0})
        note = "optimizer.min_replicas not applied: no active-worker price, flex workers scale to zero"
    specs["all_serverless"] = ("serverless", limits)
    return specs, spent, note


def _keep(spec: str) -> Callable[[Pool], bool]:
    if spec == "all":
        return lambda p: True
    if spec == "serverless":
        return lambda p: p.billing != "pod"
    name = spec.removeprefix("pool:")
    return lambda p: p.name == name


_FORKED: tuple[_World, PlanningBackend, dict[str, tuple[str, Limits | None]]] | None = None


def _reference_in_child(label: str, send: Any) -> None:
    """Forked process: one reference search, on the world inherited through fork (nothing big is
    pickled in); its result (or the error that ended it) sent back at the end, where the parent,
    busy with the main search until then, reads it."""
    import os  # noqa: PLC0415

    from planner.capacity.tasks import die_with_parent  # noqa: PLC0415

    assert _FORKED is not None
    die_with_parent(os.getppid())  # Ctrl-C: the parent reports it; a killed parent takes this one along
    world, backend, specs = _FORKED
    spec, limits = specs[label]
    try:
        found: _Search | Exception = _solve_verify(world, backend, _keep(spec), limits=limits, all_draws=False)
    except Exception as err:  # noqa: BLE001  (re-raised in the parent)
        found = err
    send.send(found)
    send.close()


def _run_searches(world: _World, backend: PlanningBackend, workers: int, progress: Progress | None = None) -> dict[str, _Search]:
    """The three searches: the main one in this process, its simulations over `workers` processes,
    while each reference search (small: one pool or serverless only, the run's own draw) runs in a
    forked process beside it (workers > 1; else all in turn). The operating system shares the
    cores; a reference search that outlasts the main one has a core of its own then."""
    import multiprocessing as mp  # noqa: PLC0415

    global _FORKED
    specs, ranking_s, note = _search_specs(world, backend)
    labels = list(specs)
    others = labels[1:]
    found: dict[str, _Search] = {}
    children: dict[str, tuple[Any, Any]] = {}  # label -> (process, the pipe end it answers on)
    if workers > 1 and others and "fork" in mp.get_all_start_methods():
        ctx = mp.get_context("fork")
        _FORKED = (world, backend, specs)
        try:
            for label in others:
                receive, send = ctx.Pipe(duplex=False)
                child = ctx.Process(target=_reference_in_child, args=(label, send), daemon=True)
                child.start()
                send.close()  # the child holds its own end: EOF here when it dies
                children[label] = (child, receive)
        finally:
            _FORKED = None
    try:
        spec, limits = specs["main"]
        found["main"] = _solve_verify(world, backend, _keep(spec), limits=limits, all_draws=True,
                                      workers=workers, progress=progress)
        if progress is not None:
            progress("plans solved and simulated", 1, len(labels))
        for label in others:
            if label in children:
                child, receive = children[label]
                try:
                    out = receive.recv()
                except EOFError:
                    child.join(5.0)  # its exit code (the pipe closes as it exits)
                    raise PlannerError(
                        f"a reference search process ended without an answer (exit code {child.exitcode}); "
                        "rerun with --workers 1 to search in this process"
                    ) from None
                if isinstance(out, BaseException):
                    raise out
                found[label] = out
            else:
                found[label] = _solve_verify(world, backend, _keep(specs[label][0]), limits=specs[label][1],
                                             all_draws=False)
            if progress is not None:
                progress("plans solved and simulated", len(found), len(labels))
    finally:
        for child, _ in children.values():
            if child.is_alive():
                child.terminate()
            child.join()
    found["main"].solve_s += ranking_s
    if "all_serverless" in found:
        found["all_serverless"].note = found["all_serverless"].note or note
        if found["all_serverless"].best is not None:
            found["all_serverless"].note = note
    return found
