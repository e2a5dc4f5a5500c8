"""Smaller MILPs that stand for the full one: typical days, and pools no optimal plan needs.

No solver here: `planner.optimize.milp.solve` applies these and maps the answer back.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from planner.optimize.milp_types import MilpInputs, MilpPlan, Pool, SlotDemand


class Reduction(BaseModel):
    """A smaller model that stands for the full horizon, and how its answer maps back."""

    inputs: MilpInputs
    level_map: list[int] = Field(description="full level index -> reduced level index")
    slot_map: list[int] = Field(description="full slot position -> reduced slot position")
    description: str


def typical_days(inputs: MilpInputs, period_slots: int, tolerance: float = 0.2) -> Reduction | None:
    """Days whose demand is alike become one typical day, planned for its busiest member.

    The horizon is cut into days of `period_slots` slots; a day joins the first day type whose
    first day's peak rate differs from its own by at most `tolerance` of the larger peak in every
    slot. A typical day's level asks for the largest rate of its members per bucket, and counts
    their durations, busy seconds and scale-ups summed, so its cost is what the schedule
    repeated on every member day costs; its pod starts wrap around within the day and count once
    per member. Any plan of the reduced model is a plan of the full horizon (no member day asks
    for more); only pod starts at a change of day type are not counted (verification bills them).
    Returns None when the horizon has fewer than two whole days or no two days are alike.
    """
    slot_ids = inputs.slot_ids
    num = len(slot_ids)
    if period_slots < 1 or num < 2 * period_slots or num % period_slots:
        return None
    position = {h: i for i, h in enumerate(slot_ids)}
    levels: list[list[int]] = [[] for _ in range(num)]
    for t, s in enumerate(inputs.slots):
        levels[position[s.slot]].append(t)
    num_days = num // period_slots
    for i in range(period_slots):
        if len({len(levels[d * period_slots + i]) for d in range(num_days)}) != 1:
            return None
    peak = [[max(sum(inputs.slots[t].rate_per_s.values()) for t in levels[d * period_slots + i]) for i in range(period_slots)]
            for d in range(num_days)]
    types: list[list[int]] = []
    for d in range(num_days):
        for members in types:
            rep = peak[members[0]]
            if all(abs(a - b) <= tolerance * max(a, b, 1e-12) for a, b in zip(rep, peak[d])):
                members.append(d)
                break
        else:
            types.append([d])
    if len(types) == num_days:
        return None
    slots: list[SlotDemand] = []
    level_map = [0] * len(inputs.slots)
    slot_map = [0] * num
    for k, members in enumerate(types):
        for i in range(period_slots):
            pos = k * period_slots + i
            for d in members:
                slot_map[d * period_slots + i] = pos
            for j in range(len(levels[members[0] * period_slots + i])):
                group = [inputs.slots[levels[d * period_slots + i][j]] for d in members]
                for d in members:
                    level_map[levels[d * period_slots + i][j]] = len(slots)
                buckets = dict.fromkeys(b for g in group for b in g.rate_per_s)
                slots.append(SlotDemand(
                    start_s=group[0].start_s, slot=pos, level=j,
                    duration_s=sum(g.duration_s for g in group),
                    rate_per_s={b: max(g.rate_per_s.get(b, 0.0) for g in group) for b in buckets},
                    busy_s=sum(g.busy_s for g in group),
                    num_bursts=sum(g.num_bursts for g in group),
                ))
    reduced = inputs.model_copy(update={"slots": slots, "cycles": [(period_slots, len(m)) for m in types]})
    sizes = ", ".join(str(len(m)) for m in types)
    return Reduction(
        inputs=reduced, level_map=level_map, slot_map=slot_map,
        description=(f"typical days: {num_days} days of {period_slots} slots planned as {len(types)} "
                     f"day type(s) of {sizes} day(s), each for its busiest member day"),
    )


def expand(full: MilpInputs, red: Reduction, plan: MilpPlan) -> MilpPlan:
    """The reduced model's plan on the full horizon: the typical day repeated, routing scaled."""
    out = MilpPlan(n=dict(plan.n))
    for name, pods in plan.x.items():
        out.x[name] = [pods[red.slot_map[h]] for h in range(len(full.slot_ids))]
    for name, flex in plan.f.items():
        out.f[name] = [flex[red.level_map[t]] for t in range(len(full.slots))]
    by_level: dict[int, list[tuple[str, str, float]]] = {}
    for (b, name, level), v in plan.r.items():
        by_level.setdefault(level, []).append((b, name, v))
    for t, s in enumerate(full.slots):
        rt = red.level_map[t]
        typical = red.inputs.slots[rt].rate_per_s
        for b, name, v in by_level.get(rt, []):
            if typical.get(b, 0.0) > 0:
                out.r[b, name, t] = v * s.rate_per_s.get(b, 0.0) / typical[b]
    return out



def _dominates(q: Pool, p: Pool) -> bool:
    """q does everything p does for no more money: same billing (or q a pod and p an active
    serverless worker, both up all the time), price, scale-up and capacities."""
    return (
        (q.billing == p.billing or (q.billing == "pod" and p.billing == "active"))
        and q.usd_per_replica_s <= p.usd_per_replica_s
        and q.scale_up_s <= p.scale_up_s
        and all(q.capacity_per_s.get(b, 0.0) >= v for b, v in p.capacity_per_s.items() if v > 0)
    )


def prune_dominated(inputs: MilpInputs) -> tuple[MilpInputs, list[str]]:
    """Leave out pools another pool dominates where that cannot change the optimum.

    A pod pool is dropped when another pod pool is at most as expensive per replica and carries at
    least as much of every bucket, and nothing limits the other pool's GPU (max_gpus) or the
    GPU types (max_gpu_types, unless both are the same GPU): swapping every replica of the
    dropped pool for one of the other keeps the plan feasible at no higher cost. An active
    serverless pool is dropped the same way for a pod pool (a pod kept up in every slot costs its
    price for the horizon with no start, and counts wherever an active worker counts: always-on
    replicas, GPUs; it frees serverless workers and endpoints). Flex pools are kept (a
    per-endpoint worker limit could make the swap infeasible). Among equals the first in the
    pools' order stays, so the result is deterministic.
    Returns:
        (the inputs without the dropped pools, the dropped pool names).
    """
    lim = inputs.limits
    keep: list[Pool] = []
    dropped: list[str] = []
    pools = inputs.pools
    for i, p in enumerate(pools):
        if p.billing in ("pod", "active"):
            better = [
                q for j, q in enumerate(pools)
                if j != i and _dominates(q, p) and q.gpu_id not in lim.max_gpus
                and (lim.max_gpu_types is None or q.gpu_id == p.gpu_id)
                and (not _dominates(p, q) or j < i)  # equals: the first one stays
            ]
            if better:
                dropped.append(p.name)
                continue
        keep.append(p)
    return inputs.model_copy(update={"pools": keep}), dropped
