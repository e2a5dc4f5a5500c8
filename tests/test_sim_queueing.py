"""Sanity against queueing theory and monotonicity on fixed scenarios (linear step model)."""

from __future__ import annotations

import numpy as np
import pytest

from planner.sim import LinearStepModel
from sim_helpers import poisson_workload, run, setup

# No decode cost beyond the fixed step: a saturated engine with a full batch of B sequences
# produces B tokens per step, so the most it can serve is
#   lambda_max = 1 / (O x fixed_s / B + P x per_prefill_token_s)   requests/s.
FIXED_S, PER_PREFILL_S, P, O, B = 0.01, 1e-4, 200, 50, 8
LAMBDA_MAX = 1.0 / (O * FIXED_S / B + P * PER_PREFILL_S)  # 12.12 req/s


def engine(fixed_s=FIXED_S):
    return setup(LinearStepModel(fixed_s=fixed_s, per_prefill_token_s=PER_PREFILL_S), num_gpu_blocks=10_000,
                 max_num_seqs=B, max_num_batched_tokens=2048)


def test_low_load_ttft_is_the_prefill_time():
    model = LinearStepModel(fixed_s=0.008, per_decode_s=2e-5, per_context_token_s=1e-7, per_prefill_token_s=6e-5)
    prefill_s = model.step_seconds(np.zeros(0), [(1000, 0)])  # 0.068 s
    wl = poisson_workload(0.2, 600.0, 1000, 100, seed=4)
    m = run(wl, setup(model, max_num_batched_tokens=2048)).metrics
    assert m.ttft_seconds.p50 == pytest.approx(prefill_s, rel=0.05)
    # an arrival during another request's decode waits for that step and shares its own with it
    assert prefill_s <= m.ttft_seconds.mean < prefill_s * 1.25


def test_throughput_saturates_at_the_batch_capacity():
    wl = poisson_workload(2 * LAMBDA_MAX, 200.0, P, O, seed=5)
    m = run(wl, engine()).metrics
    assert m.throughput.requests_per_second == pytest.approx(LAMBDA_MAX, rel=0.02)
    assert m.batch_size_mean == pytest.approx(B, rel=0.02)


def test_queueing_delay_grows_without_bound_near_capacity():
    waits = []
    for load in (0.3, 0.6, 0.85, 0.95):
        wl = poisson_workload(load * LAMBDA_MAX, 400.0, P, O, seed=6)
        waits.append(run(wl, engine()).metrics.queue_seconds.mean)
    assert waits == sorted(waits)
    assert waits[-1] > 5 * waits[0]
    # past capacity the wait keeps growing with the horizon: no steady state
    over = [run(poisson_workload(1.2 * LAMBDA_MAX, h, P, O, seed=7), engine()).metrics.queue_seconds.mean
            for h in (100.0, 200.0)]
    assert over[1] > 1.7 * over[0]


@pytest.mark.parametrize("seed", [0, 1])
def test_more_replicas_or_a_faster_gpu_do_not_hurt_on_fixed_scenarios(seed):
    wl = poisson_workload(2.5 * LAMBDA_MAX, 60.0, (50, 400), (10, 100), seed=seed)
    by_replicas = [run(wl, engine(), pods=n).metrics for n in (1, 2, 3, 4)]
    for a, b in zip(by_replicas, by_replicas[1:]):
        assert b.ttft_seconds.mean <= a.ttft_seconds.mean
        assert b.e2e_seconds.p99 <= a.e2e_seconds.p99
    by_speed = [run(wl, engine(fixed_s=f), pods=3).metrics for f in (0.012, 0.01, 0.008)]
    for a, b in zip(by_speed, by_speed[1:]):
        assert b.ttft_seconds.mean <= a.ttft_seconds.mean
        assert b.e2e_seconds.mean <= a.e2e_seconds.mean


def test_more_replicas_help_as_a_statistical_trend():
    # Batching anomalies can make one scenario non-monotone; averaged over seeds the trend holds.
    p90 = {n: np.mean([run(poisson_workload(1.6 * LAMBDA_MAX, 60.0, (50, 400), (10, 100), seed=s), engine(),
                           pods=n).metrics.ttft_seconds.p90 for s in range(4)]) for n in (1, 2, 3)}
    assert p90[1] > p90[2] > p90[3]
