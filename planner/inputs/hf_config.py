"""The Hugging Face config.json reader: a user's own model as a `ModelSpec`.

`HfConfig` is the part of a config.json the planner reads, with the ranges a real decoder has: a
config with 0 attention heads, a layer count in text or 10^12 layers is refused naming the field,
before any arithmetic divides by it or allocates for it. The bounds are far above any published
model (the largest have ~100k hidden size, ~100 layers, ~256k vocabulary, 256 routed experts) and
far below what would overflow the sizing maths. Other keys are ignored, as transformers does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from planner.errors import PlannerError, first_validation_error, validation_line
from planner.inputs.model_spec import ModelSpec
from planner.inputs.model_spec import alternating_layers as _alternating
from planner.inputs.reading import quote, read_text


Layers = Annotated[int, Field(strict=True, ge=1, le=10_000)]
Width = Annotated[int, Field(strict=True, ge=1, le=2**20)]
Heads = Annotated[int, Field(strict=True, ge=1, le=2**14)]
Vocab = Annotated[int, Field(strict=True, ge=1, le=2**24)]
Experts = Annotated[int, Field(strict=True, ge=0, le=2**16)]
Inner = Annotated[int, Field(strict=True, ge=0, le=2**24)]
Rank = Annotated[int, Field(strict=True, ge=0, le=2**16)]
Flag = Annotated[bool, Field(strict=True)]


class HfQuantizationConfig(BaseModel):
    """`quantization_config`: which method, and its bit width where it has one."""

    model_config = ConfigDict(extra="allow")

    quant_method: Any = None
    bits: Annotated[int, Field(strict=True, ge=1, le=64)] | None = None


class HfConfig(BaseModel):
    """A decoder's config.json as the planner reads it (HF's key names; None = absent)."""

    model_config = ConfigDict(extra="allow")

    model_type: Annotated[str, Field(strict=True)] = "llama"
    num_hidden_layers: Layers
    hidden_size: Width
    num_attention_heads: Heads
    vocab_size: Vocab
    num_key_value_heads: Heads | None = None
    head_dim: Annotated[int, Field(strict=True, ge=1, le=2**16)] | None = None
    intermediate_size: Inner | None = None
    max_position_embeddings: Annotated[int, Field(strict=True, ge=1)] | None = None
    # routed experts and experts per token under the names different families use
    num_local_experts: Experts | None = None
    num_experts: Experts | None = None
    n_routed_experts: Experts | None = None
    num_experts_per_tok: Experts | None = None
    experts_per_token: Experts | None = None
    num_experts_per_token: Experts | None = None
    moe_intermediate_size: Inner | None = None
    shared_expert_intermediate_size: Inner | None = None
    n_shared_experts: Experts | None = None
    first_k_dense_replace: Layers | Literal[0] | None = None
    kv_lora_rank: Rank | None = None
    q_lora_rank: Rank | None = None
    qk_rope_head_dim: Rank | None = None
    qk_nope_head_dim: Rank | None = None
    v_head_dim: Rank | None = None
    # 0 or absent: no window (Qwen2 configs carry a window with use_sliding_window false)
    sliding_window: Annotated[int, Field(strict=True, ge=0)] | None = None
    use_sliding_window: Flag | None = None
    sliding_window_pattern: Annotated[int, Field(strict=True, ge=1, le=10_000)] | None = None
    layer_types: list[Literal["full_attention", "sliding_attention"]] | None = None
    tie_word_embeddings: Flag | None = None
    attention_bias: Flag | None = None
    mlp_bias: Flag | None = None
    torch_dtype: Annotated[str, Field(strict=True)] | None = None
    dtype: Annotated[str, Field(strict=True)] | None = None
    quantization_config: HfQuantizationConfig | None = None

    def first(self, *keys: str, default: Any = None) -> Any:
        """The first of `keys` that is set (families name the same quantity differently)."""
        for key in keys:
            value = getattr(self, key)
            if value is not None:
                return value
        return default


def _validated(cfg: dict[str, Any], name: str) -> HfConfig:
    """The config's fields checked; a bad one becomes one PlannerError line naming it."""
    try:
        return HfConfig.model_validate(cfg)
    except ValidationError as err:
        first = first_validation_error(err)
        where = ".".join(str(p) for p in first.get("loc", ())) or "config"
        if first.get("type") == "missing":
            missing = [".".join(map(str, e["loc"])) for e in err.errors() if e.get("type") == "missing"]
            raise PlannerError(
                f"config.json for {name!r} lacks {', '.join(missing)}: give a Hugging Face decoder config"
            ) from None
        got = f" (got {quote(first['input'])})" if "input" in first else ""
        raise PlannerError(f"config.json for {name!r}: {where}: {first.get('msg', 'invalid value')}{got}: fix the file") from None


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
    c = _validated(cfg, name)
    model_type = c.model_type
    hidden, heads, layers = c.hidden_size, c.num_attention_heads, c.num_hidden_layers
    kv_lora = c.kv_lora_rank or 0
    num_experts = c.first("num_local_experts", "num_experts", "n_routed_experts", default=0) or 0
    per_tok = c.first("num_experts_per_tok", "experts_per_token", "num_experts_per_token", default=0) or 0
    inter = c.intermediate_size or 0
    moe_inter = c.moe_intermediate_size or 0
    if num_experts and not moe_inter:
        moe_inter = inter  # Mixtral / gpt-oss: intermediate_size is the expert width
        inter = 0 if not c.first_k_dense_replace else inter
    if kv_lora:
        head_dim = (c.qk_nope_head_dim or 0) + (c.qk_rope_head_dim or 0)
        kv_heads = heads
    else:
        head_dim = c.head_dim or hidden // heads
        kv_heads = c.num_key_value_heads or heads
        if head_dim < 1:
            raise PlannerError(
                f"config.json for {name!r}: hidden_size ({hidden}) is smaller than num_attention_heads ({heads}) "
                "and head_dim is not given: fix the file"
            )

    sliding = c.sliding_window or None
    if c.use_sliding_window is False:
        sliding = None
    layer_types: tuple[Any, ...] | None = None
    if c.layer_types is not None and len(c.layer_types) != layers:
        raise PlannerError(
            f"config.json for {name!r}: layer_types lists {len(c.layer_types)} layers, num_hidden_layers is "
            f"{layers}: fix the file"
        )
    if c.layer_types is not None:
        layer_types = tuple(c.layer_types)
    elif sliding is not None and model_type in ("gemma2", "gpt_oss"):
        # Gemma-2 and gpt-oss alternate sliding and full layers, sliding first (HF modeling code).
        layer_types = _alternating(layers, "sliding_attention")
    elif sliding is not None and model_type in ("gemma3", "gemma3_text"):
        # Gemma-3: every `sliding_window_pattern`-th layer is global, the others local (HF config).
        pattern = c.sliding_window_pattern or 6
        layer_types = tuple(
            "full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(layers)
        )
    if layer_types is not None and "sliding_attention" not in layer_types:
        layer_types = None
        sliding = None

    qc = c.quantization_config or HfQuantizationConfig()
    method = str(qc.quant_method or "").lower()
    quant = _QUANT_METHODS.get(method, "none")
    if quant == "none" and method == "compressed-tensors":
        quant = "fp8" if "float" in json.dumps(qc.model_dump(), default=str).lower() else "w8a8"
    dtype = _TORCH_DTYPES.get(str(c.first("torch_dtype", "dtype", default="bfloat16")), "bf16")
    bits = qc.bits if qc.bits is not None else 4
    if quant in ("awq", "gptq") and bits != 4:
        # Only the 4-bit group-128 layout is modelled; an 8-bit checkpoint is sized by the plain
        # int8 rule (every parameter 1 byte), which slightly understates its 16-bit embeddings.
        if bits != 8:
            raise PlannerError(
                f"config.json for {name!r}: quantization_config.bits: {quant} with {bits} bits is not modelled "
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
        vocab_size=c.vocab_size,
        tie_word_embeddings=bool(c.tie_word_embeddings),
        attention_bias=c.attention_bias if c.attention_bias is not None else model_type in ("qwen2", "qwen2_moe"),
        attention_out_bias=is_gpt_oss,
        mlp_bias=bool(c.mlp_bias) or is_gpt_oss,
        qk_norm=model_type in ("qwen3", "qwen3_moe", "gemma3", "gemma3_text"),
        attention_sinks=is_gpt_oss,
        norms_per_layer=4 if model_type in ("gemma2", "gemma3", "gemma3_text") else 2,
        sliding_window=int(sliding) if sliding else None,
        layer_types=layer_types,
        num_experts=num_experts,
        num_experts_per_tok=per_tok,
        moe_intermediate_size=moe_inter,
        num_shared_experts=c.n_shared_experts or 0,
        shared_expert_intermediate_size=c.shared_expert_intermediate_size or 0,
        first_k_dense_replace=c.first_k_dense_replace or 0,
        router_bias=is_gpt_oss or model_type in ("deepseek_v3",),
        kv_lora_rank=kv_lora,
        q_lora_rank=c.q_lora_rank or 0,
        qk_rope_head_dim=c.qk_rope_head_dim or 0,
        qk_nope_head_dim=c.qk_nope_head_dim or 0,
        v_head_dim=c.v_head_dim or 0,
        max_position_embeddings=c.max_position_embeddings,
        default_dtype=dtype,
        default_quantization=quant,
        source="config.json",
    )
    try:
        return ModelSpec(**fields)
    except ValidationError as err:
        raise PlannerError(f"config.json for {name!r}: {validation_line(err, 'config')}") from None


_MAX_CONFIG_BYTES = 8 * 2**20  # config.json files are a few kilobytes


def load_hf_config(path: str | Path) -> ModelSpec:
    """Read a Hugging Face config.json file (or a folder holding one) into a ModelSpec."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    text = read_text(p, "model config.json", max_bytes=_MAX_CONFIG_BYTES,
                     hint="give a preset name or a config.json path")
    try:
        cfg = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise PlannerError(f"model config {str(p)!r} is not valid JSON ({quote(str(err))}): fix the file") from None

    if not isinstance(cfg, dict):
        raise PlannerError(f"model config {str(p)!r} must be a JSON object")
    name = p.parent.name if p.name == "config.json" and p.parent.name else p.stem
    return from_hf_config(cfg, name=name)


