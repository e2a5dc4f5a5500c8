"""Weight bytes (whole model and per GPU of a tensor-parallel group) and KV-cache bytes per token."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from planner.errors import PlannerError
from planner.inputs.models import ModelSpec, param_counts
from planner.inputs.precision import (
    DTYPE_BYTES,
    HIGH_PRECISION_BYTES,
    QUANT_FORMATS,
    check_precision_with_quantization,
    check_weight_dtype,
    kv_cache_bytes_per_element,
)

TENSOR_PARALLEL_SIZES = (1, 2, 4, 8)

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


def check_positive(name: str, value: float | None, at_most: float | None = None) -> None:
    """Reject a size that must be > 0 and, when `at_most` is given, no larger (None = not given,
    left to its default); NaN fails both."""
    if value is not None and not value > 0:
        raise PlannerError(f"{name} must be > 0, got {value}")
    if value is not None and at_most is not None and not value <= at_most:
        raise PlannerError(f"{name} must be at most {at_most:,} (got {value:,}): is it a typo?")
