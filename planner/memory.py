"""GPU memory: weight bytes, KV-cache bytes per token, the seed guide's sizing rule and the engine
view (what a vLLM-like engine actually hands to the KV cache), and the smallest TP that fits.

Pure functions of (ModelSpec, GpuSpec, settings); no I/O. The optimizer calls `engine_view` for
every candidate, so the expensive parts (parameter counts, weight breakdowns) are cached.

vLLM behaviour followed here (V1 engine):
- available KV memory = total_memory x gpu_memory_utilization - weights - peak activations of the
  profiling pass - non-torch memory growth (vllm/v1/worker/gpu_worker.py determine_available_memory;
  total_memory is what cudaMemGetInfo reports, i.e. our `memory_bytes_usable`).
- CUDA graphs are captured after the KV cache is allocated and are not subtracted unless
  VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1 (default "0" in vllm/envs.py); they live in the
  (1 - gpu_memory_utilization) headroom, so they do not reduce the KV cache here either.
- num_blocks = available // (block_size x KV bytes per token of all layers); "GPU KV cache size" is
  num_blocks x block_size tokens; "Maximum concurrency for L tokens per request" is the KV memory
  over what one max_model_len request needs (sliding-window layers need at most
  cdiv(min(window - 1 + max_num_batched_tokens, L), block_size) + 1 blocks)
  (vllm/v1/core/kv_cache_utils.py, vllm/v1/kv_cache_interface.py).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from planner.catalog import GpuSpec
from planner.errors import PlannerError
from planner.models import ModelSpec, param_counts
from planner.precision import (
    DTYPE_BYTES,
    HIGH_PRECISION_BYTES,
    QUANT_FORMATS,
    activation_dtype,
    activation_precision,
    check_kv_cache_dtype,
    check_precision_with_quantization,
    check_weight_dtype,
    kv_cache_bytes_per_element,
)
from planner.units import GIB

TENSOR_PARALLEL_SIZES = (1, 2, 4, 8)

# --- vLLM engine defaults -------------------------------------------------------------------
# vllm/engine/arg_utils.py EngineArgs.get_batch_defaults (V1; vLLM v0.10-v0.11, also the
# `test_defaults_with_usage_context` test): GPUs with >= 70 GiB that are not A100s get
# max_num_batched_tokens 8192 (`vllm serve`) / 16384 (the LLM class) and max_num_seqs 1024;
# all others 2048 / 8192 and 256. (Newer vLLM adds a middle tier for 40-70 GiB cards, 4096 / 12288
# and 512 seqs, in HardwareSchedulingDefaults; pass max_num_seqs/max_num_batched_tokens to match.)
# gpu_memory_utilization 0.9 and block_size 16 are vLLM's documented defaults (EngineArgs).
VLLM_DEFAULTS_SOURCE = (
    "vllm-project/vllm vllm/engine/arg_utils.py EngineArgs.get_batch_defaults (V1 defaults, "
    "v0.10-v0.11): >=70 GiB and not A100: 8192 tokens (api server) / 16384 (LLM class), 1024 seqs; "
    "else 2048 / 8192 tokens, 256 seqs; gpu_memory_utilization 0.9, block_size 16"
)
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
DEFAULT_BLOCK_SIZE = 16
UsageContext = Literal["api_server", "llm_class"]

# --- activation peak --------------------------------------------------------------------------
# vLLM sizes activations with one dummy forward pass of max_num_batched_tokens tokens, then one
# dummy sampler pass over min(max_num_seqs, max_num_batched_tokens) sequences
# (gpu_model_runner.profile_run / _dummy_sampler_run). The two do not overlap, so the peak is the
# larger of the two.
#
# Forward pass, per token: the MLP's gate/up output (2 x intermediate / TP) and its activated
# product (intermediate / TP) live at once, beside ~8 hidden-size buffers (residual stream, norm
# output, attention output, q/k/v). Checked against /work/shared/calibration/h200-llama-3.1-8b.json
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
# Weights
# ---------------------------------------------------------------------------------------------


class WeightBytes(BaseModel):
    """Weight bytes of the whole model (no TP split) by component, as stored in memory.

    Per-layer entries let the timing model stream only what a step touches (e.g. the experts the
    batch routes to). `norms` and `router` are whole-model totals.
    """

    model_config = ConfigDict(frozen=True)

    precision: str = Field(description="weight dtype of the bulk linear layers")
    quantization: str
    embedding: int
    lm_head: int
    attention_per_layer: int
    dense_mlp_per_layer: int
    expert_per_layer: int = Field(description="one routed expert of one MoE layer")
    shared_experts_per_layer: int
    router_per_layer: int
    norms: int
    num_dense_layers: int
    num_moe_layers: int
    num_experts: int
    total: int


def _resolve_format(spec: ModelSpec, precision: str | None, quantization: str) -> tuple[str | None, str]:
    """(precision, quantization) after defaults: nothing given -> the checkpoint as published."""
    check_precision_with_quantization(precision, quantization)
    if precision is None and quantization == "none":
        if spec.default_quantization != "none":
            return None, spec.default_quantization
        return spec.default_dtype, "none"
    if precision is not None:
        check_weight_dtype(precision)
    return precision, quantization


def _small_attention_params(spec: ModelSpec) -> int:
    """Per-layer attention parameters that stay 16-bit in quantized checkpoints (biases, norms, sinks)."""
    q_dim = spec.num_attention_heads * spec.head_dim
    kv_dim = spec.num_key_value_heads * spec.head_dim
    small = 0
    if spec.uses_mla:
        small += spec.q_lora_rank + spec.kv_lora_rank  # latent norms
    else:
        if spec.attention_bias:
            small += q_dim + 2 * kv_dim
        if spec.qk_norm:
            small += 2 * spec.head_dim
    if spec.attention_out_bias:
        small += spec.hidden_size
    if spec.attention_sinks:
        small += spec.num_attention_heads
    return small


def _mlp_bias_params(spec: ModelSpec, inter: int) -> int:
    return (2 * inter + spec.hidden_size) if (spec.mlp_bias and inter) else 0


@lru_cache(maxsize=1024)
def _breakdown_cached(spec: ModelSpec, precision: str | None, quantization: str) -> WeightBytes:
    counts = param_counts(spec)
    hi = HIGH_PRECISION_BYTES
    if quantization == "none":
        assert precision is not None
        b = DTYPE_BYTES[precision]
        lin_attn = lin_mlp = lin_expert = small = b
        emb = b
    else:
        fmt = QUANT_FORMATS[quantization]
        lin = fmt.bytes_per_weight
        lin_expert = lin
        lin_attn = lin_mlp = hi if fmt.experts_only else lin
        small = emb = hi
    attn_small = _small_attention_params(spec)
    attn = (counts.attention_per_layer - attn_small) * lin_attn + attn_small * small
    dense_bias = _mlp_bias_params(spec, spec.intermediate_size)
    dense = (counts.dense_mlp_per_layer - dense_bias) * lin_mlp + dense_bias * small if counts.dense_mlp_per_layer else 0
    expert_inter = spec.moe_intermediate_size
    align = QUANT_FORMATS[quantization].expert_intermediate_align if quantization != "none" else 0
    if align:
        expert_inter = -(-expert_inter // align) * align
    expert_bias = _mlp_bias_params(spec, expert_inter)
    expert = (3 * spec.hidden_size * expert_inter * lin_expert + expert_bias * small) if counts.expert_per_layer else 0
    shared = counts.shared_experts_per_layer * lin_mlp
    router = counts.router_per_layer * small
    norms = counts.norms * small
    embedding = counts.embedding * emb
    lm_head = counts.lm_head * emb
    n_moe, n_dense = spec.num_moe_layers, spec.num_dense_layers
    total = (
        embedding + lm_head + norms
        + attn * spec.num_hidden_layers
        + dense * n_dense
        + (expert * spec.num_experts + shared + router) * n_moe
    )
    return WeightBytes(
        precision=precision or QUANT_FORMATS[quantization].weight_dtype,
        quantization=quantization,
        embedding=round(embedding),
        lm_head=round(lm_head),
        attention_per_layer=round(attn),
        dense_mlp_per_layer=round(dense),
        expert_per_layer=round(expert),
        shared_experts_per_layer=round(shared),
        router_per_layer=round(router),
        norms=round(norms),
        num_dense_layers=n_dense,
        num_moe_layers=n_moe,
        num_experts=spec.num_experts,
        total=round(total),
    )


def weight_bytes_breakdown(spec: ModelSpec, precision: str | None = None, quantization: str = "none") -> WeightBytes:
    """Weight bytes by component.

    Args:
        spec: the model.
        precision: weight dtype; None with quantization "none" = the checkpoint as published
            (bf16 for most, fp8 for DeepSeek-V3, mxfp4 experts for gpt-oss). A precision alone
            stores every parameter at that width (the seed guide's rule).
        quantization: awq/gptq (4-bit, group 128, +scales/zeros), fp8, w8a8, mxfp4: linear layers
            quantized, embeddings, lm_head, norms, biases and routers 16-bit.
    """
    precision, quantization = _resolve_format(spec, precision, quantization)
    return _breakdown_cached(spec, precision, quantization)


def weights_bytes(spec: ModelSpec, precision: str | None = None, quantization: str = "none") -> int:
    """Bytes of all weights of the whole model (no TP split)."""
    return weight_bytes_breakdown(spec, precision, quantization).total


def check_tensor_parallel(spec: ModelSpec, tensor_parallel_size: int) -> None:
    """Raise PlannerError unless the attention heads split evenly over `tensor_parallel_size`.

    KV heads must divide by TP, or TP by the KV heads (then each rank keeps a replica), as vLLM
    requires (vllm/model_executor/models/llama.py LlamaAttention).
    """
    tp = tensor_parallel_size
    if tp < 1:
        raise PlannerError(f"tensor_parallel_size must be >= 1, got {tp}")
    if spec.num_attention_heads % tp:
        raise PlannerError(
            f"{spec.name} has {spec.num_attention_heads} attention heads, which do not divide by "
            f"tensor_parallel_size {tp}: pick a TP that divides {spec.num_attention_heads}"
        )
    kv = spec.num_key_value_heads
    if not spec.uses_mla and kv % tp and tp % kv:
        raise PlannerError(
            f"{spec.name} has {kv} KV heads: tensor_parallel_size {tp} neither divides them nor is a "
            f"multiple of them; pick a TP that divides {kv} or a multiple of {kv}"
        )


def kv_heads_per_gpu(spec: ModelSpec, tensor_parallel_size: int = 1) -> int:
    """KV heads each rank stores: split when they divide by TP, one replica each when TP exceeds them."""
    check_tensor_parallel(spec, tensor_parallel_size)
    return max(1, spec.num_key_value_heads // tensor_parallel_size)


def weights_bytes_per_gpu(
    spec: ModelSpec, tensor_parallel_size: int = 1, precision: str | None = None, quantization: str = "none"
) -> int:
    """Weight bytes on each GPU under tensor parallelism.

    Embedding, lm_head (vocab-parallel), attention projections, MLPs and experts split TP ways;
    norms and routers are replicated; KV projections are replicated when TP exceeds the KV heads;
    an MLA model's down-projections (q_a, kv_a) are replicated (vLLM's ReplicatedLinear).
    """
    tp = tensor_parallel_size
    check_tensor_parallel(spec, tp)
    wb = weight_bytes_breakdown(spec, precision, quantization)
    if tp == 1:
        return wb.total
    replicated = wb.norms + wb.router_per_layer * wb.num_moe_layers
    per_param_attn = wb.attention_per_layer / max(1, param_counts(spec).attention_per_layer)
    extra_attn_per_layer = 0.0
    if spec.uses_mla:
        # q_a_proj and kv_a_proj_with_mqa are replicated on every rank.
        a_params = spec.hidden_size * (spec.q_lora_rank + spec.kv_lora_rank + spec.qk_rope_head_dim)
        extra_attn_per_layer = a_params * per_param_attn * (1 - 1 / tp)
    elif spec.num_key_value_heads < tp:
        kv_params = 2 * spec.hidden_size * spec.head_dim  # k and v weights of one head
        heads_per_rank = kv_heads_per_gpu(spec, tp)
        extra_attn_per_layer = kv_params * per_param_attn * (heads_per_rank - spec.num_key_value_heads / tp)
    split = wb.total - replicated
    return round(split / tp + replicated + extra_attn_per_layer * spec.num_hidden_layers)


# ---------------------------------------------------------------------------------------------
# KV cache
# ---------------------------------------------------------------------------------------------


def kv_bytes_per_token_per_layer(
    spec: ModelSpec, kv_cache_dtype: str = "auto", tensor_parallel_size: int = 1, precision: str | None = None
) -> float:
    """Bytes one token adds to one layer's cache on one GPU.

    GQA/MQA: 2 (K and V) x KV heads on this rank x head_dim x bytes. MLA: the latent
    (kv_lora_rank) plus the decoupled rope key (qk_rope_head_dim), replicated on every rank.
    """
    elem = kv_cache_bytes_per_element(kv_cache_dtype, precision)
    if spec.uses_mla:
        check_tensor_parallel(spec, tensor_parallel_size)
        return (spec.kv_lora_rank + spec.qk_rope_head_dim) * elem
    return 2 * kv_heads_per_gpu(spec, tensor_parallel_size) * spec.head_dim * elem


def kv_bytes_per_token(
    spec: ModelSpec, kv_cache_dtype: str = "auto", tensor_parallel_size: int = 1, precision: str | None = None
) -> int:
    """KV bytes per token per GPU, all layers counted as full attention.

    Llama-3.1-8B, bf16: 2 x 8 x 128 x 32 x 2 = 131,072 B. Sliding-window layers keep at most their
    window; `kv_bytes_for_tokens` applies that cap.
    """
    per_layer = kv_bytes_per_token_per_layer(spec, kv_cache_dtype, tensor_parallel_size, precision)
    return round(per_layer * spec.num_hidden_layers)


def kv_bytes_for_tokens(
    spec: ModelSpec,
    tokens: int,
    kv_cache_dtype: str = "auto",
    tensor_parallel_size: int = 1,
    precision: str | None = None,
) -> int:
    """KV bytes per GPU for one sequence of `tokens` tokens (sliding layers capped at the window)."""
    if tokens < 0:
        raise PlannerError(f"token count must be >= 0, got {tokens}")
    per_layer = kv_bytes_per_token_per_layer(spec, kv_cache_dtype, tensor_parallel_size, precision)
    sliding = spec.num_sliding_layers
    window_tokens = min(tokens, spec.sliding_window) if sliding and spec.sliding_window is not None else 0
    return round(per_layer * (spec.num_full_attention_layers * tokens + sliding * window_tokens))


# ---------------------------------------------------------------------------------------------
# The sizing rule (seed guide)
# ---------------------------------------------------------------------------------------------


class SizingRule(BaseModel):
    """weights + KV(context x concurrency), plus an overhead fraction. Whole model, bytes."""

    model_config = ConfigDict(frozen=True)

    model: str
    precision: str
    quantization: str
    kv_cache_dtype: str
    params: int
    active_params: int
    weights_bytes: int
    kv_bytes_per_token: int
    context: int
    concurrency: int
    kv_bytes_per_request: int
    kv_cache_bytes: int
    overhead_fraction: float
    overhead_bytes: int
    total_bytes: int


def check_positive(name: str, value: float | None) -> None:
    """Reject a size that must be > 0 (None = not given, left to its default)."""
    if value is not None and not value > 0:
        raise PlannerError(f"{name} must be > 0, got {value}")


def sizing_rule(
    spec: ModelSpec,
    context: int = 4096,
    concurrency: int = 1,
    overhead: float = 0.15,
    precision: str | None = None,
    quantization: str = "none",
    kv_cache_dtype: str = "auto",
) -> SizingRule:
    """The seed guide's quick sizing: (weights + KV for `concurrency` requests of `context` tokens)
    x (1 + overhead).

    Llama-3.1-8B bf16, 4,096 tokens, 50 users, 15%: (16.06 GB + 50 x 0.537 GB) x 1.15 = 49.3 GB.
    """
    check_positive("context", context)
    check_positive("concurrency", concurrency)
    if overhead < 0:
        raise PlannerError(f"overhead must be >= 0 (a fraction, e.g. 0.15), got {overhead}")
    check_kv_cache_dtype(kv_cache_dtype)
    wb = weight_bytes_breakdown(spec, precision, quantization)
    resolved_precision = activation_precision(precision, wb.quantization, spec.default_dtype)
    weights = wb.total
    per_request = kv_bytes_for_tokens(spec, context, kv_cache_dtype, 1, resolved_precision)
    kv_total = per_request * concurrency
    overhead_bytes = round((weights + kv_total) * overhead)
    counts = param_counts(spec)
    return SizingRule(
        model=spec.name,
        precision=wb.precision,
        quantization=wb.quantization,
        kv_cache_dtype=kv_cache_dtype,
        params=counts.total,
        active_params=counts.active,
        weights_bytes=weights,
        kv_bytes_per_token=kv_bytes_per_token(spec, kv_cache_dtype, 1, resolved_precision),
        context=context,
        concurrency=concurrency,
        kv_bytes_per_request=per_request,
        kv_cache_bytes=kv_total,
        overhead_fraction=overhead,
        overhead_bytes=overhead_bytes,
        total_bytes=weights + kv_total + overhead_bytes,
    )


# ---------------------------------------------------------------------------------------------
# Engine settings
# ---------------------------------------------------------------------------------------------


class EngineArgs(BaseModel):
    """Resolved serving settings of one vLLM-like engine replica (vLLM's names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu_memory_utilization: float = Field(DEFAULT_GPU_MEMORY_UTILIZATION, gt=0, le=1)
    max_model_len: int = Field(gt=0, description="tokens, prompt + output, per request")
    max_num_seqs: int = Field(gt=0, description="running sequences per step")
    max_num_batched_tokens: int = Field(gt=0, description="tokens per engine step")
    block_size: int = Field(DEFAULT_BLOCK_SIZE, gt=0, description="tokens per KV block")
    enable_chunked_prefill: bool = True


def vllm_batch_defaults(gpu: GpuSpec, usage_context: UsageContext = "api_server") -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) vLLM picks for this GPU when the user gives neither.

    See VLLM_DEFAULTS_SOURCE: >= 70 GiB of device memory and not an A100 gets the large defaults.
    """
    large = gpu.memory_bytes_usable >= 70 * GIB and "a100" not in (gpu.id + gpu.name).lower()
    if large:
        return (8192 if usage_context == "api_server" else 16384), 1024
    return (2048 if usage_context == "api_server" else 8192), 256


def default_engine_args(
    gpu: GpuSpec,
    max_model_len: int | None = None,
    spec: ModelSpec | None = None,
    *,
    gpu_memory_utilization: float | None = None,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    block_size: int | None = None,
    enable_chunked_prefill: bool | None = None,
    usage_context: UsageContext = "api_server",
) -> EngineArgs:
    """vLLM's defaults for `gpu`, with any setting given overriding them (None = default).

    Args:
        gpu: the GPU (its memory picks the batch defaults).
        max_model_len: tokens per request; None = the model's max_position_embeddings (vLLM's
            default), which needs `spec`.
        spec: the model, to default and check max_model_len.
        usage_context: "api_server" (`vllm serve`, default) or "llm_class" (offline LLM class).
    Raises:
        PlannerError: a setting out of range or inconsistent, as vLLM would refuse it.
    """
    if max_model_len is None:
        if spec is None or spec.max_position_embeddings is None:
            raise PlannerError("max_model_len is needed: give --max-model-len (tokens per request)")
        max_model_len = spec.max_position_embeddings
    check_positive("max_model_len", max_model_len)
    if spec is not None and spec.max_position_embeddings and max_model_len > spec.max_position_embeddings:
        raise PlannerError(
            f"max_model_len {max_model_len} exceeds {spec.name}'s context of "
            f"{spec.max_position_embeddings} tokens: lower it"
        )
    util = DEFAULT_GPU_MEMORY_UTILIZATION if gpu_memory_utilization is None else gpu_memory_utilization
    if not 0 < util <= 1:
        raise PlannerError(f"gpu_memory_utilization must be in (0, 1], got {util}")
    default_tokens, default_seqs = vllm_batch_defaults(gpu, usage_context)
    chunked = True if enable_chunked_prefill is None else enable_chunked_prefill
    seqs = default_seqs if max_num_seqs is None else max_num_seqs
    check_positive("max_num_seqs", seqs)
    if max_num_batched_tokens is None:
        # Without chunked prefill a whole prompt must fit one step (vLLM raises the budget to
        # max_model_len in that case).
        tokens = default_tokens if chunked else max(default_tokens, max_model_len)
    else:
        tokens = max_num_batched_tokens
    check_positive("max_num_batched_tokens", tokens)
    if not chunked and tokens < max_model_len:
        raise PlannerError(
            f"max_num_batched_tokens ({tokens}) is smaller than max_model_len ({max_model_len}) "
            "with chunked prefill off: raise it or enable chunked prefill"
        )
    if tokens < seqs:
        raise PlannerError(
            f"max_num_batched_tokens ({tokens}) must be >= max_num_seqs ({seqs}), as vLLM requires"
        )
    bs = DEFAULT_BLOCK_SIZE if block_size is None else block_size
    check_positive("block_size", bs)
    return EngineArgs(
        gpu_memory_utilization=util,
        max_model_len=max_model_len,
        max_num_seqs=seqs,
        max_num_batched_tokens=tokens,
        block_size=bs,
        enable_chunked_prefill=chunked,
    )


def resolve_engine_args(gpu: GpuSpec, serving: Any = None, spec: ModelSpec | None = None, **overrides: Any) -> EngineArgs:
    """One resolved EngineArgs from a profile's serving section (or a dict), None -> vLLM default.

    Args:
        gpu: the GPU the replica runs on.
        serving: an object with vLLM-named attributes (profile.ServingSection) or a dict; missing or
            None fields take the engine defaults.
        spec: the model (defaults and checks max_model_len).
        overrides: keyword settings that win over `serving`.
    """
    names = ("gpu_memory_utilization", "max_model_len", "max_num_seqs", "max_num_batched_tokens",
             "block_size", "enable_chunked_prefill")
    values: dict[str, Any] = {}
    for name in names:
        if isinstance(serving, dict):
            values[name] = serving.get(name)
        elif serving is not None:
            values[name] = getattr(serving, name, None)
    for name, value in overrides.items():
        if name not in names and name != "usage_context":
            raise PlannerError(f"unknown engine setting {name!r}: use one of {', '.join(names)}")
        if value is not None:
            values[name] = value
    max_model_len = values.pop("max_model_len", None)
    return default_engine_args(gpu, max_model_len, spec, **{k: v for k, v in values.items()})


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


# ---------------------------------------------------------------------------------------------
# `planner size`: both views for one model over one or more GPUs
# ---------------------------------------------------------------------------------------------


class GpuFit(BaseModel):
    """The engine view on one GPU type at the TP given, or the smallest TP that fits."""

    model_config = ConfigDict(frozen=True)

    gpu: str
    tensor_parallel_size: int
    fits: bool
    weights_bytes_per_gpu: int
    kv_cache_tokens: int
    max_concurrency: float
    memory_bytes_usable: int
    memory_usable_estimated: bool
    gpu_memory_utilization: float
    activation_peak_bytes: int
    non_torch_bytes: int
    kv_cache_bytes_per_gpu: int
    num_gpu_blocks: int
    max_num_seqs: int
    max_num_batched_tokens: int
    rule_tensor_parallel_size: int | None = Field(
        description="smallest TP at which the sizing rule's per-GPU bytes fit the usable memory"
    )
    rule_bytes_per_gpu: int = Field(description="sizing rule per GPU at rule_tensor_parallel_size (or TP 1)")
    reason: str = ""


def sizing_rule_per_gpu(
    spec: ModelSpec,
    tensor_parallel_size: int,
    context: int = 4096,
    concurrency: int = 1,
    overhead: float = 0.15,
    precision: str | None = None,
    quantization: str = "none",
    kv_cache_dtype: str = "auto",
) -> int:
    """The sizing rule on each GPU of a TP group: (weights/GPU + KV/GPU x concurrency) x (1 + overhead)."""
    wb = weight_bytes_breakdown(spec, precision, quantization)
    act_precision = activation_precision(precision, wb.quantization)
    weights = weights_bytes_per_gpu(spec, tensor_parallel_size, precision, quantization)
    kv = kv_bytes_for_tokens(spec, context, kv_cache_dtype, tensor_parallel_size, act_precision) * concurrency
    return round((weights + kv) * (1 + overhead))


class SizeReport(SizingRule):
    """`planner size --json`: the sizing rule for the whole model plus the engine view per GPU."""

    max_model_len: int
    block_size: int
    gpus: list[GpuFit]


def size_report(
    spec: ModelSpec,
    gpus: list[GpuSpec],
    *,
    context: int = 4096,
    concurrency: int = 1,
    overhead: float = 0.15,
    precision: str | None = None,
    quantization: str = "none",
    kv_cache_dtype: str = "auto",
    tensor_parallel_size: int | None = None,
    gpu_memory_utilization: float | None = None,
    max_model_len: int | None = None,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    block_size: int | None = None,
) -> SizeReport:
    """Both memory views: the sizing rule (whole model) and, per GPU, the engine view at the given
    TP or the smallest of 1/2/4/8 that fits (the largest valid one, marked not fitting, if none does).

    max_model_len defaults to `context`.
    """
    rule = sizing_rule(spec, context, concurrency, overhead, precision, quantization, kv_cache_dtype)
    length = context if max_model_len is None else max_model_len
    if tensor_parallel_size is not None:
        check_tensor_parallel(spec, tensor_parallel_size)
    fits: list[GpuFit] = []
    args = None
    for gpu in gpus:
        args = default_engine_args(
            gpu, length, spec,
            gpu_memory_utilization=gpu_memory_utilization, max_num_seqs=max_num_seqs,
            max_num_batched_tokens=max_num_batched_tokens, block_size=block_size,
        )
        if tensor_parallel_size is not None:
            view = engine_view(spec, gpu, args, tensor_parallel_size, precision, quantization, kv_cache_dtype)
        else:
            view = None
            for tp in valid_tensor_parallel_sizes(spec):
                view = engine_view(spec, gpu, args, tp, precision, quantization, kv_cache_dtype)
                if view.fits:
                    break
        if view is None:  # only the search above can leave it unset
            raise PlannerError(f"{spec.name}: no tensor_parallel_size in 1, 2, 4, 8 splits its heads")
        rule_tp = None
        rule_bytes = 0
        for tp in valid_tensor_parallel_sizes(spec):
            rule_bytes = sizing_rule_per_gpu(spec, tp, context, concurrency, overhead, precision, quantization, kv_cache_dtype)
            if rule_bytes <= gpu.memory_bytes_usable:
                rule_tp = tp
                break
        fits.append(GpuFit(
            gpu=gpu.id,
            tensor_parallel_size=view.tensor_parallel_size,
            fits=view.fits,
            weights_bytes_per_gpu=view.weights_bytes_per_gpu,
            kv_cache_tokens=view.kv_cache_tokens,
            max_concurrency=view.max_concurrency,
            memory_bytes_usable=gpu.memory_bytes_usable,
            memory_usable_estimated=gpu.memory_usable_estimated,
            gpu_memory_utilization=args.gpu_memory_utilization,
            activation_peak_bytes=view.activation_peak_bytes,
            non_torch_bytes=view.non_torch_bytes,
            kv_cache_bytes_per_gpu=view.kv_cache_bytes_per_gpu,
            num_gpu_blocks=view.num_gpu_blocks,
            max_num_seqs=args.max_num_seqs,
            max_num_batched_tokens=args.max_num_batched_tokens,
            rule_tensor_parallel_size=rule_tp,
            rule_bytes_per_gpu=rule_bytes,
            reason=view.reason,
        ))
    return SizeReport(
        **rule.model_dump(),
        max_model_len=length,
        block_size=args.block_size if args is not None else (block_size or DEFAULT_BLOCK_SIZE),
        gpus=fits,
    )
