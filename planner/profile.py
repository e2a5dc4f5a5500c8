"""The profile a user writes: model, serving settings, traffic, SLO, candidates, prices, billing.

One pydantic model (`Profile`) is the single source of truth for a planning question. Every section
rejects unknown keys so a typo in the YAML fails loudly, and `load_profile` turns validation errors
into one `PlannerError` line that names the field ("traffic.arrivals.rate_per_s: must be > 0").
Paths inside a profile (trace files, a model's config.json) are resolved relative to the profile
file. Every field is documented in the README's annotated profile and in docs/profile.md.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from planner.errors import PlannerError, did_you_mean, first_validation_error
from planner.precision import KvCacheDtype, Quantization, WeightDtype
from planner.resources import data_dir

TraceFormat = Literal["azure", "mooncake", "csv"]
BillingMode = Literal["pod", "serverless"]

PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
TokenRange = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=2, max_length=2)]


class _Section(BaseModel):
    """Base of every profile section: unknown keys are errors."""

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


# --------------------------------------------------------------------------------------- model
class ModelSection(_Section):
    """Which model is served, and at which precision."""

    name: str = Field(description="Preset id (e.g. 'llama-3.1-8b') or a path to a HF config.json.")
    precision: WeightDtype | None = Field(
        None, description="Weight dtype; None = the model's default_dtype (usually bf16)."
    )
    quantization: Quantization = Field("none", description="Weight quantization format.")
    kv_cache_dtype: KvCacheDtype = Field("auto", description="KV cache dtype; auto = compute dtype.")

    @field_validator("name")
    @classmethod
    def _resolve_config_path(cls, value: str, info: ValidationInfo) -> str:
        # Only a config.json path is a path; preset ids are left alone.
        return _resolve_file(value, info) if value.endswith(".json") else value


# ------------------------------------------------------------------------------------- serving
class ServingSection(_Section):
    """Engine settings in vLLM's names; None means 'the engine default' (memory.default_engine_args)."""

    max_model_len: PositiveInt | None = Field(
        None,
        description="Longest prompt + output a request may have, tokens; None = the model's maximum.",
    )
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Fraction of GPU memory the engine may take (vLLM default 0.9)."
    )
    max_num_seqs: PositiveInt | None = Field(None, description="Most sequences running in one step.")
    max_num_batched_tokens: PositiveInt | None = Field(
        None, description="Token budget of one engine step (decode tokens + prefill chunks)."
    )
    block_size: Literal[1, 8, 16, 32, 64, 128] = Field(16, description="KV cache block, tokens.")
    enable_chunked_prefill: bool = Field(True, description="Split long prompts across steps.")


# ------------------------------------------------------------------------------------- traffic
class PoissonArrivals(_Section):
    """Memoryless arrivals at a constant rate (inter-arrival CV = 1)."""

    process: Literal["poisson"]
    rate_per_s: PositiveFloat


class GammaArrivals(_Section):
    """Renewal process with gamma inter-arrival gaps: cv > 1 is burstier than Poisson."""

    process: Literal["gamma"]
    rate_per_s: PositiveFloat
    cv: PositiveFloat = Field(description="Coefficient of variation of the gaps (1 = Poisson).")


class OnOffArrivals(_Section):
    """Two-state MMPP: Poisson at base_rate in gaps, at burst_rate in bursts; exponential durations."""

    process: Literal["onoff"]
    base_rate_per_s: float = Field(ge=0)
    burst_rate_per_s: PositiveFloat
    mean_burst_seconds: PositiveFloat
    mean_gap_seconds: PositiveFloat

    @model_validator(mode="after")
    def _burst_above_base(self) -> OnOffArrivals:
        if self.burst_rate_per_s < self.base_rate_per_s:
            raise ValueError("burst_rate_per_s must be >= base_rate_per_s")
        return self


class DiurnalArrivals(_Section):
    """A 24-hour shape (sinusoid between trough and peak, or 24 hourly multipliers) on a rate."""

    process: Literal["diurnal"]
    mean_rate_per_s: PositiveFloat | None = Field(None, description="Daily mean rate (give this or peak).")
    peak_rate_per_s: PositiveFloat | None = Field(None, description="Rate at the busiest time of day.")
    peak_to_trough: float | None = Field(
        None, ge=1, description="Sinusoid shape: peak rate / trough rate (1 = flat)."
    )
    peak_hour: float = Field(14.0, ge=0, lt=24, description="Clock hour of the sinusoid's peak.")
    hourly_multipliers: list[Annotated[float, Field(ge=0)]] | None = Field(
        None, min_length=24, max_length=24, description="24 relative rates, hour 0..23 (step shape)."
    )
    start_hour: float = Field(0.0, ge=0, lt=24, description="Clock hour at t = 0.")

    @model_validator(mode="after")
    def _one_rate_one_shape(self) -> DiurnalArrivals:
        if (self.mean_rate_per_s is None) == (self.peak_rate_per_s is None):
            raise ValueError("give exactly one of mean_rate_per_s and peak_rate_per_s")
        if (self.peak_to_trough is None) == (self.hourly_multipliers is None):
            raise ValueError("give exactly one of peak_to_trough and hourly_multipliers")
        if self.hourly_multipliers is not None and max(self.hourly_multipliers) <= 0:
            raise ValueError("hourly_multipliers must not all be 0")
        return self


class RateSegment(_Section):
    """One step of a piecewise-constant schedule."""

    duration_seconds: PositiveFloat
    rate_per_s: float = Field(ge=0)


class PiecewiseArrivals(_Section):
    """Poisson arrivals whose rate follows a schedule of constant steps, repeated to the horizon."""

    process: Literal["piecewise"]
    segments: list[RateSegment] = Field(min_length=1)
    repeat: bool = Field(True, description="Cycle the schedule until the horizon (else rate 0 after).")

    @model_validator(mode="after")
    def _some_traffic(self) -> PiecewiseArrivals:
        if all(s.rate_per_s == 0 for s in self.segments):
            raise ValueError("every segment has rate_per_s 0: no traffic")
        return self


class TraceArrivals(_Section):
    """Replay a real trace's arrival times (and, by default, its request sizes)."""

    process: Literal["trace"]
    path: TraceFile = Field(description="Trace file, relative to the profile file.")
    format: TraceFormat | None = Field(None, description="azure | mooncake | csv; None = from the file.")
    start_offset_seconds: float = Field(0.0, ge=0, description="Skip this much of the trace's start.")
    time_scale: PositiveFloat = Field(1.0, description="Stretch time: 2 = half the rate, same requests.")
    rate_scale: PositiveFloat = Field(
        1.0, description="Thin (<1) or replicate (>1) requests on the same timeline."
    )
    loop: bool = Field(False, description="Repeat the trace back to back until the horizon.")
    jitter: Literal["batch"] | Annotated[float, Field(ge=0)] | None = Field(
        None,
        description="None; 'batch' spreads requests sharing a timestamp over the gap to the next "
        "one; a number adds uniform [0, x) seconds to every arrival.",
    )


Arrivals = Annotated[
    Union[PoissonArrivals, GammaArrivals, OnOffArrivals, DiurnalArrivals, PiecewiseArrivals, TraceArrivals],
    Field(discriminator="process"),
]


class FixedSizes(_Section):
    """Every request has the same prompt and output length."""

    distribution: Literal["fixed"]
    prompt_tokens: PositiveInt
    output_tokens: PositiveInt


class UniformSizes(_Section):
    """Integer lengths drawn uniformly from [lo, hi] (inclusive)."""

    distribution: Literal["uniform"]
    prompt_tokens: TokenRange
    output_tokens: TokenRange

    @field_validator("prompt_tokens", "output_tokens")
    @classmethod
    def _ordered(cls, value: list[int]) -> list[int]:
        if value[0] < 1 or value[1] < value[0]:
            raise ValueError("must be [lo, hi] with 1 <= lo <= hi")
        return value


class LognormalTokens(_Section):
    """A lognormal length: (mu, sigma) of ln(tokens), or two of mean / median / p90 / p99."""

    mu: float | None = None
    sigma: PositiveFloat | None = None
    mean: PositiveFloat | None = None
    median: PositiveFloat | None = None
    p90: PositiveFloat | None = None
    p99: PositiveFloat | None = None
    min_tokens: PositiveInt = Field(1, description="Floor after rounding.")
    max_tokens: PositiveInt | None = Field(None, description="Clip above (max_model_len caps anyway).")

    @model_validator(mode="after")
    def _solvable(self) -> LognormalTokens:
        self.mu_sigma()  # raises ValueError with the reason
        return self

    def mu_sigma(self) -> tuple[float, float]:
        """(mu, sigma) of ln(tokens), solved from whichever pair was given."""
        z = {"p90": 1.2815515655446004, "p99": 2.3263478740408408}  # standard normal quantiles
        given = {k for k in ("mu", "sigma", "mean", "median", "p90", "p99") if getattr(self, k) is not None}
        if given == {"mu", "sigma"}:
            return float(self.mu), float(self.sigma)  # type: ignore[arg-type]
        tails = [k for k in ("p90", "p99") if k in given]
        if given == {"mean", "median"}:
            if self.mean <= self.median:  # type: ignore[operator]
                raise ValueError("lognormal needs mean > median")
            # mean = median * exp(sigma^2 / 2)
            return math.log(self.median), math.sqrt(2 * math.log(self.mean / self.median))  # type: ignore[arg-type,operator]
        if len(given) == 2 and "median" in given and len(tails) == 1:
            q = getattr(self, tails[0])
            if q <= self.median:
                raise ValueError(f"lognormal needs {tails[0]} > median")
            return math.log(self.median), math.log(q / self.median) / z[tails[0]]  # type: ignore[arg-type]  # median is given on this branch
        if len(given) == 2 and "mean" in given and len(tails) == 1:
            # ln q = mu + z s and ln m = mu + s^2/2  =>  s^2/2 - z s + ln(q/m) = 0.
            zq, q = z[tails[0]], getattr(self, tails[0])
            disc = zq * zq - 2 * math.log(q / self.mean)
            if q <= self.mean or disc < 0:
                raise ValueError(
                    f"no lognormal has mean {self.mean} and {tails[0]} {q} "
                    f"({tails[0]}/mean must lie in (1, {math.exp(zq * zq / 2):.2f}]); give median instead"
                )
            # NOTE: two roots; the smaller sigma is the one where q grows with sigma (the usual case).
            sigma = zq - math.sqrt(disc)
            return math.log(self.mean) - sigma * sigma / 2, sigma  # type: ignore[arg-type]
        raise ValueError(
            "give mu and sigma, or two of mean/median/p90/p99 (mean+median, median+p90|p99, "
            "mean+p90|p99)"
        )


class LognormalSizes(_Section):
    """Independent lognormal prompt and output lengths, rounded to whole tokens."""

    distribution: Literal["lognormal"]
    prompt_tokens: LognormalTokens
    output_tokens: LognormalTokens


class EmpiricalSizes(_Section):
    """Resample request sizes from a trace file (with replacement)."""

    distribution: Literal["empirical"]
    path: TraceFile = Field(description="Trace file, relative to the profile file.")
    format: TraceFormat | None = None
    joint: bool = Field(True, description="Resample (prompt, output) pairs; false = each independently.")


class TraceSizes(_Section):
    """Take each replayed request's own sizes from the trace (needs arrivals.process: trace)."""

    distribution: Literal["trace"]


Sizes = Annotated[
    Union[FixedSizes, UniformSizes, LognormalSizes, EmpiricalSizes, TraceSizes],
    Field(discriminator="distribution"),
]


class TrafficSection(_Section):
    """Arrivals, request sizes and the simulated horizon."""

    arrivals: Arrivals
    sizes: Sizes | None = Field(None, description="None: the trace's own sizes (trace arrivals only).")
    horizon_seconds: PositiveFloat | None = Field(
        None,
        description="Simulated duration; None = 3600 for synthetic arrivals, the trace's span for a trace.",
    )
    oversize: Literal["cap", "keep"] | None = Field(
        None,
        description="Requests longer than max_model_len: cap (synthetic default) or keep for the "
        "simulator to reject (trace-size default).",
    )
    seed: int = Field(0, ge=0, description="Default random seed, >= 0 (the CLI's --seed overrides it).")

    @model_validator(mode="after")
    def _sizes_match_arrivals(self) -> TrafficSection:
        is_trace = isinstance(self.arrivals, TraceArrivals)
        if self.sizes is None and not is_trace:
            raise ValueError("sizes is required unless arrivals.process is trace")
        if isinstance(self.sizes, TraceSizes) and not is_trace:
            raise ValueError("sizes.distribution 'trace' needs arrivals.process 'trace'")
        return self

    @property
    def sizes_from_trace(self) -> bool:
        """True when request sizes come row by row from the replayed trace."""
        return self.sizes is None or isinstance(self.sizes, TraceSizes)

    @property
    def default_horizon_seconds(self) -> float | None:
        """The horizon to simulate (None for a trace without one: its span decides)."""
        if self.horizon_seconds is not None:
            return self.horizon_seconds
        return None if isinstance(self.arrivals, TraceArrivals) else 3600.0


# ----------------------------------------------------------------------------------------- slo
class SloSection(_Section):
    """A request meets the SLO when its TTFT and its TPOT are both within their thresholds."""

    ttft_seconds: PositiveFloat = Field(description="Time to first token threshold.")
    tpot_seconds: PositiveFloat = Field(description="Mean time per output token after the first.")
    attainment: float = Field(
        0.95, gt=0, le=1, description="Fraction of all requests (rejected = miss) that must meet both."
    )


# ---------------------------------------------------------------------------------- candidates
class CandidatesSection(_Section):
    """What the optimizer may choose from."""

    gpus: list[str] = Field(min_length=1, description="GPU catalog ids (planner catalog).")
    tensor_parallel_sizes: list[Literal[1, 2, 4, 8]] = Field([1], min_length=1)
    billing: list[BillingMode] = Field(["pod", "serverless"], min_length=1)


class PriceOverride(_Section):
    """Replace a catalog price for one GPU (e.g. a negotiated rate); give at least one price."""

    gpu: str
    pod_usd_per_hour: PositiveFloat | None = None
    flex_usd_per_s: PositiveFloat | None = None
    active_usd_per_s: PositiveFloat | None = None
    source: str | None = Field(None, description="Where the price comes from (shown in reports).")

    @model_validator(mode="after")
    def _some_price(self) -> PriceOverride:
        if self.pod_usd_per_hour is None and self.flex_usd_per_s is None and self.active_usd_per_s is None:
            raise ValueError("give at least one of pod_usd_per_hour, flex_usd_per_s, active_usd_per_s")
        return self


# ------------------------------------------------------------------------------ billing (#6)
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
    """Serverless endpoint settings, defaults from Runpod's endpoint docs (shared/facts/FACTS.md 2.2)."""

    active_workers: int = Field(0, ge=0, description="Always-on workers (billed 24/7 at the active rate).")
    max_workers: PositiveInt = Field(3, description="Endpoint cap incl. active workers; Runpod's default is 3.")
    idle_timeout_seconds: float = Field(5.0, ge=0, description="Idle time before a worker stops (default 5 s).")
    scaler: Literal["queue-delay", "request-count"] = Field("queue-delay")
    scaler_value: PositiveFloat | None = Field(
        None,
        description="queue-delay: seconds a request may wait before a worker is added (default 4); "
        "request-count: requests per worker (default 1, the docs' most responsive). None = default.",
    )
    max_concurrency_per_worker: PositiveInt = Field(
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
    """How pods and serverless workers are billed (issue #6 owns the accounting)."""

    pod_cloud: Literal["secure", "community"] = Field(
        "secure", description="Which catalog pod price applies (a prices: override wins over both)."
    )
    pod_provider: str = Field("runpod", description="Provider whose catalog pod price applies.")
    pod_billing_granularity_seconds: PositiveFloat = Field(1.0, description="Pods bill per second.")
    pod_provisioning_delay_seconds: Annotated[float, Field(ge=0)] | None = Field(
        None, description="Time to bring up a pod on a scale-up; None = billing default (60 s, estimated)."
    )
    serverless: ServerlessSettings = Field(default_factory=ServerlessSettings)


# ---------------------------------------------------------------------------- optimizer (#7)
class SizeBucket(_Section):
    """A range of request sizes the optimizer treats as one class, tokens [lo, hi]."""

    prompt_tokens: TokenRange
    output_tokens: TokenRange


class OptimizerSection(_Section):
    """Settings of the fleet MILP (issue #7)."""

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


# ----------------------------------------------------------------------------- capacity (#7)
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


# ------------------------------------------------------------------------------------ profile
class Profile(_Section):
    """A whole planning question. Load it with `load_profile(path)`."""

    name: str = Field("profile", description="Defaults to the file stem.")
    description: str | None = None
    model: ModelSection
    serving: ServingSection = Field(default_factory=ServingSection)
    traffic: TrafficSection
    slo: SloSection
    candidates: CandidatesSection
    prices: list[PriceOverride] = Field(default_factory=list)
    billing: BillingSection = Field(default_factory=BillingSection)
    optimizer: OptimizerSection = Field(default_factory=OptimizerSection)
    capacity: CapacitySection | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: str | Path | None = None) -> Profile:
        """Validate a parsed profile; relative paths are resolved against base_dir (default cwd)."""
        return cls.model_validate(data, context={"base_dir": str(base_dir or Path.cwd())})


_UNION_TAGS = {
    "poisson", "gamma", "onoff", "diurnal", "piecewise", "trace",
    "fixed", "uniform", "lognormal", "empirical",
}
_MESSAGES = {
    "extra_forbidden": "unknown key (check the spelling against the README's annotated profile)",
    "missing": "required field is missing",
}


def _model_at(loc: list[Any]) -> type[BaseModel] | None:
    """The section model that holds the last element of a pydantic error location."""
    cls: Any = Profile
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if isinstance(cls, type) and issubclass(cls, BaseModel) and part in cls.model_fields:
            cls = cls.model_fields[part].annotation
        elif isinstance(part, str) and part in _UNION_TAGS:
            cls = next((m for m in _members(cls) if part in _tags(m)), None)
        else:
            return None
        members = _members(cls)
        cls = members[0] if len(members) == 1 else cls
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _members(tp: Any) -> list[Any]:
    """Unwrap Optional / list / Annotated / Union into the model classes they contain."""
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        return _members(args[0])
    if origin in (Union, UnionType, list):
        return [m for a in args for m in _members(a)]
    return [tp] if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _tags(model: type[BaseModel]) -> tuple[Any, ...]:
    field = model.model_fields.get("process") or model.model_fields.get("distribution")
    return get_args(field.annotation) if field is not None else ()


def validation_message(err: ValidationError, prefix: str = "") -> str:
    """One line naming the first bad field, e.g. 'traffic.arrivals.rate_per_s: must be > 0'.

    Unknown keys are reported first (a typo also makes the intended key look missing).
    """
    first = first_validation_error(err)
    loc = list(first.get("loc", ()))
    # Drop the union tag pydantic inserts after a discriminated field (arrivals.poisson.rate_per_s).
    parts = [
        str(p)
        for i, p in enumerate(loc)
        if not (i > 0 and loc[i - 1] in ("arrivals", "sizes") and p in _UNION_TAGS)
    ]
    where = ".".join(parts) or "profile"
    kind = first.get("type", "")
    ctx = first.get("ctx") or {}
    if kind == "extra_forbidden":
        model = _model_at(loc)
        allowed = list(model.model_fields) if model is not None else []
        hint = did_you_mean(str(loc[-1]), allowed, quote=True)
        hint = f"{hint} " if hint else ""
        msg = f"unknown key ({hint}allowed: {', '.join(allowed)})" if allowed else _MESSAGES[kind]
    elif kind in _MESSAGES:
        msg = _MESSAGES[kind]
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()), "?")
        msg = f"must be {op} {bound} (got {first.get('input')!r})"
    else:
        msg = re.sub(r"^(Value|Assertion) error, ", "", str(first.get("msg", "invalid value")))
        if kind.endswith(("_type", "_parsing")) and "input" in first:
            msg += f" (got {first['input']!r})"
    return f"{prefix}{where}: {msg}"


def shipped_profiles() -> list[str]:
    """Names of the profiles shipped with the package (traffic_profiles/*.yaml)."""
    return sorted(p.name for p in data_dir("traffic_profiles").glob("*.yaml"))


def _find_profile(path: Path) -> Path:
    """The profile file; a shipped one by name when the path does not exist here.

    `--profile traffic_profiles/bursty.yaml` (or `bursty.yaml`) then works from any working
    directory, since the shipped profiles are package data; an existing local file always wins.
    """
    if path.exists() or path.is_absolute():
        return path
    parts = path.parts
    if len(parts) == 1 or (len(parts) == 2 and parts[0] == "traffic_profiles"):
        shipped = data_dir("traffic_profiles") / parts[-1]
        if shipped.is_file():
            return shipped
    return path


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile YAML; paths inside are relative to the file.

    Raises:
        PlannerError: the file is missing, is not YAML, or a field is invalid (the message names it).
    """
    path = _find_profile(Path(path))
    if not path.is_file():
        raise PlannerError(
            f"profile not found: {path} (give a YAML file; shipped ones: {', '.join(shipped_profiles())})"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise PlannerError(f"{path}:{where} is not valid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict):
        raise PlannerError(f"{path}: a profile is a YAML mapping with model, traffic, slo, candidates")
    data.setdefault("name", path.stem)
    try:
        return Profile.from_dict(data, path.resolve().parent)
    except ValidationError as err:
        raise PlannerError(validation_message(err, prefix=f"{path.name}: ")) from None
