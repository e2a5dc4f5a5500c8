"""The engine view: what a vLLM-like engine hands to the KV cache after weights, activations and
non-torch memory, and the smallest tensor-parallel size that fits.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from planner.errors import PlannerError
from planner.inputs.catalog import GpuSpec
from planner.inputs.models import ModelSpec
from planner.inputs.precision import (
    DTYPE_BYTES,
    activation_dtype,
    activation_precision,
    check_kv_cache_dtype,
)
from planner.memory.engine_args import EngineArgs
from planner.memory.weights import (
    TENSOR_PARALLEL_SIZES,
    check_tensor_parallel,
    kv_bytes_per_token_per_layer,
    weight_bytes_breakdown,
    weights_bytes_per_gpu,
)
from planner.units import GIB

# --- activation peak --------------------------------------------------------------------------
# vLLM sizes activations with one dummy forward pass of max_num_batched_tokens tokens, then one
# dummy sampler pass over min(max_num_seqs, max_num_batched_tokens) sequences
# (gpu_model_runner.profile_run / _dummy_sampler_run). The two do not overlap, so the peak is the
# larger of the two.
#
# Forward pass, per token: the MLP's gate/up output (2 x intermediate / TP) and its activated
# product (intermediate / TP) live at once, beside ~8 hidden-size buffers (residual stream, norm
# output, attention output, q/k/v). Checked against bench/data/h200-llama-3.1-8b.json
# (eager PyTorch, Llama-3.1-8B bf16): 2 x (8 x 4096 + 3 x 14336) = 151,552 B/token, the measured
# activation_peak_bytes at 512...16,384 tokens exactly (e.g. 620,756,992 B at 4,096 tokens).
FORWARD_HIDDEN_BUFFERS = 8
# Sampler pass, per logit element (sequences x vocab): bf16 logits, their fp32 copy, the sort for
# top-k/top-p (fp32 values + int64 indices), masks, softmax and exponential buffers. The constant is
# read off vLLM v0.11.0's "torch peak memory increase" on H100 with 1024 sequences (llm-d/
# llm-d-benchmark config_explorer/empirical-vllm-memory-results.md @259334868c50): Llama-3.1-8B
# 4.76 GiB / (1024 x 128,256) = 38.9 B, Qwen3-32B 5.64 GiB / (1024 x 151,936) = 38.9 B,
# gpt-oss 7.38 GiB / (1024 x 201,088) = 38.5 B, Qwen3-0.6B 38.4 B. Calibrated, not derived.
# NOTE: newer model runners say the dummy sampler pass "may skip top_k, top_p, and logprobs"
# (NOTE(woosuk) in _dummy_sampler_run), so later vLLM versions may reserve less than this.
SAMPLER_BYTES_PER_LOGIT = 38.9

# --- non-torch memory -------------------------------------------------------------------------
# Growth of memory outside PyTorch's allocator during profiling (cuBLAS workspaces; with TP > 1 the
# NCCL and custom all-reduce buffers): 0.13 GiB at TP=1 and 0.55 GiB at TP=2 in vLLM v0.11.0 logs
# on H100 (same llm-d file). Measured on one GPU type; assumed for the others. The CUDA context
# itself exists before vLLM's baseline snapshot and is outside the gpu_memory_utilization budget.
NON_TORCH_BYTES_TP1 = int(0.13 * GIB)
NON_TORCH_BYTES_TP_MULTI = int(0.55 * GIB)


# ---------------------------------------------------------------------------------------------
# The engine view
# ---------------------------------------------------------------------------------------------


def activation_peak_bytes(
    spec: ModelSpec, engine_args: EngineArgs, tensor_parallel_size: int = 1, precision: str | None = None
) -> int:
    """Peak activation memory of vLLM's profiling pass on one GPU (bytes).

    max(forward pass over max_num_batched_tokens tokens, sampler pass over
    min(max_num_seqs, max_num_batched_tokens) x vocab logits); see the constants above.
    """
    tp = tensor_parallel_size
    act = DTYPE_BYTES[activation_dtype(precision)]
    h = spec.hidden_size
    per_token = FORWARD_HIDDEN_BUFFERS * h + 3 * spec.intermediate_size / tp if spec.num_dense_layers else 0.0
    if spec.is_moe:
        # vLLM's fused MoE keeps, per token and routed expert, the gate/up output, the activated
        # product and the down output (intermediate_cache1..3 in fused_moe.py).
        shared_inter = spec.shared_expert_intermediate_size or spec.num_shared_experts * spec.moe_intermediate_size
        moe = (FORWARD_HIDDEN_BUFFERS * h
               + spec.num_experts_per_tok * (3 * spec.moe_intermediate_size / tp + h)
               + 3 * shared_inter / tp)
        per_token = max(per_token, moe)
    forward = engine_args.max_num_batched_tokens * per_token * act
    num_sampled = min(engine_args.max_num_seqs, engine_args.max_num_batched_tokens)
    sampler = num_sampled * spec.vocab_size * SAMPLER_BYTES_PER_LOGIT
    return round(max(forward, sampler))


def non_torch_bytes(tensor_parallel_size: int = 1) -> int:
    """Memory outside PyTorch that vLLM's profiling sees grow (see NON_TORCH_BYTES_*)."""
    return NON_TORCH_BYTES_TP1 if tensor_parallel_size == 1 else NON_TORCH_BYTES_TP_MULTI


class EngineView(BaseModel):
    """What one engine replica gets on each of its GPUs (bytes per GPU, tokens)."""

    model_config = ConfigDict(frozen=True)

    gpu: str
    tensor_parallel_size: int
    fits: bool
    memory_bytes_usable: int
    requested_bytes: int = Field(description="memory_bytes_usable x gpu_memory_utilization")
    weights_bytes_per_gpu: int
    activation_peak_bytes: int
    non_torch_bytes: int
    kv_cache_bytes_per_gpu: int = Field(description="whole blocks only; 0 when nothing is left")
    kv_bytes_per_token: int = Field(description="per GPU, all layers as full attention")
    block_size: int
    num_gpu_blocks: int = Field(description="blocks of block_size tokens (full-attention equivalent)")
    kv_cache_tokens: int = Field(description="vLLM's 'GPU KV cache size: N tokens'")
    max_model_len: int
    kv_bytes_per_max_len_request: int = Field(description="per GPU, block-rounded, window-capped")
    max_concurrency: float = Field(description="vLLM's 'Maximum concurrency for max_model_len: X'")
    weights_fit: bool = Field(
        description="weights + activation peak + non-torch memory fit requested_bytes (vLLM starts at all)"
    )
    reason: str = ""

    @property
    def fixed_bytes_per_gpu(self) -> int:
        """Bytes per GPU before any KV cache: weights + activation peak + non-torch memory."""
        return self.weights_bytes_per_gpu + self.activation_peak_bytes + self.non_torch_bytes


def _request_kv_bytes_blockwise(spec: ModelSpec, engine_args: EngineArgs, per_layer: float) -> int:
    """KV bytes one max_model_len request holds, in whole blocks, as vLLM's max-concurrency log counts it."""
    bs = engine_args.block_size
    length = engine_args.max_model_len
    full_blocks = math.ceil(length / bs)
    sliding = spec.num_sliding_layers
    blocks = full_blocks * spec.num_full_attention_layers
    if sliding:
        window_tokens = min(spec.sliding_window - 1 + engine_args.max_num_batched_tokens, length)  # type: ignore[operator]
        blocks += (math.ceil(window_tokens / bs) + 1) * sliding
    return round(blocks * bs * per_layer)


def engine_view(
    spec: ModelSpec,
    gpu: GpuSpec,
    engine_args: EngineArgs,
    tensor_parallel_size: int = 1,
    precision: str | None = None,
    quantization: str = "none",
    kv_cache_dtype: str = "auto",
) -> EngineView:
    """KV capacity of one replica of `spec` over `tensor_parallel_size` GPUs of type `gpu`.

    Returns:
        EngineView; `fits` is False (with `reason`) when the weights or one max_model_len request
        do not fit, as vLLM would refuse to start.
    Raises:
        PlannerError: a TP that does not divide the heads, or bad settings.
    """
    tp = tensor_parallel_size
    check_tensor_parallel(spec, tp)
    check_kv_cache_dtype(kv_cache_dtype)
    wb = weight_bytes_breakdown(spec, precision, quantization)
    act_precision = activation_precision(precision, wb.quantization)
    weights = weights_bytes_per_gpu(spec, tp, precision, quantization)
    activation = activation_peak_bytes(spec, engine_args, tp, act_precision)
    non_torch = non_torch_bytes(tp)
    requested = math.floor(gpu.memory_bytes_usable * engine_args.gpu_memory_utilization)
    available = requested - weights - activation - non_torch
    per_layer = kv_bytes_per_token_per_layer(spec, kv_cache_dtype, tp, act_precision)
    per_token = round(per_layer * spec.num_hidden_layers)
    block_bytes = per_token * engine_args.block_size
    num_blocks = max(0, available // block_bytes) if block_bytes else 0
    kv_bytes = num_blocks * block_bytes
    request_bytes = _request_kv_bytes_blockwise(spec, engine_args, per_layer)
    concurrency = kv_bytes / request_bytes if request_bytes else 0.0
    reason = ""
    weights_fit = weights + activation + non_torch < requested
    if not weights_fit:
        reason = (
            f"weights ({weights / 1e9:,.1f} GB/GPU) + activations ({activation / 1e9:,.1f} GB) + "
            f"non-torch ({non_torch / 1e9:,.2f} GB) exceed {requested / 1e9:,.1f} GB "
            f"({engine_args.gpu_memory_utilization:g} x {gpu.memory_bytes_usable / 1e9:,.1f} GB usable) "
            f"on each {gpu.id} at tensor_parallel_size {tp}"
        )
    elif concurrency < 1:
        reason = (
            f"one {engine_args.max_model_len}-token request needs {request_bytes / 1e9:.2f} GB of KV "
            f"cache per GPU but only {kv_bytes / 1e9:.2f} GB is left on {gpu.id} at tensor_parallel_size {tp}"
        )
    return EngineView(
        gpu=gpu.id,
        tensor_parallel_size=tp,
        fits=not reason,
        memory_bytes_usable=gpu.memory_bytes_usable,
        requested_bytes=requested,
        weights_bytes_per_gpu=weights,
        activation_peak_bytes=activation,
        non_torch_bytes=non_torch,
        kv_cache_bytes_per_gpu=kv_bytes,
        kv_bytes_per_token=per_token,
        block_size=engine_args.block_size,
        num_gpu_blocks=num_blocks,
        kv_cache_tokens=num_blocks * engine_args.block_size,
        max_model_len=engine_args.max_model_len,
        kv_bytes_per_max_len_request=request_bytes,
        max_concurrency=concurrency,
        weights_fit=weights_fit,
        reason=reason,
    )


def valid_tensor_parallel_sizes(spec: ModelSpec, candidates: tuple[int, ...] = TENSOR_PARALLEL_SIZES) -> list[int]:
    """The candidate TP sizes whose head split is valid for `spec`."""
    valid = []
    for tp in candidates:
        try:
            check_tensor_parallel(spec, tp)
        except PlannerError:
            continue
        valid.append(tp)
    return valid


def min_tensor_parallel_size(
    spec: ModelSpec,
    gpu: GpuSpec,
    engine_args: EngineArgs,
    precision: str | None = None,
    quantization: str = "none",
    kv_cache_dtype: str = "auto",
    candidates: tuple[int, ...] = TENSOR_PARALLEL_SIZES,
) -> int | None:
    """Smallest TP in `candidates` (1, 2, 4, 8) at which the model fits with room for at least one
    max_model_len request; None if none does."""
    for tp in valid_tensor_parallel_sizes(spec, candidates):
        if engine_view(spec, gpu, engine_args, tp, precision, quantization, kv_cache_dtype).fits:
            return tp
    return None


