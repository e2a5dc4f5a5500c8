"""What the simulator needs from a step-time model, and a hand-computable linear one.

The real model is planner.perf.StepTimeModel. The simulator only calls the two
methods of `StepTimeModelLike`, so tests and what-if studies can inject their own timings.
A model whose decode cost depends on the contexts only through their count and sum may say so
(`decode_depends_on_context_sum = True`) and offer `step_seconds_summed(count, sum, prefill_chunks)`
and `decode_run_pieces(count, sum, num_steps)` (the run's step times as lines); the replica then
uses those instead (planner.sim.replica; StepTimeModel does for models without sliding windows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class StepTimeModelLike(Protocol):
    def step_seconds(self, decode_context_lens: np.ndarray, prefill_chunks: Sequence[tuple[int, int]] = ()) -> float:
        """Seconds for one engine step: one decode token per running sequence (given as the tokens
        already in its KV cache), plus prefill chunks given as (chunk_tokens, tokens_already_computed)."""
        ...

    def decode_run_seconds(self, context_lens: np.ndarray, num_steps: int) -> np.ndarray:
        """Durations (s) of the next `num_steps` pure-decode steps, each context growing by one per step."""
        ...


@dataclass(frozen=True)
class LinearStepModel:
    """Step time linear in its inputs, for tests and back-of-envelope runs (not a GPU model).

    step_s = fixed_s + per_decode_s × decodes + per_context_token_s × Σ decode contexts (cached tokens)
             + per_prefill_token_s × Σ prefill chunk tokens
    """

    fixed_s: float = 0.005
    per_decode_s: float = 0.0
    per_context_token_s: float = 0.0
    per_prefill_token_s: float = 0.0

    def step_seconds(self, decode_context_lens: np.ndarray, prefill_chunks: Sequence[tuple[int, int]] = ()) -> float:
        ctx = np.asarray(decode_context_lens)
        prefill_tokens = sum(chunk for chunk, _ in prefill_chunks)
        return float(
            self.fixed_s
            + self.per_decode_s * len(ctx)
            + self.per_context_token_s * float(ctx.sum())
            + self.per_prefill_token_s * prefill_tokens
        )

    def decode_run_seconds(self, context_lens: np.ndarray, num_steps: int) -> np.ndarray:
        ctx = np.asarray(context_lens)
        n = len(ctx)
        first = self.fixed_s + self.per_decode_s * n + self.per_context_token_s * float(ctx.sum())
        # Every one of the n contexts grows by one token per step.
        return first + self.per_context_token_s * n * np.arange(num_steps, dtype=np.float64)
