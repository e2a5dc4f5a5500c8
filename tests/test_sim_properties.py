"""Properties of the engine on random small workloads (hypothesis), and jump == step mode."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.sim import FleetObserver, FleetSpec, LinearStepModel, simulate
from planner.sim.request import RequestStatus
from planner.sim.scheduler import Scheduler
from sim_helpers import SummedLinearStepModel, setup, workload


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
        async_scheduling=draw(st.booleans()),
    )
    eng["max_num_batched_tokens"] = max(eng["max_num_batched_tokens"], eng["max_num_seqs"])
    if not eng["enable_chunked_prefill"]:
        eng["max_num_batched_tokens"] = max(eng["max_num_batched_tokens"], eng["max_model_len"])
    # the summed interface takes the replica's closed-form decode runs
    model = draw(st.sampled_from([LinearStepModel, SummedLinearStepModel]))(
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


def _blocks(num_tokens: int, block_size: int) -> int:
    return -(-num_tokens // block_size)


class _CheckedScheduler(Scheduler):
    """Test double: the real Scheduler, with the KV accounting checked after every call the replica makes.

    Checked after planning each step (`schedule`), after applying each step or decode run
    (`update_from_output`, `update_after_decode_run`) and on each jump length
    (`uniform_decode_steps`). Counters are recomputed from the requests' own token counts, not
    from the scheduler's lazy bookkeeping, so a leak or a miscount in either shows up.
    """

    created: list["_CheckedScheduler"] = []  # every instance of the current run

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _CheckedScheduler.created.append(self)

    def schedule(self, now, admit_until=None):
        out = super().schedule(now, admit_until)
        self._check_planned(out)
        return out

    def uniform_decode_steps(self, out):
        num_steps = super().uniform_decode_steps(out)
        assert num_steps == self._expected_run_length(out), (num_steps, self._expected_run_length(out))
        return num_steps

    def update_from_output(self, out, now):
        finished = super().update_from_output(out, now)
        self._check_settled(finished)
        return finished

    def update_after_decode_run(self, num_steps, now):
        finished = super().update_after_decode_run(num_steps, now)
        self._check_settled(finished)
        return finished

    # --- the invariants ---------------------------------------------------------------------
    def _check_queue_and_limits(self):
        cfg = self.config
        assert len(self.running) <= cfg.max_num_seqs
        for r in self.waiting:  # never scheduled, or preempted: no KV held, all to (re)compute
            assert r.status in (RequestStatus.WAITING, RequestStatus.PREEMPTED), r
            assert r.num_blocks == 0 and r.num_computed_tokens == 0, r
        for r in self.running:
            assert r.status == RequestStatus.RUNNING, r
        # The lazy decoders are a prefix of `running`: one residue count and one finish entry each.
        assert len(self._bases) <= len(self.running)
        assert sum(self._residues) == len(self._bases) == len(self._finish_heap)

    def _check_settled(self, finished):
        """Between steps: every running request holds exactly the blocks of its computed tokens."""
        bs = self.kv.block_size
        pool = self.kv.block_pool
        self.materialize()
        self._check_queue_and_limits()
        for r in self.running:
            assert 0 < r.num_computed_tokens <= r.num_tokens, r
            assert r.num_output_tokens < r.max_output_tokens, r
            assert r.num_blocks == _blocks(r.num_computed_tokens, bs), r
        for i, r in enumerate(self.running[: len(self._bases)]):  # decoders: all but their last token cached
            assert r.num_output_tokens >= 1 and r.num_computed_tokens == r.num_tokens - 1, (i, r)
        for r in finished:
            assert r.status == RequestStatus.FINISHED and r.num_blocks == 0, r
            assert r.num_output_tokens == r.max_output_tokens, r
        held = sum(r.num_blocks for r in self.running)
        assert held == pool.num_used_blocks, ("blocks held != blocks used", held, pool.num_used_blocks)
        assert 0 <= pool.num_free_blocks <= pool.num_gpu_blocks

    def _check_planned(self, out):
        """After planning a step: the pool holds the blocks of every computed and scheduled token."""
        cfg = self.config
        bs = self.kv.block_size
        pool = self.kv.block_pool
        self.materialize()
        self._check_queue_and_limits()
        assert out.num_decoders + sum(out.num_new_tokens) <= cfg.max_num_batched_tokens
        assert all(n >= 1 for n in out.num_new_tokens)
        assert out.num_admitted == 0 or out.num_preempted == 0  # vLLM admits nobody after a preemption
        assert len(out.decode_context_lens) == out.num_decoders + sum(n == 1 for n in out.num_new_tokens)
        assert len(out.prefill_chunks) == sum(n > 1 for n in out.num_new_tokens)
        new = {id(r): n for r, n in zip(out.scheduled, out.num_new_tokens)}
        decoders = {id(r) for r in self.running[: out.num_decoders]}
        assert not decoders & new.keys()
        assert new.keys() <= {id(r) for r in self.running}
        held = 0
        for r in self.running:
            if id(r) in decoders:  # lazy: its counters are those before the step; the pool already gave its block
                assert r.num_computed_tokens == r.num_tokens - 1, r
                held += _blocks(r.num_computed_tokens + 1, bs)
            else:
                assert r.num_blocks == _blocks(r.num_computed_tokens + new.get(id(r), 0), bs), r
                assert r.num_computed_tokens + new.get(id(r), 0) <= r.num_tokens, r
                held += r.num_blocks
        assert held == pool.num_used_blocks, ("blocks held != blocks used", held, pool.num_used_blocks)

    def _expected_run_length(self, out):
        """The jump length recomputed step by step from the requests (uniform_decode_steps' contract)."""
        running = self.running
        if out.by_request or out.scheduled or not running or out.num_decoders != len(running):
            return 1
        self.materialize()
        bs = self.kv.block_size
        free = self.kv.block_pool.num_free_blocks  # after the planned (first) step took its blocks
        # Step j of the run samples each request's (num_output_tokens + j)-th token; the run ends
        # with the step that finishes the first request ...
        last = min(r.max_output_tokens - r.num_output_tokens for r in running)
        computed = [r.num_computed_tokens for r in running]
        steps, used = 1, 0
        while steps < last:
            # ... or before the first step whose new blocks would not fit: step j + 1 writes the KV
            # of token position computed + j, which opens a block when it is a multiple of block_size.
            need = sum((c + steps) % bs == 0 for c in computed)
            if used + need > free:
                break
            used += need
            steps += 1
        return steps


def _run_checked(wl, replica_setup, pods, router, jump):
    """simulate() with every replica's scheduler checked (_CheckedScheduler); ends with the pools empty."""
    checker = _Checker()
    import planner.sim.replica as replica
    import planner.sim.simulation as simulation

    original_fleet = simulation.Fleet

    class WatchedFleet(original_fleet):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.observers.append(checker)

    _CheckedScheduler.created = []
    simulation.Fleet = WatchedFleet
    replica.Scheduler = _CheckedScheduler
    try:
        out = simulate(wl, replica_setup, FleetSpec(pods=pods), None, jump=jump, router=router)
    finally:
        replica.Scheduler = Scheduler
        simulation.Fleet = original_fleet
    assert len(_CheckedScheduler.created) == pods
    for scheduler in _CheckedScheduler.created:  # everything served: nothing held, nothing leaked
        pool = scheduler.kv.block_pool
        assert not scheduler.running and not scheduler.waiting
        assert pool.num_free_blocks == pool.num_gpu_blocks, "KV blocks leaked"
    return out, checker


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_every_request_accounted_for_and_kv_blocks_conserved(scenario):
    """Both modes, every step: blocks held == blocks used, ceil(computed / block_size) each, none leaked."""
    wl, replica_setup, pods, router = scenario
    jumped, _ = _run_checked(wl, replica_setup, pods, router, jump=True)
    out, checker = _run_checked(wl, replica_setup, pods, router, jump=False)
    # the checks did not change the run (they only read counters, and write the lazy ones' true values)
    plain = simulate(wl, replica_setup, FleetSpec(pods=pods), None, jump=True, router=router)
    for checked in (jumped, out):
        for name in ("admitted_at", "first_token_at", "finished_at"):
            np.testing.assert_allclose(getattr(checked.records, name), getattr(plain.records, name), rtol=1e-9,
                                       atol=1e-9, err_msg=name)
        assert checked.records.preemptions.tolist() == plain.records.preemptions.tolist()
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
    # KV accounting checked at every step of both runs (_CheckedScheduler)
    a, _ = _run_checked(wl, eng, 1, "least_outstanding", jump=True)
    b, _ = _run_checked(wl, eng, 1, "least_outstanding", jump=False)
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
