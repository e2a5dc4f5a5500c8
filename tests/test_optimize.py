"""The MILP: optimality against brute force, Mélange's example, limits and monotonicity."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from planner.errors import PlannerError
from planner.billing import SECONDS_PER_MONTH
from planner.optimize import (
    Limits,
    MilpInputs,
    Pool,
    SlotDemand,
    build_model,
    solve,
)

HOUR = 3600.0


def _pod(gpu: str, caps: dict[str, float], usd_per_hour: float, tp: int = 1) -> Pool:
    return Pool(
        gpu_id=gpu,
        tensor_parallel_size=tp,
        billing="pod",
        capacity_per_s=caps,
        usd_per_replica_s=usd_per_hour / HOUR,
    )


def _slot(rates: dict[str, float], start: float = 0.0, busy: float = HOUR, bursts: int = 1):
    return SlotDemand(start_s=start, duration_s=HOUR, rate_per_s=rates, busy_s=busy, num_bursts=bursts)


# ---------------------------------------------------------------- brute force (independent) ----


def _routing_feasible(pools, counts, slot, headroom) -> bool:
    """Is there a routing of the slot's demand onto `counts` replicas? (scipy LP, not PuLP)."""
    buckets = [b for b, r in slot.rate_per_s.items() if r > 0]
    if not buckets:
        return True
    pairs = [(b, i) for b in buckets for i, p in enumerate(pools) if p.capacity_per_s.get(b, 0) > 0]
    if any(all(pb != b for pb, _ in pairs) for b in buckets):
        return False
    a_eq = np.zeros((len(buckets), len(pairs)))
    b_eq = np.array([slot.rate_per_s[b] for b in buckets])
    a_ub = np.zeros((len(pools), len(pairs)))
    b_ub = np.array([headroom * c for c in counts], dtype=float)
    for k, (b, i) in enumerate(pairs):
        a_eq[buckets.index(b), k] = 1.0
        a_ub[i, k] = 1.0 / pools[i].capacity_per_s[b]
    res = linprog(np.zeros(len(pairs)), A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, method="highs")
    return res.status == 0


def _brute_force(inputs: MilpInputs, max_count: int) -> float | None:
    """Cheapest cost by enumerating every integer choice up to max_count per variable."""
    pools, slots = inputs.pools, inputs.slots
    fixed = [i for i, p in enumerate(pools) if p.billing != "flex"]
    flex = [i for i, p in enumerate(pools) if p.billing == "flex"]
    lim = inputs.limits
    best = None

    def within_limits(counts) -> bool:
        for gpu, cap in lim.max_gpus.items():
            if sum(c * p.tensor_parallel_size for c, p in zip(counts, pools) if p.gpu_id == gpu) > cap:
                return False
        if lim.max_serverless_workers is not None:
            for ep in {p.endpoint for p in pools if p.billing != "pod"}:
                if sum(c for c, p in zip(counts, pools) if p.billing != "pod" and p.endpoint == ep) > lim.max_serverless_workers:
                    return False
        return True

    for n in itertools.product(range(max_count + 1), repeat=len(fixed)):
        if sum(n) < lim.min_replicas:
            continue
        fixed_cost = sum(k * pools[i].usd_per_replica_s * inputs.horizon_s for k, i in zip(n, fixed))
        total = fixed_cost
        ok = True
        for s in slots:
            # Slots are independent given the fixed counts: take each slot's cheapest flex choice.
            best_slot = None
            for f in itertools.product(range(max_count + 1), repeat=len(flex)):
                counts = [0] * len(pools)
                for k, i in zip(n, fixed):
                    counts[i] = k
                for k, i in zip(f, flex):
                    counts[i] = k
                cost = sum(
                    k * pools[i].usd_per_replica_s * (s.busy_s + s.num_bursts * pools[i].scale_up_s)
                    for k, i in zip(f, flex)
                )
                if best_slot is not None and cost >= best_slot:
                    continue
                if within_limits(counts) and _routing_feasible(pools, counts, s, inputs.headroom):
                    best_slot = cost
            if best_slot is None:
                ok = False
                break
            total += best_slot
        budget = None if lim.budget_usd_per_month is None else lim.budget_usd_per_month * inputs.horizon_s / SECONDS_PER_MONTH
        if ok and (budget is None or total <= budget + 1e-9) and (best is None or total < best):
            best = total
    return best


def _assert_matches_brute_force(inputs: MilpInputs, max_count: int):
    """The MILP never does worse than enumeration; it ties whenever its plan is enumerable."""
    result = solve(inputs)
    expected = _brute_force(inputs, max_count=max_count)
    if expected is None:
        return result  # every feasible plan needs more than max_count of something
    assert result.optimal
    assert result.cost_usd <= expected + 1e-9
    counts = [u.count for u in result.pools] + [k for u in result.pools for k in u.flex_per_slot]
    if max(counts, default=0) <= max_count:
        assert result.cost_usd == pytest.approx(expected, rel=1e-6, abs=1e-9)
    return result


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    caps=st.lists(
        st.tuples(st.floats(0.5, 6.0), st.floats(0.2, 4.0)), min_size=2, max_size=3
    ),
    prices=st.lists(st.floats(0.3, 4.0), min_size=3, max_size=3),
    rates=st.tuples(st.floats(0.0, 6.0), st.floats(0.1, 4.0)),
    headroom=st.sampled_from([0.8, 0.9, 1.0]),
)
# a bucket at a rate near the solver's feasibility tolerance: HiGHS returned the dearer pod as
# optimal while the MILP routed requests/s instead of shares
@example(caps=[(1.0, 2.0), (2.0, 2.0)], prices=[1.0, 0.5, 1.0], rates=(1.192092896e-07, 1.0), headroom=0.8)
def test_milp_equals_brute_force_pods(caps, prices, rates, headroom):
    pools = [
        _pod(f"g{i}", {"short": c[0], "long": c[1]}, prices[i]) for i, c in enumerate(caps)
    ]
    inputs = MilpInputs(
        pools=pools, slots=[_slot({"short": rates[0], "long": rates[1]})], headroom=headroom
    )
    result = _assert_matches_brute_force(inputs, max_count=4)
    assert result.optimal


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pod_price=st.floats(0.5, 3.0),
    flex_price_ratio=st.floats(1.1, 3.0),
    cold=st.floats(0.0, 120.0),
    busy=st.tuples(st.floats(60.0, HOUR), st.floats(60.0, HOUR)),
    rates=st.tuples(st.floats(0.1, 5.0), st.floats(0.1, 5.0)),
    min_replicas=st.integers(0, 1),
)
def test_milp_equals_brute_force_pods_and_flex(pod_price, flex_price_ratio, cold, busy, rates, min_replicas):
    caps = {"all": 2.0}
    pools = [
        _pod("a", caps, pod_price),
        Pool(
            gpu_id="a",
            billing="flex",
            capacity_per_s=caps,
            usd_per_replica_s=pod_price * flex_price_ratio / HOUR,
            scale_up_s=cold,
        ),
    ]
    slots = [
        SlotDemand(start_s=0, duration_s=HOUR, rate_per_s={"all": rates[0]}, busy_s=busy[0], num_bursts=3),
        SlotDemand(start_s=HOUR, duration_s=HOUR, rate_per_s={"all": rates[1]}, busy_s=busy[1], num_bursts=1),
    ]
    inputs = MilpInputs(pools=pools, slots=slots, headroom=1.0, limits=Limits(min_replicas=min_replicas))
    _assert_matches_brute_force(inputs, max_count=3)


# ---------------------------------------------------------------------------- Mélange -----
# The example shipped with Mélange (Griggs et al. 2024, "Mélange: Cost Efficient Large Language
# Model Serving by Exploiting GPU Heterogeneity"): tyler-griggs/melange-release
# melange/main.py@1fc682cb6562073524e9c63b8febe9bdaa280646 (solver_run_example). Two GPU types,
# 2x2 request-size buckets, profiled max throughput (req/s) per bucket and hourly cost.
MELANGE_GPUS = {
    "A10G": (1.01, [[5, 1], [10, 5]]),
    "A100": (3.67, [[20, 2], [50, 20]]),
}
MELANGE_DISTRIBUTION = [[0.25, 0.125], [0.375, 0.25]]
MELANGE_RATE = 16.0


def _melange_inputs(rate: float) -> MilpInputs:
    pools = []
    for gpu, (cost, tputs) in MELANGE_GPUS.items():
        caps = {f"b{i}{j}": float(tputs[i][j]) for i in range(2) for j in range(2)}
        pools.append(_pod(gpu, caps, cost))
    rates = {
        f"b{i}{j}": MELANGE_DISTRIBUTION[i][j] * rate for i in range(2) for j in range(2)
    }
    return MilpInputs(pools=pools, slots=[_slot(rates)], headroom=1.0)


def _melange_slice_optimum(rate: float, slice_factor: int) -> float:
    """Mélange's formulation: each slice (bucket / slice_factor) goes whole to one GPU type.

    Solved here by enumeration, independently of PuLP.
    """
    slices = []
    for i in range(2):
        for j in range(2):
            for _ in range(slice_factor):
                slices.append((i, j, MELANGE_DISTRIBUTION[i][j] * rate / slice_factor))
    gpus = list(MELANGE_GPUS)
    best = math.inf
    for assign in itertools.product(range(len(gpus)), repeat=len(slices)):
        load = [0.0] * len(gpus)
        for (i, j, r), g in zip(slices, assign):
            load[g] += r / MELANGE_GPUS[gpus[g]][1][i][j]
        cost = sum(math.ceil(load[g] - 1e-9) * MELANGE_GPUS[gpus[g]][0] for g in range(len(gpus)))
        best = min(best, cost)
    return best


def test_melange_example_reproduced():
    """At the example's 16 req/s both find 5 x A10G at $5.05/h (matches brute force)."""
    result = solve(_melange_inputs(MELANGE_RATE))
    assert result.optimal
    assert result.cost_usd == pytest.approx(5.05)
    assert {(u.gpu_id, u.count) for u in result.pools} == {("A10G", 5)}
    assert _melange_slice_optimum(MELANGE_RATE, slice_factor=1) == pytest.approx(5.05)
    assert _brute_force(_melange_inputs(MELANGE_RATE), max_count=6) == pytest.approx(5.05)


@pytest.mark.parametrize("rate", [20.0, 26.0])
def test_continuous_routing_beats_melange_slicing(rate):
    """Slicing a bucket into whole pieces misses mixes that split one bucket across GPU types."""
    result = solve(_melange_inputs(rate))
    sliced = _melange_slice_optimum(rate, slice_factor=1)
    assert result.optimal
    assert result.cost_usd == pytest.approx(_brute_force(_melange_inputs(rate), max_count=6))
    assert result.cost_usd < sliced - 1e-9
    # Finer slices close part of the gap but never beat continuous routing.
    assert result.cost_usd <= _melange_slice_optimum(rate, slice_factor=2) + 1e-9


# ------------------------------------------------------------------------- behaviours -----


def test_limits_max_gpus_and_budget():
    caps = {"all": 1.0}
    pools = [_pod("cheap", caps, 1.0), _pod("dear", caps, 3.0)]
    base = MilpInputs(pools=pools, slots=[_slot({"all": 3.0})], headroom=1.0)
    assert {(u.gpu_id, u.count) for u in solve(base).pools} == {("cheap", 3)}
    limited = base.model_copy(update={"limits": Limits(max_gpus={"cheap": 1})})
    res = solve(limited)
    assert {(u.gpu_id, u.count) for u in res.pools} == {("cheap", 1), ("dear", 2)}
    monthly = res.cost_usd * SECONDS_PER_MONTH / HOUR
    too_tight = limited.model_copy(update={"limits": Limits(max_gpus={"cheap": 1}, budget_usd_per_month=monthly * 0.99)})
    assert solve(too_tight).status == "Infeasible"


def test_tensor_parallel_counts_gpus():
    caps = {"all": 4.0}
    pools = [_pod("h", caps, 4.0, tp=2)]
    inputs = MilpInputs(pools=pools, slots=[_slot({"all": 7.0})], headroom=1.0, limits=Limits(max_gpus={"h": 2}))
    assert solve(inputs).status == "Infeasible"
    inputs = inputs.model_copy(update={"limits": Limits(max_gpus={"h": 4})})
    assert solve(inputs).pools[0].count == 2


def test_headroom_adds_replicas():
    pools = [_pod("a", {"all": 1.0}, 1.0)]
    full = solve(MilpInputs(pools=pools, slots=[_slot({"all": 3.0})], headroom=1.0))
    capped = solve(MilpInputs(pools=pools, slots=[_slot({"all": 3.0})], headroom=0.9))
    assert full.pools[0].count == 3 and capped.pools[0].count == 4


def _pod_and_serverless(busy_s: float, bursts: int, rate: float, slots: int = 4):
    caps = {"all": 2.0}
    pools = [
        _pod("l4", caps, 0.5),
        Pool(gpu_id="l4", billing="flex", capacity_per_s=caps, usd_per_replica_s=0.68 / HOUR, scale_up_s=30.0),
        Pool(gpu_id="l4", billing="active", capacity_per_s=caps, usd_per_replica_s=0.47 / HOUR),
    ]
    demand = [
        SlotDemand(start_s=t * HOUR, duration_s=HOUR, rate_per_s={"all": rate}, busy_s=busy_s, num_bursts=bursts)
        for t in range(slots)
    ]
    return MilpInputs(pools=pools, slots=demand, headroom=0.9)


def test_steady_load_buys_always_on_capacity_sparse_bursts_buy_flex():
    steady = solve(_pod_and_serverless(busy_s=HOUR, bursts=1, rate=3.0))
    assert {u.billing for u in steady.pools} <= {"pod", "active"}
    sparse = solve(_pod_and_serverless(busy_s=300.0, bursts=5, rate=3.0))
    assert {u.billing for u in sparse.pools} == {"flex"}
    assert sparse.cost_usd < steady.cost_usd


def test_more_demand_never_costs_less():
    prev = 0.0
    for rate in [0.5, 1.0, 2.0, 4.0, 8.0]:
        res = solve(_pod_and_serverless(busy_s=1200.0, bursts=2, rate=rate))
        assert res.cost_usd >= prev - 1e-9
        prev = res.cost_usd


def test_no_candidate_for_a_bucket_is_explained():
    pools = [_pod("a", {"short": 1.0}, 1.0)]
    with pytest.raises(PlannerError, match="tensor_parallel_size"):
        solve(MilpInputs(pools=pools, slots=[_slot({"short": 1.0, "long": 1.0})]))


def test_constraints_and_variables_are_named():
    inputs = _pod_and_serverless(busy_s=600.0, bursts=2, rate=1.0, slots=2)
    m = build_model(inputs, routed=True)
    for name in ["demand_all_t0", "capacity_l4_tp1_pod_t0", "capacity_l4_tp1_flex_t1"]:
        assert m.prob.get_constraint_by_name(name) is not None
    assert ("all", "l4-tp1-flex", 1) in m.r and "l4-tp1-pod" in m.n and ("l4-tp1-flex", 0) in m.f


@settings(max_examples=20, deadline=None)
@given(
    scale=st.floats(0.3, 1.0),
    rates=st.tuples(st.floats(0.1, 8.0), st.floats(0.1, 8.0)),
    prices=st.tuples(st.floats(0.3, 3.0), st.floats(0.3, 3.0)),
)
def test_less_capacity_never_costs_less(scale, rates, prices):
    """A tighter SLO shows up as lower capacities: the optimum can only get dearer."""
    caps = [{"short": 3.0, "long": 1.0}, {"short": 5.0, "long": 2.5}]

    def inputs(factor):
        pools = [_pod(f"g{i}", {b: v * factor for b, v in c.items()}, prices[i]) for i, c in enumerate(caps)]
        return MilpInputs(pools=pools, slots=[_slot({"short": rates[0], "long": rates[1]})], headroom=0.9)

    assert solve(inputs(scale)).cost_usd >= solve(inputs(1.0)).cost_usd - 1e-9


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rates=st.tuples(st.floats(0.2, 6.0), st.floats(0.2, 6.0)),
    busy=st.floats(120.0, HOUR),
    max_gpus_a=st.integers(0, 3),
    max_workers=st.integers(1, 3),
    min_replicas=st.integers(0, 2),
    active_price=st.floats(0.2, 1.5),
)
def test_milp_equals_brute_force_with_limits(rates, busy, max_gpus_a, max_workers, min_replicas, active_price):
    """Pods of two GPU types (one TP2) plus a serverless endpoint (active + flex), under every limit."""
    pools = [
        _pod("a", {"all": 2.0}, 1.0),
        _pod("b", {"all": 5.0}, 2.2, tp=2),
        Pool(gpu_id="b", tensor_parallel_size=2, billing="active", capacity_per_s={"all": 5.0},
             usd_per_replica_s=active_price * 2 / HOUR),
        Pool(gpu_id="b", tensor_parallel_size=2, billing="flex", capacity_per_s={"all": 5.0},
             usd_per_replica_s=3.0 / HOUR, scale_up_s=60.0),
    ]
    slots = [
        SlotDemand(start_s=0, duration_s=HOUR, rate_per_s={"all": rates[0]}, busy_s=busy, num_bursts=2),
        SlotDemand(start_s=HOUR, duration_s=HOUR, rate_per_s={"all": rates[1]}, busy_s=HOUR, num_bursts=1),
    ]
    limits = Limits(max_gpus={"a": max_gpus_a}, max_serverless_workers=max_workers, min_replicas=min_replicas)
    inputs = MilpInputs(pools=pools, slots=slots, headroom=0.9, limits=limits)
    result = solve(inputs)
    expected = _brute_force(inputs, max_count=3)
    if expected is None:
        assert not result.optimal or max(
            [u.count for u in result.pools] + [k for u in result.pools for k in u.flex_per_slot]
        ) > 3
        return
    assert result.optimal and result.cost_usd <= expected + 1e-9
    counts = [u.count for u in result.pools] + [k for u in result.pools for k in u.flex_per_slot]
    if max(counts, default=0) <= 3:
        assert result.cost_usd == pytest.approx(expected, rel=1e-6, abs=1e-9)
