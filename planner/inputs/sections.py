"""Profile sections other than traffic: model, serving, SLO, candidates, prices, billing, optimizer,
capacity; and the base every section shares (unknown keys are errors, paths resolve against the
profile file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from planner.inputs.precision import KvCacheDtype, Quantization, WeightDtype
from planner.inputs.strict import StrictInput

TraceFormat = Literal["azure", "mooncake", "csv"]
BillingMode = Literal["pod", "serverless"]

# More tokens than any model's context (the longest, Llama 4 Scout, takes 10M): a typo, refused
# before it sizes an allocation.
MAX_TOKENS = 2**25
# More sequences or serverless workers than one engine or endpoint can have: a typo.
MAX_SEQS = 2**20
MAX_WORKERS = 10_000
BlockSize = Literal[1, 8, 16, 32, 64, 128]
BLOCK_SIZES: tuple[int, ...] = get_args(BlockSize)


def _ordered(value: list[int]) -> list[int]:
    if value[1] < value[0]:
        raise ValueError(f"must be [lo, hi] with lo <= hi (got {value})")
    return value


PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
TokenCount = Annotated[int, Field(gt=0, le=MAX_TOKENS)]
TokenRange = Annotated[
    list[Annotated[int, Field(ge=0, le=MAX_TOKENS)]], Field(min_length=2, max_length=2), AfterValidator(_ordered)
]


class _Section(StrictInput):
    """Base of every profile section: unknown keys are errors, numbers are finite and not true/false."""

    model_config = ConfigDict(extra="forbid")


def _resolve_path(value: str | None, info: ValidationInfo, *, must_exist: bool = True) -> str | None:
    """Resolve a path relative to the profile's folder (validation context "base_dir")."""
    if value is None:
        return None
    base = (info.context or {}).get("base_dir") if info.context else None
    path = Path(os.path.expanduser(value))
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    if must_exist and not path.is_file():
        raise ValueError(f"file not found: {path} (paths are relative to the profile file)")
    return str(path.resolve())


def _resolve_file(value: str, info: ValidationInfo) -> str:
    resolved = _resolve_path(value, info)
    assert resolved is not None  # only None in, None out
    return resolved


TraceFile = Annotated[str, AfterValidator(_resolve_file)]
"""A trace file that must exist, resolved against the profile's folder (traffic arrivals and sizes)."""


def _resolve_gpu(value: str, info: ValidationInfo) -> str:
    """A GPU YAML path (e.g. one `planner calibrate` wrote) resolved against the profile's folder;
    a catalog id as it is."""
    return _resolve_file(value, info) if value.endswith((".yaml", ".yml")) else value


GpuName = Annotated[str, AfterValidator(_resolve_gpu)]
"""A catalog GPU id, or a GPU YAML path resolved against the profile's folder."""


# --------------------------------------------------------------------------------------- model
class ModelSection(_Section):
    """Which model is served, and at which precision."""

    name: str = Field(description="Preset id (e.g. 'llama-3.1-8b') or a path to a HF config.json.")
    precision: WeightDtype | None = Field(
        None, description="Weight dtype; None = the model's default_dtype (usually bf16)."
    )
    quantization: Quantization = Field("none", description="Weight quantization format.")
    kv_cache_dtype: KvCacheDtype = Field("auto", description="KV cache dtype; auto = compute dtype.")
    repo: str | None = Field(
        None,
        description="Hugging Face repository (or local folder) of the checkpoint to deploy, in the "
        "planned format; None = the preset's own, or a known quantized checkpoint of it.",
    )

    @field_validator("name")
    @classmethod
    def _resolve_config_path(cls, value: str, info: ValidationInfo) -> str:
        # Only a config.json path is a path; preset ids are left alone.
        return _resolve_file(value, info) if value.endswith(".json") else value


# ------------------------------------------------------------------------------------- serving
class ServingSection(_Section):
    """Engine settings in vLLM's names; None means 'the engine default' (memory.default_engine_args)."""

    max_model_len: TokenCount | None = Field(
        None,
        description="Longest prompt + output a request may have, tokens; None = the model's maximum.",
    )
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Fraction of GPU memory the engine may take (vLLM default 0.9)."
    )
    max_num_seqs: Annotated[int, Field(gt=0, le=MAX_SEQS)] | None = Field(None, description="Most sequences running in one step.")
    max_num_batched_tokens: TokenCount | None = Field(
        None, description="Token budget of one engine step (decode tokens + prefill chunks)."
    )
    block_size: BlockSize = Field(16, description="KV cache block, tokens.")
    enable_chunked_prefill: bool = Field(True, description="Split long prompts across steps.")
    async_scheduling: bool = Field(
        True,
        description="Plan each engine step while the previous one runs (vLLM --async-scheduling, its default in "
        "recent releases): a request then joins the step after next. Without it the engine idles between "
        "steps for host work the step-time model does not count.",
    )


# ----------------------------------------------------------------------------------------- slo
class SloSection(_Section):
    """A request meets the SLO when its TTFT and its TPOT are both within their thresholds."""

    ttft_seconds: PositiveFloat = Field(description="Time to first token threshold.")
    tpot_seconds: PositiveFloat = Field(description="Mean time per output token after the first.")
    attainment: float = Field(
        0.95, gt=0, le=1, description="Fraction of all requests (rejected = miss) that must meet both."
    )
    ttft_p99_seconds: PositiveFloat | None = Field(
        None, description="Optional limit on the run's p99 TTFT, checked on the simulated run like attainment."
    )
    tpot_p99_seconds: PositiveFloat | None = Field(
        None, description="Optional limit on the run's p99 TPOT, checked on the simulated run like attainment."
    )


class HostedApiSection(_Section):
    """A hosted API priced per token, to set the plan against (the report's finance summary)."""

    name: str = Field(min_length=1, description="How the report names it, e.g. 'Provider X Llama-3.1-8B'.")
    usd_per_million_input_tokens: float = Field(ge=0, description="Its price per million input (prompt) tokens.")
    usd_per_million_output_tokens: float = Field(ge=0, description="Its price per million output tokens.")
    as_of: str | None = Field(None, description="When the price was read (shown in the report).")
    source: str | None = Field(None, description="Where the price comes from (shown in the report).")


# ---------------------------------------------------------------------------------- candidates
class CandidatesSection(_Section):
    """What the optimizer may choose from."""

    gpus: list[GpuName] = Field(min_length=1, description="GPU catalog ids (planner catalog) or GPU YAML paths.")
    tensor_parallel_sizes: list[Literal[1, 2, 4, 8]] = Field([1], min_length=1)
    billing: list[BillingMode] = Field(["pod", "serverless"], min_length=1)


class PriceOverride(_Section):
    """Replace a catalog price for one GPU (e.g. a negotiated rate); give at least one price."""

    gpu: GpuName = Field(description="the GPU's id (a calibrated entry's own id) or its GPU YAML path")
    pod_usd_per_hour: PositiveFloat | None = None
    flex_usd_per_s: PositiveFloat | None = None
    active_usd_per_s: PositiveFloat | None = None
    source: str | None = Field(None, description="Where the price comes from (shown in reports).")

    @model_validator(mode="after")
    def _some_price(self) -> PriceOverride:
        if self.pod_usd_per_hour is None and self.flex_usd_per_s is None and self.active_usd_per_s is None:
            raise ValueError("give at least one of pod_usd_per_hour, flex_usd_per_s, active_usd_per_s")
        return self


# ----------------------------------------------------------------------------------- billing
# Defaults and their sources: planner.billing.BILLING_DEFAULTS (docs/billing.md). A field left at
# None takes that sourced default; reports list the estimated ones under "Assumptions".
class ColdStartSettings(_Section):
    """Serverless cold start = container start + weights / load rate + engine warm-up.

    None means 'the billing module's sourced default' (planner.billing.BILLING_DEFAULTS).
    """

    container_start_seconds: Annotated[float, Field(ge=0)] | None = Field(
        None, description="Container start before the engine runs (default 5 s, estimated)."
    )
    model_load_bytes_per_second: PositiveFloat | None = Field(
        None, description="Weights load rate from host storage to GPU (default 0.89e9 B/s, measured for vLLM)."
    )
    engine_warmup_seconds: Annotated[float, Field(ge=0)] | None = Field(
        None, description="vLLM init, torch.compile (cached) and CUDA graph capture (default 64 s, measured)."
    )
    cached_model: bool = Field(
        False, description="Model and engine state cached on the host (FlashBoot-like): start takes cached_start_seconds."
    )
    cached_start_seconds: Annotated[float, Field(ge=0)] | None = Field(
        None, description="Start time of a cached worker (default 4.2 s, estimated)."
    )


class ServerlessSettings(_Section):
    """Serverless endpoint settings, defaults from Runpod's endpoint docs (serverless/endpoints/endpoint-configurations.mdx)."""

    active_workers: int = Field(0, ge=0, le=MAX_WORKERS, description="Always-on workers (billed 24/7 at the active rate).")
    max_workers: PositiveInt = Field(3, le=MAX_WORKERS, description="Endpoint cap incl. active workers; Runpod's default is 3.")
    idle_timeout_seconds: float = Field(5.0, ge=0, description="Idle time before a worker stops (default 5 s).")
    scaler: Literal["queue-delay", "request-count"] = Field("queue-delay")
    scaler_value: PositiveFloat | None = Field(
        None,
        description="queue-delay: seconds a request may wait before a worker is added (default 4); "
        "request-count: requests per worker (default 1, the docs' most responsive). None = default.",
    )
    max_concurrency_per_worker: Annotated[int, Field(gt=0, le=MAX_SEQS)] = Field(
        30, description="Requests one worker takes at once (Runpod vLLM worker MAX_CONCURRENCY, default 30)."
    )
    cold_start: ColdStartSettings = Field(default_factory=ColdStartSettings)

    @model_validator(mode="after")
    def _max_covers_active(self) -> ServerlessSettings:
        if self.max_workers < self.active_workers:
            raise ValueError(
                f"max_workers ({self.max_workers}) is below active_workers ({self.active_workers}); "
                "max workers counts active workers too: raise max_workers"
            )
        return self

    @property
    def scaler_value_resolved(self) -> float:
        """scaler_value, or the documented default: 4 s queue delay, or 1 request per worker."""
        if self.scaler_value is not None:
            return self.scaler_value
        return 4.0 if self.scaler == "queue-delay" else 1.0


class BillingSection(_Section):
    """How pods and serverless workers are billed (planner.billing does the accounting)."""

    pod_cloud: Literal["secure", "community"] = Field(
        "secure", description="Which catalog pod price applies (a prices: override wins over both)."
    )
    pod_provider: str = Field("runpod", description="Provider whose catalog pod price applies.")
    pod_billing_granularity_seconds: PositiveFloat = Field(1.0, description="Pods bill per second.")
    pod_provisioning_delay_seconds: Annotated[float, Field(ge=0)] | None = Field(
        None, description="Time to bring up a pod on a scale-up; None = billing default (60 s, estimated)."
    )
    pod_min_run_seconds: Annotated[float, Field(ge=0)] | None = Field(
        None, description="A started pod runs at least this long (scheduled pods); None = one optimizer slot."
    )
    serverless: ServerlessSettings = Field(default_factory=ServerlessSettings)


# --------------------------------------------------------------------------------- optimizer
class SizeBucket(_Section):
    """A range of request sizes the optimizer treats as one class, tokens [lo, hi]."""

    prompt_tokens: TokenRange
    output_tokens: TokenRange


class OptimizerSection(_Section):
    """Settings of the fleet MILP."""

    slot_seconds: PositiveFloat = Field(3600.0, description="Length of a planning time slot.")
    demand_percentile: float = Field(
        0.99, gt=0, le=1, description="Plan each slot for this percentile of its one-minute rates."
    )
    headroom: float = Field(0.9, gt=0, le=1, description="Load a replica to this fraction of its capacity.")
    max_gpus_per_type: dict[str, Annotated[int, Field(ge=0)]] | None = None
    max_serverless_workers: Annotated[int, Field(ge=0)] | None = None
    min_replicas: int = Field(1, ge=0, description="Replicas always up (0 allows scale to zero).")
    budget_usd_per_month: PositiveFloat | None = None
    size_buckets: list[SizeBucket] | None = Field(
        None, description="Request-size classes with their own capacities; None = one class."
    )
    max_rounds: int = Field(
        3, ge=1, le=10, description="Solve-and-verify rounds: each tightens what missed the SLO."
    )
    pod_schedule: Literal["fixed", "per_slot"] | None = Field(
        None, description="Pods for the whole horizon (fixed) or a pod count per slot (per_slot); "
        "None = per_slot when the horizon has more than one slot.",
    )
    scenarios: int = Field(
        3, ge=1, le=20, description="Independent draws of the traffic the plan must meet the SLO on."
    )
    max_gpu_types: Annotated[int, Field(ge=1)] | None = Field(
        None, description="At most this many distinct GPU types in the plan (None = no limit)."
    )
    max_serverless_endpoints: Annotated[int, Field(ge=0)] | None = Field(
        None, description="At most this many serverless endpoints in the plan (None = no limit)."
    )
    mip_gap: float = Field(
        0.01, gt=0, lt=0.2, description="Relative gap at which the MILP solver may stop and call its plan optimal."
    )
    solver_time_limit_seconds: PositiveFloat = Field(
        30.0, description="Wall-clock limit of one MILP solve (the status then says the gap reached)."
    )


# ---------------------------------------------------------------------------------- capacity
class CapacityBucket(_Section):
    """Measured capacity of one replica for one request-size bucket."""

    prompt_tokens: TokenRange
    output_tokens: TokenRange
    share: float = Field(ge=0, le=1, description="Fraction of the traffic in this bucket.")
    max_requests_per_second: PositiveFloat


class CapacityEntry(_Section):
    """A measured (GPU, TP) replica: its price and per-bucket capacities under the SLO."""

    gpu: str
    tensor_parallel_size: PositiveInt = 1
    usd_per_hour: PositiveFloat
    buckets: list[CapacityBucket] = Field(min_length=1)


class CapacitySection(_Section):
    """Capacities measured elsewhere (a benchmark), used instead of simulated ones."""

    entries: list[CapacityEntry] = Field(min_length=1)
    source: str | None = None


