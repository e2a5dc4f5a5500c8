"""Built-in model presets and `get_model` (a preset id, a Hugging Face repo id or a config.json path).

Re-exports `ModelSpec`, `param_counts` and the config reader so `planner.inputs.models` is the one
import for a model.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from planner.errors import PlannerError, did_you_mean
from planner.inputs.hf_config import from_hf_config, load_hf_config  # noqa: F401  (re-exported)
from planner.inputs.model_spec import ModelSpec, ParamCounts, param_counts  # noqa: F401  (re-exported)
from planner.inputs.model_spec import alternating_layers as _alternating

# ---------------------------------------------------------------------------------------------
# Presets. Architectures from each model's published config.json (the source named per preset);
# published totals from the model cards / sources named in `source`.
# ---------------------------------------------------------------------------------------------

_MLC = "mlc-ai/mlc-llm python/mlc_llm/model/model_preset.py @79d603f085f50500e9509fa01785ffa7ecfaaa93 (verbatim HF config.json)"
_LLMPROF = "citsjtu2020/LLM-Prof sglang/Model_Config.md @8434c8d19c396b2f95d92a67845a7c0a0e0dd512 (verbatim HF config.json)"


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
