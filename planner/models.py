"""Model architectures (`ModelSpec`), built-in presets, the Hugging Face config.json reader and
parameter counts computed from the architecture.

Field names are Hugging Face's (config.json), so a user's own config maps one to one. Parameter
counts come from the shapes (embedding, attention, dense or MoE MLP, norms, lm_head unless tied),
never from a published total; the published totals are kept beside them as a check.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from planner.errors import PlannerError, did_you_mean, validation_line
from planner.precision import WeightDtype, Quantization

LayerType = Literal["full_attention", "sliding_attention"]


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


# ---------------------------------------------------------------------------------------------
# Presets. Architectures from /work/shared/facts/models.csv (its sources named per preset);
# published totals from the model cards / sources named in `source`.
# ---------------------------------------------------------------------------------------------

_MLC = "mlc-ai/mlc-llm python/mlc_llm/model/model_preset.py @79d603f085f50500e9509fa01785ffa7ecfaaa93 (verbatim HF config.json)"
_LLMPROF = "citsjtu2020/LLM-Prof sglang/Model_Config.md @8434c8d19c396b2f95d92a67845a7c0a0e0dd512 (verbatim HF config.json)"


def _alternating(n: int, first: LayerType) -> tuple[LayerType, ...]:
    other: LayerType = "full_attention" if first == "sliding_attention" else "sliding_attention"
    return tuple(first if i % 2 == 0 else other for i in range(n))


_PRESETS: dict[str, dict[str, Any]] = {
    "llama-3.1-8b": dict(
        model_type="llama", num_hidden_layers=32, hidden_size=4096, intermediate_size=14336,
        num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=128256,
        max_position_embeddings=131072, published_params=8.03e9,
        source=f"{_MLC}; {_LLMPROF}; 8.03B: huggingface.co/meta-llama/Llama-3.1-8B (8,030,261,248 in the safetensors metadata)",
    ),
    "llama-3.1-70b": dict(
        model_type="llama", num_hidden_layers=80, hidden_size=8192, intermediate_size=28672,
        num_attention_heads=64, num_key_value_heads=8, head_dim=128, vocab_size=128256,
        max_position_embeddings=131072, published_params=70.6e9,
        source=f"{_MLC}; params ~70.6B: huggingface.co/meta-llama/Llama-3.1-70B (safetensors 70.6B)",
    ),
    "llama-3.1-405b": dict(
        model_type="llama", num_hidden_layers=126, hidden_size=16384, intermediate_size=53248,
        num_attention_heads=128, num_key_value_heads=8, head_dim=128, vocab_size=128256,
        max_position_embeddings=131072, published_params=405e9,
        source="facts/models.csv (code-corpus transcription, medium confidence); 405B as labelled",
    ),
    "llama-3.2-1b": dict(
        model_type="llama", num_hidden_layers=16, hidden_size=2048, intermediate_size=8192,
        num_attention_heads=32, num_key_value_heads=8, head_dim=64, vocab_size=128256,
        tie_word_embeddings=True, max_position_embeddings=131072, published_params=1.24e9,
        source=f"{_MLC}; params 1.24B: huggingface.co/meta-llama/Llama-3.2-1B model card",
    ),
    "llama-3.2-3b": dict(
        model_type="llama", num_hidden_layers=28, hidden_size=3072, intermediate_size=8192,
        num_attention_heads=24, num_key_value_heads=8, head_dim=128, vocab_size=128256,
        tie_word_embeddings=True, max_position_embeddings=131072, published_params=3.21e9,
        source=f"{_MLC}; {_LLMPROF}; params 3.21B: huggingface.co/meta-llama/Llama-3.2-3B model card",
    ),
    "mistral-7b": dict(
        model_type="mistral", num_hidden_layers=32, hidden_size=4096, intermediate_size=14336,
        num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=32768,
        max_position_embeddings=32768, published_params=7.25e9,
        source=f"Mistral-7B-v0.3: {_MLC}; params 7.25B: huggingface.co/mistralai/Mistral-7B-v0.3",
    ),
    "mixtral-8x7b": dict(
        model_type="mixtral", num_hidden_layers=32, hidden_size=4096, intermediate_size=0,
        num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=32000,
        num_experts=8, num_experts_per_tok=2, moe_intermediate_size=14336,
        max_position_embeddings=32768, published_params=46.7e9, published_active_params=12.9e9,
        source=f"Mixtral-8x7B-v0.1: {_MLC}; 46.7B total: runpod.io/articles/guides/llm-inference-optimization-playbook; 12.9B active: mistral.ai/news/mixtral-of-experts",
    ),
    "qwen2.5-7b": dict(
        model_type="qwen2", num_hidden_layers=28, hidden_size=3584, intermediate_size=18944,
        num_attention_heads=28, num_key_value_heads=4, head_dim=128, vocab_size=152064,
        attention_bias=True, max_position_embeddings=131072, published_params=7.61e9,
        source=f"{_LLMPROF}; {_MLC}; params 7.61B: huggingface.co/Qwen/Qwen2.5-7B model card",
    ),
    "qwen2.5-14b": dict(
        model_type="qwen2", num_hidden_layers=48, hidden_size=5120, intermediate_size=13824,
        num_attention_heads=40, num_key_value_heads=8, head_dim=128, vocab_size=152064,
        attention_bias=True, max_position_embeddings=131072, published_params=14.7e9,
        source=f"{_LLMPROF}; params 14.7B: huggingface.co/Qwen/Qwen2.5-14B model card",
    ),
    "qwen2.5-32b": dict(
        model_type="qwen2", num_hidden_layers=64, hidden_size=5120, intermediate_size=27648,
        num_attention_heads=40, num_key_value_heads=8, head_dim=128, vocab_size=152064,
        attention_bias=True, max_position_embeddings=131072, published_params=32.5e9,
        source=f"{_LLMPROF}; 32.5B: ZHUI/paddlenlp_model_readme Qwen/Qwen2.5-32B/index.md",
    ),
    "qwen2.5-72b": dict(
        model_type="qwen2", num_hidden_layers=80, hidden_size=8192, intermediate_size=29568,
        num_attention_heads=64, num_key_value_heads=8, head_dim=128, vocab_size=152064,
        attention_bias=True, max_position_embeddings=131072, published_params=72.7e9,
        source="facts/models.csv (code-corpus configs, consistent across 5+ files); 72.7B: Qwen2.5-72B model card",
    ),
    "qwen3-8b": dict(
        model_type="qwen3", num_hidden_layers=36, hidden_size=4096, intermediate_size=12288,
        num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=151936,
        qk_norm=True, max_position_embeddings=40960, published_params=8.2e9,
        source=f"{_LLMPROF}; params 8.2B: huggingface.co/Qwen/Qwen3-8B model card",
    ),
    "qwen3-32b": dict(
        model_type="qwen3", num_hidden_layers=64, hidden_size=5120, intermediate_size=25600,
        num_attention_heads=64, num_key_value_heads=8, head_dim=128, vocab_size=151936,
        qk_norm=True, max_position_embeddings=40960, published_params=32.8e9,
        source=f"{_LLMPROF}; 32.8B: daniel-p-green/alain-ai-learning-platform out/research-qwen-qwen3-32b/README.md",
    ),
    "qwen3-30b-a3b": dict(
        model_type="qwen3_moe", num_hidden_layers=48, hidden_size=2048, intermediate_size=6144,
        num_attention_heads=32, num_key_value_heads=4, head_dim=128, vocab_size=151936,
        qk_norm=True, num_experts=128, num_experts_per_tok=8, moe_intermediate_size=768,
        max_position_embeddings=40960, published_params=30.5e9, published_active_params=3.3e9,
        source=f"{_LLMPROF}; 30.5B total / 3.3B active: huggingface.co/Qwen/Qwen3-30B-A3B model card",
    ),
    "qwen3-235b-a22b": dict(
        model_type="qwen3_moe", num_hidden_layers=94, hidden_size=4096, intermediate_size=12288,
        num_attention_heads=64, num_key_value_heads=4, head_dim=128, vocab_size=151936,
        qk_norm=True, num_experts=128, num_experts_per_tok=8, moe_intermediate_size=1536,
        max_position_embeddings=40960, published_params=235e9, published_active_params=22e9,
        source="zyzshishui/slime scripts/models/qwen3-235B-A22B.sh (Megatron args); 235B/22B: model name and card",
    ),
    "gemma-2-9b": dict(
        model_type="gemma2", num_hidden_layers=42, hidden_size=3584, intermediate_size=14336,
        num_attention_heads=16, num_key_value_heads=8, head_dim=256, vocab_size=256000,
        tie_word_embeddings=True, norms_per_layer=4, sliding_window=4096,
        layer_types=_alternating(42, "sliding_attention"), max_position_embeddings=8192,
        published_params=9.24e9,
        source=f"{_MLC}; params 9.24B: huggingface.co/google/gemma-2-9b (safetensors)",
    ),
    "gemma-2-27b": dict(
        model_type="gemma2", num_hidden_layers=46, hidden_size=4608, intermediate_size=36864,
        num_attention_heads=32, num_key_value_heads=16, head_dim=128, vocab_size=256000,
        tie_word_embeddings=True, norms_per_layer=4, sliding_window=4096,
        layer_types=_alternating(46, "sliding_attention"), max_position_embeddings=8192,
        published_params=27.2e9,
        source=f"{_MLC}; params 27.2B: huggingface.co/google/gemma-2-27b (safetensors)",
    ),
    "deepseek-v3": dict(
        model_type="deepseek_v3", num_hidden_layers=61, hidden_size=7168, intermediate_size=18432,
        num_attention_heads=128, num_key_value_heads=128, head_dim=192, vocab_size=129280,
        num_experts=256, num_experts_per_tok=8, moe_intermediate_size=2048,
        num_shared_experts=1, first_k_dense_replace=3, router_bias=True,
        kv_lora_rank=512, q_lora_rank=1536, qk_rope_head_dim=64, qk_nope_head_dim=128,
        v_head_dim=128, max_position_embeddings=163840,
        default_dtype="fp8", default_quantization="fp8",
        published_params=671e9, published_active_params=37e9,
        source="tenstorrent/tt-metal models/demos/deepseek_v3/reference/README_WEIGHTS.md (671B main model, 36.6B active + 0.9B head; MTP module excluded); Shahip2016/Deepseek-v3 README.md (MLA dims, 256 routed + 1 shared)",
    ),
    "gpt-oss-20b": dict(
        model_type="gpt_oss", num_hidden_layers=24, hidden_size=2880, intermediate_size=0,
        num_attention_heads=64, num_key_value_heads=8, head_dim=64, vocab_size=201088,
        attention_bias=True, attention_out_bias=True, mlp_bias=True, router_bias=True,
        attention_sinks=True, sliding_window=128,
        layer_types=_alternating(24, "sliding_attention"),
        num_experts=32, num_experts_per_tok=4, moe_intermediate_size=2880,
        max_position_embeddings=131072, default_quantization="mxfp4",
        published_params=20.9e9, published_active_params=3.6e9,
        source="EchoCog/gpt-oss-20b docs/gpt-oss-20b-architecture.md; RealTapeL/SemiIP-Summary src/config/model_config.py; openai/gpt-oss gpt_oss/torch/model.py @0568dfc9 (layer layout)",
    ),
    "gpt-oss-120b": dict(
        model_type="gpt_oss", num_hidden_layers=36, hidden_size=2880, intermediate_size=0,
        num_attention_heads=64, num_key_value_heads=8, head_dim=64, vocab_size=201088,
        attention_bias=True, attention_out_bias=True, mlp_bias=True, router_bias=True,
        attention_sinks=True, sliding_window=128,
        layer_types=_alternating(36, "sliding_attention"),
        num_experts=128, num_experts_per_tok=4, moe_intermediate_size=2880,
        max_position_embeddings=131072, default_quantization="mxfp4",
        published_params=116.8e9, published_active_params=5.1e9,
        source="openai/gpt-oss gpt_oss/torch/model.py @0568dfc94f09469e2968c2b90e50561d1b3fc424 (ModelConfig defaults = 120b); 116.8B / 5.1B: openai gpt-oss model card",
    ),
}


def list_presets() -> list[str]:
    """Ids of the built-in model presets."""
    return sorted(_PRESETS)


@lru_cache(maxsize=64)
def _preset(name: str) -> ModelSpec:
    return ModelSpec(name=name, **_PRESETS[name])


def _first(cfg: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    return default


# NOTE: an fp32 checkpoint is served in fp16: vLLM's --dtype auto "will use FP16 precision for FP32
# and FP16 models, and BF16 precision for BF16 models" (vllm-project/vllm vllm/engine/arg_utils.py
# @001999d2, --dtype help). --precision fp32 still sizes it at 4 bytes.
_TORCH_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp16", "half": "fp16", "float": "fp16"}
_QUANT_METHODS = {"awq": "awq", "gptq": "gptq", "fp8": "fp8", "mxfp4": "mxfp4", "w8a8": "w8a8"}


def from_hf_config(cfg: dict[str, Any], name: str = "custom") -> ModelSpec:
    """Build a ModelSpec from a Hugging Face config.json dict.

    Multimodal configs are read from their `text_config`. Raises PlannerError naming the missing or
    invalid field.
    """
    if isinstance(cfg.get("text_config"), dict):
        outer_tie = cfg.get("tie_word_embeddings")
        cfg = {**cfg["text_config"], **({"tie_word_embeddings": outer_tie} if outer_tie is not None else {})}
    model_type = str(cfg.get("model_type", "llama"))
    missing = [k for k in ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size") if cfg.get(k) is None]
    if missing:
        raise PlannerError(f"config.json for {name!r} lacks {', '.join(missing)}: give a Hugging Face decoder config")
    hidden = int(cfg["hidden_size"])
    heads = int(cfg["num_attention_heads"])
    layers = int(cfg["num_hidden_layers"])
    kv_lora = int(cfg.get("kv_lora_rank") or 0)
    num_experts = int(_first(cfg, "num_local_experts", "num_experts", "n_routed_experts", default=0) or 0)
    per_tok = int(_first(cfg, "num_experts_per_tok", "experts_per_token", "num_experts_per_token", default=0) or 0)
    inter = int(cfg.get("intermediate_size") or 0)
    moe_inter = int(cfg.get("moe_intermediate_size") or 0)
    if num_experts and not moe_inter:
        moe_inter = inter  # Mixtral / gpt-oss: intermediate_size is the expert width
        inter = 0 if not cfg.get("first_k_dense_replace") else inter
    if kv_lora:
        qk_nope = int(cfg.get("qk_nope_head_dim") or 0)
        qk_rope = int(cfg.get("qk_rope_head_dim") or 0)
        head_dim = qk_nope + qk_rope
        kv_heads = heads
    else:
        head_dim = int(cfg.get("head_dim") or hidden // heads)
        kv_heads = int(cfg.get("num_key_value_heads") or heads)

    sliding = cfg.get("sliding_window")
    if cfg.get("use_sliding_window") is False:
        sliding = None
    layer_types = cfg.get("layer_types")
    if layer_types is not None:
        layer_types = tuple(layer_types)
        if "sliding_attention" not in layer_types:
            sliding = None if sliding is None else sliding
    elif sliding is not None and model_type in ("gemma2", "gpt_oss"):
        # Gemma-2 and gpt-oss alternate sliding and full layers, sliding first (HF modeling code).
        layer_types = _alternating(layers, "sliding_attention")
    elif sliding is not None and model_type in ("gemma3", "gemma3_text"):
        # Gemma-3: every `sliding_window_pattern`-th layer is global, the others local (HF config).
        pattern = int(cfg.get("sliding_window_pattern") or 6)
        layer_types = tuple(
            "full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(layers)
        )
    if layer_types is not None and "sliding_attention" not in layer_types:
        layer_types = None
        sliding = None

    quant_cfg = cfg.get("quantization_config") or {}
    quant = _QUANT_METHODS.get(str(quant_cfg.get("quant_method", "")).lower(), "none")
    if quant == "none" and str(quant_cfg.get("quant_method", "")).lower() == "compressed-tensors":
        quant = "fp8" if "float" in json.dumps(quant_cfg).lower() else "w8a8"
    dtype = _TORCH_DTYPES.get(str(_first(cfg, "torch_dtype", "dtype", default="bfloat16")), "bf16")
    if quant in ("awq", "gptq") and int(quant_cfg.get("bits", 4)) != 4:
        # Only the 4-bit group-128 layout is modelled; an 8-bit checkpoint is sized by the plain
        # int8 rule (every parameter 1 byte), which slightly understates its 16-bit embeddings.
        if int(quant_cfg.get("bits", 4)) != 8:
            raise PlannerError(
                f"config.json for {name!r}: {quant} with {quant_cfg.get('bits')} bits is not modelled "
                "(4 or 8 bits): pass --precision to size it by the rule"
            )
        quant, dtype = "none", "int8"
    if quant == "fp8":
        dtype = "fp8"

    is_gpt_oss = model_type == "gpt_oss"
    fields: dict[str, Any] = dict(
        name=name,
        model_type=model_type,
        num_hidden_layers=layers,
        hidden_size=hidden,
        intermediate_size=inter,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=int(cfg["vocab_size"]),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        attention_bias=bool(cfg.get("attention_bias", model_type in ("qwen2", "qwen2_moe"))),
        attention_out_bias=is_gpt_oss,
        mlp_bias=bool(cfg.get("mlp_bias", False)) or is_gpt_oss,
        qk_norm=model_type in ("qwen3", "qwen3_moe", "gemma3", "gemma3_text"),
        attention_sinks=is_gpt_oss,
        norms_per_layer=4 if model_type in ("gemma2", "gemma3", "gemma3_text") else 2,
        sliding_window=int(sliding) if sliding else None,
        layer_types=layer_types,
        num_experts=num_experts,
        num_experts_per_tok=per_tok,
        moe_intermediate_size=moe_inter,
        num_shared_experts=int(cfg.get("n_shared_experts") or 0),
        shared_expert_intermediate_size=int(cfg.get("shared_expert_intermediate_size") or 0),
        first_k_dense_replace=int(cfg.get("first_k_dense_replace") or 0),
        router_bias=is_gpt_oss or model_type in ("deepseek_v3",),
        kv_lora_rank=kv_lora,
        q_lora_rank=int(cfg.get("q_lora_rank") or 0),
        qk_rope_head_dim=int(cfg.get("qk_rope_head_dim") or 0),
        qk_nope_head_dim=int(cfg.get("qk_nope_head_dim") or 0),
        v_head_dim=int(cfg.get("v_head_dim") or 0),
        max_position_embeddings=cfg.get("max_position_embeddings"),
        default_dtype=dtype,
        default_quantization=quant,
        source="config.json",
    )
    try:
        return ModelSpec(**fields)
    except ValidationError as err:
        raise PlannerError(f"config.json for {name!r}: {validation_line(err, 'config')}") from None


def load_hf_config(path: str | Path) -> ModelSpec:
    """Read a Hugging Face config.json file (or a folder holding one) into a ModelSpec."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    try:
        cfg = json.loads(p.read_text())
    except FileNotFoundError:
        raise PlannerError(f"model config {str(p)!r} not found: give a preset name or a config.json path") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PlannerError(f"model config {str(p)!r} is not valid JSON ({err}): fix the file") from None
    if not isinstance(cfg, dict):
        raise PlannerError(f"model config {str(p)!r} must be a JSON object")
    name = p.parent.name if p.name == "config.json" and p.parent.name else p.stem
    return from_hf_config(cfg, name=name)


_ALIAS_SUFFIXES = ("-instruct", "-it", "-chat", "-hf", "-base", "-v0.1", "-v0.3", "-2507", "-0905")


def _preset_alias(key: str) -> str | None:
    """A Hugging Face repo id ("meta-llama/Llama-3.1-8B-Instruct") to its preset id, if any."""
    name = key.rsplit("/", 1)[-1]
    if name.startswith("meta-"):
        name = name[len("meta-"):]
    changed = True
    while changed:
        changed = False
        for suffix in _ALIAS_SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                changed = True
    return name if name in _PRESETS else None


def get_model(name_or_path: str) -> ModelSpec:
    """A preset by id (case-insensitive) or a Hugging Face config.json by path.

    Raises:
        PlannerError: unknown name (listing the close preset names) or a malformed config.
    """
    key = name_or_path.strip().lower()
    if key in _PRESETS:
        return _preset(key)
    if Path(name_or_path).exists() or name_or_path.endswith(".json"):
        return load_hf_config(name_or_path)
    alias = _preset_alias(key)
    if alias is not None:
        return _preset(alias)
    if "/" in name_or_path or "\\" in name_or_path:
        raise PlannerError(
            f"model {name_or_path!r} is neither a preset nor an existing config.json path: "
            "give a preset id (`planner catalog --models`) or the path of a downloaded config.json"
        )
    close = did_you_mean(key, _PRESETS, n=4, cutoff=0.5)
    hint = f"{close} " if close else f"presets: {', '.join(sorted(_PRESETS))}; "
    raise PlannerError(
        f"unknown model {name_or_path!r}: {hint}see `planner catalog --models` or pass a config.json path"
    )
