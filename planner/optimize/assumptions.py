"""The assumptions of a plan (and of its alternatives): the backend's items, sorted into the chosen
plan's and the alternatives', plus the optimizer's own method; worded by `planner.assumption`."""

from __future__ import annotations

from collections.abc import Sequence

from planner.assumption import Assumption, grouped
from planner.billing import month_assumption
from planner.errors import PlannerError
from planner.optimize.backend import PlanningBackend
from planner.optimize.result import PlanEntry
from planner.optimize.world import _World


def _uses(entries: Sequence[PlanEntry]) -> dict[str, set[str]]:
    """GPU id -> the billing modes these plan lines use it in (sorted by GPU id)."""
    out: dict[str, set[str]] = {}
    for e in sorted(entries, key=lambda e: e.gpu):
        out.setdefault(e.gpu, set()).add(e.billing)
    return out


def _assumptions(
    world: _World, backend: PlanningBackend, plan_entries: Sequence[PlanEntry], shown_entries: Sequence[PlanEntry]
) -> tuple[list[Assumption], list[Assumption]]:
    """Every estimated input behind the answer, for the report's Assumptions section.

    Returns (the chosen plan's items, the items only the alternatives shown need), in the order
    `planner.assumption.render_lines` words them. A line counts for the plan when one of its items
    concerns a (GPU, billing mode) the plan uses, or the whole run.
    """
    opt = world.profile.optimizer
    plan_uses = _uses(plan_entries)
    all_uses = _uses([*plan_entries, *shown_entries])

    def for_plan(items: Sequence[Assumption]) -> bool:
        about = {pair for item in items for pair in item.concerns}
        return not about or any(gpu in plan_uses and (mode == "*" or mode in plan_uses[gpu]) for gpu, mode in about)

    plan_items: list[Assumption] = []
    alt_items: list[Assumption] = []
    try:
        for _, members in grouped(backend.assumptions(world.profile, all_uses)):
            if members[0].topic == "month":
                continue  # said below with the horizon
            (plan_items if for_plan(members) else alt_items).extend(members)
    except PlannerError as err:
        plan_items.append(Assumption(topic="note", name="catalog assumptions unavailable", source=str(err)))
    if world.measured:
        src = getattr(world.profile.capacity, "source", None) or "no source given"
        plan_items.append(Assumption(topic="method", name="capacities",
                                     source=f"measured by the user (profile capacity section; {src}), not simulated"))
    else:
        cv = next((c.burstiness_cv for c in world.capacity_results if c.burstiness_cv), None)
        n = next((c.num_requests for c in world.capacity_results if c.num_requests), None)
        plan_items.append(Assumption(
            topic="method", name="capacities", value=n, unit="requests per bisection step",
            source=f"simulated, one replica, {n} requests per bisection step, gamma arrivals "
                   f"with CV {cv if cv is None else round(cv, 2)} (the profile's burstiness within one-minute windows); "
                   "short runs start empty, so they can be optimistic: the plan is verified on the whole horizon"))
    plan_items.append(Assumption(
        topic="method", name="demand", value=opt.demand_percentile, unit="quantile of one-minute rates",
        source=f"the {opt.demand_percentile:.0%} quantile of one-minute rates in each "
               f"{opt.slot_seconds:g} s slot; lower demand levels at their busiest minute; replicas loaded "
               f"to {opt.headroom:.0%} of capacity"))
    flex = Assumption(topic="method", name="flex workers in the MILP",
                      source="billed for their level's time plus (cold start + idle timeout) per scale-up; "
                             "the reported cost is the simulated billing of the endpoint's autoscaler")
    plan_serverless = any("serverless" in modes for modes in plan_uses.values())
    (plan_items if plan_serverless else alt_items).append(flex)
    plan_items.append(month_assumption(f"simulated horizon: {world.workload.horizon_s:g} s"))
    return plan_items, alt_items
