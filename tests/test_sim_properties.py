"""Properties of the engine on random small workloads (hypothesis), and jump == step mode."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.sim import FleetObserver, FleetSpec, LinearStepModel, simulate
from planner.sim.block_pool import BlockPool
from sim_helpers import setup, workload


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 40))
    gaps = draw(st.lists(st.floats(0.0, 0.05), min_size=n, max_size=n))
    prompts = draw(st.lists(st.integers(1, 300), min_size=n, max_size=n))
    outputs = draw(st.lists(st.integers(1, 120), min_size=n, max_size=n))
    block_size = draw(st.sampled_from([1, 4, 16]))
    eng = dict(
        num_gpu_blocks=draw(st.integers(2, 120)) * 16 // block_size,
        max_num_seqs=draw(st.integers(1, 16)),
        max_num_batched_tokens=draw(st.integers(16, 512)),
        max_model_len=draw(st.sampled_from([256, 512])),
        block_size=block_size,
        enable_chunked_prefill=draw(st.booleans()),
    )
    eng["max_num_batched_tokens"] = max(eng["max_num_batched_tokens"], eng["max_num_seqs"])
    if not eng["enable_chunked_prefill"]:
        eng["max_num_batched_tokens"] = max(eng["max_num_batched_tokens"], eng["max_model_len"])
    model = LinearStepModel(
        fixed_s=draw(st.floats(0.001, 0.02)),
        per_decode_s=draw(st.floats(0.0, 1e-3)),
        per_context_token_s=draw(st.floats(0.0, 1e-5)),
        per_prefill_token_s=draw(st.floats(0.0, 1e-4)),
    )
    pods = draw(st.integers(1, 3))
    router = draw(st.sampled_from(["least_outstanding", "round_robin"]))
    wl = workload(np.cumsum(gaps), prompts, outputs, horizon_s=float(np.sum(gaps)))
    return wl, setup(model, **eng), pods, router


class _Checker(FleetObserver):
    def __init__(self):
        self.finished = []

    def on_request_finished(self, fleet, worker, request):
        self.finished.append(request)


def _run_checked(wl, replica_setup, pods, router, jump):
    checker = _Checker()
    # Watch every block taken: the pool must never hand out more than it holds.
    original_take = BlockPool.take

    def take(pool, num_blocks):
        ok = original_take(pool, num_blocks)
        assert 0 <= pool.num_free_blocks <= pool.num_gpu_blocks
        return ok

    BlockPool.take = take
    try:
        import planner.sim.simulation as simulation

        original_fleet = simulation.Fleet

        class WatchedFleet(original_fleet):
            def __init__(self, *a, **k):
                super().__init__(*a, **k)
                self.observers.append(checker)

        simulation.Fleet = WatchedFleet
        try:
            out = simulate(wl, replica_setup, FleetSpec(pods=pods), None, jump=jump, router=router)
        finally:
            simulation.Fleet = original_fleet
    finally:
        BlockPool.take = original_take
    return out, checker


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_every_request_accounted_for_and_pool_respected(scenario):
    wl, replica_setup, pods, router = scenario
    out, checker = _run_checked(wl, replica_setup, pods, router, jump=True)
    r = out.records
    done = r.completed
    rejected = r.rejected_reason != ""
    # completed xor rejected-with-a-reason, none lost
    assert np.all(done ^ rejected)
    assert set(r.rejected_reason[rejected]) <= {"exceeds_max_model_len", "exceeds_kv_cache"}
    cfg = replica_setup.engine_args
    too_long = wl.prompt_tokens + wl.output_tokens > cfg.max_model_len
    assert np.all(rejected[too_long])
    # every finished request produced exactly its output tokens
    assert len(checker.finished) == int(done.sum())
    for req in checker.finished:
        assert req.num_output_tokens == req.max_output_tokens
        assert req.num_blocks == 0
    # time order, and no first token before arrival + the prompt's own prefill time
    model = replica_setup.step_model
    for i in np.flatnonzero(done):
        assert r.arrival_at[i] <= r.admitted_at[i] < r.first_token_at[i] <= r.finished_at[i]
        alone = model.step_seconds(np.zeros(0), [(int(wl.prompt_tokens[i]), 0)]) if wl.prompt_tokens[i] > 1 \
            else model.step_seconds(np.zeros(1), [])
        assert r.first_token_at[i] - r.arrival_at[i] >= alone - 1e-9
    assert out.metrics.completed + out.metrics.rejected == len(wl.arrival_s)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_jump_mode_equals_step_mode(scenario):
    wl, replica_setup, pods, router = scenario
    a = simulate(wl, replica_setup, FleetSpec(pods=pods), None, jump=True, router=router).records
    b = simulate(wl, replica_setup, FleetSpec(pods=pods), None, jump=False, router=router).records
    for name in ("admitted_at", "first_token_at", "finished_at"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-9, atol=1e-9, err_msg=name)
    assert a.replica.tolist() == b.replica.tolist()
    assert a.preemptions.tolist() == b.preemptions.tolist()
    assert a.rejected_reason.tolist() == b.rejected_reason.tolist()


def test_jump_equals_step_under_kv_pressure_and_preemption():
    # A fixed scenario that preempts a lot: small pool, long outputs.
    rng = np.random.default_rng(3)
    n = 60
    wl = workload(np.sort(rng.uniform(0, 2.0, n)), rng.integers(20, 200, n), rng.integers(20, 300, n), 2.0)
    eng = setup(LinearStepModel(0.005, 1e-4, 1e-6, 2e-5), num_gpu_blocks=40, max_num_seqs=16,
                max_num_batched_tokens=256, max_model_len=1024)
    a = simulate(wl, eng, FleetSpec(pods=1), None, jump=True)
    b = simulate(wl, eng, FleetSpec(pods=1), None, jump=False)
    assert a.metrics.preemptions > 5
    assert a.metrics.preemptions == b.metrics.preemptions
    np.testing.assert_allclose(a.records.finished_at, b.records.finished_at, rtol=1e-9)
    np.testing.assert_allclose(a.records.first_token_at, b.records.first_token_at, rtol=1e-9)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_lazy_decoders_equal_vllms_request_by_request_loop(scenario):
    """The bulk (lazy-decoder) plan of a step equals planning it request by request, as vLLM does."""
    from planner.sim.scheduler import Scheduler

    wl, replica_setup, pods, router = scenario
    fast = simulate(wl, replica_setup, FleetSpec(pods=pods), None, jump=True, router=router)
    original = Scheduler.schedule
    Scheduler.schedule = Scheduler._schedule_by_request  # every step request by request, no jumps
    try:
        reference = simulate(wl, replica_setup, FleetSpec(pods=pods), None, jump=False, router=router)
    finally:
        Scheduler.schedule = original
    for name in ("admitted_at", "first_token_at", "finished_at"):
        np.testing.assert_allclose(getattr(fast.records, name), getattr(reference.records, name), rtol=1e-9,
                                   atol=1e-9, err_msg=name)
    assert fast.records.preemptions.tolist() == reference.records.preemptions.tolist()
    # (KV usage over time is not compared: a jump counts its blocks as at its first step.)
