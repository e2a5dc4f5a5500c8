"""Worked schedules computed by hand with a linear step-time model (docs/simulator.md explains the rules).

Step time: 10 ms per step + 1 ms per token of prefill chunks (chunks of 2+ tokens); decodes add
nothing. Engine: block_size 4, 5 KV blocks (20 token slots), max_num_batched_tokens 8,
max_num_seqs 4, max_model_len 32.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from planner.sim import LinearStepModel
from sim_helpers import run, setup, workload

MODEL = LinearStepModel(fixed_s=0.010, per_prefill_token_s=0.001)


def small_engine():
    return setup(MODEL, num_gpu_blocks=5, max_num_seqs=4, max_num_batched_tokens=8, max_model_len=32, block_size=4)


@pytest.mark.parametrize("jump", [True, False])
def test_admission_chunked_prefill_preemption_completion(jump):
    # A: prompt 6, 4 outputs; B: prompt 4, 6 outputs; C: prompt 5, 2 outputs; D: too long.
    wl = workload([0.000, 0.001, 0.0015, 0.002], [6, 4, 5, 30], [4, 6, 2, 5], horizon_s=0.05)
    out = run(wl, small_engine(), jump=jump)
    r = out.records
    # step 1 [0, .016): A prefills 6 (2 blocks)                         -> A first token .016
    # step 2 [.016, .033): A decodes; B prefills 4 (1 block); C admitted with a 3-token chunk
    #        (budget 8 - 1 - 4), 1 block; 1 block free (5 - 2 - 1 - 1)  -> B first token .033
    # step 3 [.033, .043): B's 5th token takes the last block; C needs a 2nd block: none free,
    #        so the newest running request (C itself) is preempted; A and B decode
    # step 4 [.043, .053): A takes the freed block; C (5 tokens, 2 blocks) cannot fit -> waits
    #                                                                   -> A finishes .053
    # step 5 [.053, .068): B decodes; C recomputes its 5-token prompt   -> C first token .068
    # step 6 [.068, .078): B, C decode                                  -> C finishes .078
    # step 7 [.078, .088): B decodes (takes a 3rd block)                -> B finishes .088
    np.testing.assert_allclose(r.admitted_at[:3], [0.0, 0.016, 0.016], atol=1e-12)
    np.testing.assert_allclose(r.first_token_at[:3], [0.016, 0.033, 0.068], atol=1e-12)
    np.testing.assert_allclose(r.finished_at[:3], [0.053, 0.088, 0.078], atol=1e-12)
    assert r.preemptions.tolist() == [0, 0, 1, 0]
    assert r.rejected_reason.tolist() == ["", "", "", "exceeds_max_model_len"]
    assert math.isnan(r.finished_at[3])
    m = out.metrics
    assert (m.requests, m.completed, m.rejected, m.preemptions) == (4, 3, 1, 1)
    assert m.rejected_by_reason == {"exceeds_max_model_len": 1}
    # busy time: the seven steps above
    assert out.workers[0].busy_s == pytest.approx(0.016 + 0.017 + 0.010 + 0.010 + 0.015 + 0.010 + 0.010)
    # TPOT of A: (0.053 - 0.016) / 3
    assert m.tpot_seconds.count == 3


@pytest.mark.parametrize("jump", [True, False])
def test_arrival_cuts_a_decode_run_at_the_step_in_progress(jump):
    # A: prompt 2 (step .012), 100 outputs; then 10 ms decode steps. B arrives at .0505, inside
    # A's 4th decode step [.042, .052): it is admitted at .052.
    wl = workload([0.0, 0.0505], [2, 2], [100, 2], horizon_s=0.1)
    r = run(wl, setup(MODEL, num_gpu_blocks=100, max_num_batched_tokens=64), jump=jump).records
    assert r.admitted_at.tolist() == pytest.approx([0.0, 0.052])
    # B's prefill step [.052, .064) carries A's decode; one more step produces B's 2nd token.
    assert r.first_token_at.tolist() == pytest.approx([0.012, 0.064])
    assert r.finished_at[1] == pytest.approx(0.074)
    # A: 1 + 4 + 1 + 1 = 7 tokens by .074, then 93 steps of 10 ms.
    assert r.finished_at[0] == pytest.approx(0.074 + 0.93)


@pytest.mark.parametrize("jump", [True, False])
def test_async_scheduling_admits_an_arrival_one_step_later(jump):
    # The case above with vLLM's async scheduling: the step [.052, .062) was planned when A's 4th
    # decode step started (.042), before B came, so B joins the step after it.
    wl = workload([0.0, 0.0505], [2, 2], [100, 2], horizon_s=0.1)
    r = run(wl, setup(MODEL, num_gpu_blocks=100, max_num_batched_tokens=64, async_scheduling=True), jump=jump).records
    assert r.admitted_at.tolist() == pytest.approx([0.0, 0.062])
    assert r.first_token_at.tolist() == pytest.approx([0.012, 0.074])
    # A's step count is unchanged: 100 tokens by .074 + 0.93 as above; B's 2nd token one step later
    assert r.finished_at.tolist() == pytest.approx([0.074 + 0.93, 0.084])


@pytest.mark.parametrize("jump", [True, False])
def test_async_scheduling_admits_at_once_into_an_idle_or_emptying_engine(jump):
    # Idle engine: A is admitted on arrival. B arrives during A's last step [.027, .037): the step
    # planned behind it would be empty, so vLLM schedules B as soon as A's last step ends.
    wl = workload([0.005, 0.030], [2, 2], [3, 2], horizon_s=0.1)
    r = run(wl, setup(MODEL, num_gpu_blocks=100, max_num_batched_tokens=64, async_scheduling=True), jump=jump).records
    assert r.admitted_at.tolist() == pytest.approx([0.005, 0.037])
    assert r.finished_at.tolist() == pytest.approx([0.037, 0.059])


def test_arrival_exactly_at_a_step_boundary_joins_that_boundary():
    # B arrives exactly when A's 2nd decode step ends (0.012 + 0.02 = 0.032, exact in binary? use
    # a step model with dyadic times so the boundary is exact).
    model = LinearStepModel(fixed_s=0.0078125, per_prefill_token_s=0.0)  # 2**-7 s per step
    wl = workload([0.0, 3 * 0.0078125], [4, 4], [50, 3], horizon_s=1.0)
    for jump in (True, False):
        r = run(wl, setup(model, num_gpu_blocks=100), jump=jump).records
        assert r.admitted_at[1] == 3 * 0.0078125
        assert r.first_token_at[1] == 4 * 0.0078125


def test_chunked_prefill_off_waits_for_budget():
    # A, C: prompt 4, 3 outputs, at t 0; B: prompt 9, 1 output, at .001. Budget 10 tokens
    # (vLLM needs max_num_batched_tokens >= max_model_len = 10 without chunked prefill).
    wl = workload([0.0, 0.0, 0.001], [4, 4, 9], [3, 3, 1], horizon_s=0.1)
    # step 1 [0, .018): A and C prefill 8 tokens                         -> first tokens .018
    # Chunked (default): step 2 [.018, .036) A, C decode + B's first 8 tokens; step 3
    # [.036, .046) A, C decode + B's last token (a one-token chunk costs what a decode costs).
    r = run(wl, setup(MODEL, num_gpu_blocks=50, max_num_seqs=4, max_num_batched_tokens=10, max_model_len=10)).records
    assert r.admitted_at.tolist() == pytest.approx([0.0, 0.0, 0.018])
    assert r.first_token_at.tolist() == pytest.approx([0.018, 0.018, 0.046])
    assert r.finished_at.tolist() == pytest.approx([0.046, 0.046, 0.046])
    # Not chunked: B's 9 tokens never fit beside two decodes (10 - 2 = 8); A and C decode alone
    # [.018, .028), [.028, .038) and finish; then B's whole prompt runs [.038, .057).
    eng = setup(MODEL, num_gpu_blocks=50, max_num_seqs=4, max_num_batched_tokens=10, max_model_len=10,
                enable_chunked_prefill=False)
    r = run(wl, eng).records
    assert r.finished_at[:2].tolist() == pytest.approx([0.038, 0.038])
    assert r.admitted_at[2] == pytest.approx(0.038)
    assert r.first_token_at[2] == pytest.approx(0.057)


def test_engine_settings_vllm_refuses_are_refused():
    from planner.errors import PlannerError

    with pytest.raises(PlannerError, match="max_num_batched_tokens"):
        setup(MODEL, max_num_seqs=4, max_num_batched_tokens=8, max_model_len=32, enable_chunked_prefill=False)
    with pytest.raises(PlannerError, match="max_num_seqs"):
        setup(MODEL, max_num_batched_tokens=8, max_num_seqs=16)


def test_request_bigger_than_the_kv_cache_is_rejected():
    wl = workload([0.0], [15], [10], horizon_s=1.0)
    out = run(wl, small_engine())  # 20 slots; 15 + 10 - 1 = 24 needed
    assert out.records.rejected_reason.tolist() == ["exceeds_kv_cache"]
    assert out.metrics.completed == 0


@pytest.mark.parametrize("jump", [True, False])
def test_preempted_request_recomputes_its_prompt_and_output_and_keeps_its_first_token(jump):
    # 4 blocks of 4 tokens. A, B: prompt 4, 10 outputs each.
    # step 1 [0, .014): A prefills (1 block)                              -> A first token .014
    # step 2 [.014, .028): A decodes (2nd block); B prefills 4 (1 block)  -> B first token .028
    # steps 3-5 [.028, .058): both decode; B takes the last block at step 3
    # step 6 [.058, .068): A needs a 3rd block: B (newest) is preempted with 4 outputs, frees 2
    # steps 7-10 [.068, .108): A alone; B must recompute 4 + 4 = 8 tokens (2 blocks), only 1 free;
    #        A takes it at step 10 and finishes                          -> A finishes .108
    # step 11 [.108, .126): B recomputes its 8 tokens in one chunk and samples its 5th token
    # steps 12-16 [.126, .176): B decodes its 6th..10th tokens          -> B finishes .176
    wl = workload([0.0, 0.001], [4, 4], [10, 10], horizon_s=0.1)
    eng = setup(MODEL, num_gpu_blocks=4, max_num_seqs=4, max_num_batched_tokens=8, max_model_len=32, block_size=4)
    out = run(wl, eng, jump=jump)
    r = out.records
    assert r.admitted_at.tolist() == pytest.approx([0.0, 0.014])
    assert r.first_token_at.tolist() == pytest.approx([0.014, 0.028])
    assert r.finished_at.tolist() == pytest.approx([0.108, 0.176])
    assert r.preemptions.tolist() == [0, 1]
    assert out.workers[0].busy_s == pytest.approx(0.176)


def test_an_empty_workload_runs_to_its_horizon():
    out = run(workload([], [], [], horizon_s=10.0), setup(MODEL))
    assert (out.metrics.requests, out.metrics.simulated_seconds) == (0, 10.0)
    assert out.metrics.ttft_seconds.count == 0 and out.workers[0].busy_s == 0.0


def test_serving_async_scheduling_reaches_the_simulated_engine():
    # profiles and `planner calibrate --no-async-scheduling` set it through serving:
    from types import SimpleNamespace

    from planner.inputs.sections import ModelSection, ServingSection
    from planner.scenario import replica_setup

    for value in (True, False):
        served = SimpleNamespace(model=ModelSection(name="llama-3.1-8b"),
                                 serving=ServingSection(max_model_len=4096, async_scheduling=value))
        replica = replica_setup(served, "h100-sxm", 1)
        assert replica.scheduler_config.async_scheduling is value
        assert replica.engine_args.model_dump()["async_scheduling"] is value  # what plan.json engine carries
