"""The serverless endpoint in the simulator: cold starts, scalers, idle timeout, active workers."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from planner.scenario import serverless_spec
from planner.billing import cost_of, resolve_prices
from planner.errors import PlannerError
from planner.sim import FleetSpec, LinearStepModel, ReplicaSetup, SchedulerConfig, simulate
from planner.sim.serverless import ServerlessSpec

FLEX = 0.00116  # USD/s, Runpod "80 GB PRO" (H100) flex, FACTS.md §2.1
GPU = {
    "id": "h100-sxm",
    "pod_prices": [{"provider": "runpod", "cloud": "secure", "usd_per_hour": 3.49, "as_of": "2026-09-25", "source": "s"}],
    "serverless": {"tier": "80 GB PRO", "flex_usd_per_s": FLEX, "active_usd_per_s": 0.00093, "as_of": "2025-08-25",
                   "source": "s", "ambiguous_note": None},
}
STEP_S = 0.01  # every engine step takes 10 ms: hand-computable service times


def _workload(arrivals, prompt=100, output=10, horizon_s=None):
    arrival = np.asarray(arrivals, dtype=np.float64)
    n = len(arrival)
    return SimpleNamespace(arrival_s=arrival, prompt_tokens=np.full(n, prompt, dtype=np.int64),
                           output_tokens=np.full(n, output, dtype=np.int64),
                           horizon_s=float(horizon_s if horizon_s is not None else arrival[-1]))


def _setup(step_s=STEP_S, max_num_seqs=64):
    return ReplicaSetup(step_model=LinearStepModel(fixed_s=step_s), num_gpu_blocks=2000,
                        engine_args=SchedulerConfig(max_num_seqs=max_num_seqs, max_num_batched_tokens=4096,
                                                    max_model_len=4096))


def test_one_request_every_ten_minutes_pays_cold_start_service_and_idle_timeout():
    cold, idle = 30.5, 5.0
    spec = ServerlessSpec(cold_start_s=cold, idle_timeout_s=idle)
    arrivals = np.arange(6) * 600.0
    out = simulate(_workload(arrivals, horizon_s=3600.0), _setup(), FleetSpec(pods=0, serverless=spec), None)
    flex = [w for w in out.workers if w.kind == "flex"]
    assert len(flex) == 6  # every request finds the endpoint scaled to zero
    service = 10 * STEP_S  # a prefill step (first token) + 9 decode steps
    for span, t in zip(flex, arrivals):
        assert span.started_at == pytest.approx(t)
        assert span.ready_at == pytest.approx(t + cold)
        assert span.stopped_at == pytest.approx(t + cold + service + idle)
    ttft = out.records.first_token_at - out.records.arrival_at
    np.testing.assert_allclose(ttft, cold + STEP_S)  # the TTFT includes the cold start
    cost = cost_of(out.workers, resolve_prices(GPU), 3600.0, num_requests=6)
    assert cost.cost_usd == pytest.approx(6 * math.ceil(cold + service + idle) * FLEX)
    assert cost.cold_starts == 6 and cost.cold_start_seconds == pytest.approx(6 * cold)


def test_warm_worker_serves_without_cold_start_and_stops_after_idle_timeout():
    spec = ServerlessSpec(cold_start_s=20.0, idle_timeout_s=5.0)
    out = simulate(_workload([0.0, 22.0], horizon_s=60.0), _setup(), FleetSpec(pods=0, serverless=spec), None)
    flex = [w for w in out.workers if w.kind == "flex"]
    assert len(flex) == 1  # the second request arrives while the worker is warm (ready at 20 s)
    ttft = out.records.first_token_at - out.records.arrival_at
    assert ttft[0] == pytest.approx(20.0 + STEP_S)
    assert ttft[1] == pytest.approx(STEP_S)
    assert flex[0].stopped_at == pytest.approx(22.0 + 10 * STEP_S + 5.0)


def test_active_workers_are_warm_and_never_stop():
    spec = ServerlessSpec(active_workers=1, max_workers=2, cold_start_s=50.0)
    out = simulate(_workload([1.0, 300.0], horizon_s=600.0), _setup(), FleetSpec(pods=0, serverless=spec), None)
    assert [w.kind for w in out.workers] == ["active"]
    np.testing.assert_allclose(out.records.first_token_at - out.records.arrival_at, STEP_S)
    cost = cost_of(out.workers, resolve_prices(GPU), 600.0)
    assert cost.cost_usd == pytest.approx(600 * 0.00093)
    assert cost.cold_starts == 0


def test_queue_delay_scaler_adds_workers_up_to_max():
    # 40 long requests at once, 10 per worker: the first worker starts at once (scale from zero);
    # the queue then waits past the 4 s threshold and more workers start, never more than max_workers.
    spec = ServerlessSpec(max_workers=3, cold_start_s=10.0, max_concurrency_per_worker=10, scaler_value=4.0)
    out = simulate(_workload(np.zeros(40), output=2000), _setup(), FleetSpec(pods=0, serverless=spec), None)
    flex = sorted((w for w in out.workers if w.kind == "flex"), key=lambda w: w.started_at)
    assert len(flex) == 3
    assert flex[0].started_at == pytest.approx(0.0)
    assert flex[1].started_at == pytest.approx(4.0)  # the oldest queued request waited 4 s
    assert all(w.started_at == pytest.approx(4.0) for w in flex[1:])
    assert out.metrics.completed == 40


def test_request_count_scaler_starts_ceil_requests_over_value():
    spec = ServerlessSpec(max_workers=5, cold_start_s=10.0, scaler="request-count", scaler_value=4)
    out = simulate(_workload(np.zeros(9), output=50), _setup(), FleetSpec(pods=0, serverless=spec), None)
    flex = [w for w in out.workers if w.kind == "flex"]
    assert len(flex) == math.ceil(9 / 4)
    assert all(w.started_at == 0.0 for w in flex)


def test_mix_sends_base_load_to_pods_and_bursts_to_serverless():
    # One pod taking at most 4 requests; a burst of 12 overflows to flex workers, which then idle out.
    spec = ServerlessSpec(max_workers=3, cold_start_s=2.0, max_concurrency_per_worker=4, scaler_value=1.0,
                          overflow_only=True)
    arrivals = np.concatenate([np.zeros(12), np.arange(100.0, 160.0, 5.0)])
    out = simulate(_workload(arrivals, output=500, horizon_s=200.0), _setup(),
                   FleetSpec(pods=1, pod_max_outstanding=4, serverless=spec), None)
    flex = [w for w in out.workers if w.kind == "flex"]
    assert 1 <= len(flex) <= 3
    assert all(w.stopped_at < 100.0 for w in flex)  # bursts served, then idled out before the base load
    late = out.records.replica[12:]
    assert set(late.tolist()) == {0}  # the steady trickle stays on the pod
    assert out.metrics.completed == len(arrivals)


def test_bad_settings_are_rejected():
    with pytest.raises(ValidationError):
        ServerlessSpec(active_workers=4, max_workers=3)
    with pytest.raises(ValidationError):
        ServerlessSpec(idle_timeout_s=-1)
    with pytest.raises(PlannerError, match="idle_timeout_seconds"):
        serverless_spec({"idle_timeout_seconds": -2.0}, 10**9)
    with pytest.raises(PlannerError, match="max workers"):
        serverless_spec({"active_workers": 5, "max_workers": 2}, 10**9)


def test_serverless_spec_uses_cold_start_model():
    spec = serverless_spec({"container_start_seconds": 1.0, "model_load_bytes_per_second": 1e9,
                            "engine_warmup_seconds": 2.0}, 4_000_000_000, max_workers=7)
    assert spec.cold_start_s == pytest.approx(7.0)
    assert spec.max_workers == 7
    assert spec.scaler == "queue-delay" and spec.scaler_value == 4.0 and spec.idle_timeout_s == 5.0
    assert not spec.overflow_only and serverless_spec({}, 10**9, pods=2).overflow_only  # beside pods: overflow only


@settings(max_examples=15, deadline=None)
@given(
    gaps=st.lists(st.floats(min_value=0.0, max_value=40.0), min_size=1, max_size=25),
    max_workers=st.integers(min_value=1, max_value=4),
    active=st.integers(min_value=0, max_value=1),
    scaler=st.sampled_from(["queue-delay", "request-count"]),
    cold=st.floats(min_value=0.0, max_value=15.0),
)
def test_endpoint_invariants(gaps, max_workers, active, scaler, cold):
    """Every request is served; live workers never exceed max_workers; billing adds up."""
    active = min(active, max_workers)
    spec = ServerlessSpec(active_workers=active, max_workers=max_workers, cold_start_s=cold, scaler=scaler,
                          scaler_value=4.0 if scaler == "queue-delay" else 2.0, max_concurrency_per_worker=3)
    arrivals = np.cumsum(gaps)
    out = simulate(_workload(arrivals, output=30, horizon_s=float(arrivals[-1]) + 60.0), _setup(),
                   FleetSpec(pods=0, serverless=spec), None)
    assert out.metrics.completed == len(arrivals)
    events = sorted([(w.started_at, 1) for w in out.workers] + [(w.stopped_at, -1) for w in out.workers],
                    key=lambda e: (e[0], e[1]))
    live = 0
    for _, delta in events:
        live += delta
        assert live <= max_workers
    assert sum(w.kind == "active" for w in out.workers) == active
    ttft = out.records.first_token_at - out.records.arrival_at
    assert np.all(ttft >= STEP_S - 1e-9)
    cost = cost_of(out.workers, resolve_prices(GPU), float(arrivals[-1]) + 60.0)
    flex_billed = sum(math.ceil(w.stopped_at - w.started_at - 1e-9) for w in out.workers if w.kind == "flex")
    assert cost.cold_starts == sum(w.kind == "flex" for w in out.workers)
    flex_line = [line for line in cost.lines if line.kind == "flex"]
    assert (flex_line[0].billed_gpu_seconds if flex_line else 0) == pytest.approx(flex_billed)
