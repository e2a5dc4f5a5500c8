"""Deployable settings for a plan: a `vllm serve` script per pod line, and per serverless line the
Runpod vLLM worker's environment variables and the endpoint's settings in Runpod's own field names.

Pure text rendering from the optimizer's `deploy` entries (resolved engine arguments); the report
writer puts `deploy_files(...)` in the report's deploy/ folder. Every name written is one of
`deploy_names` (vLLM's CLI, the worker's variables, Runpod's endpoint fields), which a test checks.

Sources:
- vLLM engine arguments: https://docs.vllm.ai/en/latest/configuration/engine_args/
  (`--async-scheduling`: the scheduler prepares step n+1 while the GPU runs step n)
- Runpod's vLLM worker turns UPPER_SNAKE variables into `vllm serve` flags:
  runpod-workers/worker-vllm docs/configuration.md (`deploy_names.WORKER_VLLM_SOURCE`)
- Endpoint settings: `deploy_names.RUNPOD_ENDPOINT_SOURCE`; secrets in templates:
  https://docs.runpod.io/pods/templates/secrets (`{{ RUNPOD_SECRET_<name> }}`)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from planner.report.deploy_names import (
    FLASHBOOT_NAME_SUFFIX,
    HF_REPOS,
    QUANTIZED_CHECKPOINTS,
    RUNPOD_GPU_POOLS,
    VLLM_IMAGE,
    VLLM_VERSION,
    WORKER_VLLM_RELEASE,
    is_gated,
    worker_build_command,
)

__all__ = [
    "HF_REPOS", "ServedModel", "served_model", "model_repo", "vllm_serve_command", "serverless_env",
    "endpoint_settings", "deploy_text", "deploy_files", "deploy_problems",
]

_DTYPE = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
HF_TOKEN_SECRET = "{{ RUNPOD_SECRET_HF_TOKEN }}"


def model_repo(model: str) -> str:
    """The repository of a preset at its own precision, else the name as given."""
    return HF_REPOS.get(model.lower(), model)


@dataclass(frozen=True)
class ServedModel:
    """What `vllm serve` loads for a plan: the checkpoint, the flag it needs, and its size.

    `repo` is None when no checkpoint in the planned format is known; `problem` then says what the
    user must supply (a profile's `model.repo`).
    """

    repo: str | None
    quantization_flag: str | None
    gated: bool
    checkpoint_bytes: int | None
    source: str
    problem: str | None = None


def _checkpoint_bytes(model: str, precision: str | None, quantization: str) -> int | None:
    """Size of the weights on disk: the memory model's weight bytes for the checkpoint's format."""
    try:
        from planner.memory.weights import weights_bytes  # noqa: PLC0415
        from planner.inputs.models import get_model  # noqa: PLC0415

        return int(weights_bytes(get_model(model), precision, quantization))
    except Exception:  # noqa: BLE001  (a size is a convenience; a model it cannot read has none)
        return None


def served_model(engine: dict[str, Any]) -> ServedModel:
    """The checkpoint to serve for a plan's engine settings (model, repo, precision, quantization).

    A profile's `model.repo` wins. A preset at its own precision serves its repository; fp8 without
    a published fp8 checkpoint quantizes the 16-bit one as it loads (`--quantization fp8`); AWQ,
    GPTQ and w8a8 need a pre-quantized checkpoint, which vLLM recognises from its config (no flag).
    """
    model = str(engine.get("model") or "")
    repo = engine.get("repo")
    precision, quant = engine.get("precision"), engine.get("quantization") or "none"
    preset = model.lower() if model.lower() in HF_REPOS else None
    dynamic_fp8 = quant == "fp8" or (quant == "none" and precision == "fp8")
    if repo:
        base = preset is not None and repo == HF_REPOS[preset]
        flag = "fp8" if dynamic_fp8 and base else None
        size = _checkpoint_bytes(model, None, "none") if flag else _checkpoint_bytes(model, precision, quant)
        return ServedModel(repo, flag, is_gated(repo), size, "model.repo in the profile")
    if preset is None:
        return ServedModel(None, None, False, None, "", problem=(
            f"model.name {model} is a config.json path, which vLLM cannot download: set model.repo to the "
            "Hugging Face repository (or the local folder) of the checkpoint to serve"))
    known = QUANTIZED_CHECKPOINTS.get((preset, "fp8" if dynamic_fp8 else quant))
    if known is not None:
        return ServedModel(known.repo, None, is_gated(known.repo),
                           _checkpoint_bytes(model, precision, quant), known.source)
    base_repo = HF_REPOS[preset]
    if dynamic_fp8:
        return ServedModel(base_repo, "fp8", is_gated(base_repo), _checkpoint_bytes(model, None, "none"),
                           "the 16-bit checkpoint, quantized to fp8 by vLLM as it loads")
    native = _default_quantization(model)
    if quant in ("none", native) and precision not in ("int8", "int4"):
        return ServedModel(base_repo, None, is_gated(base_repo), _checkpoint_bytes(model, precision, quant),
                           "the preset's repository")
    return ServedModel(None, None, False, None, "", problem=(
        f"no published {quant if quant != 'none' else precision} checkpoint of {preset} is known: set "
        f"model.repo in the profile to a quantized checkpoint (vLLM cannot load "
        f"{base_repo} as {quant if quant != 'none' else precision})"))


def _default_quantization(model: str) -> str:
    try:
        from planner.inputs.models import get_model  # noqa: PLC0415

        return get_model(model).default_quantization
    except Exception:  # noqa: BLE001
        return "none"


def kv_cache_dtype_value(kv_cache_dtype: str | None, precision: str | None, quantization: str) -> tuple[str | None, str | None]:
    """(value for --kv-cache-dtype or None to leave vLLM's 'auto', problem or None).

    vLLM keeps the KV cache in the model's dtype ('auto') or in fp8; a 16-bit request is 'auto'
    (the same two bytes per element the plan counted), fp32 only with fp32 weights.
    """
    kv = kv_cache_dtype or "auto"
    if kv == "auto":
        return None, None
    if kv == "fp8":
        return "fp8", None
    activation = "fp32" if precision == "fp32" and quantization == "none" else "16-bit"
    if kv in ("bf16", "fp16") and activation == "16-bit":
        return None, None
    if kv == "fp32" and activation == "fp32":
        return None, None
    return None, (f"kv_cache_dtype {kv}: vLLM keeps the KV cache in the model's dtype or fp8; use auto or fp8 "
                  f"(or fp32 weights for an fp32 cache)")


def _engine_flags(engine: dict[str, Any], served: ServedModel) -> list[tuple[str, Any]]:
    """(vLLM flag name, value) pairs, only for settings the plan resolved; value None = a switch."""
    flags: list[tuple[str, Any]] = [("tensor-parallel-size", engine.get("tensor_parallel_size", 1))]
    for name in ("max_model_len", "gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens", "block_size"):
        if engine.get(name) is not None:
            flags.append((name.replace("_", "-"), engine[name]))
    quant = engine.get("quantization") or "none"
    if engine.get("precision") in _DTYPE and quant == "none":
        flags.append(("dtype", _DTYPE[engine["precision"]]))
    if served.quantization_flag:
        flags.append(("quantization", served.quantization_flag))
    kv, _ = kv_cache_dtype_value(engine.get("kv_cache_dtype"), engine.get("precision"), quant)
    if kv is not None:
        flags.append(("kv-cache-dtype", kv))
    if engine.get("enable_chunked_prefill") is not None:
        flags.append(("enable-chunked-prefill" if engine["enable_chunked_prefill"] else "no-enable-chunked-prefill", None))
    # The step-time model counts no host time between steps (docs/perf.md): the engine must
    # overlap scheduling with the GPU, which vLLM does with --async-scheduling.
    flags.append(("async-scheduling" if engine.get("async_scheduling", True) else "no-async-scheduling", None))
    return flags


def deploy_problem(entry: dict[str, Any]) -> str | None:
    """Why this plan line gets no deploy file (None when it gets one)."""
    engine = entry.get("engine")
    if engine is None:
        return str(entry.get("engine_note", "engine settings unavailable"))
    served = served_model(engine)
    if served.problem:
        return served.problem
    _, kv_problem = kv_cache_dtype_value(engine.get("kv_cache_dtype"), engine.get("precision"),
                                         engine.get("quantization") or "none")
    return kv_problem


def deploy_problems(entries: list[dict[str, Any]]) -> list[str]:
    """One line per plan line that gets no deploy file, naming it and what to fix."""
    return [f"{_stem(e)}: {p}" for e in entries if (p := deploy_problem(e)) is not None]


ASYNC_SCHEDULING_COMMENT = (
    "# --async-scheduling: the plan's latencies assume the engine overlaps scheduling with the GPU "
    "(no host time between steps); without it steps are slower: see `planner perf --host-overhead-ms`."
)
SYNC_SCHEDULING_COMMENT = (
    "# --no-async-scheduling (serving.async_scheduling: false): the engine's host time between steps is not "
    "in the plan's latencies: see `planner perf --host-overhead-ms`."
)


def _disk_gb(served: ServedModel) -> int | None:
    return None if served.checkpoint_bytes is None else math.ceil(served.checkpoint_bytes / 1e9)


def vllm_serve_command(entry: dict[str, Any]) -> str:
    """`vllm serve ...` for one plan line (a comment line, then the multi-line, shell-ready command)."""
    engine = entry.get("engine") or {}
    served = served_model(engine)
    lines = [f"vllm serve {served.repo or 'MODEL'}"]
    for flag, value in _engine_flags(engine, served):
        lines.append(f"--{flag}" if value is None else f"--{flag} {value}")
    comment = ASYNC_SCHEDULING_COMMENT if engine.get("async_scheduling", True) else SYNC_SCHEDULING_COMMENT
    return comment + "\n" + " \\\n  ".join(lines)


def pod_script(entry: dict[str, Any]) -> str:
    """The whole script for each pod of a plan line: the pinned version, the disk, the token, the command."""
    engine = entry.get("engine") or {}
    served = served_model(engine)
    disk = _disk_gb(served)
    out = [
        "#!/usr/bin/env bash",
        f"# {entry['gpu']} x {entry['tensor_parallel_size']} GPU(s) per pod; run this on each of the "
        f"{entry.get('count', 1)} pod(s) of the plan.",
        f"# vLLM {VLLM_VERSION}, the release the plan's step times describe: run it in the image "
        f"{VLLM_IMAGE} (or pip install vllm=={VLLM_VERSION}).",
    ]
    if disk is not None and served.checkpoint_bytes is not None:
        out.append(f"# Disk: the checkpoint {served.repo} holds {served.checkpoint_bytes / 1e9:,.1f} GB of weights; "
                   f"give the pod at least {disk} GB of volume for them.")
    out.append("set -euo pipefail")
    if served.gated:
        out.append(f': "${{HF_TOKEN:?{served.repo} is gated on Hugging Face: accept its licence on the model page, '
                   'then export HF_TOKEN=<your token>}"')
    out.append(
        "python3 -c 'import sys, vllm; v = vllm.__version__; v == \"" + VLLM_VERSION + "\" or "
        "print(f\"warning: vLLM {v} installed; the plan assumes " + VLLM_VERSION + "\", file=sys.stderr)' || true")
    out.append(vllm_serve_command(entry))
    return "\n".join(out) + "\n"


def serverless_env(entry: dict[str, Any]) -> dict[str, str]:
    """Environment variables of a Runpod vLLM worker for one serverless plan line."""
    engine = entry.get("engine") or {}
    served = served_model(engine)
    sl = entry.get("serverless") or {}
    env = {"MODEL_NAME": served.repo or "MODEL"}
    if served.gated:
        env["HF_TOKEN"] = HF_TOKEN_SECRET
    if sl.get("max_concurrency_per_worker") is not None:
        # The simulation lets a worker take this many requests at once (Runpod's MAX_CONCURRENCY).
        env["MAX_CONCURRENCY"] = str(int(sl["max_concurrency_per_worker"]))
    for flag, value in _engine_flags(engine, served):
        if value is None:
            on = not flag.startswith("no-")
            key, value = flag.removeprefix("no-").replace("-", "_").upper(), str(on).lower()
        else:
            key = flag.replace("-", "_").upper()
        env[key] = str(value)
    return env


def _pool(gpu_id: str) -> str | None:
    try:
        from planner.inputs.catalog import get_gpu  # noqa: PLC0415

        sl = get_gpu(gpu_id).serverless
    except Exception:  # noqa: BLE001  (an unknown GPU has no pool)
        return None
    return None if sl is None else RUNPOD_GPU_POOLS.get(sl.tier)


def endpoint_settings(entry: dict[str, Any], name: str = "planner") -> dict[str, Any]:
    """The serverless endpoint for one plan line, in Runpod's saveEndpoint field names.

    Integers where Runpod takes integers: the idle timeout and the scaler value are rounded up (a
    fractional setting of the profile cannot be given to the endpoint).
    """
    sl = entry.get("serverless") or {}
    scaler = sl.get("scaler", "queue-delay")
    flashboot = bool(sl.get("cached_model"))
    stem = f"{name}-{entry.get('gpu')}-tp{entry.get('tensor_parallel_size', 1)}"
    idle = sl.get("idle_timeout_seconds")
    value = sl.get("scaler_value")
    return {
        "name": stem + (FLASHBOOT_NAME_SUFFIX if flashboot else ""),
        "templateId": "<the id of a template running the worker image with this line's .env>",
        "gpuIds": _pool(str(entry.get("gpu"))) or f"<the pool holding {entry.get('gpu')}>",
        "gpuCount": int(entry.get("tensor_parallel_size", 1)),
        "workersMin": int(sl.get("active_workers", 0)),
        "workersMax": int(sl.get("max_workers", 0)),
        "idleTimeout": None if idle is None else int(math.ceil(idle)),
        "scalerType": "QUEUE_DELAY" if scaler == "queue-delay" else "REQUEST_COUNT",
        "scalerValue": None if value is None else max(1, int(math.ceil(value))),
    }


def _stem(e: dict[str, Any]) -> str:
    # A GPU given as a YAML path (e.g. one `planner calibrate` wrote) is named by its file name:
    # the path itself would put the file outside the deploy folder.
    gpu = str(e["gpu"])
    if gpu.endswith((".yaml", ".yml")):
        gpu = gpu.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return f"{gpu}-tp{e['tensor_parallel_size']}-{e['billing']}"


def deploy_files(entries: list[dict[str, Any]], name: str = "planner") -> dict[str, tuple[str, bool]]:
    """The deploy/ folder: relative file name -> (text, executable). Lines with a problem get no file."""
    files: dict[str, tuple[str, bool]] = {"README.md": (deploy_text(entries, name), False)}
    for e in entries:
        if deploy_problem(e) is not None:
            continue
        if e["billing"] == "pod":
            files[f"{_stem(e)}.sh"] = (pod_script(e), True)
        else:
            env = serverless_env(e)
            files[f"{_stem(e)}.env"] = ("".join(f"{k}={v}\n" for k, v in env.items()), False)
            files[f"{_stem(e)}.endpoint.json"] = (json.dumps(endpoint_settings(e, name), indent=2) + "\n", False)
    return files


def deploy_text(entries: list[dict[str, Any]], name: str = "planner") -> str:
    """One markdown section per plan line: the command or the env vars and endpoint settings."""
    out: list[str] = [
        f"vLLM {VLLM_VERSION} is the release the plan's step times describe; pods run it from "
        f"`{VLLM_IMAGE}`, serverless workers from a Runpod worker-vllm {WORKER_VLLM_RELEASE} image built on it:\n",
        "```bash\n" + worker_build_command() + "\n```\n",
    ]
    for e in entries:
        title = f"{e['gpu']} (tensor_parallel_size {e['tensor_parallel_size']}), {e['billing']}"
        out.append(f"### {title}\n")
        problem = deploy_problem(e)
        if problem is not None:
            out.append(f"_No deploy file: {problem}._\n")
            continue
        served = served_model(e.get("engine") or {})
        disk = _disk_gb(served)
        facts = [f"checkpoint `{served.repo}` ({served.source})"]
        if disk is not None and served.checkpoint_bytes is not None:
            facts.append(f"{served.checkpoint_bytes / 1e9:,.1f} GB of weights: give each "
                         f"{'pod' if e['billing'] == 'pod' else 'worker'} at least {disk} GB of disk for them")
        if served.gated:
            facts.append("the repository is gated on Hugging Face: accept its licence and provide HF_TOKEN"
                         + (" (a Runpod secret named HF_TOKEN)" if e["billing"] != "pod" else ""))
        out.append("".join(f"- {f}\n" for f in facts))
        if e["billing"] == "pod":
            out.append(f"Run on each of the {e['count']} pod(s) ({e['tensor_parallel_size']} GPU(s) each), "
                       f"`{_stem(e)}.sh`:\n")
            out.append("```bash\n" + vllm_serve_command(e) + "\n```\n")
        else:
            sl = e.get("serverless") or {}
            out.append(f"Worker environment variables (Runpod vLLM worker), `{_stem(e)}.env`:\n")
            out.append("```bash\n" + "\n".join(f"{k}={v}" for k, v in serverless_env(e).items()) + "\n```\n")
            out.append(f"Endpoint (Runpod's saveEndpoint fields), `{_stem(e)}.endpoint.json`; FlashBoot "
                       f"{'on' if sl.get('cached_model') else 'off'}, as simulated "
                       f"(billing.serverless.cold_start.cached_model):\n")
            out.append("```json\n" + json.dumps(endpoint_settings(e, name), indent=2) + "\n```\n")
    return "\n".join(out)
