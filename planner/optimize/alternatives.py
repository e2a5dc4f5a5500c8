"""The plans the optimized one is compared with (pods on one GPU type, all serverless)."""

from __future__ import annotations

from planner.optimize.result import (
    Alternative,
    FleetRun,
    describe,
)
from planner.optimize.search import _Search
from planner.optimize.world import _World


def _alternatives(world: _World, searches: dict[str, _Search]) -> list[Alternative]:
    """The alternatives table: cheapest all-pods plan on one GPU type, all-serverless plan (each
    refined like the main one) and the optimized mix, with the savings of the mix against each."""
    main = searches["main"]
    assert main.best is not None
    result, entries, run, _, _ = main.best
    alts: list[Alternative] = []
    for kind, label in (("single_gpu_pods", "cheapest pods on one GPU type"), ("all_serverless", "all serverless")):
        search = searches.get(kind)
        if search is None or search.best is None:
            allowed = world.profile.candidates.billing
            if kind == "single_gpu_pods" and "pod" not in allowed:
                why = "candidates.billing does not allow pods"
            elif kind == "all_serverless" and "serverless" not in allowed:
                why = "candidates.billing does not allow serverless"
            else:
                why = (search.note if search else None) or (
                    "no single GPU type with a pod price carries the demand within the limits"
                    if kind == "single_gpu_pods" else "no plan within the limits"
                )
            alts.append(Alternative(kind=kind, name=label, feasible=False, note=why))
            continue
        res, ents, r, _, _ = search.best
        alts.append(Alternative(
            kind=kind, name=f"{label}: {describe(ents)}", plan=ents,
            milp_cost_per_month_usd=res.cost_per_month_usd, cost_usd=r.cost_usd,
            cost_per_month_usd=r.cost_per_month_usd, usd_per_million_output_tokens=r.usd_per_million_output_tokens,
            slo_attainment=r.slo_attainment, verified=r.verified, note=search.note, simulated_on=_on(r),
        ))
    alts.append(Alternative(
        kind="optimized", name=f"optimized mix: {describe(entries)}", plan=entries,
        milp_cost_per_month_usd=result.cost_per_month_usd, cost_usd=run.cost_usd,
        cost_per_month_usd=run.cost_per_month_usd, usd_per_million_output_tokens=run.usd_per_million_output_tokens,
        slo_attainment=run.slo_attainment, verified=run.verified, simulated_on=_on(run),
    ))
    for a in alts:
        if a.cost_per_month_usd:
            a.savings_of_optimized_pct = (a.cost_per_month_usd - run.cost_per_month_usd) / a.cost_per_month_usd * 100.0
    return alts


def _on(run: FleetRun) -> str | None:
    """What a plan's figures were simulated on (None: not simulated)."""
    return run.simulated_on if run.simulated else None
