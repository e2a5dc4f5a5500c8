"""Every name a deploy file writes is one vLLM, Runpod's vLLM worker or Runpod's endpoint accepts.

The accepted names are data (planner/report/deploy_names.py, with their sources and versions); these
tests render the deploy files of the README's example plan and of AWQ, fp8, w8a8, TP 2 and
serverless plans, and check every flag, value, variable and field against them. A generated
`vllm serve` line must parse with an argument parser built from vLLM's argument names.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from planner.report import deploy
from planner.report.deploy_names import (
    RUNPOD_ENDPOINT_FIELDS,
    RUNPOD_GPU_POOLS,
    RUNPOD_SCALER_TYPES,
    VLLM_BOOL_FLAGS,
    VLLM_VALUE_FLAGS,
    VLLM_VERSION,
    WORKER_BOOL_VALUES,
    vllm_flag_accepts,
    worker_env_accepts,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PLAN = ROOT / "reports" / "example" / "plan.json"

_ENGINE = {"gpu_memory_utilization": 0.9, "max_model_len": 8192, "max_num_seqs": 256,
           "max_num_batched_tokens": 8192, "block_size": 16, "enable_chunked_prefill": True}
_SERVERLESS = {"active_workers": 1, "max_workers": 3, "idle_timeout_seconds": 5, "scaler": "queue-delay",
               "scaler_value": 4, "max_concurrency_per_worker": 30, "cached_model": False}


def _entry(gpu: str, tp: int, billing: str, model: str = "llama-3.1-8b", *, precision: str | None = "bf16",
           quantization: str = "none", kv_cache_dtype: str = "auto", repo: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "gpu": gpu, "tensor_parallel_size": tp, "billing": billing, "count": 2,
        "engine": {**_ENGINE, "tensor_parallel_size": tp, "model": model, "repo": repo, "precision": precision,
                   "quantization": quantization, "kv_cache_dtype": kv_cache_dtype},
    }
    if billing == "serverless":
        entry["serverless"] = dict(_SERVERLESS)
    return entry


def _example_entries() -> list[dict[str, Any]]:
    """The committed example report's plan (the README's quick start), as pod and as serverless."""
    entries = json.loads(EXAMPLE_PLAN.read_text())["deploy"]
    assert entries, "the example plan has deploy entries"
    as_serverless = [{**e, "billing": "serverless", "serverless": dict(_SERVERLESS)} for e in entries]
    return entries + as_serverless


PLANS = {
    "readme-example": _example_entries(),
    "awq": [_entry("h100-sxm", 1, "pod", "llama-3.1-70b", precision=None, quantization="awq"),
            _entry("l40s", 2, "serverless", "llama-3.1-70b", precision=None, quantization="awq")],
    "gptq": [_entry("a100-80gb-sxm", 1, "pod", "qwen2.5-72b", precision=None, quantization="gptq")],
    "fp8": [_entry("h100-sxm", 1, "pod", quantization="fp8", precision=None, kv_cache_dtype="fp8"),
            _entry("l40s", 1, "serverless", "qwen3-8b", quantization="fp8", precision=None)],
    "w8a8": [_entry("a100-80gb-sxm", 1, "pod", quantization="w8a8", precision=None),
             _entry("l4", 1, "serverless", quantization="w8a8", precision=None)],
    "tp2": [_entry("h100-sxm", 2, "pod", "llama-3.1-70b"), _entry("h100-sxm", 2, "serverless", "llama-3.1-70b")],
    "serverless": [_entry("l40s", 1, "serverless"), _entry("rtx-4090", 1, "serverless", kv_cache_dtype="bf16"),
                   _entry("h200", 1, "serverless", "qwen3-8b", precision=None)],
}


def _vllm_parser() -> argparse.ArgumentParser:
    """An argument parser with vLLM's names (deploy_names), so a line that parses uses only them."""
    parser = argparse.ArgumentParser(prog="vllm serve", exit_on_error=False, add_help=False)
    parser.add_argument("model_tag")
    for flag, choices in VLLM_VALUE_FLAGS.items():
        parser.add_argument(flag, choices=list(choices) if choices else None)
    for flag in VLLM_BOOL_FLAGS:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction)
    return parser


def _serve_argv(script: str) -> list[str]:
    """The arguments after `vllm serve` in a script (continuation lines joined, comments dropped)."""
    text = script.replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("vllm serve "))
    return shlex.split(line)[2:]


def _check_flags(argv: list[str]) -> None:
    i = 0
    while i < len(argv):
        flag = argv[i]
        if i == 0 and not flag.startswith("--"):
            i += 1
            continue
        assert flag.startswith("--"), f"stray value {flag!r}"
        takes_value = flag in VLLM_VALUE_FLAGS
        value = argv[i + 1] if takes_value else None
        assert vllm_flag_accepts(flag, value), f"vLLM {VLLM_VERSION} does not accept {flag} {value or ''}"
        i += 2 if takes_value else 1


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_every_deploy_file_uses_names_vllm_and_runpod_accept(plan: str) -> None:
    entries = PLANS[plan]
    files = deploy.deploy_files(entries, name="test")
    assert deploy.deploy_problems(entries) == []
    assert {n for n in files if n != "README.md"}, "every line got its files"
    parser = _vllm_parser()
    for name, (text, executable) in files.items():
        if name.endswith(".sh"):
            assert executable and text.startswith("#!/usr/bin/env bash")
            assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
            argv = _serve_argv(text)
            _check_flags(argv)
            args = parser.parse_args(argv)  # raises on a name or value vLLM does not have
            assert args.async_scheduling is True
            assert "/" in args.model_tag and not args.model_tag.endswith(".json")
        elif name.endswith(".env"):
            env = dict(line.split("=", 1) for line in text.splitlines())
            for key, value in env.items():
                assert worker_env_accepts(key), f"worker-vllm does not read {key}"
                flag = "--" + key.lower().replace("_", "-")
                if flag in VLLM_BOOL_FLAGS:
                    assert value in WORKER_BOOL_VALUES
                elif flag in VLLM_VALUE_FLAGS and key != "MODEL_NAME":
                    assert vllm_flag_accepts(flag, value), f"{key}={value}"
            assert env["ASYNC_SCHEDULING"] == "true" and env["MAX_CONCURRENCY"] == "30"
            assert "/" in env["MODEL_NAME"] and not env["MODEL_NAME"].endswith(".json")
        elif name.endswith(".endpoint.json"):
            ep = json.loads(text)
            assert set(ep) <= set(RUNPOD_ENDPOINT_FIELDS)
            assert ep["scalerType"] in RUNPOD_SCALER_TYPES
            assert ep["gpuIds"] in RUNPOD_GPU_POOLS.values()
            assert all(isinstance(ep[k], int) for k in ("gpuCount", "workersMin", "workersMax", "idleTimeout", "scalerValue"))


def test_quantized_plans_serve_a_quantized_checkpoint_with_the_right_flag() -> None:
    awq = deploy.served_model(PLANS["awq"][0]["engine"])
    assert awq.repo is not None and "AWQ" in awq.repo and awq.quantization_flag is None
    w8a8 = deploy.served_model(PLANS["w8a8"][0]["engine"])
    assert w8a8.repo is not None and "w8a8" in w8a8.repo and w8a8.quantization_flag is None  # compressed-tensors
    fp8 = deploy.served_model(PLANS["fp8"][0]["engine"])  # no fp8 checkpoint known: vLLM quantizes on load
    assert fp8.repo == "meta-llama/Llama-3.1-8B-Instruct" and fp8.quantization_flag == "fp8"
    assert deploy.served_model(PLANS["fp8"][1]["engine"]).repo == "Qwen/Qwen3-8B-FP8"
    script = deploy.pod_script(PLANS["awq"][0])
    assert "--quantization" not in script and "hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4" in script


def test_async_scheduling_follows_the_plan_and_stays_a_vllm_flag() -> None:
    on = _entry("h100-sxm", 1, "pod")
    off = _entry("h100-sxm", 1, "pod")
    off["engine"]["async_scheduling"] = False
    parser = _vllm_parser()
    assert parser.parse_args(_serve_argv(deploy.pod_script(on))).async_scheduling is True
    script = deploy.pod_script(off)
    assert parser.parse_args(_serve_argv(script)).async_scheduling is False  # vLLM's --no- form
    assert "# --no-async-scheduling" in script  # the comment says what the plan does not count
    off["billing"], off["serverless"] = "serverless", dict(_SERVERLESS)
    assert deploy.serverless_env(off)["ASYNC_SCHEDULING"] == "false"


def test_kv_cache_dtype_is_written_in_vllms_values() -> None:
    bf16 = deploy.serverless_env(PLANS["serverless"][1])
    assert "KV_CACHE_DTYPE" not in bf16  # bf16 = vLLM's auto for a bf16 model (the same 2 bytes)
    assert "--kv-cache-dtype fp8" in deploy.pod_script(PLANS["fp8"][0])
    problem = deploy.deploy_problem(_entry("h100-sxm", 1, "pod", kv_cache_dtype="fp32"))
    assert problem is not None and "kv_cache_dtype fp32" in problem


def test_a_quantization_without_a_checkpoint_stops_with_what_to_supply() -> None:
    e = _entry("h100-sxm", 1, "pod", "mistral-7b", precision=None, quantization="awq")
    problem = deploy.deploy_problem(e)
    assert problem is not None and "model.repo" in problem
    files = deploy.deploy_files([e])
    assert list(files) == ["README.md"] and "model.repo" in files["README.md"][0]
    supplied = _entry("h100-sxm", 1, "pod", "mistral-7b", precision=None, quantization="awq", repo="me/mistral-awq")
    assert deploy.deploy_problem(supplied) is None and "vllm serve me/mistral-awq" in deploy.pod_script(supplied)


def test_a_config_json_model_needs_a_repo_never_a_file_path(tmp_path: Path) -> None:
    e = _entry("l40s", 1, "serverless", str(tmp_path / "config.json"))
    problem = deploy.deploy_problem(e)
    assert problem is not None and "model.repo" in problem and "config.json" in problem
    e["engine"]["repo"] = "acme/our-model"
    assert deploy.serverless_env(e)["MODEL_NAME"] == "acme/our-model"


def test_gated_models_ask_for_hf_token_and_pods_pin_vllm_and_disk() -> None:
    pod = deploy.pod_script(PLANS["tp2"][0])
    assert "HF_TOKEN:?" in pod and f"vllm/vllm-openai:v{VLLM_VERSION}" in pod
    assert "at least 142 GB" in pod  # Llama-3.1-70B at bf16: 141.1 GB of weights
    env = deploy.serverless_env(PLANS["tp2"][1])
    assert env["HF_TOKEN"] == deploy.HF_TOKEN_SECRET
    assert "HF_TOKEN" not in deploy.serverless_env(PLANS["serverless"][2])  # Qwen is not gated


def test_endpoint_uses_pool_ids_for_tiers_and_flashboot_as_simulated() -> None:
    e = PLANS["serverless"][0]
    ep = deploy.endpoint_settings(e, "chat")
    assert ep["gpuIds"] == "ADA_48_PRO"  # l40s: the 48 GB PRO tier
    assert (ep["workersMin"], ep["workersMax"], ep["idleTimeout"], ep["scalerType"], ep["scalerValue"]) == (
        1, 3, 5, "QUEUE_DELAY", 4)
    assert not ep["name"].endswith("-fb")
    cached = {**e, "serverless": {**e["serverless"], "cached_model": True}}
    assert deploy.endpoint_settings(cached, "chat")["name"].endswith("-fb")
    assert deploy.endpoint_settings(PLANS["serverless"][1])["gpuIds"] == "ADA_24"  # 4090: 24 GB PRO


def test_every_catalog_serverless_tier_has_a_runpod_pool() -> None:
    from planner.inputs.catalog import load_catalog

    tiers = {g.serverless.tier for g in load_catalog().values() if g.serverless is not None}
    assert tiers and tiers <= set(RUNPOD_GPU_POOLS), f"no pool id for {tiers - set(RUNPOD_GPU_POOLS)}"
