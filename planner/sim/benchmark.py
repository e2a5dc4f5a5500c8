"""A benchmark-style closed loop on one replica: what `vllm bench serve --max-concurrency N`
reports (mean TTFT, mean TPOT) for fixed input/output lengths, simulated.

`closed_loop_bench(setup, ...)` runs it on a ready `ReplicaSetup`; the entry point validation
benches call, `planner.scenario.bench_closed_loop(model, gpu, tp, ...)`, builds the replica first
(the simulator builds no replicas: it imports no physics). The loop itself is
planner.sim.closed_loop's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


def closed_loop_bench(
    setup: Any,
    *,
    users: int,
    prompt_tokens: int,
    output_tokens: int,
    requests_per_user: int = 10,
    think_time_s: float = 0.0,
    jump: bool = True,
    output_spread: float = 0.0,
    seed: int = 0,
) -> ClosedLoopBench:
    """Simulate `vllm bench serve --max-concurrency users` with fixed ISL/OSL on ONE replica.

    `users` clients, users × requests_per_user requests in all (the first wave of `users` at
    t = 0 included), each completion releasing the next request; no randomness in the sizes.

    Args:
        setup: the replica (a ReplicaSetup).
        users, prompt_tokens, output_tokens, requests_per_user, think_time_s: the loop.
        jump: the simulator's jump mode (exact; False steps one by one).
        output_spread, seed: output lengths uniform in OSL x [1 - spread, 1 + spread]
            (planner.traffic.closed_loop.fixed_closed_loop), seeded.
    Returns:
        ClosedLoopBench(mean_ttft_s, mean_tpot_s, outcome).
    """
    loop = fixed_closed_loop(users, prompt_tokens, output_tokens, requests_per_user, think_time_s,
                             output_spread=output_spread, seed=seed)
    outcome = simulate(loop, setup, FleetSpec(pods=1), jump=jump)
    m = outcome.metrics
    nan = float("nan")
    return ClosedLoopBench(
        mean_ttft_s=m.ttft_seconds.mean if m.ttft_seconds.mean is not None else nan,
        mean_tpot_s=m.tpot_seconds.mean if m.tpot_seconds.mean is not None else nan,
        outcome=outcome,
    )
