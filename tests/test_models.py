"""Model presets, parameter counts against published totals, and the config.json reader."""

import json

import pytest

from planner.errors import PlannerError
from planner.inputs.models import ModelSpec, from_hf_config, get_model, list_presets, param_counts

REQUIRED = [
    "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "llama-3.2-1b", "llama-3.2-3b", "mistral-7b",
    "mixtral-8x7b", "qwen2.5-7b", "qwen2.5-14b", "qwen2.5-32b", "qwen2.5-72b", "qwen3-8b", "qwen3-32b",
    "qwen3-30b-a3b", "qwen3-235b-a22b", "gemma-2-9b", "gemma-2-27b", "deepseek-v3", "gpt-oss-20b",
    "gpt-oss-120b",
]


def test_all_presets_present():
    assert set(REQUIRED) <= set(list_presets())


def test_llama_8b_exact_count():
    # 8,030,261,248 in the checkpoint's safetensors metadata; the calibration model of
    # bench/data/h200-llama-3.1-8b.json (8,030,257,152) has the same layers without the final norm (4,096)
    c = param_counts(get_model("llama-3.1-8b"))
    assert c.total == 8_030_261_248
    assert c.total - 4096 == 8_030_257_152
    assert c.active == c.total
    # hand count: embedding + lm_head + 32 x (attention + MLP + 2 norms) + final norm
    attn = 4096 * 4096 * 2 + 2 * 4096 * 1024
    mlp = 3 * 4096 * 14336
    assert c.total == 2 * 128256 * 4096 + 32 * (attn + mlp + 2 * 4096) + 4096


@pytest.mark.parametrize("name", REQUIRED)
def test_totals_match_published(name):
    spec = get_model(name)
    assert spec.published_params, f"{name} lacks a published total"
    c = param_counts(spec)
    # model cards round to 2-3 significant figures; Qwen2.5-32B's card (32.5B) is the loosest
    assert c.total == pytest.approx(spec.published_params, rel=0.01)


@pytest.mark.parametrize("name,active", [
    ("mixtral-8x7b", 12.9e9), ("qwen3-30b-a3b", 3.3e9), ("qwen3-235b-a22b", 22e9), ("deepseek-v3", 37.5e9),
])
def test_active_params(name, active):
    # DeepSeek-V3: 36.6B active + 0.9B head (tt-metal README_WEIGHTS) = 37.5B
    assert param_counts(get_model(name)).active == pytest.approx(active, rel=0.02)


@pytest.mark.parametrize("name,active", [("gpt-oss-120b", 5.13e9), ("gpt-oss-20b", 3.61e9)])
def test_gpt_oss_active_excludes_embedding(name, active):
    # OpenAI's card counts active parameters without the embedding table
    c = param_counts(get_model(name))
    assert c.active - c.embedding == pytest.approx(active, rel=0.01)


def test_tied_embeddings_have_no_lm_head():
    c = param_counts(get_model("llama-3.2-1b"))
    assert c.lm_head == 0


def test_unknown_model_lists_close_names():
    with pytest.raises(PlannerError, match="llama-3.1-8b"):
        get_model("llama-3.1-8")


def test_hf_config_roundtrip(tmp_path):
    cfg = {
        "model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096, "intermediate_size": 14336,
        "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "max_position_embeddings": 131072,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    spec = get_model(str(path))
    assert spec.head_dim == 128
    assert param_counts(spec).total == 8_030_261_248


def test_hf_config_moe_and_sliding():
    mixtral = from_hf_config({
        "model_type": "mixtral", "num_hidden_layers": 32, "hidden_size": 4096, "intermediate_size": 14336,
        "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000, "num_local_experts": 8,
        "num_experts_per_tok": 2, "sliding_window": None,
    })
    assert param_counts(mixtral).total == param_counts(get_model("mixtral-8x7b")).total
    gemma = from_hf_config({
        "model_type": "gemma2", "num_hidden_layers": 42, "hidden_size": 3584, "intermediate_size": 14336,
        "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 256, "vocab_size": 256000,
        "tie_word_embeddings": True, "sliding_window": 4096,
    })
    assert gemma.num_sliding_layers == 21
    assert param_counts(gemma).total == param_counts(get_model("gemma-2-9b")).total
    qwen = from_hf_config({
        "model_type": "qwen2", "num_hidden_layers": 28, "hidden_size": 3584, "intermediate_size": 18944,
        "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
        "sliding_window": 131072, "use_sliding_window": False,
    })
    assert qwen.sliding_window is None and qwen.attention_bias


def test_hf_config_deepseek_mla():
    ds = from_hf_config({
        "model_type": "deepseek_v3", "num_hidden_layers": 61, "hidden_size": 7168, "intermediate_size": 18432,
        "num_attention_heads": 128, "num_key_value_heads": 128, "vocab_size": 129280,
        "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8, "moe_intermediate_size": 2048,
        "first_k_dense_replace": 3, "kv_lora_rank": 512, "q_lora_rank": 1536, "qk_rope_head_dim": 64,
        "qk_nope_head_dim": 128, "v_head_dim": 128,
        "quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]},
    })
    assert ds.uses_mla and ds.default_quantization == "fp8"
    assert param_counts(ds).total == param_counts(get_model("deepseek-v3")).total


@pytest.mark.parametrize("content,match", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"hidden_size": 10}', "lacks"),
    ('{"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 6, "num_key_value_heads": 4, "vocab_size": 10}',
     "multiple"),
    ('{"num_hidden_layers": -2, "hidden_size": 64, "num_attention_heads": 4, "vocab_size": 10}', "num_hidden_layers"),
])
def test_malformed_config(tmp_path, content, match):
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(PlannerError, match=match):
        get_model(str(path))


def test_missing_config_file(tmp_path):
    with pytest.raises(PlannerError, match="not found"):
        get_model(str(tmp_path / "nothing.json"))


def test_spec_is_frozen_and_strict():
    spec = get_model("llama-3.1-8b")
    with pytest.raises(Exception):
        spec.hidden_size = 1  # type: ignore[misc]
    with pytest.raises(Exception):
        ModelSpec(name="x", num_hidden_layers=1, hidden_size=8, intermediate_size=8, num_attention_heads=2,
                  num_key_value_heads=2, head_dim=4, vocab_size=10, bogus=1)


@pytest.mark.parametrize("hf_id,preset", [
    ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b"),
    ("mistralai/Mistral-7B-Instruct-v0.3", "mistral-7b"),
    ("google/gemma-2-9b-it", "gemma-2-9b"),
    ("openai/gpt-oss-120b", "gpt-oss-120b"),
])
def test_hugging_face_ids_map_to_presets(hf_id, preset):
    assert get_model(hf_id).name == preset


def test_unknown_hf_id_says_no_download():
    with pytest.raises(PlannerError, match="neither a preset nor an existing config.json"):
        get_model("someone/some-model")


def test_hf_config_gpt_oss_and_qwen3_moe():
    oss = from_hf_config({
        "model_type": "gpt_oss", "num_hidden_layers": 24, "hidden_size": 2880, "intermediate_size": 2880,
        "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 201088,
        "num_local_experts": 32, "num_experts_per_tok": 4, "sliding_window": 128, "attention_bias": True,
        "layer_types": ["sliding_attention", "full_attention"] * 12, "tie_word_embeddings": False,
        "quantization_config": {"quant_method": "mxfp4"},
    })
    assert oss.default_quantization == "mxfp4" and oss.num_sliding_layers == 12
    assert param_counts(oss).total == param_counts(get_model("gpt-oss-20b")).total
    q = from_hf_config({
        "model_type": "qwen3_moe", "num_hidden_layers": 48, "hidden_size": 2048, "intermediate_size": 6144,
        "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128, "vocab_size": 151936,
        "num_experts": 128, "num_experts_per_tok": 8, "moe_intermediate_size": 768, "tie_word_embeddings": False,
    })
    assert param_counts(q).total == param_counts(get_model("qwen3-30b-a3b")).total


def test_hf_config_gemma3_pattern():
    g = from_hf_config({
        "model_type": "gemma3_text", "num_hidden_layers": 12, "hidden_size": 64, "intermediate_size": 128,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 100,
        "sliding_window": 1024, "sliding_window_pattern": 6,
    })
    assert g.num_sliding_layers == 10 and g.num_full_attention_layers == 2
