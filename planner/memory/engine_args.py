"""vLLM's engine settings of one replica (`EngineArgs`) and the defaults vLLM picks per GPU."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from planner.errors import PlannerError
from planner.inputs.catalog import GpuSpec
from planner.inputs.models import ModelSpec
from planner.memory.weights import check_positive
from planner.units import GIB

# --- vLLM engine defaults -------------------------------------------------------------------
# vllm/engine/arg_utils.py EngineArgs.get_batch_defaults (V1; vLLM v0.10-v0.11, also the
# `test_defaults_with_usage_context` test): GPUs with >= 70 GiB that are not A100s get
# max_num_batched_tokens 8192 (`vllm serve`) / 16384 (the LLM class) and max_num_seqs 1024;
# all others 2048 / 8192 and 256. (Newer vLLM adds a middle tier for 40-70 GiB cards, 4096 / 12288
# and 512 seqs, in HardwareSchedulingDefaults; pass max_num_seqs/max_num_batched_tokens to match.)
# gpu_memory_utilization 0.9 and block_size 16 are vLLM's documented defaults (EngineArgs).
VLLM_DEFAULTS_SOURCE = (
    "vllm-project/vllm vllm/engine/arg_utils.py EngineArgs.get_batch_defaults (V1 defaults, "
    "v0.10-v0.11): >=70 GiB and not A100: 8192 tokens (api server) / 16384 (LLM class), 1024 seqs; "
    "else 2048 / 8192 tokens, 256 seqs; gpu_memory_utilization 0.9, block_size 16"
)
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
DEFAULT_BLOCK_SIZE = 16
UsageContext = Literal["api_server", "llm_class"]

# ---------------------------------------------------------------------------------------------
# Engine settings
# ---------------------------------------------------------------------------------------------


class EngineArgs(BaseModel):
    """Resolved serving settings of one vLLM-like engine replica (vLLM's names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu_memory_utilization: float = Field(DEFAULT_GPU_MEMORY_UTILIZATION, gt=0, le=1)
    max_model_len: int = Field(gt=0, description="tokens, prompt + output, per request")
    max_num_seqs: int = Field(gt=0, description="running sequences per step")
    max_num_batched_tokens: int = Field(gt=0, description="tokens per engine step")
    block_size: int = Field(DEFAULT_BLOCK_SIZE, gt=0, description="tokens per KV block")
    enable_chunked_prefill: bool = True
    async_scheduling: bool = Field(True, description="plan a step while the one before it runs (vLLM --async-scheduling)")


def vllm_batch_defaults(gpu: GpuSpec, usage_context: UsageContext = "api_server") -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) vLLM picks for this GPU when the user gives neither.

    See VLLM_DEFAULTS_SOURCE: >= 70 GiB of device memory and not an A100 gets the large defaults.
    """
    large = gpu.memory_bytes_usable >= 70 * GIB and "a100" not in (gpu.id + gpu.name).lower()
    if large:
        return (8192 if usage_context == "api_server" else 16384), 1024
    return (2048 if usage_context == "api_server" else 8192), 256


def default_engine_args(
    gpu: GpuSpec,
    max_model_len: int | None = None,
    spec: ModelSpec | None = None,
    *,
    gpu_memory_utilization: float | None = None,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    block_size: int | None = None,
    enable_chunked_prefill: bool | None = None,
    async_scheduling: bool | None = None,
    usage_context: UsageContext = "api_server",
) -> EngineArgs:
    """vLLM's defaults for `gpu`, with any setting given overriding them (None = default).

    Args:
        gpu: the GPU (its memory picks the batch defaults).
        max_model_len: tokens per request; None = the model's max_position_embeddings (vLLM's
            default), which needs `spec`.
        spec: the model, to default and check max_model_len.
        usage_context: "api_server" (`vllm serve`, default) or "llm_class" (offline LLM class).
    Raises:
        PlannerError: a setting out of range or inconsistent, as vLLM would refuse it.
    """
    if max_model_len is None:
        if spec is None or spec.max_position_embeddings is None:
            raise PlannerError("max_model_len is needed: give --max-model-len (tokens per request)")
        max_model_len = spec.max_position_embeddings
    check_positive("max_model_len", max_model_len)
    if spec is not None and spec.max_position_embeddings and max_model_len > spec.max_position_embeddings:
        raise PlannerError(
            f"max_model_len {max_model_len} exceeds {spec.name}'s context of "
            f"{spec.max_position_embeddings} tokens: lower it"
        )
    util = DEFAULT_GPU_MEMORY_UTILIZATION if gpu_memory_utilization is None else gpu_memory_utilization
    if not 0 < util <= 1:
        raise PlannerError(f"gpu_memory_utilization must be in (0, 1], got {util}")
    default_tokens, default_seqs = vllm_batch_defaults(gpu, usage_context)
    chunked = True if enable_chunked_prefill is None else enable_chunked_prefill
    seqs = default_seqs if max_num_seqs is None else max_num_seqs
    check_positive("max_num_seqs", seqs)
    if max_num_batched_tokens is None:
        # Without chunked prefill a whole prompt must fit one step (vLLM raises the budget to
        # max_model_len in that case).
        tokens = default_tokens if chunked else max(default_tokens, max_model_len)
    else:
        tokens = max_num_batched_tokens
    check_positive("max_num_batched_tokens", tokens)
    if not chunked and tokens < max_model_len:
        raise PlannerError(
            f"max_num_batched_tokens ({tokens}) is smaller than max_model_len ({max_model_len}) "
            "with chunked prefill off: raise it or enable chunked prefill"
        )
    if tokens < seqs:
        raise PlannerError(
            f"max_num_batched_tokens ({tokens}) must be >= max_num_seqs ({seqs}), as vLLM requires"
        )
    bs = DEFAULT_BLOCK_SIZE if block_size is None else block_size
    check_positive("block_size", bs)
    return EngineArgs(
        gpu_memory_utilization=util,
        max_model_len=max_model_len,
        max_num_seqs=seqs,
        max_num_batched_tokens=tokens,
        block_size=bs,
        enable_chunked_prefill=chunked,
        async_scheduling=True if async_scheduling is None else bool(async_scheduling),
    )


def resolve_engine_args(gpu: GpuSpec, serving: Any = None, spec: ModelSpec | None = None, **overrides: Any) -> EngineArgs:
    """One resolved EngineArgs from a profile's serving section (or a dict), None -> vLLM default.

    Args:
        gpu: the GPU the replica runs on.
        serving: an object with vLLM-named attributes (profile.ServingSection) or a dict; missing or
            None fields take the engine defaults.
        spec: the model (defaults and checks max_model_len).
        overrides: keyword settings that win over `serving`.
    """
    names = ("gpu_memory_utilization", "max_model_len", "max_num_seqs", "max_num_batched_tokens",
             "block_size", "enable_chunked_prefill", "async_scheduling")
    values: dict[str, Any] = {}
    for name in names:
        if isinstance(serving, dict):
            values[name] = serving.get(name)
        elif serving is not None:
            values[name] = getattr(serving, name, None)
    for name, value in overrides.items():
        if name not in names and name != "usage_context":
            raise PlannerError(f"unknown engine setting {name!r}: use one of {', '.join(names)}")
        if value is not None:
            values[name] = value
    max_model_len = values.pop("max_model_len", None)
    return default_engine_args(gpu, max_model_len, spec, **{k: v for k, v in values.items()})


