"""The fleet MILP's data: its inputs (pools, slot demand levels, limits), its answer, and a plan's cost.

Plain pydantic models and arithmetic, no solver: `planner.optimize.milp` builds and solves the
program from these, `planner.optimize.reduce` shrinks it, the planning loop reads the answer.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from planner.billing import per_month
from planner.errors import PlannerError

Billing = Literal["pod", "active", "flex"]
PodSchedule = Literal["fixed", "per_slot"]
SolverName = Literal["highs", "cbc"]


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
    `planner.demand.slot_demands`): each level is a SlotDemand of its own whose duration is the
    time the slot spends at that level. Pods are the same in every level of a slot, active
    workers in every level of the horizon; flex workers can differ per level.
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
    min_replicas: int = Field(0, ge=0, description="always-on replicas (pods + active workers) in every slot")
    budget_usd_per_month: float | None = Field(None, gt=0)
    max_gpu_types: int | None = Field(None, ge=1, description="distinct GPU ids the plan may use")
    max_serverless_endpoints: int | None = Field(None, ge=0, description="serverless endpoints the plan may use")


class MilpInputs(BaseModel):
    """Everything the integer program needs, in SI units."""

    model_config = ConfigDict(extra="forbid")

    pools: list[Pool]
    slots: list[SlotDemand]
    headroom: float = Field(0.9, gt=0, le=1.0, description="max planned utilization of capacity")
    limits: Limits = Field(default_factory=Limits)
    pod_schedule: PodSchedule = Field(
        "fixed", description="fixed: pods for the whole horizon; per_slot: a pod count per slot"
    )
    pod_start_s: float = Field(
        0.0, ge=0, description="seconds billed per pod start before it serves (provisioning delay)"
    )
    pod_min_run_slots: int = Field(1, ge=1, description="a started pod runs at least this many slots")
    cycles: list[tuple[int, int]] | None = Field(
        None, description="(slots, repeats) per schedule cycle in slot order: starts wrap around "
        "within a cycle and count `repeats` times (None: one cycle of every slot, once; a reduced "
        "model uses one cycle per typical day)",
    )

    def cycle_list(self) -> list[tuple[int, int]]:
        return self.cycles or [(len(self.slot_ids), 1)]

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

    @property
    def slot_ids(self) -> list[int]:
        """The time slots in order of first appearance (a slot's levels share its pods)."""
        return list(dict.fromkeys(s.slot for s in self.slots))


class PoolUse(BaseModel):
    """How much of one pool the solution buys."""

    gpu_id: str
    tensor_parallel_size: int
    billing: Billing
    count: int = Field(description="pod/active: replicas for the horizon (pods: the peak); flex: peak replicas")
    flex_per_slot: list[int] = Field(default_factory=list, description="flex replicas per slot level")
    pods_per_slot: list[int] = Field(
        default_factory=list, description="scheduled pods: pods per time slot (empty: `count` all the time)"
    )
    pod_starts: int = Field(0, description="scheduled pods: pod starts over the horizon (cyclic)")
    cost_usd: float
    routed_share: dict[str, float] = Field(
        default_factory=dict, description="bucket -> share of that bucket's provisioned demand"
    )


class SolverResult(BaseModel):
    """The MILP's answer and what the solver proved about it.

    `status` is PuLP's status string ("Optimal", "Infeasible", "Not Solved", ...); `proven_optimal`
    says whether the solver proved the plan optimal (within `gap`), `best_bound_usd` and `gap` are
    HiGHS's dual bound and relative gap (None with CBC when a time limit stopped it: "feasible,
    gap unknown").
    """

    status: str
    solver: str = "cbc"
    has_solution: bool = False
    proven_optimal: bool = False
    time_limited: bool = False
    best_bound_usd: float | None = None
    gap: float | None = Field(None, description="relative gap (objective - bound) / objective")
    status_text: str = ""
    model_scope: str = Field("full horizon", description="the model solved: the full horizon or a named reduction")
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
        """A usable plan: proven optimal, or the best a time limit allowed (see `status_text`)."""
        return self.has_solution


def replica_bound(inputs: MilpInputs, p: Pool) -> int:
    """Replicas of p an optimal plan never exceeds in one level: enough to carry all demand alone.

    More replicas of a pool than it needs to carry every bucket it can serve at the busiest level
    only add cost, so this is a valid upper bound (and the big-M of the GPU-type and endpoint
    limits); min_replicas may force at least that many.
    """
    worst = 0.0
    for s in inputs.slots:
        load = sum(r / p.capacity_per_s[b] for b, r in s.rate_per_s.items() if r > 0 and p.capacity_per_s.get(b, 0.0) > 0)
        worst = max(worst, load)
    return max(math.ceil(worst / inputs.headroom - 1e-9), inputs.limits.min_replicas, 1)


class MilpPlan(BaseModel):
    """A solution's integer choices and routing, keyed by pool name (independent of PuLP)."""

    n: dict[str, int] = Field(default_factory=dict)  # pool -> replicas for the horizon
    x: dict[str, list[int]] = Field(default_factory=dict)  # pod pool -> pods per slot position
    f: dict[str, list[int]] = Field(default_factory=dict)  # flex pool -> workers per level
    r: dict[tuple[str, str, int], float] = Field(default_factory=dict)  # (bucket, pool, level) -> req/s


def plan_cost(inputs: MilpInputs, plan: MilpPlan) -> dict[str, float]:
    """pool name -> USD of a plan for the horizon, by the objective's formula (starts cyclic)."""
    position = {h: i for i, h in enumerate(inputs.slot_ids)}
    slot_len = [0.0] * len(position)
    for s in inputs.slots:
        slot_len[position[s.slot]] += s.duration_s
    out: dict[str, float] = {}
    for p in inputs.pools:
        c = p.usd_per_replica_s
        if p.name in plan.f:
            out[p.name] = sum(k * c * (s.busy_s + s.num_bursts * p.scale_up_s) for k, s in zip(plan.f[p.name], inputs.slots))
        elif p.name in plan.x:
            pods = plan.x[p.name]
            out[p.name] = c * (sum(k * length for k, length in zip(pods, slot_len)) + starts_of(inputs, pods) * inputs.pod_start_s)
        else:
            out[p.name] = c * plan.n.get(p.name, 0) * inputs.horizon_s
    return out


def starts_of(inputs: MilpInputs, pods: list[int]) -> float:
    """Pod starts of a schedule, each cycle wrapping around and counted `repeats` times."""
    total, first = 0.0, 0
    for size, repeats in inputs.cycle_list():
        cycle = pods[first:first + size]
        total += repeats * sum(max(0, cycle[i] - cycle[i - 1]) for i in range(size))
        first += size
    return total


def status_text(result: SolverResult, gap_rel: float) -> str:
    """The solver status in words: what a reader may rely on."""
    if not result.has_solution:
        return f"{result.status.lower()} ({result.solver})"
    if result.proven_optimal:
        within = f"{result.gap:.2%}" if result.gap is not None else f"<= {gap_rel:.2%}"
        return f"optimal (proven by {result.solver} within a gap of {within}; stopping gap {gap_rel:.2%})"
    if result.gap is not None:
        return (f"time limit: best plan within {result.gap:.2%} of the best bound "
                f"(${result.best_bound_usd or 0.0:,.2f} for the horizon; {result.solver})")
    return f"time limit: feasible, gap unknown ({result.solver})"


def even_routing(inputs: MilpInputs, plan: MilpPlan) -> None:
    """The one bucket's routing of a model solved without routing variables, into `plan.r`:
    always-on replicas (pods, active workers) first, each loaded alike up to the headroom, and
    what they cannot carry on the level's flex workers, each loaded alike (flex workers exist for
    the overflow; their cold starts make them the last resort). The model's `demand_b_t` row
    guarantees it all fits within headroom."""
    position = {h: i for i, h in enumerate(inputs.slot_ids)}

    def replicas(p: Pool, t: int) -> int:
        if p.name in plan.f:
            return plan.f[p.name][t]
        if p.name in plan.x:
            return plan.x[p.name][position[inputs.slots[t].slot]]
        return plan.n.get(p.name, 0)

    for t, s in enumerate(inputs.slots):
        for b, rate in s.rate_per_s.items():
            if rate <= 0:
                continue
            left = rate
            for tier in (False, True):
                cap = {p.name: inputs.headroom * p.capacity_per_s.get(b, 0.0) * replicas(p, t)
                       for p in inputs.pools if (p.billing == "flex") == tier}
                total = sum(cap.values())
                share = min(left, total)
                for name, c in cap.items():
                    if c > 0 and share > 0:
                        plan.r[b, name, t] = share * c / total
                left -= share


def read_solution(inputs: MilpInputs, plan: MilpPlan, result: SolverResult) -> None:
    """Fill `result` with the plan's pools, routing and cost (priced by `plan_cost`)."""
    costs = plan_cost(inputs, plan)
    uses: list[PoolUse] = []
    for p in inputs.pools:
        per_slot = plan.f.get(p.name, [])
        pods = plan.x.get(p.name, [])
        if p.name in plan.f:
            count = max(per_slot, default=0)
        elif p.name in plan.x:
            count = max(pods, default=0)
        else:
            count = plan.n.get(p.name, 0)
        shares = routed_shares(inputs, plan, p)
        if count == 0 and not any(v > 1e-9 for v in shares.values()):
            continue
        uses.append(PoolUse(
            gpu_id=p.gpu_id, tensor_parallel_size=p.tensor_parallel_size, billing=p.billing, count=count,
            flex_per_slot=per_slot, pods_per_slot=pods, pod_starts=int(round(starts_of(inputs, pods))) if pods else 0,
            cost_usd=costs[p.name], routed_share=shares,
        ))
    routing: list[dict[str, dict[str, float]]] = []
    for t, s in enumerate(inputs.slots):
        routing.append({
            b: {p.name: plan.r[b, p.name, t] for p in inputs.pools if (b, p.name, t) in plan.r}
            for b in s.rate_per_s
        })
    result.routing = routing
    total = sum(u.cost_usd for u in uses)
    result.cost_usd = total
    result.cost_per_month_usd = per_month(total, inputs.horizon_s)
    result.pools = uses


def routed_shares(inputs: MilpInputs, plan: MilpPlan, p: Pool) -> dict[str, float]:
    """bucket -> share of the bucket's provisioned requests (rate x slot length) sent to p."""
    shares: dict[str, float] = {}
    for b in inputs.buckets:
        total = sum(s.rate_per_s.get(b, 0.0) * s.duration_s for s in inputs.slots)
        if total <= 0:
            continue
        routed = sum(plan.r.get((b, p.name, t), 0.0) * s.duration_s for t, s in enumerate(inputs.slots))
        if routed > 0:
            shares[b] = routed / total
    return shares


def check_inputs(inputs: MilpInputs) -> None:
    """Inputs the model cannot be built from: no slot, duplicate pools, a bucket no pool serves."""
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
