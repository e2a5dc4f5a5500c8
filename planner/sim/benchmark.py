"""A benchmark-style closed loop on one replica: what `vllm bench serve --max-concurrency N`
reports (mean TTFT, mean TPOT) for fixed input/output lengths, simulated.

The entry point validation benches call (`from planner.sim import bench_closed_loop`); the loop
itself is planner.sim.closed_loop's, the replica planner.sim.setup's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.sim.setup import model_replica_setup
from planner.sim.simulation import simulate
from planner.sim.spec import FleetSpec
from planner.traffic.closed_loop import fixed_closed_loop


@dataclass(frozen=True)
class ClosedLoopBench:
    """Means as `vllm bench serve` reports them, over every completed request of the run.

    Attributes:
        mean_ttft_s: mean time to first token (send -> first token), seconds.
        mean_tpot_s: mean over requests of (finish - first token) / (output tokens - 1), seconds.
        outcome: the whole SimOutcome (records, metrics, the requests sent as `outcome.workload`).
    """

    mean_ttft_s: float
    mean_tpot_s: float
    outcome: Any


def bench_closed_loop(
    model: Any,
    gpu: Any,
    tensor_parallel_size: int = 1,
    *,
    users: int,
    prompt_tokens: int,
    output_tokens: int,
    requests_per_user: int = 10,
    quantization: str = "none",
    precision: str | None = None,
    kv_cache_dtype: str = "auto",
    think_time_s: float = 0.0,
    setup: Any = None,
    jump: bool = True,
    **engine_overrides: Any,
) -> ClosedLoopBench:
    """Simulate `vllm bench serve --max-concurrency users` with fixed ISL/OSL on ONE replica.

    `users` clients, users × requests_per_user requests in all (the first wave of `users` at
    t = 0 included), each completion releasing the next request; no randomness in the sizes.

    Args:
        model: preset id (e.g. "llama-3.1-70b"), config.json path or ModelSpec.
        gpu: catalog id (e.g. "h200-sxm") or GpuSpec.
        tensor_parallel_size, quantization, precision, kv_cache_dtype: the replica, as in a profile.
        users, prompt_tokens, output_tokens, requests_per_user, think_time_s: the loop.
        setup: a ready ReplicaSetup instead of (model, gpu, ...) (e.g. one with a test step model).
        jump: the simulator's jump mode (exact; False steps one by one).
        engine_overrides: vLLM settings (max_model_len, gpu_memory_utilization, max_num_seqs,
            max_num_batched_tokens, ...); unset ones take vLLM's defaults.
    Returns:
        ClosedLoopBench(mean_ttft_s, mean_tpot_s, outcome).
    """
    if setup is None:
        setup = model_replica_setup(
            model, gpu, tensor_parallel_size, precision=precision, quantization=quantization,
            kv_cache_dtype=kv_cache_dtype, **engine_overrides,
        )
    loop = fixed_closed_loop(users, prompt_tokens, output_tokens, requests_per_user, think_time_s)
    outcome = simulate(loop, setup, FleetSpec(pods=1), jump=jump)
    m = outcome.metrics
    nan = float("nan")
    return ClosedLoopBench(
        mean_ttft_s=m.ttft_seconds.mean if m.ttft_seconds.mean is not None else nan,
        mean_tpot_s=m.tpot_seconds.mean if m.tpot_seconds.mean is not None else nan,
        outcome=outcome,
    )
