"""The Hugging Face config.json reader: a user's own model as a `ModelSpec`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from planner.errors import PlannerError, validation_line
from planner.inputs.model_spec import ModelSpec
from planner.inputs.model_spec import alternating_layers as _alternating


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


