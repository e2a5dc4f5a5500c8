"""The step-time model's terms in plain form: where a step's time goes (`planner perf`), and the
reference form of a step that the model's fast paths are tested against.

Both take a compiled `planner.perf.StepTimeModel` and use its per-term helpers one by one
(numpy sums, no caches beyond the model's own), so they read as the model's formula.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class StepBreakdown(BaseModel):
    """Where one step's time goes (per GPU of the tensor-parallel group). SI units."""

    model_config = ConfigDict(frozen=True)

    total_s: float = Field(description="the step's time, seconds")
    decode_sequences: int
    prefill_tokens: int
    tokens: int = Field(description="rows of the step's GEMMs: decode tokens + prefill tokens")
    weight_bytes: float = Field(description="weight bytes streamed per GPU (touched experts only)")
    kv_bytes: float = Field(description="K/V bytes read by attention per GPU")
    flops: float = Field(description="FLOPs per GPU: GEMMs + attention")
    gemm_s: float = Field(description="weight GEMMs and routed experts: vLLM's measured kernels")
    gemm_stream_s: float = Field(description="what the GEMMs would take at the GPU's achieved streaming bandwidth alone")
    gemm_compute_s: float = Field(description="what the GEMMs would take at the GPU's achieved GEMM FLOP rate alone")
    attention_s: float
    activation_s: float = Field(description="elementwise activation traffic (norms, rope, SiLU)")
    layer_fixed_s: float = Field(description="per-layer time of the small fused kernels (fitted)")
    kernel_fixed_s: float = Field(description="fixed cost per GEMM kernel (inside the measured GEMM times: 0)")
    allreduce_s: float = Field(description="tensor-parallel all-reduces and the logits gather")
    host_overhead_s: float = Field(description="per-step time outside the GPU kernels (fitted)")
    fixed_s: float = Field(description="all fixed costs: small kernels + host")
    bound: Literal["memory", "compute"] = Field(
        description="whether the GEMMs are limited by weight streaming or by FLOPs"
    )


def reference_step_seconds(model: Any, decode_context_lens: np.ndarray,
                           prefill_chunks: Sequence[tuple[int, int]] = ()) -> float:
    """`StepTimeModel.step_seconds` in its plain form (numpy sums, one helper per term)."""
    ctx = np.asarray(decode_context_lens)
    b = int(ctx.size)
    tokens = b + sum(c for c, _ in prefill_chunks)
    if tokens == 0:
        return 0.0
    attn = sum(model._chunk_attention_s(c, d)[0] for c, d in prefill_chunks)
    if prefill_chunks and not b:
        attn += (model.n_full + model.n_sliding) * model.pre_floor
    if b:
        s_sl = float(np.minimum(ctx + 1, model.window).sum()) if model.n_sliding else 0.0
        attn += model._decode_attention_s(b, float(ctx.sum()) + b, s_sl)
    return model._batch_const_s(tokens, b + len(prefill_chunks)) + attn


def reference_decode_run_seconds(model: Any, context_lens: np.ndarray, num_steps: int) -> np.ndarray:
    """`StepTimeModel.decode_run_seconds` as one `reference_step_seconds` per step."""
    ctx = np.asarray(context_lens)
    return np.array([reference_step_seconds(model, ctx + k) for k in range(max(num_steps, 0))])


def step_breakdown(model: Any, decode_context_lens: np.ndarray,
                   prefill_chunks: Sequence[tuple[int, int]] = ()) -> StepBreakdown:
    """The step of `model.step_seconds` split into its terms (for `planner perf`)."""
    ctx = np.asarray(decode_context_lens)
    b = int(ctx.size)
    tokens = b + sum(c for c, _ in prefill_chunks)
    rows = b + len(prefill_chunks)
    total = model.step_seconds(ctx, prefill_chunks)
    if tokens == 0:
        return StepBreakdown(total_s=0.0, decode_sequences=0, prefill_tokens=0, tokens=0, weight_bytes=0.0,
                             kv_bytes=0.0, flops=0.0, gemm_s=0.0, gemm_stream_s=0.0, gemm_compute_s=0.0,
                             attention_s=0.0, activation_s=0.0, layer_fixed_s=0.0, kernel_fixed_s=0.0,
                             allreduce_s=0.0, host_overhead_s=0.0, fixed_s=0.0, bound="memory")
    n_moe = model.n_layers if model.num_experts else 0
    wbytes = model.weight_bytes_step + n_moe * model.touched_experts(tokens) * model.expert_bytes_each
    flops = tokens * model.flops_per_token
    s = float(ctx.sum()) + b if b else 0.0
    kv = (model.n_full * s) * model.kv_tok_layer
    flops += model.attn_flops_per_token * model.n_full * s
    for c, d in prefill_chunks:
        _, f, k = model._chunk_attention_s(c, d)
        flops += f
        kv += k
    gemm = model._layers_gemm_s(tokens) + model._head_s(rows)
    ar = model._allreduce_s(tokens, rows)
    act = tokens * model.act_s_per_token
    lf = model.n_layers * model.layer_fixed_s
    attn = total - (gemm + ar + act + lf + model.host_s)
    stream = wbytes / model.bw_achieved
    compute = flops / model.flop_rate_achieved
    return StepBreakdown(
        total_s=total, decode_sequences=b, prefill_tokens=tokens - b, tokens=tokens,
        weight_bytes=wbytes, kv_bytes=kv, flops=flops, gemm_s=gemm, gemm_stream_s=stream,
        gemm_compute_s=compute, attention_s=attn, activation_s=act, layer_fixed_s=lf,
        kernel_fixed_s=0.0, allreduce_s=ar, host_overhead_s=model.host_s, fixed_s=lf + model.host_s,
        bound="compute" if compute > stream else "memory",
    )
