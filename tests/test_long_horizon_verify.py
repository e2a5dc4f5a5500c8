"""Traffic draws and long horizons: sampled rounds, the answer over the whole horizon and on every
draw (its endpoints simulated side by side without changing a figure), the MILP's demand
independent of --seed."""

from __future__ import annotations

import plan_doubles as D
from planner.optimize.loop import plan


def _three_days():
    return D.profile({"process": "diurnal", "mean_rate_per_s": 0.05, "peak_to_trough": 6, "peak_hour": 14},
                     traffic__horizon_seconds=3 * 86400, optimizer__scenarios=2)


def test_the_answer_is_simulated_on_the_whole_horizon_and_every_draw_in_parallel_or_not():
    results = []
    for workers in (1, 2):
        calls: list = []
        result, arts = plan(_three_days(), backend=D.backend(calls), use_cache=False, workers=workers)
        results.append((result, arts, calls))
    (one, arts1, calls1), (two, arts2, _) = results
    assert one.verification.simulated_on == "full horizon"
    assert any("whole horizon once" in n for n in one.notes)
    assert one.scenarios is not None and one.scenarios.num_scenarios == 2
    assert [r.scenario for r in one.scenarios.runs] == [0, 1]
    # The whole horizon's run simulates every request of the run's draw once more.
    assert one.verification.num_requests == len(arts1.ok)
    for a, b in ((one.cost_usd, two.cost_usd), (one.slo_attainment, two.slo_attainment)):
        assert a == b
    assert [r.model_dump() for r in one.scenarios.runs] == [r.model_dump() for r in two.scenarios.runs]
    assert (arts1.ok == arts2.ok).all()


def test_a_plan_that_misses_on_a_further_draw_is_tightened_until_it_meets_every_draw():
    """The run's own draw is served by one pod; the further draw (a double: it needs two) makes the
    search tighten the pods and solve again, and the answer meets the SLO on both draws."""
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0}, optimizer__scenarios=2,
                        candidates={"gpus": ["small"], "tensor_parallel_sizes": [1], "billing": ["pod"]})
    seeds: list[int] = []

    def simulate_fleet(profile, gpu, tp, workload, *, pods, seed=0, pod_schedule=None, **kwargs):
        out = D.fake_simulate_fleet(profile, gpu, tp, workload, pods=pods, seed=seed, **kwargs)
        seeds.append(seed)
        if seed != profile.traffic.seed and pods < 2:  # the further draw: one pod is not enough
            out.records.first_token_at = out.records.arrival_at + 10.0
        return out

    backend = D.backend()
    backend.simulate_fleet = simulate_fleet
    result, _ = plan(profile, backend=backend, use_cache=False)
    assert result.rounds[0].verified is False and result.rounds[0].tightened
    assert result.plan[0].count == 2 and result.verified
    assert result.scenarios is not None and result.scenarios.met_on_all and result.scenarios.num_scenarios == 2
    assert len(set(seeds)) == 2


def test_the_milp_plans_for_the_profiles_own_draws_whatever_the_seed(monkeypatch):
    """--seed picks the draws a plan is verified on; the demand the MILP plans for is the mean of
    the profile's own traffic.seed draws (as the capacities are), so it does not move with --seed."""
    import planner.optimize.loop as loop

    profile = D.profile({"process": "gamma", "rate_per_s": 1.0, "cv": 3.0}, optimizer__scenarios=2)
    planned, own = [], []

    def prepare(*args, **kwargs):
        world = prepare_for_real(*args, **kwargs)
        planned.append([s.rate_per_s for s in world.slots])
        own.append(world.series.rate_per_s)
        return world

    prepare_for_real = loop._prepare
    monkeypatch.setattr(loop, "_prepare", prepare)
    for seed in (0, 1):
        result, _ = plan(profile, seed=seed, backend=D.backend(), use_cache=False)
        assert result.seed == seed
    assert planned[0] == planned[1]
    assert own[0] != own[1]  # the run's own draw (what the report plots, what is verified) differs


def test_the_reference_searches_beside_the_main_one_report_their_errors_and_their_death(monkeypatch):
    """With workers > 1 the reference searches run in a forked process beside the main search: an
    error there reaches the caller as itself, and a process that dies is one clear PlannerError."""
    import os

    import pytest

    import planner.optimize.search as search
    from planner.errors import PlannerError

    real = search._solve_verify

    def failing(world, backend, keep, **kwargs):
        if not kwargs.get("all_draws", True):
            raise PlannerError("reference search failed here")
        return real(world, backend, keep, **kwargs)

    monkeypatch.setattr(search, "_solve_verify", failing)
    with pytest.raises(PlannerError, match="reference search failed here"):
        plan(_three_days(), backend=D.backend(), use_cache=False, workers=2)

    def dying(world, backend, keep, **kwargs):
        if not kwargs.get("all_draws", True):
            os._exit(3)
        return real(world, backend, keep, **kwargs)

    monkeypatch.setattr(search, "_solve_verify", dying)
    with pytest.raises(PlannerError, match=r"reference search process ended without an answer \(exit code 3\)"):
        plan(_three_days(), backend=D.backend(), use_cache=False, workers=2)


def test_alternatives_are_compared_on_the_days_they_were_simulated_on():
    """On a sampled horizon the alternatives (the optimized entry too) are priced on the sample;
    the report and the CLI set them against that entry, not against the whole horizon's figure."""
    from planner.cli.optimize import _summary
    from planner.optimize.result import alternatives_basis_usd_per_month
    from planner.report.answer import answer_markdown, slo_of
    from planner.report.optimize_report import render_markdown

    result, _ = plan(_three_days(), backend=D.backend(), use_cache=False)
    optimized = next(a for a in result.alternatives if a.kind == "optimized")
    assert optimized.simulated_on is not None and optimized.simulated_on.startswith("sample days")
    assert result.verification.simulated_on == "full horizon"
    assert alternatives_basis_usd_per_month(result) == optimized.cost_per_month_usd
    others = [a for a in result.alternatives if a.kind != "optimized" and a.feasible and a.cost_per_month_usd]
    assert others and all(a.simulated_on == optimized.simulated_on for a in others)
    answer = "\n".join(answer_markdown(result, slo_of(result), "the plan"))
    assert f"(both simulated on {optimized.simulated_on}, where this plan costs" in answer
    assert f"(both on {optimized.simulated_on}" in _summary(result)
    md = render_markdown(result)
    assert f"All simulated on {optimized.simulated_on} of the run's own traffic draw" in md
    billed = "from each start, provisioning included" if result.pod_schedule == "per_slot" else "for the whole horizon"
    assert f"(pods {billed}" in md
