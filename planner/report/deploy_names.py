"""The names the deploy files may use, as data: vLLM's CLI flags and values, Runpod's vLLM worker
environment variables, Runpod's endpoint fields and GPU pools, and the checkpoints behind presets.

Each list is written by hand from the source it names (nothing here is imported from those
projects); a test checks every flag, value, variable and field the deploy files write against
these lists, and parses a generated `vllm serve` line with an argument parser built from them.
When vLLM or the worker moves, update the version constants and the lists together.
"""

from __future__ import annotations

from dataclasses import dataclass

# ------------------------------------------------------------------------------ versions
VLLM_VERSION = "0.24.0"
"""The vLLM release the step-time model's kernel timings describe, and so the one to deploy.

The one place to change it when the timings move to another release; the deploy files pin the
image below and warn when the installed vLLM differs.
"""

VLLM_IMAGE = f"vllm/vllm-openai:v{VLLM_VERSION}"
"""vLLM's official OpenAI-compatible server image (https://hub.docker.com/r/vllm/vllm-openai)."""

WORKER_VLLM_RELEASE = "v2.25.2"
"""The runpod-workers/worker-vllm release whose settings the serverless files follow (2026-08-20).

Its image is built `FROM vllm/vllm-openai:${VLLM_VERSION}` (its Dockerfile's build argument, default
v0.27.1 at this release), so pinning our vLLM is one build argument; see `worker_build_command`.
"""

WORKER_VLLM_SOURCE = (
    "https://github.com/runpod-workers/worker-vllm/blob/v2.25.2/docs/configuration.md "
    "(README 'Configuration', src/args_builder.py allowlists; release v2.25.2, vLLM 0.27.1 by default)"
)


def worker_build_command(image_tag: str = "<your-registry>/worker-vllm:vllm-" + VLLM_VERSION) -> str:
    """The docker build line for a worker-vllm image running the pinned vLLM."""
    return (f"git clone --branch {WORKER_VLLM_RELEASE} https://github.com/runpod-workers/worker-vllm && "
            f"docker build -t {image_tag} --build-arg VLLM_VERSION=v{VLLM_VERSION} worker-vllm")


# ------------------------------------------------------------------------ vLLM's CLI
VLLM_SOURCE = (
    f"vLLM v{VLLM_VERSION}: vllm/engine/arg_utils.py (EngineArgs.add_cli_args: flag names are the "
    "EngineArgs fields with '-' for '_'; booleans are argparse BooleanOptionalAction, --flag / "
    "--no-flag), vllm/config/model.py (ModelDType), vllm/config/cache.py (CacheDType, BlockSize), "
    "vllm/model_executor/layers/quantization/__init__.py (QuantizationMethods); "
    "https://docs.vllm.ai/en/latest/configuration/engine_args/"
)

VLLM_VALUE_FLAGS: dict[str, tuple[str, ...] | None] = {
    # flag -> the values it accepts (None: any value of its type). Only flags the deploy files may
    # write are listed, each with the choices of its Literal type in vLLM.
    "--model": None,
    "--tensor-parallel-size": None,
    "--max-model-len": None,
    "--gpu-memory-utilization": None,
    "--max-num-seqs": None,
    "--max-num-batched-tokens": None,
    "--block-size": ("1", "8", "16", "32", "64", "128"),
    "--dtype": ("auto", "half", "float16", "bfloat16", "float", "float32"),
    # KV cache dtypes every release since the bfloat16 entry accepts; later ones add more.
    "--kv-cache-dtype": ("auto", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2"),
    # The quantization methods planner may name (all in QuantizationMethods). Pre-quantized
    # checkpoints (AWQ, GPTQ, compressed-tensors w8a8) need no flag: vLLM reads their config.
    "--quantization": ("awq", "awq_marlin", "gptq", "gptq_marlin", "fp8", "compressed-tensors", "mxfp4"),
    "--host": None,
    "--port": None,
    "--served-model-name": None,
}

VLLM_BOOL_FLAGS: tuple[str, ...] = (
    # BooleanOptionalAction flags: each also has a --no-<name> form; none takes a value.
    "--enable-chunked-prefill",
    "--async-scheduling",
    "--enable-prefix-caching",
    "--trust-remote-code",
)


def vllm_flag_accepts(flag: str, value: str | None) -> bool:
    """Whether vLLM's CLI takes `flag` (with `value`, None for a boolean flag)."""
    if value is None:
        name = "--" + flag[len("--no-"):] if flag.startswith("--no-") else flag
        return name in VLLM_BOOL_FLAGS
    if flag not in VLLM_VALUE_FLAGS:
        return False
    choices = VLLM_VALUE_FLAGS[flag]
    return choices is None or value in choices


# ---------------------------------------------------------------- Runpod's vLLM worker
WORKER_WRAPPER_ENV: dict[str, str] = {
    # Variables the worker itself reads (docs/configuration.md, "Wrapper-level environment
    # variables" and "Aliases").
    "MODEL_NAME": "HF repo id or local path of the model (alias of --model)",
    "HF_TOKEN": "Hugging Face token for gated or private models",
    "MAX_CONCURRENCY": "max concurrent jobs per worker (RunPod concurrency modifier), default 30",
    "BASE_PATH": "root of the Hugging Face cache, default /runpod-volume",
}


def worker_env_accepts(name: str) -> bool:
    """Whether the worker takes variable `name`: a wrapper variable, or the UPPER_SNAKE form of
    a `vllm serve` flag on its allowlist (which holds every flag listed above but --model,
    --host and --port, the ones the wrapper reserves)."""
    if name in WORKER_WRAPPER_ENV:
        return True
    flag = "--" + name.lower().replace("_", "-")
    reserved = {"--model", "--host", "--port"}
    return flag not in reserved and (flag in VLLM_VALUE_FLAGS or flag in VLLM_BOOL_FLAGS)


WORKER_BOOL_VALUES = ("true", "false")
"""Boolean variables take true/false; the worker emits --flag or --no-flag."""


# ------------------------------------------------------------------ Runpod's endpoint
RUNPOD_ENDPOINT_SOURCE = (
    "https://docs.runpod.io/sdks/graphql/manage-endpoints (saveEndpoint input: gpuIds, gpuCount, "
    "idleTimeout, locations, name, networkVolumeId, scalerType, scalerValue, templateId, workersMax, "
    "workersMin; 'append -fb to your endpoint's name to enable FlashBoot'); worker-vllm's own Hub "
    "listing uses the same gpuIds/gpuCount (.runpod/hub.json at v2.25.2); defaults: "
    "https://docs.runpod.io/serverless/endpoints/endpoint-configurations"
)

RUNPOD_ENDPOINT_FIELDS: dict[str, str] = {
    "name": "endpoint name; a '-fb' suffix turns FlashBoot on",
    "templateId": "the template (image + environment variables) the workers run",
    "gpuIds": "GPU pool ids, comma-separated, in priority order",
    "gpuCount": "GPUs per worker",
    "workersMin": "always-on (active) workers",
    "workersMax": "most workers, active included",
    "idleTimeout": "seconds an idle worker stays up (integer)",
    "scalerType": "QUEUE_DELAY or REQUEST_COUNT",
    "scalerValue": "queue delay in seconds, or requests per worker (integer)",
    "locations": "data-centre regions, empty for any",
    "networkVolumeId": "a network volume to mount",
}
RUNPOD_SCALER_TYPES = ("QUEUE_DELAY", "REQUEST_COUNT")
FLASHBOOT_NAME_SUFFIX = "-fb"

RUNPOD_POOLS_SOURCE = (
    "runpod/runpod-python, GpuGroup enum (pool id -> the GPUs in it), and Runpod's serverless "
    "pricing table for the tiers (https://docs.runpod.io/serverless/pricing)"
)
RUNPOD_GPU_POOLS: dict[str, str] = {
    # The catalog's serverless tier (gpu_catalog/*.yaml `serverless.tier`) -> Runpod's pool id.
    "16 GB": "AMPERE_16",      # RTX A4000, A4500, RTX 4000 Ada, RTX 2000 Ada
    "24 GB": "AMPERE_24",      # RTX A5000, L4, RTX 3090
    "24 GB PRO": "ADA_24",     # RTX 4090
    "32 GB PRO": "ADA_32_PRO", # RTX 5090
    "48 GB": "AMPERE_48",      # A40, RTX A6000
    "48 GB PRO": "ADA_48_PRO", # RTX 6000 Ada, L40, L40S
    "80 GB": "AMPERE_80",      # A100 80GB PCIe, A100-SXM4-80GB
    "80 GB PRO": "ADA_80_PRO", # H100 PCIe, H100 80GB HBM3, H100 NVL
    "141 GB": "HOPPER_141",    # H200
    "96 GB": "BLACKWELL_96",   # RTX PRO 6000 Blackwell (newer SDK releases' GpuGroup)
    "180 GB": "BLACKWELL_180", # B200 (newer SDK releases' GpuGroup)
}


# --------------------------------------------------------- checkpoints of the presets
HF_SOURCE = "the model's page on https://huggingface.co/<repo> (gated repositories ask users to accept a licence)"

HF_REPOS: dict[str, str] = {
    # Preset -> the Hugging Face repository served at the preset's own precision. Chat services
    # usually serve the -Instruct variant, which shares the base model's architecture.
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
    "qwen3-235b-a22b": "Qwen/Qwen3-235B-A22B",
    "gemma-2-9b": "google/gemma-2-9b-it",
    "gemma-2-27b": "google/gemma-2-27b-it",
    "deepseek-v3": "deepseek-ai/DeepSeek-V3",
    "gpt-oss-20b": "openai/gpt-oss-20b",
    "gpt-oss-120b": "openai/gpt-oss-120b",
}

GATED_ORGS = ("meta-llama/", "google/", "mistralai/")
"""Organisations whose repositories are gated on Hugging Face (Llama, Gemma and Mistral licences
must be accepted on the model page); quantized copies of them carry the same licence and are
treated as gated too, so HF_TOKEN is asked for."""

GATED_DERIVATIVES = ("hugging-quants/Meta-Llama", "RedHatAI/Meta-Llama")


def is_gated(repo: str) -> bool:
    """Whether `repo` needs an HF_TOKEN (see GATED_ORGS)."""
    return repo.startswith(GATED_ORGS) or repo.startswith(GATED_DERIVATIVES)


@dataclass(frozen=True)
class Checkpoint:
    """A pre-quantized checkpoint of a preset: its repository and the page that documents it."""

    repo: str
    source: str


def _hf(repo: str) -> Checkpoint:
    return Checkpoint(repo, f"https://huggingface.co/{repo}")


QUANTIZED_CHECKPOINTS: dict[tuple[str, str], Checkpoint] = {
    # (preset, quantization) -> a published checkpoint in that format. AWQ/GPTQ: 4-bit weights,
    # group 128; w8a8: int8 weights and activations in compressed-tensors format.
    ("llama-3.1-8b", "awq"): _hf("hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4"),
    ("llama-3.1-8b", "gptq"): _hf("hugging-quants/Meta-Llama-3.1-8B-Instruct-GPTQ-INT4"),
    ("llama-3.1-8b", "w8a8"): _hf("RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w8a8"),
    ("llama-3.1-70b", "awq"): _hf("hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4"),
    ("llama-3.1-70b", "gptq"): _hf("hugging-quants/Meta-Llama-3.1-70B-Instruct-GPTQ-INT4"),
    ("llama-3.1-70b", "w8a8"): _hf("RedHatAI/Meta-Llama-3.1-70B-Instruct-quantized.w8a8"),
    ("llama-3.1-405b", "awq"): _hf("hugging-quants/Meta-Llama-3.1-405B-Instruct-AWQ-INT4"),
    ("qwen2.5-7b", "awq"): _hf("Qwen/Qwen2.5-7B-Instruct-AWQ"),
    ("qwen2.5-7b", "gptq"): _hf("Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4"),
    ("qwen2.5-14b", "awq"): _hf("Qwen/Qwen2.5-14B-Instruct-AWQ"),
    ("qwen2.5-14b", "gptq"): _hf("Qwen/Qwen2.5-14B-Instruct-GPTQ-Int4"),
    ("qwen2.5-32b", "awq"): _hf("Qwen/Qwen2.5-32B-Instruct-AWQ"),
    ("qwen2.5-32b", "gptq"): _hf("Qwen/Qwen2.5-32B-Instruct-GPTQ-Int4"),
    ("qwen2.5-72b", "awq"): _hf("Qwen/Qwen2.5-72B-Instruct-AWQ"),
    ("qwen2.5-72b", "gptq"): _hf("Qwen/Qwen2.5-72B-Instruct-GPTQ-Int4"),
    ("qwen3-8b", "awq"): _hf("Qwen/Qwen3-8B-AWQ"),
    ("qwen3-8b", "fp8"): _hf("Qwen/Qwen3-8B-FP8"),
    ("qwen3-32b", "awq"): _hf("Qwen/Qwen3-32B-AWQ"),
    ("qwen3-32b", "fp8"): _hf("Qwen/Qwen3-32B-FP8"),
}
