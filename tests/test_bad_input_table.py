"""The malformed-input table: every profile, GPU-catalog and model-config field given a wrong type,
sign, magnitude, NaN/inf or nothing, plus the file-level cases (unreadable, binary, folders, YAML
bombs, absurd magnitudes). Each case runs the real CLI and must be refused with one stderr line
naming the field (exit 2, nothing on stdout, no traceback), or be accepted (exit 0) where the
value has a documented meaning.

The field cases are generated from the pydantic schemas, so a field added later is covered too.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli_cases import (
    CLEAN,
    ERROR,
    Leaf,
    assert_clean,
    assert_clean_error,
    assert_ok,
    leaves,
    mutations,
    run_cli,
    schema_class,
    set_path,
)

ROOT = Path(__file__).resolve().parent.parent
TRACE = ROOT / "traffic_profiles" / "traces" / "azure_llm_conv_2023.csv"

Profile = schema_class("planner.profile.Profile")
GpuSpec = schema_class("planner.catalog.GpuSpec")

# A profile that sets every section, small enough to simulate in a few milliseconds.
FULL: dict[str, Any] = yaml.safe_load(
    """
name: full
description: every section set
model: {name: llama-3.1-8b, precision: bf16, quantization: none, kv_cache_dtype: auto}
serving: {max_model_len: 4096, gpu_memory_utilization: 0.9, max_num_seqs: 64,
          max_num_batched_tokens: 2048, block_size: 16, enable_chunked_prefill: true}
traffic:
  arrivals: {process: poisson, rate_per_s: 2.0}
  sizes: {distribution: fixed, prompt_tokens: 200, output_tokens: 20}
  horizon_seconds: 20
  oversize: cap
  seed: 0
slo: {ttft_seconds: 2.0, tpot_seconds: 0.1, attainment: 0.9}
candidates: {gpus: [h100-sxm], tensor_parallel_sizes: [1], billing: [pod, serverless]}
prices: [{gpu: h100-sxm, pod_usd_per_hour: 3.0, flex_usd_per_s: 0.001, active_usd_per_s: 0.0008, source: test}]
billing:
  pod_cloud: secure
  pod_provider: runpod
  pod_billing_granularity_seconds: 1
  pod_provisioning_delay_seconds: 60
  serverless:
    active_workers: 0
    max_workers: 3
    idle_timeout_seconds: 5
    scaler: queue-delay
    scaler_value: 4
    max_concurrency_per_worker: 30
    cold_start: {container_start_seconds: 5, model_load_bytes_per_second: 1.0e+9, engine_warmup_seconds: 60,
                 cached_model: false, cached_start_seconds: 4}
optimizer:
  slot_seconds: 3600
  demand_percentile: 0.99
  headroom: 0.9
  max_gpus_per_type: {h100-sxm: 4}
  max_serverless_workers: 3
  min_replicas: 1
  budget_usd_per_month: 100000
  size_buckets: [{prompt_tokens: [1, 1000], output_tokens: [1, 100]}]
  max_rounds: 3
capacity:
  entries: [{gpu: h100-sxm, tensor_parallel_size: 1, usd_per_hour: 3,
             buckets: [{prompt_tokens: [1, 1000], output_tokens: [1, 100], share: 1, max_requests_per_second: 5}]}]
  source: test
"""
)

ARRIVALS = {
    "gamma": {"process": "gamma", "rate_per_s": 2.0, "cv": 2.0},
    "onoff": {"process": "onoff", "base_rate_per_s": 1.0, "burst_rate_per_s": 4.0, "mean_burst_seconds": 5.0, "mean_gap_seconds": 10.0},
    "diurnal": {"process": "diurnal", "mean_rate_per_s": 2.0, "peak_to_trough": 3.0, "peak_hour": 14.0, "start_hour": 0.0},
    "diurnal-hourly": {"process": "diurnal", "peak_rate_per_s": 3.0, "hourly_multipliers": [1.0] * 24},
    "piecewise": {"process": "piecewise", "segments": [{"duration_seconds": 10.0, "rate_per_s": 1.0}], "repeat": True},
    "trace": {"process": "trace", "path": str(TRACE), "format": "azure", "start_offset_seconds": 0.0,
              "time_scale": 1.0, "rate_scale": 1.0, "loop": False, "jitter": 0.5},
}
SIZES = {
    "uniform": {"distribution": "uniform", "prompt_tokens": [10, 300], "output_tokens": [5, 30]},
    "lognormal": {"distribution": "lognormal", "prompt_tokens": {"mu": 5.0, "sigma": 0.5, "min_tokens": 1, "max_tokens": 2000},
                  "output_tokens": {"median": 20, "p90": 60}},
    "lognormal-mean": {"distribution": "lognormal", "prompt_tokens": {"mean": 300, "p99": 900},
                       "output_tokens": {"mean": 30, "median": 20}},
    "empirical": {"distribution": "empirical", "path": str(TRACE), "format": "azure", "joint": True},
}


def _variants() -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
    """(name, profile, the subtree whose fields are mutated) for the full profile and each union member."""
    out: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [("full", FULL, ())]
    for name, arrivals in ARRIVALS.items():
        p = copy.deepcopy(FULL)
        p["traffic"]["arrivals"] = arrivals
        if name == "trace":
            p["traffic"]["sizes"] = {"distribution": "trace"}
        out.append((f"arrivals-{name}", p, ("traffic", "arrivals")))
    for name, sizes in SIZES.items():
        p = copy.deepcopy(FULL)
        p["traffic"]["sizes"] = sizes
        out.append((f"sizes-{name}", p, ("traffic", "sizes")))
    return out


def _profile_cases() -> list[Any]:
    cases = []
    seen: set[tuple[str, str]] = set()
    for variant, base, subtree in _variants():
        for leaf in leaves(Profile, base):
            if leaf.path[: len(subtree)] != subtree or (subtree and leaf.path == subtree):
                continue
            if not subtree and leaf.path[:2] in (("traffic", "arrivals"), ("traffic", "sizes")) and len(leaf.path) > 2:
                continue  # the union members' fields are the variants' cases
            for label, value, expected in mutations(leaf):
                if (leaf.dotted, label) in seen:
                    continue  # the same field of a union member in another variant
                seen.add((leaf.dotted, label))
                cases.append(pytest.param(base, leaf, value, expected, id=f"{variant}:{leaf.dotted}:{label}"))
    return cases


def _write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("base, leaf, value, expected", _profile_cases())
def test_profile_field(tmp_path: Path, base: dict[str, Any], leaf: Leaf, value: Any, expected: str) -> None:
    data = copy.deepcopy(base)
    set_path(data, leaf.path, value)
    path = _write_yaml(tmp_path / "p.yaml", data)
    res = run_cli("simulate", "--profile", str(path), "--gpu", "h100-sxm", "--billing", "mix", "--json")
    (assert_clean_error if expected == ERROR else assert_clean)(res, leaf.name)


# ------------------------------------------------------------------------------- GPU catalog
GPU_BASE: dict[str, Any] = yaml.safe_load((ROOT / "gpu_catalog" / "h100-sxm.yaml").read_text())


def _gpu_cases() -> list[Any]:
    cases = []
    for leaf in leaves(GpuSpec, GPU_BASE):
        for label, value, expected in mutations(leaf):
            cases.append(pytest.param(leaf, value, expected, id=f"gpu:{leaf.dotted}:{label}"))
    return cases


@pytest.mark.parametrize("leaf, value, expected", _gpu_cases())
def test_gpu_yaml_field(tmp_path: Path, leaf: Leaf, value: Any, expected: str) -> None:
    data = copy.deepcopy(GPU_BASE)
    set_path(data, leaf.path, value)
    path = _write_yaml(tmp_path / "gpu.yaml", data)
    res = run_cli("perf", "--model", "llama-3.1-8b", "--gpu", str(path), "--batch", "8", "--context", "1024", "--json")
    (assert_clean_error if expected == ERROR else assert_clean)(res, leaf.name)


# ------------------------------------------------------------------------- model config.json
LLAMA = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
         "num_key_value_heads": 8, "num_hidden_layers": 32, "vocab_size": 128256, "head_dim": 128,
         "max_position_embeddings": 131072, "tie_word_embeddings": False, "attention_bias": False,
         "mlp_bias": False, "torch_dtype": "bfloat16"}
MIXTRAL = {**LLAMA, "model_type": "mixtral", "num_local_experts": 8, "num_experts_per_tok": 2}
DEEPSEEK = {**LLAMA, "model_type": "deepseek_v3", "num_attention_heads": 32, "kv_lora_rank": 512, "q_lora_rank": 1536,
            "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128, "n_routed_experts": 16,
            "num_experts_per_tok": 4, "moe_intermediate_size": 1024, "n_shared_experts": 1, "first_k_dense_replace": 1}
GEMMA = {**LLAMA, "model_type": "gemma3_text", "sliding_window": 1024, "sliding_window_pattern": 6, "use_sliding_window": True}
QWEN_MOE = {**LLAMA, "model_type": "qwen2_moe", "num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 1024,
            "shared_expert_intermediate_size": 4096}
AWQ = {**LLAMA, "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}}

# field -> (base config, required, smallest valid value); huge values must be refused except where noted
CONFIG_INTS: dict[str, tuple[dict[str, Any], bool, int]] = {
    "hidden_size": (LLAMA, True, 1), "num_attention_heads": (LLAMA, True, 1), "num_hidden_layers": (LLAMA, True, 1),
    "vocab_size": (LLAMA, True, 1), "num_key_value_heads": (LLAMA, False, 1), "head_dim": (LLAMA, False, 1),
    "intermediate_size": (LLAMA, False, 1), "max_position_embeddings": (LLAMA, False, 1),
    "num_local_experts": (MIXTRAL, False, 0), "num_experts_per_tok": (MIXTRAL, False, 0),
    "num_experts": (QWEN_MOE, False, 0), "moe_intermediate_size": (QWEN_MOE, False, 0),
    "shared_expert_intermediate_size": (QWEN_MOE, False, 0),
    "n_routed_experts": (DEEPSEEK, False, 0), "kv_lora_rank": (DEEPSEEK, False, 0), "q_lora_rank": (DEEPSEEK, False, 0),
    "qk_rope_head_dim": (DEEPSEEK, False, 1), "qk_nope_head_dim": (DEEPSEEK, False, 0), "v_head_dim": (DEEPSEEK, False, 1),
    "n_shared_experts": (DEEPSEEK, False, 0), "first_k_dense_replace": (DEEPSEEK, False, 0),
    "sliding_window": (GEMMA, False, 1), "sliding_window_pattern": (GEMMA, False, 1),
}
HUGE_MEANS_UNLIMITED = {"max_position_embeddings", "sliding_window"}
CONFIG_BOOLS = {"tie_word_embeddings": LLAMA, "attention_bias": LLAMA, "mlp_bias": LLAMA, "use_sliding_window": GEMMA}


def _config_cases() -> list[Any]:
    cases = []
    for field, (base, required, smallest) in CONFIG_INTS.items():
        bad: list[tuple[str, Any, str]] = [
            ("text", "abc", ERROR), ("fraction", 4096.7, ERROR), ("bool", True, ERROR),
            ("nan", float("nan"), ERROR), ("negative", -1, ERROR),
            ("huge", 10**12, CLEAN if field in HUGE_MEANS_UNLIMITED else ERROR),
            ("null", None, ERROR if required else CLEAN),
        ]
        if required:
            bad += [("list", [4096], ERROR), ("inf", float("inf"), ERROR), ("huger", 1e30, ERROR)]
        if smallest > 0:
            bad.append(("zero", 0, ERROR if required or field in ("num_key_value_heads", "head_dim") else CLEAN))
        cases += [pytest.param(base, field, v, e, id=f"config:{field}:{label}") for label, v, e in bad]
    for field, base in CONFIG_BOOLS.items():
        cases += [pytest.param(base, field, v, ERROR, id=f"config:{field}:{label}") for label, v in (("text", "maybe"), ("list", [1]))]
    cases += [
        pytest.param(AWQ, "quantization_config", [1], ERROR, id="config:quantization_config:list"),
        pytest.param(AWQ, "quantization_config", "awq", ERROR, id="config:quantization_config:text"),
        pytest.param(AWQ, "quantization_config", {"quant_method": "awq", "bits": "four"}, ERROR, id="config:bits:text"),
        pytest.param(AWQ, "quantization_config", {"quant_method": "awq", "bits": 3}, ERROR, id="config:bits:three"),
        pytest.param(AWQ, "quantization_config", {"quant_method": 7}, CLEAN, id="config:quant_method:number"),
        pytest.param(GEMMA, "sliding_window", "big", ERROR, id="config:sliding_window:big"),
        pytest.param(MIXTRAL, "num_local_experts", "eight", ERROR, id="config:num_local_experts:eight"),
        pytest.param(LLAMA, "layer_types", "abc", ERROR, id="config:layer_types:text"),
        pytest.param(LLAMA, "layer_types", ["bogus"] * 32, ERROR, id="config:layer_types:unknown"),
        pytest.param(LLAMA, "layer_types", ["full_attention"] * 3, ERROR, id="config:layer_types:short"),
        pytest.param(LLAMA, "torch_dtype", 16, CLEAN, id="config:torch_dtype:number"),
        pytest.param(LLAMA, "model_type", ["llama"], ERROR, id="config:model_type:list"),
        pytest.param(LLAMA, "text_config", "abc", CLEAN, id="config:text_config:text"),
        pytest.param(LLAMA, "text_config", {**LLAMA, "hidden_size": "abc"}, ERROR, id="config:text_config:bad-field"),
    ]
    return cases


def _config_field_name(field: str, value: Any) -> str:
    if field == "quantization_config" and isinstance(value, dict) and "bits" in value:
        return "bits"
    if field == "text_config" and isinstance(value, dict):
        return "hidden_size"
    return field


@pytest.mark.parametrize("base, field, value, expected", _config_cases())
def test_model_config_field(tmp_path: Path, base: dict[str, Any], field: str, value: Any, expected: str) -> None:
    cfg = {**base, field: value}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    res = run_cli("perf", "--model", str(path), "--gpu", "h100-sxm", "--batch", "8", "--context", "1024", "--json")
    (assert_clean_error if expected == ERROR else assert_clean)(res, _config_field_name(field, value))


def test_model_config_base_cases_are_accepted(tmp_path: Path) -> None:
    """The bases of the config table are valid models (else every case above would pass vacuously)."""
    for i, base in enumerate((LLAMA, MIXTRAL, DEEPSEEK, GEMMA, QWEN_MOE, AWQ)):
        path = tmp_path / f"c{i}" / "config.json"
        path.parent.mkdir()
        path.write_text(json.dumps(base))
        assert_ok(run_cli("perf", "--model", str(path), "--gpu", "h100-sxm", "--batch", "8", "--context", "1024", "--json"))


def test_profile_variants_are_accepted(tmp_path: Path) -> None:
    for name, base, _ in _variants():
        path = _write_yaml(tmp_path / f"{name}.yaml", base)
        assert_ok(run_cli("simulate", "--profile", str(path), "--gpu", "h100-sxm", "--billing", "mix", "--json"))


def test_gpu_base_is_accepted(tmp_path: Path) -> None:
    path = _write_yaml(tmp_path / "gpu.yaml", GPU_BASE)
    assert_ok(run_cli("perf", "--model", "llama-3.1-8b", "--gpu", str(path), "--batch", "8", "--context", "1024", "--json"))


# ------------------------------------------------------------------------------ file-level cases
def _profile_with(tmp_path: Path, **sections: Any) -> Path:
    data = copy.deepcopy(FULL)
    for dotted, value in sections.items():
        set_path(data, tuple(int(p) if p.isdigit() else p for p in dotted.split("__")), value)
    return _write_yaml(tmp_path / "p.yaml", data)


def _simulate(path: Path, *extra: str) -> Any:
    return run_cli("simulate", "--profile", str(path), "--gpu", "h100-sxm", "--json", *extra)


def _alias_bomb(key: str, levels: int = 9) -> str:
    """A billion-laughs YAML value under `key`: each level lists the previous one nine times."""
    lines = [f"{key}:"]
    prev = None
    for i in range(levels):
        items = ",".join([f"*a{prev}"] * 9 if prev is not None else ['"lol"'] * 9)
        lines.append(f"  - &a{i} [{items}]")
        prev = i
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_in_description(tmp_path: Path) -> None:
    text = yaml.safe_dump({k: v for k, v in FULL.items() if k != "description"}, sort_keys=False)
    path = tmp_path / "bomb.yaml"
    path.write_text(_alias_bomb("description") + text)
    res = _simulate(path)
    assert_clean_error(res, "bomb.yaml", "aliases")


def test_small_alias_expansion_is_refused_naming_the_field(tmp_path: Path) -> None:
    """Within the alias budget the value reaches validation: the error quotes only a short piece."""
    text = yaml.safe_dump({k: v for k, v in FULL.items() if k != "description"}, sort_keys=False)
    path = tmp_path / "p.yaml"
    path.write_text(_alias_bomb("description", levels=4) + text)
    res = _simulate(path)
    assert_clean_error(res, "description")
    assert len(res.err) < 400


def test_alias_bomb_in_gpu_yaml(tmp_path: Path) -> None:
    path = tmp_path / "gpu.yaml"
    path.write_text(_alias_bomb("sources"))
    res = run_cli("perf", "--model", "llama-3.1-8b", "--gpu", str(path), "--batch", "8", "--context", "1024")
    assert_clean_error(res, "gpu.yaml", "aliases")


@pytest.mark.parametrize("kind", ["list", "mapping"])
def test_deeply_nested_yaml(tmp_path: Path, kind: str) -> None:
    depth = 100_000
    body = "[" * depth + "]" * depth if kind == "list" else "{a: " * depth + "1" + "}" * depth
    path = tmp_path / "deep.yaml"
    path.write_text(f"description: {body}\n")
    assert_clean_error(_simulate(path), "deep.yaml")


@pytest.mark.parametrize(
    "payload",
    [b"\xff\xfe\x00\x00garbage\x00\x01\x02", bytes(range(256)) * 4, b"name: caf\xe9\nmodel: {name: llama-3.1-8b}\n"],
    ids=["utf32-bom", "binary", "latin1"],
)
def test_non_utf8_profile(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(payload)
    assert_clean_error(_simulate(path), "p.yaml")


@pytest.mark.parametrize("payload", [bytes(range(256)) * 4, b"id: x\nname: caf\xe9\n"], ids=["binary", "latin1"])
def test_non_utf8_gpu_yaml(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "gpu.yaml"
    path.write_bytes(payload)
    assert_clean_error(run_cli("perf", "--model", "llama-3.1-8b", "--gpu", str(path), "--batch", "8", "--context", "64"), "gpu.yaml")


@pytest.mark.parametrize("payload", [bytes(range(256)) * 4, b"\x89PNG\r\n\x1a\n\x00\x00", b"timestamp,a,b\n\xff\xff,1,2\n"],
                         ids=["binary", "png", "bad-row"])
def test_non_utf8_trace(tmp_path: Path, payload: bytes) -> None:
    trace = tmp_path / "t.csv"
    trace.write_bytes(payload)
    res = run_cli("traffic", "--trace", str(trace), "--json")
    assert_clean_error(res, "t.csv")
    path = _profile_with(tmp_path, traffic__arrivals={"process": "trace", "path": str(trace), "format": "csv"},
                         traffic__sizes=None)
    assert_clean_error(_simulate(path), "t.csv")


def test_binary_model_config(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(bytes(range(256)) * 4)
    assert_clean_error(run_cli("size", "--model", str(path)), "config.json")


@pytest.mark.parametrize(
    "args, name",
    [
        (["simulate", "--profile", "{dir}", "--gpu", "h100-sxm"], "profile"),
        (["perf", "--model", "llama-3.1-8b", "--gpu", "{dir}.yaml", "--batch", "8", "--context", "64"], "gpu"),
        (["size", "--model", "{dir}"], "config.json"),
        (["traffic", "--trace", "{dir}"], "trace"),
        (["simulate", "--profile", "{profile}", "--gpu", "h100-sxm", "--records", "{dir}"], "records"),
        (["optimize", "--profile", "{profile}", "--cache-dir", "{file}", "--no-report"], "cache"),
    ],
    ids=["profile", "gpu-yaml", "model", "trace", "records", "cache-dir"],
)
def test_folder_given_as_file(tmp_path: Path, args: list[str], name: str) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (tmp_path / "folder.yaml").mkdir()
    file = tmp_path / "file"
    file.write_text("x")
    profile = _profile_with(tmp_path)
    res = run_cli(*[a.format(dir=folder, profile=profile, file=file) for a in args])
    assert_clean_error(res, name)


def test_trace_path_in_profile_is_a_folder(tmp_path: Path) -> None:
    path = _profile_with(tmp_path, traffic__arrivals={"process": "trace", "path": str(tmp_path)}, traffic__sizes=None)
    assert_clean_error(_simulate(path), "path")


@pytest.mark.parametrize(
    "sections, name",
    [
        ({"traffic__arrivals": {"process": "gamma", "rate_per_s": 2.0, "cv": 1e12}}, "cv"),
        ({"traffic__arrivals": {"process": "gamma", "rate_per_s": 2.0, "cv": 1e6}}, "cv"),
        ({"traffic__arrivals": {"process": "onoff", "base_rate_per_s": 1, "burst_rate_per_s": 2,
                                "mean_burst_seconds": 1e-300, "mean_gap_seconds": 10}}, "mean_burst_seconds"),
        ({"traffic__arrivals": {"process": "onoff", "base_rate_per_s": 1, "burst_rate_per_s": 2,
                                "mean_burst_seconds": 10, "mean_gap_seconds": 1e-300}}, "mean_gap_seconds"),
        ({"traffic__arrivals": {"process": "piecewise", "segments": [{"duration_seconds": 1e-300, "rate_per_s": 1}]}},
         "duration_seconds"),
        ({"traffic__arrivals": {"process": "poisson", "rate_per_s": True}}, "rate_per_s"),
        ({"traffic__arrivals": {"process": "poisson", "rate_per_s": 1e12}}, "rate_per_s"),
        ({"traffic__horizon_seconds": 1e-300}, "horizon_seconds"),
        ({"traffic__horizon_seconds": 1e15}, "horizon_seconds"),
        ({"traffic__sizes": {"distribution": "lognormal", "prompt_tokens": {"mu": float("nan"), "sigma": 1},
                             "output_tokens": {"median": 20, "p90": 60}}}, "mu"),
        ({"traffic__sizes": {"distribution": "lognormal", "prompt_tokens": {"mu": 1e6, "sigma": 1},
                             "output_tokens": {"median": 20, "p90": 60}}}, "mu"),
        ({"traffic__sizes": {"distribution": "lognormal", "prompt_tokens": {"mu": 5, "sigma": 1e6},
                             "output_tokens": {"median": 20, "p90": 60}}}, "sigma"),
        ({"traffic__sizes": {"distribution": "lognormal", "prompt_tokens": {"median": 100, "p90": 200, "min_tokens": 500,
                                                                            "max_tokens": 50},
                             "output_tokens": {"median": 20, "p90": 60}}}, "min_tokens"),
        ({"traffic__sizes": {"distribution": "uniform", "prompt_tokens": [300, 10], "output_tokens": [5, 30]}}, "prompt_tokens"),
        ({"optimizer__size_buckets": [{"prompt_tokens": [1000, 1], "output_tokens": [1, 100]}]}, "size_buckets"),
        ({"capacity__entries": [{"gpu": "h100-sxm", "usd_per_hour": 3,
                                 "buckets": [{"prompt_tokens": [900, 1], "output_tokens": [1, 100], "share": 1,
                                              "max_requests_per_second": 5}]}]}, "prompt_tokens"),
        ({"prices": [{"gpu": "no-such-gpu", "pod_usd_per_hour": 1.0}]}, "no-such-gpu"),
        ({"prices": [{"gpu": "h100-sxm", "pod_usd_per_hour": 1.0}, {"gpu": "h100-sxm", "pod_usd_per_hour": 2.0}]}, "prices"),
        ({"billing__pod_provider": "no-such-cloud"}, "pod_provider"),
        ({"candidates__gpus": ["no-such-gpu"]}, "gpus"),
        ({"optimizer__max_gpus_per_type": {"no-such-gpu": 1}}, "max_gpus_per_type"),
        ({"serving__max_num_seqs": 10**12}, "max_num_seqs"),
        ({"serving__max_num_batched_tokens": 10**15}, "max_num_batched_tokens"),
        ({"serving__max_model_len": 10**15}, "max_model_len"),
        ({"traffic__sizes": {"distribution": "fixed", "prompt_tokens": 10**15, "output_tokens": 20}}, "prompt_tokens"),
        ({"traffic__seed": 2**80}, "seed"),
        ({"billing__serverless__max_workers": 10**9, "billing__serverless__active_workers": 10**9}, "workers"),
        ({"traffic__arrivals": {"process": "diurnal", "mean_rate_per_s": 2, "hourly_multipliers": [1.0] * 23 + [1e300]}},
         "hourly_multipliers"),
        ({"traffic__arrivals": {"process": "diurnal", "mean_rate_per_s": 2, "hourly_multipliers": [0.0] * 23 + [1.0]}},
         "horizon_seconds"),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, dict) else str(v),
)
def test_absurd_or_contradictory_profile_values(tmp_path: Path, sections: dict[str, Any], name: str) -> None:
    res = _simulate(_profile_with(tmp_path, **sections), "--billing", "mix")
    assert_clean_error(res, name)


def test_name_and_description_quoted_short(tmp_path: Path) -> None:
    """An error quotes at most a short piece of a long value."""
    path = _profile_with(tmp_path, traffic__arrivals={"process": "poisson", "rate_per_s": "x" * 100_000})
    res = _simulate(path)
    assert_clean_error(res, "rate_per_s")
    assert len(res.err) < 400


@pytest.mark.parametrize(
    "args, name",
    [
        (["perf", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--batch", "1000000000000", "--context", "1024"], "--batch"),
        (["perf", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--batch", "8", "--context", "1000000000000000"], "--context"),
        (["perf", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--batch", "0", "--context", "1024"], "--batch"),
        (["perf", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--batch", "8", "--context", "1024", "--host-overhead-ms", "nan"],
         "--host-overhead-ms"),
        (["perf", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--batch", "8", "--context", "1024", "--host-overhead-ms", "inf"],
         "--host-overhead-ms"),
        (["perf", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--batch", "8", "--context", "1024", "--host-overhead-ms", "-1"],
         "--host-overhead-ms"),
        (["perf", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--batch", "8", "--context", "1024",
          "--gpu-memory-utilization", "nan"], "--gpu-memory-utilization"),
        (["perf", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--batch", "8", "--context", "1024", "--prefill-chunk", "-5"],
         "--prefill-chunk"),
        (["size", "--model", "llama-3.1-8b", "--block-size", "7"], "--block-size"),
        (["size", "--model", "llama-3.1-8b", "--block-size", "0"], "--block-size"),
        (["size", "--model", "llama-3.1-8b", "--overhead", "nan"], "--overhead"),
        (["size", "--model", "llama-3.1-8b", "--context", "-1"], "--context"),
        (["size", "--model", "llama-3.1-8b", "--concurrency", "1000000000000000"], "--concurrency"),
        (["size", "--model", "llama-3.1-8b", "--gpu-memory-utilization", "2"], "--gpu-memory-utilization"),
        (["size", "--model", "llama-3.1-8b", "--max-num-seqs", "0"], "--max-num-seqs"),
        (["traffic", "--profile", "steady.yaml", "--jitter", "nan"], "--jitter"),
        (["traffic", "--profile", "steady.yaml", "--seed", "-1"], "--seed"),
        (["simulate", "--profile", "steady.yaml", "--gpu", "h100-sxm", "--idle-timeout", "nan", "--billing", "serverless"],
         "--idle-timeout"),
        (["simulate", "--profile", "steady.yaml", "--gpu", "h100-sxm", "--scaler-value", "inf", "--billing", "serverless"],
         "--scaler-value"),
        (["simulate", "--profile", "steady.yaml", "--gpu", "h100-sxm", "--pod-schedule", "1,nan"], "--pod-schedule"),
        (["simulate", "--profile", "steady.yaml", "--gpu", "h100-sxm", "--replicas", "1000000000"], "--replicas"),
        (["compare", "--profile", "steady.yaml", "--gpu", "h100-sxm", "--load-factors", "1,nan"], "--load-factors"),
        (["compare", "--profile", "steady.yaml", "--gpu", "h100-sxm", "--load-factors", "1e12"], "--load-factors"),
    ],
    ids=lambda v: "_".join(v[:1] + v[-2:]) if isinstance(v, list) else v,
)
def test_bad_options(args: list[str], name: str) -> None:
    assert_clean_error(run_cli(*args), name)


def test_nan_calibration_value(tmp_path: Path) -> None:
    data = copy.deepcopy(GPU_BASE)
    # the shipped entries carry no calibration block (the defaults apply): give this one a term
    data.setdefault("calibration", {"gemm_scale": {"value": 1.0, "source": "test", "estimated": True}})
    first = next(iter(data["calibration"]))
    if isinstance(data["calibration"][first], dict):
        data["calibration"][first]["value"] = float("nan")
    else:
        data["calibration"][first] = float("nan")
    path = _write_yaml(tmp_path / "gpu.yaml", data)
    res = run_cli("perf", "--model", "llama-3.1-8b", "--gpu", str(path), "--batch", "8", "--context", "1024")
    assert_clean_error(res, first)


@pytest.mark.parametrize(
    "text, name",
    [("", "profile"), ("- a\n- b\n", "mapping"), ("model: [unclosed\n", "YAML"), ("\tname: x\n", "YAML"),
     ("name: x\nname: y\n" + yaml.safe_dump({k: v for k, v in FULL.items() if k != 'name'}), "name")],
    ids=["empty", "list", "unclosed", "tab", "duplicate-key"],
)
def test_file_shapes(tmp_path: Path, text: str, name: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    assert_clean_error(_simulate(path), name)


def test_a_long_run_says_so_up_front(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two million requests: a note with a time estimate comes before the simulation starts."""
    from planner.errors import PlannerError

    def not_now(*args: Any, **kwargs: Any) -> Any:
        raise PlannerError("stopped before simulating")

    monkeypatch.setattr("planner.sim.simulate", not_now)
    path = _profile_with(tmp_path, traffic__arrivals={"process": "poisson", "rate_per_s": 2000},
                         traffic__horizon_seconds=1000)
    res = _simulate(path)
    assert res.code == 2 and not res.crash
    note, error = res.err.splitlines()
    assert note.startswith("note: ") and "requests to simulate: about" in note and "min" in note
    assert error == "error: stopped before simulating"
