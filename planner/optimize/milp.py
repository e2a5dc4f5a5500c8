"""The fleet optimizer: a PuLP mixed-integer program choosing GPUs, billing, routing and a pod schedule.

This is the only module that knows PuLP. Its inputs are plain numbers that other modules derive
(capacities, demand per time slot and level, prices): `build_model(inputs)` turns them into a
named MILP, `solve(inputs)` runs HiGHS (CBC when highspy is missing) single-threaded with a fixed
seed and no output, and returns a `SolverResult` that says honestly what the solver proved.

Formulation (docs/optimizer.md has it in full, with every constraint named):

  pools p      one way of buying replicas of a (GPU, tensor_parallel_size): "pod" (rented per
               slot on a schedule, or for the whole horizon), "active" (serverless worker kept warm
               for the horizon) or "flex" (serverless worker started when traffic arrives).
  buckets b    request-size classes with their own capacities.
  slots h      time slots (default one hour); each slot has demand levels l (its load-duration
               curve, `SlotDemand.level`) with duration d_l.

  x_p,h        integer pods of pool p in slot h (pod_schedule "per_slot"; "fixed": one n_p)
  u_p,h >= 0   pods started at the start of slot h: u_p,h >= x_p,h - x_p,h-1 (cyclic: the
               horizon repeats), each billed the provisioning delay s_pod
  n_p          integer active workers of pool p for the horizon
  f_p,l        integer flex workers of pool p during level l
  r_b,p,l >= 0 the share of bucket b's requests routed to pool p in level l (continuous
               routing; a share rather than requests/s keeps a tiny rate out of the solver's
               feasibility tolerance, where HiGHS 1.16 returned a dearer plan as optimal)

  minimise  sum_p,h c_p (x_p,h len_h + u_p,h s_pod) + sum_p n_p c_p H
            + sum_p,l f_p,l c_p (busy_l + bursts_l cold_p)
  s.t.      demand_b,l:   sum_p r_b,p,l = 1
            capacity_p,l: sum_b r_b,p,l D_b,l / cap_p,b <= headroom * replicas_p,l
            starts_p,h, min_run_p,h (a started pod runs at least pod_min_run_slots slots),
            and the optional limits (GPUs of a type, serverless workers per endpoint, always-on
            replicas per slot, monthly budget, GPU types, serverless endpoints).

Continuous routing is what separates this from Mélange (Griggs et al. 2024), which slices each
bucket into a few discrete pieces and assigns each piece whole to one GPU type. The pod schedule
with start costs and minimum run times is the unit-commitment model of power-system planning
(minimum up time as in Rajan and Takriti, "Minimum up/down polytopes of the unit commitment
problem with start-up costs", IBM Research Report RC23628, 2005), for identical units pooled.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator

import pulp

from planner.billing import SECONDS_PER_MONTH
from planner.errors import PlannerError
from planner.optimize.milp_types import (
    Billing,
    check_inputs,
    Limits,
    MilpInputs,
    MilpPlan,
    PodSchedule,
    Pool,
    PoolUse,
    SlotDemand,
    SolverName,
    SolverResult,
    endpoint_name,
    even_routing,
    plan_cost,
    pool_name,
    read_solution,
    replica_bound,
    status_text,
)
from planner.optimize.reduce import Reduction, expand, prune_dominated, typical_days

__all__ = ["Billing", "Limits", "MilpInputs", "MilpPlan", "PodSchedule", "Pool", "PoolUse", "Reduction", "SlotDemand",
           "SolverName", "SolverResult", "build_model", "default_solver", "endpoint_name", "plan_cost", "pool_name",
           "prune_dominated", "replica_bound", "solve", "status_text", "typical_days"]

WARM_START_MIN_INTEGERS = 2000  # models with fewer integer variables solve fast without a starting plan
SOLVER_SEED = 0  # HiGHS's random_seed (its default, stated so answers never depend on a changed default)


def _safe(name: str) -> str:
    """PuLP names may not contain spaces or dashes' friends; keep them readable."""
    return "".join(ch if ch.isalnum() else "_" for ch in name)


class _Model:
    """The PuLP problem and its variables keyed by domain names."""

    def __init__(self, prob: pulp.LpProblem) -> None:
        self.prob = prob
        self.n: dict[str, pulp.LpVariable] = {}  # pool name -> replicas for the horizon (active, fixed pods)
        self.x: dict[tuple[str, int], pulp.LpVariable] = {}  # (pod pool, slot) -> scheduled pods
        self.u: dict[tuple[str, int], pulp.LpVariable] = {}  # (pod pool, slot) -> pods started
        self.f: dict[tuple[str, int], pulp.LpVariable] = {}  # (pool name, level index) -> flex replicas
        self.r: dict[tuple[str, str, int], pulp.LpVariable] = {}  # (bucket, pool, level index) -> req/s
        self.cost_terms: dict[str, pulp.LpAffineExpression] = {}  # pool name -> USD expression
        self.slot_of: list[int] = []  # level index -> position of its slot in slot_ids
        self.names: dict[int, str] = {}  # id(pool) -> its name (Pool.name is recomputed on each access)
        self.routed = True  # False: one bucket, routing projected out (see build_model)

    def name(self, p: Pool) -> str:
        key = id(p)
        if key not in self.names:
            self.names[key] = p.name
        return self.names[key]

    def replicas(self, p: Pool, t: int) -> pulp.LpVariable:
        """Replicas of pool p serving level t."""
        name = self.name(p)
        if p.billing == "flex":
            return self.f[name, t]
        if (name, 0) in self.x:
            return self.x[name, self.slot_of[t]]
        return self.n[name]

    def add(self, terms: Iterable[tuple[pulp.LpVariable, float]], sense: int, rhs: float, name: str) -> None:
        """Add sum(coef x var) <sense> rhs, built straight from its terms (lpSum of products is
        several times slower on models of 10,000 variables); repeated variables add up."""
        coefs: dict[pulp.LpVariable, float] = {}
        for var, coef in terms:
            coefs[var] = coefs.get(var, 0.0) + coef
        self.prob.addConstraint(pulp.LpConstraint(pulp.LpAffineExpression(coefs), sense=sense, rhs=rhs), name)


def build_model(inputs: MilpInputs, *, routed: bool | None = None) -> _Model:
    """Build the named MILP (see the module docstring); solve it with `solve`.

    `routed` False (the default with one request-size bucket) leaves the routing variables out:
    with one bucket a level's demand can be routed within headroom exactly when the replicas'
    summed capacity carries it (sum_p headroom cap_p replicas_p,t >= D_t, `demand_b_t`), so the
    model keeps that one row per level instead of a routing variable and a capacity row per pool
    and level (same optimum, a third of the size); the routing is then rebuilt from the
    replicas (`_plan_of`: each replica loaded alike).
    """
    check_inputs(inputs)
    prob = pulp.LpProblem("planner_fleet", pulp.LpMinimize)
    m = _Model(prob)
    if routed is None:
        routed = len(inputs.buckets) != 1
    m.routed = routed
    le, ge, eq = pulp.LpConstraintLE, pulp.LpConstraintGE, pulp.LpConstraintEQ
    horizon_s = inputs.horizon_s
    buckets = inputs.buckets
    slot_ids = inputs.slot_ids
    position = {h: i for i, h in enumerate(slot_ids)}
    m.slot_of = [position[s.slot] for s in inputs.slots]
    slot_len = [0.0] * len(slot_ids)
    for s in inputs.slots:
        slot_len[position[s.slot]] += s.duration_s
    scheduled = inputs.pod_schedule == "per_slot" and len(slot_ids) > 1
    repeats = [w for size, w in inputs.cycle_list() for _ in range(size)]
    if len(repeats) != len(slot_ids):
        raise PlannerError(f"the schedule cycles cover {len(repeats)} slots, the demand has {len(slot_ids)}")
    cost: dict[str, list[tuple[pulp.LpVariable, float]]] = {}

    for p in inputs.pools:
        name = m.name(p)
        bound = replica_bound(inputs, p)
        tag = _safe(name)
        c = p.usd_per_replica_s
        if p.billing == "flex":
            for t in range(len(inputs.slots)):
                m.f[name, t] = prob.add_variable(f"flex_{tag}_t{t}", 0, bound, cat="Integer")
            cost[name] = [(m.f[name, t], c * (s.busy_s + s.num_bursts * p.scale_up_s))
                          for t, s in enumerate(inputs.slots)]
        elif p.billing == "pod" and scheduled:
            for h in range(len(slot_ids)):
                m.x[name, h] = prob.add_variable(f"pods_{tag}_h{h}", 0, bound, cat="Integer")
                m.u[name, h] = prob.add_variable(f"starts_{tag}_h{h}", 0, bound)
            cost[name] = ([(m.x[name, h], c * slot_len[h]) for h in range(len(slot_ids))]
                          + [(m.u[name, h], c * inputs.pod_start_s * repeats[h]) for h in range(len(slot_ids))])
        else:
            m.n[name] = prob.add_variable(f"n_{tag}", 0, bound, cat="Integer")
            cost[name] = [(m.n[name], c * horizon_s)]
        for b in buckets if routed else ():
            if p.capacity_per_s.get(b, 0.0) <= 0:
                continue
            for t, s in enumerate(inputs.slots):
                if s.rate_per_s.get(b, 0.0) > 0:
                    m.r[b, name, t] = prob.add_variable(f"route_{_safe(b)}_{tag}_t{t}", 0, 1)
    m.cost_terms = {name: pulp.LpAffineExpression(terms) for name, terms in cost.items()}
    prob.setObjective(pulp.LpAffineExpression([term for terms in cost.values() for term in terms]))
    prob.objective.name = "total_usd_for_horizon"

    names = [m.name(p) for p in inputs.pools]
    if not routed:
        # demand_b,t with the routing projected out (one bucket): the replicas carry the level.
        for t, s in enumerate(inputs.slots):
            for b, rate in s.rate_per_s.items():
                if rate > 0:
                    m.add(((m.replicas(p, t), inputs.headroom * p.capacity_per_s[b]) for p in inputs.pools
                           if p.capacity_per_s.get(b, 0.0) > 0), ge, rate, f"demand_{_safe(b)}_t{t}")
        _add_cover_cuts(inputs, m)
        if scheduled:
            _add_schedule(inputs, m)
        _add_limits(inputs, m)
        return m
    # demand_b,t: every request/s of every bucket goes somewhere.
    for t, s in enumerate(inputs.slots):
        for b, rate in s.rate_per_s.items():
            if rate <= 0:
                continue
            m.add(((m.r[b, name, t], 1.0) for name in names if (b, name, t) in m.r), eq, 1.0, f"demand_{_safe(b)}_t{t}")
    # capacity_p,t: the routed load, in replicas, stays under headroom x replicas.
    for p, name in zip(inputs.pools, names):
        tag = _safe(name)
        inv = {b: 1.0 / p.capacity_per_s[b] for b in buckets if p.capacity_per_s.get(b, 0.0) > 0}
        for t, s in enumerate(inputs.slots):
            load = [(m.r[b, name, t], s.rate_per_s[b] * v) for b, v in inv.items() if (b, name, t) in m.r]
            m.add(load + [(m.replicas(p, t), -inputs.headroom)], le, 0.0, f"capacity_{tag}_t{t}")
    _add_cover_cuts(inputs, m)
    if scheduled:
        _add_schedule(inputs, m)
    _add_limits(inputs, m)
    return m


def _add_cover_cuts(inputs: MilpInputs, m: _Model) -> None:
    """cover_b_t: valid inequalities that make the LP bound honest about whole replicas.

    Per bucket b and level t the routing implies sum_p (headroom cap_p,b / D_b,t) replicas_p,t >= 1.
    With integer replicas each coefficient may be capped at 1 (a replica that alone carries the
    level counts as a whole cover), which cuts off the LP's "4% of an H100" at a quiet hour and
    leaves every integer plan feasible. (The Chvátal-Gomory rounding of a knapsack cover.)
    """
    for t, s in enumerate(inputs.slots):
        for b, rate in s.rate_per_s.items():
            if rate <= 0:
                continue
            terms = [
                (min(1.0, inputs.headroom * p.capacity_per_s[b] / rate), p) for p in inputs.pools
                if p.capacity_per_s.get(b, 0.0) > 0
            ]
            if any(a < 1.0 for a, _ in terms):
                m.add(((m.replicas(p, t), a) for a, p in terms), pulp.LpConstraintGE, 1.0, f"cover_{_safe(b)}_t{t}")


def _add_schedule(inputs: MilpInputs, m: _Model) -> None:
    """starts_p,h and min_run_p,h, cyclic within each cycle (the horizon repeats: slot 0 follows the last)."""
    first = 0
    ge = pulp.LpConstraintGE
    for size, _ in inputs.cycle_list():
        k = min(inputs.pod_min_run_slots, size)
        for p in inputs.pools:
            name = m.name(p)
            if (name, 0) not in m.x:
                continue
            tag = _safe(name)
            for i in range(size):
                h, prev = first + i, first + (i - 1) % size
                m.add([(m.u[name, h], 1.0), (m.x[name, h], -1.0), (m.x[name, prev], 1.0)], ge, 0.0, f"starts_{tag}_h{h}")
                if k > 1:
                    # A pod started in the last k slots is still running (identical units pooled).
                    started = [(m.u[name, first + (i - j) % size], -1.0) for j in range(k)]
                    m.add([(m.x[name, h], 1.0), *started], ge, 0.0, f"min_run_{tag}_h{h}")
        first += size


def _add_limits(inputs: MilpInputs, m: _Model) -> None:
    lim = inputs.limits
    prob = m.prob
    num_levels = len(inputs.slots)
    le, ge = pulp.LpConstraintLE, pulp.LpConstraintGE
    for gpu_id, max_gpus in lim.max_gpus.items():
        for t in range(num_levels):
            gpus = [(m.replicas(p, t), float(p.tensor_parallel_size)) for p in inputs.pools if p.gpu_id == gpu_id]
            m.add(gpus, le, max_gpus, f"max_gpus_{_safe(gpu_id)}_t{t}")
    serverless_eps = sorted({p.endpoint for p in inputs.pools if p.billing != "pod"})
    if lim.max_serverless_workers is not None:
        for ep in serverless_eps:
            mine = [p for p in inputs.pools if p.billing != "pod" and p.endpoint == ep]
            for t in range(num_levels):
                if len(mine) == 1:  # one pool: a bound on its variable, not a row
                    var = m.replicas(mine[0], t)
                    var.upBound = min(var.upBound, lim.max_serverless_workers)
                    continue
                m.add(((m.replicas(p, t), 1.0) for p in mine), le, lim.max_serverless_workers,
                      f"max_workers_{_safe(ep)}_t{t}")
    if lim.min_replicas > 0:
        # Always-on capacity in every slot (its peak level stands for the slot).
        levels = {m.slot_of[t]: t for t in reversed(range(num_levels))}
        always = [p for p in inputs.pools if p.billing != "flex"]
        for h, t in sorted(levels.items()):
            m.add(((m.replicas(p, t), 1.0) for p in always), ge, lim.min_replicas, f"min_replicas_h{h}")
    if lim.budget_usd_per_month is not None:
        budget_horizon = lim.budget_usd_per_month * inputs.horizon_s / SECONDS_PER_MONTH
        prob += pulp.lpSum(m.cost_terms.values()) <= budget_horizon, "budget"
    if lim.max_gpu_types is not None:
        _add_use_limit(inputs, m, lambda p: p.gpu_id, lim.max_gpu_types, "gpu_type")
    if lim.max_serverless_endpoints is not None:
        _add_use_limit(inputs, m, lambda p: p.endpoint if p.billing != "pod" else None,
                       lim.max_serverless_endpoints, "serverless_endpoint")


def _add_use_limit(inputs: MilpInputs, m: _Model, key: Callable[[Pool], str | None], limit: int, what: str) -> None:
    """At most `limit` distinct keys (GPU ids, serverless endpoints) with any replica: one binary each."""
    used: dict[str, pulp.LpVariable] = {}
    for p in inputs.pools:
        k = key(p)
        if k is None:
            continue
        if k not in used:
            used[k] = m.prob.add_variable(f"uses_{what}_{_safe(k)}", cat="Binary")
        bound = replica_bound(inputs, p)
        tag = _safe(p.name)
        if p.billing == "flex":
            for t in range(len(inputs.slots)):
                m.prob += m.f[p.name, t] <= bound * used[k], f"use_{what}_{tag}_t{t}"
        elif (p.name, 0) in m.x:
            for h in range(len(inputs.slot_ids)):
                m.prob += m.x[p.name, h] <= bound * used[k], f"use_{what}_{tag}_h{h}"
        else:
            m.prob += m.n[p.name] <= bound * used[k], f"use_{what}_{tag}"
    m.prob += pulp.lpSum(used.values()) <= limit, f"max_{what}s"


def default_solver() -> SolverName:
    """HiGHS when highspy is installed (a core dependency), else PuLP's bundled CBC."""
    try:
        import highspy  # noqa: F401, PLC0415
    except ImportError:
        return "cbc"
    return "highs"


@contextlib.contextmanager
def _stdout_to_devnull() -> Iterator[None]:
    """Keep a native library's banner off stdout (`--json` prints only JSON there).

    HiGHS prints its version banner from C++ the first time a solver object is built, whatever
    its output_flag; redirect file descriptor 1 for the solve and flush C's buffers before
    restoring it.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    try:
        yield
    finally:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)


def _highs_class(start: dict[str, float] | None) -> type:
    """PuLP's HiGHS interface, handing HiGHS a starting plan (variable name -> value) when given."""

    class _HiGHS(pulp.HiGHS):
        def callSolver(self, lp: pulp.LpProblem) -> None:  # noqa: N802 (PuLP's name)
            if start:
                import highspy  # noqa: PLC0415

                sol = highspy.HighsSolution()
                sol.col_value = [float(start.get(v.name, 0.0)) for v in lp.variables()]
                sol.value_valid = True
                lp.solverModel.setSolution(sol)
            lp.solverModel.run()

    return _HiGHS


def _run(
    m: _Model, solver: SolverName, time_limit_s: float | None, gap_rel: float, start: dict[str, float] | None = None
) -> dict[str, object]:
    """Solve in place; returns what the solver proved (bound, gap, limit hit)."""
    prob = m.prob
    if solver == "highs":
        highs = _highs_class(start)(msg=False, timeLimit=time_limit_s, threads=1, gapRel=gap_rel, random_seed=SOLVER_SEED)
        with _stdout_to_devnull():
            prob.solve(highs)
        model = prob.solverModel
        info = model.getInfo()
        status = model.getModelStatus()
        import highspy  # noqa: PLC0415

        limited = status in (highspy.HighsModelStatus.kTimeLimit, highspy.HighsModelStatus.kIterationLimit)
        has = info.primal_solution_status == 2  # kSolutionStatusFeasible
        bound = float(info.mip_dual_bound) if math.isfinite(info.mip_dual_bound) else None
        gap = float(info.mip_gap) if math.isfinite(info.mip_gap) else None
        return {"limited": limited, "has": has and prob.status != pulp.LpStatusInfeasible,
                "proven": status == highspy.HighsModelStatus.kOptimal, "bound": bound, "gap": gap}
    with warnings.catch_warnings():
        # NOTE: PuLP 3.3 flags its bundled CBC as deprecated in favour of a separately installed
        # one; the bundled binary is the one every install has, so keep it and stay quiet.
        warnings.simplefilter("ignore", DeprecationWarning)
        cbc = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s, gapRel=gap_rel, threads=1,
                                options=[f"randomCbcSeed {SOLVER_SEED + 1}"])
        prob.solve(cbc)
    has = prob.sol_status in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible)
    proven = prob.sol_status == pulp.LpSolutionOptimal
    return {"limited": has and not proven, "has": has, "proven": proven, "bound": None, "gap": 0.0 if proven else None}


def solve(
    inputs: MilpInputs,
    *,
    time_limit_s: float | None = 30.0,
    solver: SolverName | None = None,
    gap_rel: float = 1e-4,
    period_slots: int | None = None,
) -> SolverResult:
    """Build and solve the MILP; the result says what the solver proved, on which model.

    Args:
        inputs: pools, slots, headroom, limits and the pod schedule's settings.
        time_limit_s: the solver's wall-clock limit (None = no limit); on hitting it the best
            plan found is returned with `proven_optimal` False and the gap when the solver knows it.
        solver: "highs" or "cbc" (None: `default_solver()`); both single-threaded, fixed seed, quiet.
        gap_rel: relative gap at which the solver may call a plan optimal.
        period_slots: slots per day: when given and days repeat (`typical_days`), the reduced
            model is solved and its plan repeated over the horizon (`model_scope` says so).
    Returns:
        SolverResult: status and, when a plan exists, the pools bought and their costs, always
        priced on the full horizon.
    """
    started = time.perf_counter()
    solver = solver or default_solver()
    red = typical_days(inputs, period_slots) if period_slots else None
    model_inputs = red.inputs if red is not None else inputs
    start = _pods_only_start(model_inputs, time_limit_s, gap_rel) if solver == "highs" else None
    m = build_model(model_inputs)
    proof = _run(m, solver, time_limit_s, gap_rel, start)
    result = SolverResult(
        status=pulp.LpStatus[m.prob.status],
        solver=solver,
        has_solution=bool(proof["has"]),
        proven_optimal=bool(proof["proven"]),
        time_limited=bool(proof["limited"]),
        best_bound_usd=proof["bound"],
        gap=proof["gap"],
        model_scope="full horizon" if red is None else f"reduction: {red.description}",
        num_variables=len(m.prob.variables()),
        num_constraints=m.prob.numConstraints(),
    )
    result.status_text = status_text(result, gap_rel)
    if result.has_solution:
        plan = _plan_of(model_inputs, m)
        read_solution(inputs, expand(inputs, red, plan) if red is not None else plan, result)
    result.solve_seconds = time.perf_counter() - started
    return result


def _pods_only_start(inputs: MilpInputs, time_limit_s: float | None, gap_rel: float) -> dict[str, float] | None:
    """A starting plan for a big model: the best plan with pods alone (a much smaller MILP).

    Any pods-only plan is a plan of the whole model (the serverless pools at zero), so HiGHS
    starts from a good incumbent and stops as soon as its bound proves the gap; the answer is
    the whole model's either way.
    """
    pods = [p for p in inputs.pools if p.billing == "pod"]
    integers = sum(len(inputs.slot_ids) if p.billing == "pod" else len(inputs.slots) for p in inputs.pools)
    if not pods or len(pods) == len(inputs.pools) or integers < WARM_START_MIN_INTEGERS:
        return None
    try:
        m = build_model(inputs.model_copy(update={"pools": pods}))
    except PlannerError:
        return None  # pods alone cannot serve some bucket
    proof = _run(m, "highs", time_limit_s, gap_rel)
    if not proof["has"]:
        return None
    return {v.name: float(v.value() or 0.0) for v in m.prob.variables()}


def _value(v: pulp.LpVariable | pulp.LpAffineExpression) -> float:
    return float(pulp.value(v) or 0.0)


def _plan_of(inputs: MilpInputs, m: _Model) -> MilpPlan:
    num_slots = len(inputs.slot_ids)
    plan = MilpPlan()
    for p in inputs.pools:
        if p.billing == "flex":
            plan.f[p.name] = [int(round(_value(m.f[p.name, t]))) for t in range(len(inputs.slots))]
        elif (p.name, 0) in m.x:
            plan.x[p.name] = [int(round(_value(m.x[p.name, h]))) for h in range(num_slots)]
        else:
            plan.n[p.name] = int(round(_value(m.n[p.name])))
    for key, var in m.r.items():
        v = _value(var) * inputs.slots[key[2]].rate_per_s[key[0]]  # the share, in requests/s
        if v > 1e-12:
            plan.r[key] = v
    if not m.routed:
        even_routing(inputs, plan)
    return plan
