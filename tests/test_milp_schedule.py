"""The MILP's pod schedule, reductions and honest status: brute force, equivalence and limits."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.optimize.milp import (
    Limits,
    _run,
    build_model,
    MilpInputs,
    Pool,
    SlotDemand,
    plan_cost,
    prune_dominated,
    solve,
    typical_days,
)

HOUR = 3600.0


def _pod(gpu: str, cap: float, usd_per_hour: float, tp: int = 1) -> Pool:
    return Pool(gpu_id=gpu, tensor_parallel_size=tp, billing="pod", capacity_per_s={"all": cap},
                usd_per_replica_s=usd_per_hour / HOUR)


def _flex(gpu: str, cap: float, usd_per_hour: float, scale_up_s: float = 60.0) -> Pool:
    return Pool(gpu_id=gpu, billing="flex", capacity_per_s={"all": cap}, usd_per_replica_s=usd_per_hour / HOUR,
                scale_up_s=scale_up_s)


def _slots(rates: list[float], busy: float = HOUR, bursts: int = 1) -> list[SlotDemand]:
    return [SlotDemand(start_s=h * HOUR, slot=h, duration_s=HOUR, rate_per_s={"all": r}, busy_s=busy, num_bursts=bursts)
            for h, r in enumerate(rates)]


def _brute_force_schedule(inputs: MilpInputs, max_count: int) -> float | None:
    """Cheapest pods-per-slot schedule by enumeration (pods only, one bucket), independent of PuLP.

    Cost: each slot's pods for the slot's length plus the provisioning delay per pod started,
    starts counted cyclically (the horizon repeats) and a started pod kept for the minimum run.
    """
    pools = inputs.pools
    rates = [s.rate_per_s["all"] for s in inputs.slots]
    num = len(rates)
    k = min(inputs.pod_min_run_slots, num)
    best = None
    per_slot = list(itertools.product(range(max_count + 1), repeat=len(pools)))
    feasible = [
        [c for c in per_slot
         if sum(n * p.capacity_per_s["all"] for n, p in zip(c, pools)) * inputs.headroom >= r - 1e-9
         and sum(c) >= inputs.limits.min_replicas]
        for r in rates
    ]
    for choice in itertools.product(*feasible):
        cost = 0.0
        ok = True
        for i, p in enumerate(pools):
            pods = [choice[h][i] for h in range(num)]
            starts = [max(0, pods[h] - pods[h - 1]) for h in range(num)]
            if k > 1 and any(pods[h] < sum(starts[(h - j) % num] for j in range(k)) for h in range(num)):
                ok = False
                break
            cost += p.usd_per_replica_s * (sum(pods) * HOUR + sum(starts) * inputs.pod_start_s)
        if ok and (best is None or cost < best):
            best = cost
    return best


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rates=st.lists(st.floats(0.2, 5.0), min_size=2, max_size=4),
    caps=st.tuples(st.floats(0.8, 3.0), st.floats(2.0, 6.0)),
    prices=st.tuples(st.floats(0.3, 2.0), st.floats(0.8, 4.0)),
    start_s=st.sampled_from([0.0, 60.0, 900.0]),
    min_run=st.integers(1, 3),
    min_replicas=st.integers(0, 1),
)
def test_per_slot_pods_equal_brute_force(rates, caps, prices, start_s, min_run, min_replicas):
    pools = [_pod("a", caps[0], prices[0]), _pod("b", caps[1], prices[1])]
    inputs = MilpInputs(pools=pools, slots=_slots(rates), headroom=0.9, pod_schedule="per_slot",
                        pod_start_s=start_s, pod_min_run_slots=min_run, limits=Limits(min_replicas=min_replicas))
    result = solve(inputs, gap_rel=1e-9)
    expected = _brute_force_schedule(inputs, max_count=3)
    assert result.proven_optimal and result.has_solution
    if expected is None:
        return  # some slot needs more than 3 pods of a pool
    assert result.cost_usd <= expected + 1e-9
    if max(k for u in result.pools for k in u.pods_per_slot) <= 3:
        assert result.cost_usd == pytest.approx(expected, rel=1e-6)


def test_pods_follow_the_demand_and_pay_each_start():
    pools = [_pod("a", 1.0, 1.0)]
    rates = [0.5, 0.5, 2.5, 2.5, 0.5]
    fixed = solve(MilpInputs(pools=pools, slots=_slots(rates), headroom=1.0))
    sched = solve(MilpInputs(pools=pools, slots=_slots(rates), headroom=1.0, pod_schedule="per_slot", pod_start_s=600.0))
    assert fixed.pools[0].count == 3 and fixed.pools[0].pods_per_slot == []
    assert sched.pools[0].pods_per_slot == [1, 1, 3, 3, 1]
    assert sched.pools[0].pod_starts == 2
    # 9 pod-hours plus two starts of 600 s each, at $1/h.
    assert sched.cost_usd == pytest.approx(9.0 + 2 * 600.0 / HOUR)
    assert sched.cost_usd < fixed.cost_usd


def test_a_long_provisioning_delay_keeps_pods_through_a_short_dip():
    pools = [_pod("a", 1.0, 1.0)]
    rates = [2.0, 0.5, 2.0]
    cheap = solve(MilpInputs(pools=pools, slots=_slots(rates), headroom=1.0, pod_schedule="per_slot", pod_start_s=60.0))
    dear = solve(MilpInputs(pools=pools, slots=_slots(rates), headroom=1.0, pod_schedule="per_slot", pod_start_s=4000.0))
    assert cheap.pools[0].pods_per_slot == [2, 1, 2]
    assert dear.pools[0].pods_per_slot == [2, 2, 2]


def _week_like(days: int, weekend_factor: float, jitter: list[float]) -> MilpInputs:
    shape = [0.5, 0.5, 1.0, 2.0, 2.0, 1.0]  # a six-slot "day"
    slots = []
    for d in range(days):
        factor = weekend_factor if d % 7 >= 5 else 1.0
        for i, r in enumerate(shape):
            h = d * len(shape) + i
            rate = r * factor * (1.0 + jitter[h % len(jitter)])
            slots.append(SlotDemand(start_s=h * HOUR, slot=h, level=0, duration_s=HOUR * 0.25,
                                    rate_per_s={"all": rate}, busy_s=HOUR * 0.25, num_bursts=1))
            slots.append(SlotDemand(start_s=h * HOUR, slot=h, level=1, duration_s=HOUR * 0.75,
                                    rate_per_s={"all": rate * 0.6}, busy_s=HOUR * 0.75, num_bursts=2))
    pools = [_pod("a", 1.0, 1.0), _pod("b", 3.5, 2.5), _flex("a", 1.0, 2.5)]
    return MilpInputs(pools=pools, slots=slots, headroom=0.9, pod_schedule="per_slot", pod_start_s=120.0,
                      limits=Limits(min_replicas=1))


def test_typical_days_group_alike_days_and_price_the_full_horizon():
    inputs = _week_like(7, 0.5, [0.0, 0.03, -0.02, 0.01])
    red = typical_days(inputs, period_slots=6)
    assert red is not None
    assert red.inputs.cycles == [(6, 5), (6, 2)]
    assert "2 day type(s)" in red.description
    reduced = solve(inputs, period_slots=6, gap_rel=1e-9)
    full = solve(inputs, gap_rel=1e-9)
    assert reduced.model_scope.startswith("reduction: typical days") and full.model_scope == "full horizon"
    # The typical day's plan, repeated, is a plan of the full horizon: never cheaper than its optimum.
    assert reduced.cost_usd >= full.cost_usd - 1e-9
    # Its schedule repeats daily within a day type, and every slot's demand is carried.
    pods = {u.gpu_id: u.pods_per_slot for u in reduced.pools if u.billing == "pod"}
    for sched in pods.values():
        assert sched[0:6] == sched[6:12] == sched[24:30]
    for t, s in enumerate(inputs.slots):
        assert sum(reduced.routing[t]["all"].values()) == pytest.approx(s.rate_per_s["all"])


def test_typical_days_need_alike_days():
    assert typical_days(_week_like(1, 1.0, [0.0]), period_slots=6) is None  # one day
    assert typical_days(_week_like(3, 1.0, [0.0, 0.9, -0.5, 0.4, -0.3, 0.6, 0.2]), period_slots=6) is None  # none alike


def test_plan_cost_is_the_objective():
    inputs = _week_like(2, 1.0, [0.0])
    result = solve(inputs, gap_rel=1e-9)
    assert result.cost_usd == pytest.approx(sum(u.cost_usd for u in result.pools))
    assert result.cost_usd == pytest.approx(result.best_bound_usd, rel=1e-6)
    assert callable(plan_cost)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.floats(0.5, 8.0),
    caps=st.lists(st.floats(0.5, 5.0), min_size=3, max_size=3),
    prices=st.lists(st.floats(0.3, 4.0), min_size=3, max_size=3),
)
def test_pruning_dominated_pods_keeps_the_optimum(rate, caps, prices):
    pools = [_pod(f"g{i}", c, p) for i, (c, p) in enumerate(zip(caps, prices))] + [_pod("g0", caps[0] * 1.5, prices[0], tp=2)]
    inputs = MilpInputs(pools=pools, slots=_slots([rate, rate / 2]), headroom=0.9, pod_schedule="per_slot")
    pruned, dropped = prune_dominated(inputs)
    assert len(pruned.pools) + len(dropped) == len(pools)
    assert solve(pruned, gap_rel=1e-9).cost_usd == pytest.approx(solve(inputs, gap_rel=1e-9).cost_usd, rel=1e-6)


def _active(gpu: str, cap: float, usd_per_hour: float) -> Pool:
    return Pool(gpu_id=gpu, billing="active", capacity_per_s={"all": cap}, usd_per_replica_s=usd_per_hour / HOUR)


@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    rates=st.lists(st.floats(0.1, 6.0), min_size=3, max_size=3),
    caps=st.lists(st.floats(0.5, 4.0), min_size=3, max_size=3),
    prices=st.lists(st.floats(0.3, 3.0), min_size=3, max_size=3),
    schedule=st.sampled_from(["fixed", "per_slot"]),
)
def test_one_bucket_without_routing_variables_keeps_the_optimum(rates, caps, prices, schedule):
    """The one-bucket model (routing projected out) and the routed model have the same optimum,
    an active pool a pod dominates is pruned without changing it, and the routing rebuilt from
    the replicas carries every level within headroom."""
    pools = [_pod("a", caps[0], prices[0]), _flex("b", caps[1], prices[1] * 1.5), _active("b", caps[1], prices[1]),
             _pod("c", caps[2], prices[2]), _active("c", caps[2] * 0.8, prices[2] * 1.2)]
    inputs = MilpInputs(pools=pools, slots=_slots(rates, busy=1800.0, bursts=2), headroom=0.9, pod_schedule=schedule,
                        pod_start_s=120.0, limits=Limits(max_serverless_workers=2, min_replicas=1))
    costs = []
    for routed in (True, False):
        m = build_model(inputs, routed=routed)
        _run(m, "highs", None, 1e-9)
        costs.append(m.prob.objective.value())
    assert costs[1] == pytest.approx(costs[0], rel=1e-6)
    pruned, dropped = prune_dominated(inputs)
    assert "c-tp1-active" in dropped
    result = solve(pruned, gap_rel=1e-9)
    assert result.cost_usd == pytest.approx(costs[0], rel=1e-6)
    uses = {f"{u.gpu_id}-tp{u.tensor_parallel_size}-{u.billing}": u for u in result.pools}
    by_name = {p.name: p for p in pruned.pools}
    for t, (s, routing) in enumerate(zip(pruned.slots, result.routing)):
        assert sum(routing["all"].values()) == pytest.approx(s.rate_per_s["all"])
        for name, rate in routing["all"].items():
            use = uses[name]
            replicas = (use.flex_per_slot[t] if use.billing == "flex" else
                        use.pods_per_slot[t] if use.pods_per_slot else use.count)
            assert rate <= 0.9 * by_name[name].capacity_per_s["all"] * replicas + 1e-9


def test_max_gpu_types_and_serverless_endpoints():
    slots = _slots([3.0, 3.0], busy=600.0, bursts=1)
    pools = [_pod("a", 1.0, 1.0), _pod("b", 2.0, 1.9), _flex("a", 1.0, 1.2), _flex("c", 2.0, 2.0)]
    free = solve(MilpInputs(pools=pools, slots=slots, headroom=1.0))
    assert len({u.gpu_id for u in free.pools}) >= 2
    one_type = solve(MilpInputs(pools=pools, slots=slots, headroom=1.0, limits=Limits(max_gpu_types=1)))
    assert one_type.has_solution and len({u.gpu_id for u in one_type.pools}) == 1
    assert one_type.cost_usd >= free.cost_usd - 1e-9
    no_serverless = solve(MilpInputs(pools=pools, slots=slots, headroom=1.0, limits=Limits(max_serverless_endpoints=0)))
    assert {u.billing for u in no_serverless.pools} == {"pod"}
    # Brute force over which GPU types may be used.
    best = min(
        solve(MilpInputs(pools=[p for p in pools if p.gpu_id == g], slots=slots, headroom=1.0)).cost_usd or float("inf")
        for g in ("a", "b", "c")
    )
    assert one_type.cost_usd == pytest.approx(best)


def test_status_is_honest_about_time_limits_and_the_solver():
    inputs = _week_like(2, 1.0, [0.0])
    highs = solve(inputs, solver="highs", gap_rel=1e-9)
    assert highs.proven_optimal and highs.status_text.startswith("optimal (proven by highs within a gap of")
    cbc = solve(inputs, solver="cbc", gap_rel=1e-9)
    assert cbc.solver == "cbc" and cbc.has_solution
    assert cbc.cost_usd == pytest.approx(highs.cost_usd, rel=1e-6)
    infeasible = solve(inputs.model_copy(update={"limits": Limits(budget_usd_per_month=1.0)}))
    assert not infeasible.has_solution and infeasible.status == "Infeasible"
