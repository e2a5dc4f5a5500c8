"""One SLO rule, one price-per-token rule, one month: every module that reports them agrees."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import plan_doubles as D
from planner import billing, capacity
from planner.billing import MONTH_ASSUMPTION, SECONDS_PER_MONTH, per_month
from planner.optimize import MilpInputs, Pool, SlotDemand, solve
from planner.optimize.loop import plan
from planner.sim.metrics import SLO_RELATIVE_TOLERANCE, LatencyStats, RequestRecords, compute_metrics, request_slo
from planner.traffic import Workload

NAN = np.nan


def test_request_slo_rule():
    # 0 met; 1 TTFT over; 2 never served; 3 TPOT over; 4 one token: only TTFT counts, however long
    # it ran; 5 one token with TTFT over; 6 started but never finished (a miss, no TPOT).
    arrival = np.zeros(7)
    first = np.array([0.5, 3.0, NAN, 1.0, 1.0, 2.5, 0.5])
    finished = np.array([1.5, 4.0, NAN, 20.0, 9.0, 2.5, NAN])
    out = np.array([11, 11, 11, 11, 1, 1, 11])
    ttft, tpot, met = request_slo(arrival, first, finished, out, 2.0, 0.1)
    assert met.tolist() == [True, False, False, False, True, False, False]
    assert tpot[0] == pytest.approx(0.1) and tpot[3] == pytest.approx(1.9)
    assert np.isnan(tpot[[2, 4, 5, 6]]).all() and np.isnan(ttft[2]) and ttft[6] == 0.5
    # A None threshold is not checked.
    assert request_slo(arrival, first, finished, out, None, None)[2].tolist() == [True, True, False, True, True,
                                                                                    True, False]


def test_at_the_limit_float_noise_meets_the_slo_a_real_excess_does_not():
    assert 0 < SLO_RELATIVE_TOLERANCE <= 1e-9
    limit = 0.3
    noise = limit * 1e-12  # float rounding, well inside the tolerance
    arrival = np.zeros(4)
    first = np.array([limit + noise, limit + 1e-6, 0.1, 0.1])
    # TPOT over 10 decode tokens: exactly at 0.05 up to rounding, then clearly over.
    finished = first + np.array([0.0, 0.0, 10 * 0.05 * (1 + 1e-12), 10 * 0.0501])
    out = np.array([1, 1, 11, 11])
    assert request_slo(arrival, first, finished, out, limit, 0.05)[2].tolist() == [True, False, True, False]


def _records(arrival, first, finished, out) -> RequestRecords:
    n = len(arrival)
    return RequestRecords(
        arrival_at=np.asarray(arrival, float), admitted_at=np.asarray(first, float),
        first_token_at=np.asarray(first, float), finished_at=np.asarray(finished, float),
        replica=np.zeros(n, np.int32), preemptions=np.zeros(n, np.int32),
        prompt_tokens=np.full(n, 100, np.int64), output_tokens=np.asarray(out, np.int64),
        rejected_reason=np.array(["" if not np.isnan(f) else "queue_full" for f in first]),
    )


def test_sim_metrics_use_the_rule():
    slo = SimpleNamespace(ttft_seconds=0.3, tpot_seconds=0.05, attainment=0.5)
    arrival = np.zeros(5)
    first = np.array([0.3 * (1 + 1e-12), 0.1, NAN, 0.1, 0.4])  # at the limit up to float noise: met
    finished = first + np.array([0.0, 0.5, NAN, 2.0, 0.0])
    out = np.array([1, 11, 11, 11, 1])
    m = compute_metrics(_records(arrival, first, finished, out), [], slo, num_gpu_blocks=1, batch_area=[0.0],
                        blocks_area=[0.0], bin_s=10.0, num_preemptions=0, simulated_seconds=10.0, wall_seconds=0.0)
    met = request_slo(arrival, first, finished, out, 0.3, 0.05)[2]
    assert met.tolist() == [True, True, False, False, False]
    assert m.slo_attainment == pytest.approx(met.mean()) == pytest.approx(0.4)
    assert m.tpot_seconds.count == 2  # the one-token and never-served requests have no TPOT


def test_capacity_probe_uses_the_rule():
    """The bisection's attainment is the shared rule's, on the requests past the warm-up."""
    profile = D.profile({"process": "poisson", "rate_per_s": 1.0})
    n = 40
    out = np.where(np.arange(n) % 4 == 0, 1, 11)
    ttft_slo, tpot_slo = profile.slo.ttft_seconds, profile.slo.tpot_seconds
    seen = {}

    def simulate(profile, gpu_id, tp, wl):
        arr = np.asarray(wl.arrival_s)
        # every other request exactly at the TTFT limit, every third over the TPOT limit
        ttft = np.where(np.arange(n) % 2 == 0, ttft_slo, ttft_slo / 2)
        tpot = np.where(np.arange(n) % 3 == 0, tpot_slo * 1.5, tpot_slo)
        first = arr + ttft
        finished = first + tpot * np.maximum(out - 1, 0)
        finished[[7, 8]] = NAN  # two requests never finish (8 has one output token)
        seen["met"] = request_slo(arr, first, finished, out, ttft_slo, tpot_slo)[2]
        return SimpleNamespace(records=SimpleNamespace(arrival_at=arr, first_token_at=first, finished_at=finished))

    fn = capacity._attainment_fn(profile, "h100-sxm", 1, np.full(n, 100), out, 1.0, 0, simulate)
    skip = int(n * capacity.WARMUP_FRACTION)
    assert fn(2.0) == pytest.approx(seen["met"][skip:].mean())
    assert 0 < fn(2.0) < 1


def test_price_outcome_counts_what_was_produced():
    prices = billing.ResolvedPrices(gpu_id="x", pod_cloud="secure", pod_provider="t", pod_usd_per_gpu_hour=3.6,
                                    pod_price_label="t")
    spans = [D.Span("pod", 0.0, 0.0, 7200.0, 100.0, 1)]  # drains past the horizon: billed for the horizon
    records = SimpleNamespace(finished_at=np.array([1.0, NAN, 3.0]), output_tokens=np.array([100, 900, 300]))
    cost = billing.price_outcome(SimpleNamespace(records=records, workers=spans), prices, 3600.0)
    assert cost.cost_usd == pytest.approx(3.6)
    assert cost.output_tokens == 400 and cost.num_requests == 2
    assert cost.cost_per_million_output_tokens_usd == pytest.approx(3.6 / 400 * 1e6)


def _steady() -> Workload:
    t = (np.arange(3600 * 4) + 0.5) / 4.0
    return Workload(t, np.full(len(t), 500), np.full(len(t), 100), 3600.0)


def test_verified_plan_prices_produced_tokens_and_uses_latency_stats():
    """A request that never finishes produces no tokens and misses the SLO, in verify as everywhere."""
    base = D.backend()

    def simulate_fleet(*a, **k):
        outcome = base.simulate_fleet(*a, **k)
        rec = outcome.records
        rec.finished_at = np.asarray(rec.finished_at, float).copy()
        rec.finished_at[::10] = NAN
        return outcome

    backend = D.backend()
    backend.simulate_fleet = simulate_fleet
    wl = _steady()
    result, _ = plan(D.profile({"process": "poisson", "rate_per_s": 4.0}), backend=backend, use_cache=False,
                     workload=wl)
    run = result.verification
    assert run.simulated and run.num_requests == len(wl)
    assert run.output_tokens < int(wl.output_tokens.sum())
    assert run.output_tokens == sum(100 for i in range(len(wl)) if i % 10)  # one endpoint: every 10th lost
    assert run.usd_per_million_output_tokens == pytest.approx(run.cost_usd / run.output_tokens * 1e6)
    assert run.slo_attainment == pytest.approx(0.9)
    assert run.cost_per_month_usd == pytest.approx(per_month(run.cost_usd, wl.horizon_s))
    ttft = LatencyStats.of(np.full(len(wl), 0.5))
    assert run.ttft_p50_s == ttft.p50 and run.ttft_p99_s == ttft.p99
    assert run.tpot_p50_s == pytest.approx(1.0 / 99)


def test_one_month_everywhere():
    assert per_month(2.0, 3600.0) == pytest.approx(2.0 * 730)
    assert Workload(np.zeros(1), np.ones(1, int), np.ones(1, int), 5.0).month_factor == per_month(1.0, 5.0)
    with pytest.raises(Exception, match="horizon"):
        per_month(1.0, 0.0)
    prices = billing.ResolvedPrices(gpu_id="x", pod_cloud="secure", pod_provider="t", pod_usd_per_gpu_hour=3.6,
                                    pod_price_label="t")
    cost = billing.cost_of([D.Span("pod", 0.0, 0.0, 1800.0, 0.0, 1)], prices, 1800.0)
    assert cost.cost_per_month_usd == pytest.approx(per_month(1.8, 1800.0)) == pytest.approx(3.6 * 730)
    assert MONTH_ASSUMPTION in cost.month_extrapolation
    pool = Pool(gpu_id="g", billing="pod", capacity_per_s={"all": 1.0}, usd_per_replica_s=1.0 / 3600)
    slot = SlotDemand(start_s=0.0, duration_s=3600.0, rate_per_s={"all": 0.5}, busy_s=3600.0)
    res = solve(MilpInputs(pools=[pool], slots=[slot]))
    assert res.cost_per_month_usd == pytest.approx(per_month(res.cost_usd, 3600.0)) == pytest.approx(730.0)
    assert SECONDS_PER_MONTH == 730 * 3600


def test_plan_states_the_month_in_the_shared_words():
    result, _ = plan(D.profile({"process": "poisson", "rate_per_s": 4.0}), backend=D.backend(), use_cache=False,
                     workload=_steady())
    month = [line for line in result.assumptions if "month" in line]
    assert len(month) == 1 and month[0].startswith(MONTH_ASSUMPTION)
