"""The fleet optimizer: a PuLP mixed-integer program choosing GPUs, billing and routing.

This is the only module that knows PuLP. Its inputs are plain numbers that other modules derive
(capacities from `planner.capacity`, demand per time slot from `planner.optimize.demand`, prices from the
catalog): `build_model(inputs)` turns them into a named MILP, `solve(inputs)` runs CBC quietly and
returns a `SolverResult` carrying the solver status. The verify-and-refine loop that wraps the
solver around the simulator is `planner.optimize.loop.plan` (it needs the simulator and the workload).

Formulation (docs/optimizer.md has it in full, with every constraint named):

  pools p      one way of buying replicas of a (GPU, tensor_parallel_size): "pod" (rented for the
               whole horizon), "active" (serverless worker kept warm for the horizon) or "flex"
               (serverless worker started when traffic arrives, billed while it runs).
  buckets b    request-size classes (prompt/output token ranges) with their own capacities.
  slots t      time slots over the horizon (default one hour).

  n_p          integer replicas of pod/active pool p for the whole horizon
  f_p,t        integer flex replicas of pool p running during slot t's busy periods
  r_b,p,t >= 0 requests/s of bucket b routed to pool p in slot t (continuous routing)

  minimise  sum_p n_p c_p H + sum_p,t f_p,t c_p (busy_t + bursts_t cold_p)
  s.t.      demand_b,t:   sum_p r_b,p,t = D_b,t
            capacity_p,t: sum_b r_b,p,t / cap_p,b <= headroom * replicas_p,t
            plus the optional limits (max GPUs of a type, max serverless workers, min replicas,
            monthly budget).

Continuous routing is what separates this from Mélange (Griggs et al. 2024), which slices each
bucket into a few discrete pieces and assigns each piece whole to one GPU type.
"""

from __future__ import annotations

import time
import warnings
from typing import Literal

import pulp
from pydantic import BaseModel, ConfigDict, Field, computed_field

from planner.billing import SECONDS_PER_MONTH, per_month
from planner.errors import PlannerError

Billing = Literal["pod", "active", "flex"]


def endpoint_name(gpu_id: str, tensor_parallel_size: int) -> str:
    """The id of a (GPU, TP) candidate, e.g. "l40s-tp1": its pods and serverless endpoint share it."""
    return f"{gpu_id}-tp{tensor_parallel_size}"


def pool_name(endpoint: str, billing: str) -> str:
    """The id of one way of buying an endpoint's replicas, e.g. "l40s-tp1-flex" (`Pool.name`)."""
    return f"{endpoint}-{billing}"


class Pool(BaseModel):
    """One way of buying replicas of a (GPU, tensor_parallel_size) candidate.

    A serverless endpoint appears as two pools (billing "active" and "flex") that share
    `endpoint`, so limits on serverless workers apply to their sum.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu_id: str
    tensor_parallel_size: int = Field(1, ge=1)
    billing: Billing
    capacity_per_s: dict[str, float] = Field(
        description="bucket -> max requests/s one replica sustains under the SLO serving only "
        "that bucket (0 or missing: cannot serve it)"
    )
    usd_per_replica_s: float = Field(ge=0, description="price of one replica (all its GPUs), USD/s")
    scale_up_s: float = Field(
        0.0, ge=0, description="flex only: seconds billed per scale-up (cold start + idle timeout)"
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def name(self) -> str:
        return pool_name(self.endpoint, self.billing)

    @property
    def endpoint(self) -> str:
        return endpoint_name(self.gpu_id, self.tensor_parallel_size)


class SlotDemand(BaseModel):
    """The demand the fleet must carry for `duration_s` seconds of one time slot.

    A slot may be split into demand levels (its load-duration curve, see
    `planner.optimize.demand.slot_demands`): each level is a SlotDemand of its own whose duration is the
    time the slot spends at that level. Pods and active workers are the same in every level; flex
    workers can differ.
    """

    model_config = ConfigDict(extra="forbid")

    start_s: float = Field(description="start of the time slot the level belongs to")
    slot: int = Field(0, ge=0, description="index of the time slot")
    level: int = Field(0, ge=0, description="0 = the slot's peak level")
    duration_s: float = Field(gt=0)
    rate_per_s: dict[str, float] = Field(
        description="bucket -> requests/s to provision for (a high percentile of one-minute rates)"
    )
    busy_s: float = Field(
        ge=0, description="seconds of the slot with traffic (flex workers stay up this long)"
    )
    num_bursts: int = Field(0, ge=0, description="busy periods starting in the slot (scale-ups)")


class Limits(BaseModel):
    """Optional limits on the fleet (None = no limit)."""

    model_config = ConfigDict(extra="forbid")

    max_gpus: dict[str, int] = Field(default_factory=dict, description="gpu id -> max GPUs")
    max_serverless_workers: int | None = Field(None, ge=0, description="per serverless endpoint")
    min_replicas: int = Field(0, ge=0, description="always-on replicas (pods + active workers)")
    budget_usd_per_month: float | None = Field(None, gt=0)


class MilpInputs(BaseModel):
    """Everything the integer program needs, in SI units."""

    model_config = ConfigDict(extra="forbid")

    pools: list[Pool]
    slots: list[SlotDemand]
    headroom: float = Field(0.9, gt=0, le=1.0, description="max planned utilization of capacity")
    limits: Limits = Field(default_factory=Limits)

    @property
    def horizon_s(self) -> float:
        return sum(s.duration_s for s in self.slots)

    @property
    def buckets(self) -> list[str]:
        seen: dict[str, None] = {}
        for s in self.slots:
            for b in s.rate_per_s:
                seen.setdefault(b, None)
        return list(seen)


class PoolUse(BaseModel):
    """How much of one pool the solution buys."""

    gpu_id: str
    tensor_parallel_size: int
    billing: Billing
    count: int = Field(description="pod/active: replicas for the horizon; flex: peak replicas")
    flex_per_slot: list[int] = Field(default_factory=list, description="flex replicas per slot")
    cost_usd: float
    routed_share: dict[str, float] = Field(
        default_factory=dict, description="bucket -> share of that bucket's provisioned demand"
    )


class SolverResult(BaseModel):
    """The MILP's answer; `status` is PuLP's status string ("Optimal", "Infeasible", ...)."""

    status: str
    cost_usd: float | None = None
    cost_per_month_usd: float | None = None
    pools: list[PoolUse] = Field(default_factory=list)
    routing: list[dict[str, dict[str, float]]] = Field(
        default_factory=list, description="per slot level: bucket -> pool name -> requests/s"
    )
    solve_seconds: float = 0.0
    num_variables: int = 0
    num_constraints: int = 0

    @property
    def optimal(self) -> bool:
        return self.status == "Optimal"


def _safe(name: str) -> str:
    """PuLP names may not contain spaces or dashes' friends; keep them readable."""
    return "".join(ch if ch.isalnum() else "_" for ch in name)


class _Model:
    """The PuLP problem and its variables keyed by domain names."""

    def __init__(self, prob: pulp.LpProblem) -> None:
        self.prob = prob
        self.n: dict[str, pulp.LpVariable] = {}  # pool name -> replicas for the horizon
        self.f: dict[tuple[str, int], pulp.LpVariable] = {}  # (pool name, slot) -> flex replicas
        self.r: dict[tuple[str, str, int], pulp.LpVariable] = {}  # (bucket, pool, slot) -> req/s
        self.cost_terms: dict[str, pulp.LpAffineExpression] = {}  # pool name -> USD expression


def _check_inputs(inputs: MilpInputs) -> None:
    if not inputs.slots:
        raise PlannerError("the optimizer got no time slots: the horizon is empty")
    names = [p.name for p in inputs.pools]
    if len(set(names)) != len(names):
        raise PlannerError(f"duplicate candidate pools: {sorted(names)}")
    for b in inputs.buckets:
        if all(s.rate_per_s.get(b, 0.0) <= 0 for s in inputs.slots):
            continue
        if not any(p.capacity_per_s.get(b, 0.0) > 0 for p in inputs.pools):
            raise PlannerError(
                f"no candidate can serve request bucket {b!r} under the SLO: allow larger "
                "tensor_parallel_size or bigger GPUs, quantize the model, or relax the SLO"
            )


def build_model(inputs: MilpInputs) -> _Model:
    """Build the named MILP (see the module docstring); solve it with `solve`."""
    _check_inputs(inputs)
    prob = pulp.LpProblem("planner_fleet", pulp.LpMinimize)
    m = _Model(prob)
    horizon_s = inputs.horizon_s
    buckets = inputs.buckets
    num_slots = len(inputs.slots)

    for p in inputs.pools:
        if p.billing == "flex":
            for t in range(num_slots):
                m.f[p.name, t] = prob.add_variable(f"flex_{_safe(p.name)}_t{t}", 0, cat="Integer")
            m.cost_terms[p.name] = pulp.lpSum(
                m.f[p.name, t]
                * p.usd_per_replica_s
                * (s.busy_s + s.num_bursts * p.scale_up_s)
                for t, s in enumerate(inputs.slots)
            )
        else:
            m.n[p.name] = prob.add_variable(f"n_{_safe(p.name)}", 0, cat="Integer")
            m.cost_terms[p.name] = m.n[p.name] * p.usd_per_replica_s * horizon_s
        for b in buckets:
            if p.capacity_per_s.get(b, 0.0) <= 0:
                continue
            for t, s in enumerate(inputs.slots):
                if s.rate_per_s.get(b, 0.0) > 0:
                    m.r[b, p.name, t] = prob.add_variable(
                        f"route_{_safe(b)}_{_safe(p.name)}_t{t}", 0
                    )

    total_cost = pulp.lpSum(m.cost_terms.values())
    prob += total_cost, "total_usd_for_horizon"

    def replicas(p: Pool, t: int) -> pulp.LpAffineExpression:
        return m.f[p.name, t] if p.billing == "flex" else m.n[p.name]

    # demand_b,t: every request/s of every bucket goes somewhere.
    for t, s in enumerate(inputs.slots):
        for b, rate in s.rate_per_s.items():
            if rate <= 0:
                continue
            prob += (
                pulp.lpSum(m.r[b, p.name, t] for p in inputs.pools if (b, p.name, t) in m.r)
                == rate,
                f"demand_{_safe(b)}_t{t}",
            )
    # capacity_p,t: the routed load, in replicas, stays under headroom x replicas.
    for p in inputs.pools:
        for t in range(num_slots):
            load = pulp.lpSum(
                m.r[b, p.name, t] / p.capacity_per_s[b] for b in buckets if (b, p.name, t) in m.r
            )
            prob += load <= inputs.headroom * replicas(p, t), f"capacity_{_safe(p.name)}_t{t}"

    _add_limits(inputs, m)
    return m


def _add_limits(inputs: MilpInputs, m: _Model) -> None:
    lim = inputs.limits
    prob = m.prob
    num_slots = len(inputs.slots)
    for gpu_id, max_gpus in lim.max_gpus.items():
        for t in range(num_slots):
            gpus = pulp.lpSum(
                p.tensor_parallel_size * (m.f[p.name, t] if p.billing == "flex" else m.n[p.name])
                for p in inputs.pools
                if p.gpu_id == gpu_id
            )
            prob += gpus <= max_gpus, f"max_gpus_{_safe(gpu_id)}_t{t}"
    if lim.max_serverless_workers is not None:
        endpoints = {p.endpoint for p in inputs.pools if p.billing != "pod"}
        for ep in sorted(endpoints):
            for t in range(num_slots):
                workers = pulp.lpSum(
                    m.f[p.name, t] if p.billing == "flex" else m.n[p.name]
                    for p in inputs.pools
                    if p.billing != "pod" and p.endpoint == ep
                )
                prob += workers <= lim.max_serverless_workers, f"max_workers_{_safe(ep)}_t{t}"
    if lim.min_replicas > 0:
        always_on = pulp.lpSum(m.n.values())
        prob += always_on >= lim.min_replicas, "min_replicas"
    if lim.budget_usd_per_month is not None:
        budget_horizon = lim.budget_usd_per_month * inputs.horizon_s / SECONDS_PER_MONTH
        prob += pulp.lpSum(m.cost_terms.values()) <= budget_horizon, "budget"


def solve(inputs: MilpInputs, *, time_limit_s: float | None = 30.0) -> SolverResult:
    """Build and solve the MILP with CBC (quiet); the result carries the solver's status.

    Args:
        inputs: pools, slots, headroom and limits.
        time_limit_s: CBC's wall-clock limit (None = no limit); on hitting it the best integer
            solution found is returned with status "Optimal" only if CBC proved it.
    Returns:
        SolverResult: status and, when a solution exists, the pools bought and their costs.
    """
    started = time.perf_counter()
    m = build_model(inputs)
    with warnings.catch_warnings():
        # NOTE: PuLP 3.3 flags its bundled CBC as deprecated in favour of a separately installed
        # one; the bundled binary is the one every install has, so keep it and stay quiet.
        warnings.simplefilter("ignore", DeprecationWarning)
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s)
        m.prob.solve(solver)
    elapsed = time.perf_counter() - started
    status = pulp.LpStatus[m.prob.status]
    result = SolverResult(
        status=status,
        solve_seconds=elapsed,
        num_variables=len(m.prob.variables()),
        num_constraints=m.prob.numConstraints(),
    )
    if status != "Optimal":
        return result
    uses: list[PoolUse] = []
    for p in inputs.pools:
        cost = float(pulp.value(m.cost_terms[p.name]) or 0.0)
        if p.billing == "flex":
            per_slot = [int(round(m.f[p.name, t].value() or 0)) for t in range(len(inputs.slots))]
            count = max(per_slot, default=0)
        else:
            per_slot = []
            count = int(round(m.n[p.name].value() or 0))
        shares = _routed_shares(inputs, m, p)
        if count == 0 and not any(v > 1e-9 for v in shares.values()):
            continue
        uses.append(
            PoolUse(
                gpu_id=p.gpu_id,
                tensor_parallel_size=p.tensor_parallel_size,
                billing=p.billing,
                count=count,
                flex_per_slot=per_slot,
                cost_usd=cost,
                routed_share=shares,
            )
        )
    routing: list[dict[str, dict[str, float]]] = []
    for t, s in enumerate(inputs.slots):
        per_bucket: dict[str, dict[str, float]] = {}
        for b in s.rate_per_s:
            per_bucket[b] = {
                p.name: float(m.r[b, p.name, t].value() or 0.0)
                for p in inputs.pools
                if (b, p.name, t) in m.r and (m.r[b, p.name, t].value() or 0.0) > 1e-12
            }
        routing.append(per_bucket)
    result.routing = routing
    total = sum(u.cost_usd for u in uses)
    result.cost_usd = total
    result.cost_per_month_usd = per_month(total, inputs.horizon_s)
    result.pools = uses
    return result


def _routed_shares(inputs: MilpInputs, m: _Model, p: Pool) -> dict[str, float]:
    """bucket -> share of the bucket's provisioned requests (rate x slot length) sent to p."""
    shares: dict[str, float] = {}
    for b in inputs.buckets:
        total = sum(s.rate_per_s.get(b, 0.0) * s.duration_s for s in inputs.slots)
        if total <= 0:
            continue
        routed = sum(
            (m.r[b, p.name, t].value() or 0.0) * s.duration_s
            for t, s in enumerate(inputs.slots)
            if (b, p.name, t) in m.r
        )
        if routed > 0:
            shares[b] = routed / total
    return shares

