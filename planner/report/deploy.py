"""Deployable settings for a plan: a `vllm serve` command line and a serverless endpoint's env vars.

Pure text rendering from the optimizer's `deploy` entries (resolved engine arguments); the writer
in `optimize_report` puts them in files.

Sources:
- vLLM engine arguments (flag names): https://docs.vllm.ai/en/latest/configuration/engine_args/
  (`--async-scheduling`: the scheduler prepares step n+1 while the GPU runs step n)
- Runpod's vLLM worker reads the same settings as upper-case environment variables
  (MODEL_NAME, MAX_MODEL_LEN, GPU_MEMORY_UTILIZATION, TENSOR_PARALLEL_SIZE, ...):
  https://docs.runpod.io/serverless/vllm/environment-variables and
  https://docs.runpod.io/serverless/vllm/configuration ("convert flag names to uppercase with
  underscores"). Endpoint settings (active/max workers, idle timeout, scaler) are set on the
  endpoint, not in the container: https://docs.runpod.io/serverless/endpoints/endpoint-configurations
"""

from __future__ import annotations

from typing import Any

# Hugging Face repositories of the presets, for MODEL_NAME / `vllm serve <repo>`. Chat services
# usually serve the -Instruct variant, which shares the base model's architecture.
HF_REPOS = {
    "llama-3.1-8b": "meta-llama/Llama-3.1-8B-Instruct",
    "llama-3.1-70b": "meta-llama/Llama-3.1-70B-Instruct",
    "llama-3.1-405b": "meta-llama/Llama-3.1-405B-Instruct",
    "llama-3.2-1b": "meta-llama/Llama-3.2-1B-Instruct",
    "llama-3.2-3b": "meta-llama/Llama-3.2-3B-Instruct",
    "mistral-7b": "mistralai/Mistral-7B-Instruct-v0.3",
    "mixtral-8x7b": "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "qwen2.5-7b": "Qwen/Qwen2.5-7B-Instruct",
    "qwen2.5-14b": "Qwen/Qwen2.5-14B-Instruct",
    "qwen2.5-32b": "Qwen/Qwen2.5-32B-Instruct",
    "qwen2.5-72b": "Qwen/Qwen2.5-72B-Instruct",
    "qwen3-8b": "Qwen/Qwen3-8B",
    "qwen3-32b": "Qwen/Qwen3-32B",
    "qwen3-30b-a3b": "Qwen/Qwen3-30B-A3B",
    "gemma-2-9b": "google/gemma-2-9b-it",
    "gemma-2-27b": "google/gemma-2-27b-it",
}

_DTYPE = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def model_repo(model: str) -> str:
    """The repository to serve: a preset's Hugging Face repo, else the name as given."""
    return HF_REPOS.get(model.lower(), model)


def _engine_flags(engine: dict[str, Any]) -> list[tuple[str, Any]]:
    """(vLLM flag name, value) pairs, only for settings the plan resolved."""
    flags: list[tuple[str, Any]] = [("tensor-parallel-size", engine.get("tensor_parallel_size", 1))]
    for name in ("max_model_len", "gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens", "block_size"):
        if engine.get(name) is not None:
            flags.append((name.replace("_", "-"), engine[name]))
    if engine.get("precision") in _DTYPE and engine.get("quantization", "none") == "none":
        flags.append(("dtype", _DTYPE[engine["precision"]]))
    if engine.get("quantization") not in (None, "none"):
        flags.append(("quantization", engine["quantization"]))
    if engine.get("kv_cache_dtype") not in (None, "auto"):
        flags.append(("kv-cache-dtype", engine["kv_cache_dtype"]))
    if engine.get("enable_chunked_prefill") is not None:
        flags.append(("enable-chunked-prefill" if engine["enable_chunked_prefill"] else "no-enable-chunked-prefill", None))
    return flags


# The step-time model counts no host time between steps (host_overhead_s = 0, docs/perf.md): the
# engine must overlap scheduling with the GPU, which vLLM does with --async-scheduling.
ASYNC_SCHEDULING_COMMENT = (
    "# --async-scheduling: the plan's latencies assume the engine overlaps scheduling with the GPU "
    "(no host time between steps); without it steps are slower: see `planner perf --host-overhead-ms`."
)


def vllm_serve_command(entry: dict[str, Any]) -> str:
    """`vllm serve ...` for one plan line (a comment line, then the multi-line, shell-ready command)."""
    engine = entry.get("engine") or {}
    lines = [f"vllm serve {model_repo(str(engine.get('model', 'MODEL')))}"]
    for flag, value in _engine_flags(engine):
        lines.append(f"--{flag}" if value is None else f"--{flag} {value}")
    lines.append("--async-scheduling")
    return ASYNC_SCHEDULING_COMMENT + "\n" + " \\\n  ".join(lines)


def serverless_env(entry: dict[str, Any]) -> dict[str, str]:
    """Environment variables of a Runpod vLLM worker for one serverless plan line."""
    engine = entry.get("engine") or {}
    env = {"MODEL_NAME": model_repo(str(engine.get("model", "MODEL")))}
    for flag, value in _engine_flags(engine):
        key = flag.replace("-", "_").upper()
        if value is None:
            key, value = "ENABLE_CHUNKED_PREFILL", str(flag == "enable-chunked-prefill").lower()
        env[key] = str(value)
    return env


def endpoint_settings(entry: dict[str, Any]) -> dict[str, Any]:
    """The serverless endpoint's worker, idle-timeout and scaler settings for one plan line."""
    sl = entry.get("serverless") or {}
    scaler = sl.get("scaler", "queue-delay")
    return {
        "gpu": entry.get("gpu"),
        "gpus_per_worker": entry.get("tensor_parallel_size", 1),
        "active_workers": sl.get("active_workers", 0),
        "max_workers": sl.get("max_workers", 0),
        "idle_timeout_seconds": sl.get("idle_timeout_seconds"),
        "scaler_type": "QUEUE_DELAY" if scaler == "queue-delay" else "REQUEST_COUNT",
        "scaler_value": sl.get("scaler_value"),
    }


def deploy_text(entries: list[dict[str, Any]]) -> str:
    """One markdown section per plan line: the command or the env vars and endpoint settings."""
    out: list[str] = []
    for e in entries:
        title = f"{e['gpu']} (tensor_parallel_size {e['tensor_parallel_size']}), {e['billing']}"
        out.append(f"### {title}\n")
        if e.get("engine") is None:
            out.append(f"_{e.get('engine_note', 'engine settings unavailable')}_\n")
            continue
        if e["billing"] == "pod":
            out.append(f"Run on each of the {e['count']} pod(s) ({e['tensor_parallel_size']} GPU(s) each):\n")
            out.append("```bash\n" + vllm_serve_command(e) + "\n```\n")
        else:
            out.append("Worker environment variables (Runpod vLLM worker):\n")
            out.append("```bash\n" + "\n".join(f"{k}={v}" for k, v in serverless_env(e).items()) + "\n```\n")
            out.append("Endpoint settings:\n")
            out.append("```\n" + "\n".join(f"{k}: {v}" for k, v in endpoint_settings(e).items()) + "\n```\n")
    return "\n".join(out)
