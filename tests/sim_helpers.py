"""Small builders shared by the simulator tests (tests/test_sim_*.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from planner.sim import FleetSpec, LinearStepModel, ReplicaSetup, SchedulerConfig, simulate


class SummedLinearStepModel(LinearStepModel):
    """LinearStepModel with the count-and-sum interface the real model offers (its decode cost
    depends on the contexts only through their sum), so tests reach the replica's closed-form
    decode runs."""

    decode_depends_on_context_sum = True

    def step_seconds_summed(self, num_decodes, decode_context_sum, prefill_chunks=()):
        return float(self.fixed_s + self.per_decode_s * num_decodes + self.per_context_token_s * decode_context_sum
                     + self.per_prefill_token_s * sum(chunk for chunk, _ in prefill_chunks))

    def decode_run_pieces(self, num_decodes, decode_context_sum, num_steps):
        first = self.fixed_s + self.per_decode_s * num_decodes + self.per_context_token_s * decode_context_sum
        return [(0, first, self.per_context_token_s * num_decodes)]


def workload(arrivals, prompts, outputs, horizon_s=None):
    arrival = np.asarray(arrivals, dtype=np.float64)
    return SimpleNamespace(
        arrival_s=arrival,
        prompt_tokens=np.asarray(prompts, dtype=np.int64),
        output_tokens=np.asarray(outputs, dtype=np.int64),
        horizon_s=float(arrival[-1]) if horizon_s is None and len(arrival) else float(horizon_s or 0.0),
    )


def poisson_workload(rate_per_s, horizon_s, prompt, output, seed=0):
    rng = np.random.default_rng(seed)
    n = rng.poisson(rate_per_s * horizon_s)
    arrivals = np.sort(rng.uniform(0, horizon_s, n))
    prompts = np.full(n, prompt) if np.isscalar(prompt) else rng.integers(prompt[0], prompt[1] + 1, n)
    outputs = np.full(n, output) if np.isscalar(output) else rng.integers(output[0], output[1] + 1, n)
    return workload(arrivals, prompts, outputs, horizon_s)


def setup(step_model=None, num_gpu_blocks=1000, max_num_seqs=64, max_num_batched_tokens=2048, max_model_len=4096,
          block_size=16, enable_chunked_prefill=True, async_scheduling=False):
    """One replica's setup. Synchronous scheduling by default: the hand-worked step timelines of
    the scheduler tests admit a request at the first boundary after it arrives."""
    return ReplicaSetup(
        step_model=step_model or LinearStepModel(fixed_s=0.01, per_context_token_s=1e-6, per_prefill_token_s=1e-4),
        num_gpu_blocks=num_gpu_blocks,
        engine_args=SchedulerConfig(
            max_num_seqs=max_num_seqs,
            max_num_batched_tokens=max_num_batched_tokens,
            max_model_len=max_model_len,
            block_size=block_size,
            enable_chunked_prefill=enable_chunked_prefill,
            async_scheduling=async_scheduling,
        ),
    )


def run(wl, replica_setup, pods=1, slo=None, **kwargs):
    return simulate(wl, replica_setup, FleetSpec(pods=pods), slo, **kwargs)
