"""Model architectures (`ModelSpec`) and parameter counts computed from the architecture.

Field names are Hugging Face's (config.json), so a user's own config maps one to one. Parameter
counts come from the shapes (embedding, attention, dense or MoE MLP, norms, lm_head unless tied),
never from a published total; the published totals are kept beside them as a check.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from planner.inputs.precision import Quantization, WeightDtype

LayerType = Literal["full_attention", "sliding_attention"]


def alternating_layers(n: int, first: LayerType) -> tuple[LayerType, ...]:
    """Layer types alternating from `first` (Gemma-2 and gpt-oss interleave sliding and full attention)."""
    other: LayerType = "full_attention" if first == "sliding_attention" else "sliding_attention"
    return tuple(first if i % 2 == 0 else other for i in range(n))


class ModelSpec(BaseModel):
    """A decoder-only transformer's shape, in Hugging Face config.json's words.

    MoE: `num_experts` routed experts per MoE layer (0 = dense), `num_experts_per_tok` routed per
    token, each expert a gated MLP of `moe_intermediate_size`; `num_shared_experts` always-on
    experts of the same size (DeepSeek) or one shared MLP of `shared_expert_intermediate_size`;
    the first `first_k_dense_replace` layers keep a dense MLP of `intermediate_size`.
    MLA (DeepSeek): `kv_lora_rank` > 0; the KV cache holds the latent (kv_lora_rank) plus the
    decoupled rope key (qk_rope_head_dim) per layer.
    Sliding window: `layer_types` says which layers are "sliding_attention" (they keep at most
    `sliding_window` tokens); None with a `sliding_window` means every layer slides.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    model_type: str = "llama"
    num_hidden_layers: int = Field(gt=0)
    hidden_size: int = Field(gt=0)
    intermediate_size: int = Field(ge=0, description="dense MLP width (first_k_dense layers)")
    num_attention_heads: int = Field(gt=0)
    num_key_value_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    vocab_size: int = Field(gt=0)
    tie_word_embeddings: bool = False
    attention_bias: bool = Field(False, description="bias on the q/k/v projections")
    attention_out_bias: bool = Field(False, description="bias on o_proj (gpt-oss)")
    mlp_bias: bool = Field(False, description="biases in the (expert) MLPs (gpt-oss)")
    qk_norm: bool = Field(False, description="per-head RMSNorm on q and k (Qwen3)")
    attention_sinks: bool = Field(False, description="one learned sink logit per head (gpt-oss)")
    norms_per_layer: int = Field(2, ge=0, description="RMSNorm weights per layer (Gemma-2: 4)")
    sliding_window: int | None = Field(None, gt=0)
    layer_types: tuple[LayerType, ...] | None = None
    num_experts: int = Field(0, ge=0)
    num_experts_per_tok: int = Field(0, ge=0)
    moe_intermediate_size: int = Field(0, ge=0)
    num_shared_experts: int = Field(0, ge=0)
    shared_expert_intermediate_size: int = Field(0, ge=0)
    first_k_dense_replace: int = Field(0, ge=0)
    router_bias: bool = Field(False, description="bias (or score-correction bias) on the router")
    kv_lora_rank: int = Field(0, ge=0)
    q_lora_rank: int = Field(0, ge=0)
    qk_rope_head_dim: int = Field(0, ge=0)
    qk_nope_head_dim: int = Field(0, ge=0)
    v_head_dim: int = Field(0, ge=0)
    max_position_embeddings: int | None = Field(None, gt=0)
    default_dtype: WeightDtype = "bf16"
    default_quantization: Quantization = Field(
        "none", description="format the published checkpoint ships in (fp8 DeepSeek, mxfp4 gpt-oss)"
    )
    published_params: float | None = Field(None, description="total parameters per model card")
    published_active_params: float | None = None
    source: str = ""

    @model_validator(mode="after")
    def _check_shape(self) -> "ModelSpec":
        if self.num_attention_heads % self.num_key_value_heads and not self.uses_mla:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.num_experts:
            if not 0 < self.num_experts_per_tok <= self.num_experts:
                raise ValueError("num_experts_per_tok must be between 1 and num_experts")
            if self.moe_intermediate_size <= 0:
                raise ValueError("an MoE model needs moe_intermediate_size > 0")
        if self.first_k_dense_replace > self.num_hidden_layers:
            raise ValueError("first_k_dense_replace exceeds num_hidden_layers")
        if self.layer_types is not None:
            if len(self.layer_types) != self.num_hidden_layers:
                raise ValueError("layer_types must list one type per hidden layer")
            if "sliding_attention" in self.layer_types and self.sliding_window is None:
                raise ValueError("sliding_attention layers need a sliding_window")
        if self.uses_mla and (self.qk_rope_head_dim <= 0 or self.v_head_dim <= 0):
            raise ValueError("an MLA model needs qk_rope_head_dim and v_head_dim")
        return self

    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def uses_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def num_moe_layers(self) -> int:
        return self.num_hidden_layers - self.first_k_dense_replace if self.is_moe else 0

    @property
    def num_dense_layers(self) -> int:
        return self.num_hidden_layers - self.num_moe_layers

    @property
    def num_sliding_layers(self) -> int:
        if self.sliding_window is None:
            return 0
        if self.layer_types is None:
            return self.num_hidden_layers
        return sum(1 for t in self.layer_types if t == "sliding_attention")

    @property
    def num_full_attention_layers(self) -> int:
        return self.num_hidden_layers - self.num_sliding_layers


class ParamCounts(BaseModel):
    """Parameter counts by component (whole model, no TP split). Units: parameters."""

    model_config = ConfigDict(frozen=True)

    total: int
    active: int = Field(description="parameters touched per token: dense parts + top-k experts")
    embedding: int
    lm_head: int = Field(description="0 when tied to the embedding")
    attention: int
    dense_mlp: int
    routed_experts: int
    active_routed_experts: int
    shared_experts: int
    router: int
    norms: int
    attention_per_layer: int
    dense_mlp_per_layer: int
    expert_per_layer: int = Field(description="one routed expert of one layer")
    shared_experts_per_layer: int
    router_per_layer: int


def _attention_params_per_layer(s: ModelSpec) -> int:
    h = s.hidden_size
    if s.uses_mla:
        qk_head = s.qk_nope_head_dim + s.qk_rope_head_dim
        n = s.num_attention_heads
        if s.q_lora_rank:
            q = h * s.q_lora_rank + s.q_lora_rank + s.q_lora_rank * n * qk_head  # a, norm, b
        else:
            q = h * n * qk_head
        kv_a = h * (s.kv_lora_rank + s.qk_rope_head_dim) + s.kv_lora_rank  # proj + latent norm
        kv_b = s.kv_lora_rank * n * (s.qk_nope_head_dim + s.v_head_dim)
        o = n * s.v_head_dim * h
        return q + kv_a + kv_b + o
    q_dim = s.num_attention_heads * s.head_dim
    kv_dim = s.num_key_value_heads * s.head_dim
    params = h * q_dim + 2 * h * kv_dim + q_dim * h  # q, k, v, o
    if s.attention_bias:
        params += q_dim + 2 * kv_dim
    if s.attention_out_bias:
        params += h
    if s.qk_norm:
        params += 2 * s.head_dim
    if s.attention_sinks:
        params += s.num_attention_heads
    return params


def _gated_mlp_params(hidden: int, inter: int, bias: bool) -> int:
    """gate, up (hidden -> inter) and down (inter -> hidden); gpt-oss adds biases."""
    params = 3 * hidden * inter
    if bias:
        params += 2 * inter + hidden
    return params


@lru_cache(maxsize=256)
def param_counts(spec: ModelSpec) -> ParamCounts:
    """Parameters of `spec` by component, total and active per token.

    Args:
        spec: the architecture.
    Returns:
        ParamCounts; `active` counts embedding + lm_head + attention + dense MLPs + shared experts
        + routers + norms + top-k routed experts (the model-card convention: Mixtral 12.9B).
    """
    h = s_h = spec.hidden_size
    embedding = spec.vocab_size * h
    lm_head = 0 if spec.tie_word_embeddings else spec.vocab_size * h
    attn_layer = _attention_params_per_layer(spec)
    dense_layer = _gated_mlp_params(s_h, spec.intermediate_size, spec.mlp_bias)
    expert = _gated_mlp_params(s_h, spec.moe_intermediate_size, spec.mlp_bias) if spec.is_moe else 0
    shared_inter = spec.shared_expert_intermediate_size or (
        spec.num_shared_experts * spec.moe_intermediate_size
    )
    shared_layer = _gated_mlp_params(s_h, shared_inter, spec.mlp_bias) if shared_inter else 0
    if spec.is_moe and spec.shared_expert_intermediate_size:
        shared_layer += h  # Qwen2-MoE's sigmoid gate on the shared expert
    router_layer = (h * spec.num_experts + (spec.num_experts if spec.router_bias else 0)) if spec.is_moe else 0

    n_moe = spec.num_moe_layers
    n_dense = spec.num_dense_layers
    attention = attn_layer * spec.num_hidden_layers
    dense_mlp = dense_layer * n_dense
    routed = expert * spec.num_experts * n_moe
    active_routed = expert * spec.num_experts_per_tok * n_moe
    shared = shared_layer * n_moe
    router = router_layer * n_moe
    norms = spec.norms_per_layer * h * spec.num_hidden_layers + h  # + final norm
    common = embedding + lm_head + attention + dense_mlp + shared + router + norms
    return ParamCounts(
        total=common + routed,
        active=common + active_routed,
        embedding=embedding,
        lm_head=lm_head,
        attention=attention,
        dense_mlp=dense_mlp,
        routed_experts=routed,
        active_routed_experts=active_routed,
        shared_experts=shared,
        router=router,
        norms=norms,
        attention_per_layer=attn_layer,
        dense_mlp_per_layer=dense_layer if n_dense else 0,
        expert_per_layer=expert,
        shared_experts_per_layer=shared_layer,
        router_per_layer=router_layer,
    )


