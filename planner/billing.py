"""Money: which price applies, how long a serverless worker takes to start, and what a run costs.

Pure arithmetic, no I/O and no SimPy: the simulator reports *when* each worker ran
(`WorkerSpan`s), this module turns those spans into USD with the platform's billing rules
(Runpod's documented semantics: runpod/docs serverless/pricing.mdx and
serverless/endpoints/endpoint-configurations.mdx @a900806e, 2026-08-20):

- pods: hourly rate per GPU × GPUs, billed per second (granularity settable);
- serverless active workers: always on, billed at the active per-second rate;
- serverless flex workers: billed at the flex per-second rate "from when a worker starts until it
  fully stops, rounded up to the nearest second" (cold start and idle timeout included).

Every default that has no published source is marked estimated in `BILLING_DEFAULTS`;
`assumptions()` lists those a run relied on, for the report's "Assumptions" section.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from planner.errors import PlannerError

# NOTE: a month is 730 hours (8,760 h / 12), the convention cloud price lists use for monthly
# figures; the per-month cost assumes the simulated horizon repeats for the whole month.
HOURS_PER_MONTH = 730.0
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600.0
# The one wording of the month assumption (cost breakdowns, assumptions lists, the plan report).
MONTH_ASSUMPTION = (f"monthly cost = horizon cost scaled to a {HOURS_PER_MONTH:g}-hour month, "
                    "assuming the simulated traffic repeats all month")


def per_month(usd: float, horizon_s: float) -> float:
    """A cost over `horizon_s` seconds scaled to a month (the horizon repeated back to back)."""
    if horizon_s <= 0:
        raise PlannerError(f"horizon must be > 0 seconds to scale a cost to a month, got {horizon_s}")
    return usd * SECONDS_PER_MONTH / horizon_s

# A span a few ULPs above a whole second must not be billed one second more.
_ROUNDING_SLACK_S = 1e-9

WorkerKind = Literal["pod", "active", "flex"]
PodCloud = Literal["secure", "community"]


# ----------------------------------------------------------------------------------------------
# Defaults and their sources
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourcedDefault:
    """A default setting with where it comes from; `estimated` when nothing published backs it."""

    value: Any
    source: str
    estimated: bool
    # (model preset id, GPU id) a measured default comes from, and why it may differ elsewhere:
    # assumptions() calls it an estimate for any other model or GPU.
    measured_on: tuple[str, str] | None = None
    elsewhere: str = ""


_RUNPOD_ENDPOINT_DOC = (
    "runpod/docs serverless/endpoints/endpoint-configurations.mdx @a900806e (2026-08-20)"
)
_TENSORFUSE = (
    "Tensorfuse, 'Reducing GPU Cold Start Time when using vLLM' (2025-09-01), "
    "https://tensorfuse.io/docs/blogs/reducing_gpu_cold_start: Llama-3.1-8B-Instruct bf16 on L40S"
)

BILLING_DEFAULTS: dict[str, SourcedDefault] = {
    "pod_cloud": SourcedDefault("secure", "issue #6: secure cloud unless the profile says otherwise", False),
    "pod_provider": SourcedDefault("runpod", "the catalog's main provider (every GPU file lists Runpod prices)", False),
    "pod_billing_granularity_seconds": SourcedDefault(
        1.0, "runpod/docs pods/pricing.mdx @a900806: pods are billed per second", False
    ),
    "pod_provisioning_delay_seconds": SourcedDefault(
        60.0, "estimated: no published pod start time; one minute to pull a cached image and load", True
    ),
    "active_workers": SourcedDefault(0, _RUNPOD_ENDPOINT_DOC + ": active (min) workers default 0", False),
    "max_workers": SourcedDefault(3, _RUNPOD_ENDPOINT_DOC + ": max workers default 3", False),
    "idle_timeout_seconds": SourcedDefault(5.0, _RUNPOD_ENDPOINT_DOC + ": idle timeout default 5 s", False),
    "scaler": SourcedDefault("queue-delay", _RUNPOD_ENDPOINT_DOC + ": queue delay is the default scaler", False),
    "scaler_value": SourcedDefault(
        4.0, _RUNPOD_ENDPOINT_DOC + ": queue-delay threshold default 4 s (request-count: requests per worker)", False
    ),
    "scaler_value_request_count": SourcedDefault(
        1.0, _RUNPOD_ENDPOINT_DOC + ": request-count scaler, 1 request per worker is the most responsive", False
    ),
    "max_concurrency_per_worker": SourcedDefault(
        30,
        "runpod/docs serverless/vllm/environment-variables.mdx @a900806: vLLM worker MAX_CONCURRENCY 30",
        False,
    ),
    "container_start_seconds": SourcedDefault(
        5.0, "estimated: no published container start time for a cached worker image", True
    ),
    # 16.06e9 B of Llama-3.1-8B bf16 weights loaded in 18 s from a local cache: 0.89e9 B/s.
    # Cross-check: ServerlessLLM (Fu et al., OSDI'24, arXiv 2401.14351 §2) reports LLaMA-2-70B
    # (~130 GB) loading in 84 s with existing loaders (~1.5e9 B/s) and 3.6-8.2x faster with its
    # own loader; a remote download (their example: 5 GB/s network) comes on top when not cached.
    "model_load_bytes_per_second": SourcedDefault(
        0.89e9, _TENSORFUSE + ": weights loaded in 18 s from a warm local cache (16.06 GB / 18 s)", False,
        measured_on=("llama-3.1-8b", "l40s"),
        elsewhere="the load rate is a property of the host's storage, not of the model",
    ),
    # Same measurement, cached column: Dynamo bytecode 10 s + graph compilation 13 s + CUDA graph
    # capture 7 s + engine init and imports 34 s = 64 s. Uncached it was 200 s.
    "engine_warmup_seconds": SourcedDefault(
        64.0, _TENSORFUSE + ": compile cache warm, 10 + 13 + 7 + 34 s (one model, one GPU)", False,
        measured_on=("llama-3.1-8b", "l40s"),
        elsewhere="the warm-up grows with model size and CUDA graph capture",
    ),
    "cached_model": SourcedDefault(
        False,
        "conservative choice: Runpod enables FlashBoot by default but publishes neither its latency "
        "nor how often it applies (runpod/docs endpoint-configurations.mdx), so a full cold start is assumed unless set",
        False,
    ),
    "cached_start_seconds": SourcedDefault(
        4.2,
        "estimated: Runpod says cached models start in 'a few seconds' (no number); 4.2 s is a "
        "third-party, unverified p99 first-request cold start (aiapiplaybook.com)",
        True,
    ),
}


def default(name: str) -> Any:
    """The default value of billing setting `name` (see BILLING_DEFAULTS for its source)."""
    return BILLING_DEFAULTS[name].value


# ----------------------------------------------------------------------------------------------
# The shapes this module reads (duck-typed: the real ones live in catalog, profile and sim)
# ----------------------------------------------------------------------------------------------


class WorkerSpanLike(Protocol):
    """What billing reads from `planner.sim.WorkerSpan` (times in simulated seconds)."""

    kind: str  # "pod" | "active" | "flex"
    started_at: float  # billing starts (a flex worker's cold start begins here)
    ready_at: float | None  # first moment it can serve; None = stopped while starting
    stopped_at: float | None  # billing stops; None = still running at the end of the run
    busy_s: float  # seconds the engine ran steps, i.e. with at least one request in flight
    gpus: int


class ResolvedPrices(BaseModel):
    """The prices one GPU type is billed at, with where each came from.

    Rates are per GPU; a worker or pod of `tensor_parallel_size` GPUs pays that many times more.
    `None` means no price is known (the catalog has none and the profile gives none).
    """

    model_config = ConfigDict(extra="forbid")

    gpu_id: str
    pod_cloud: PodCloud
    pod_provider: str
    pod_usd_per_gpu_hour: float | None = None
    pod_price_label: str = Field(description="which pod price was used, e.g. 'Runpod secure cloud'")
    pod_price_as_of: str | None = None
    pod_price_source: str | None = None
    serverless_tier: str | None = None
    flex_usd_per_gpu_s: float | None = None
    active_usd_per_gpu_s: float | None = None
    serverless_as_of: str | None = None
    serverless_source: str | None = None
    serverless_note: str | None = Field(
        default=None, description="ambiguity of the GPU → serverless tier mapping, if any"
    )
    overridden: list[str] = Field(default_factory=list, description="fields set by the profile's prices:")

    def pod_usd_per_hour(self, gpus: int = 1) -> float:
        """Hourly rate of one pod of `gpus` GPUs; PlannerError when no pod price is known."""
        if self.pod_usd_per_gpu_hour is None:
            raise PlannerError(
                f"no {self.pod_cloud} cloud pod price for GPU {self.gpu_id!r} from {self.pod_provider}: "
                f"add `prices: [{{gpu: {self.gpu_id}, pod_usd_per_hour: ...}}]` to the profile "
                "or set billing.pod_cloud to another cloud"
            )
        return self.pod_usd_per_gpu_hour * gpus

    def flex_usd_per_s(self, gpus: int = 1) -> float:
        """Per-second flex rate of one serverless worker of `gpus` GPUs."""
        if self.flex_usd_per_gpu_s is None:
            raise PlannerError(
                f"GPU {self.gpu_id!r} has no serverless price (no serverless tier offers it): "
                f"choose another GPU for serverless, or add `prices: [{{gpu: {self.gpu_id}, "
                "flex_usd_per_s: ...}]` to the profile"
            )
        return self.flex_usd_per_gpu_s * gpus

    def active_usd_per_s(self, gpus: int = 1) -> float:
        """Per-second active-worker rate of one serverless worker of `gpus` GPUs."""
        if self.active_usd_per_gpu_s is None:
            raise PlannerError(
                f"GPU {self.gpu_id!r} has no published serverless active-worker price: set "
                f"billing.active_workers to 0, or add `prices: [{{gpu: {self.gpu_id}, "
                "active_usd_per_s: ...}]` to the profile"
            )
        return self.active_usd_per_gpu_s * gpus


def _get(obj: Any, name: str, fallback: Any = None) -> Any:
    """Attribute or mapping key `name` of obj (catalog and profile objects, or plain dicts in tests)."""
    if obj is None:
        return fallback
    if isinstance(obj, dict):
        return obj.get(name, fallback)
    return getattr(obj, name, fallback)


# Where each setting lives in a profile (errors and assumptions name the field by this path).
_SERVERLESS_FIELDS = ("active_workers", "max_workers", "idle_timeout_seconds", "scaler", "scaler_value",
                      "max_concurrency_per_worker")
_COLD_START_FIELDS = ("container_start_seconds", "model_load_bytes_per_second", "engine_warmup_seconds",
                      "cached_model", "cached_start_seconds")


def setting_path(name: str) -> str:
    """The profile path of billing setting `name`, e.g. billing.serverless.cold_start.cached_model."""
    if name in _COLD_START_FIELDS:
        return f"billing.serverless.cold_start.{name}"
    if name in _SERVERLESS_FIELDS:
        return f"billing.serverless.{name}"
    return f"billing.{name}"


def _containers(settings: Any) -> list[Any]:
    """The objects a setting may sit in: the billing section, its serverless and cold_start blocks.

    Also accepts a flat mapping (tests, CLI overrides) or the serverless block itself.
    """
    if settings is None:
        return []
    serverless = _get(settings, "serverless")
    cold = _get(serverless, "cold_start") if serverless is not None else _get(settings, "cold_start")
    return [c for c in (settings, serverless, cold) if c is not None]


def _lookup(settings: Any, name: str) -> tuple[Any, bool]:
    """(value or None, set explicitly by the user) of setting `name`."""
    for container in _containers(settings):
        value = _get(container, name)
        if value is None:
            continue
        if isinstance(container, BaseModel):
            field = type(container).model_fields.get(name)
            explicit = name in container.model_fields_set or (field is not None and field.default is None)
        else:
            explicit = True
        return value, explicit
    return None, False


def _setting(settings: Any, name: str) -> Any:
    """A billing setting from the profile's billing section, or its sourced default when unset."""
    value, _ = _lookup(settings, name)
    if value is not None:
        return value
    if name == "scaler_value" and _setting(settings, "scaler") == "request-count":
        return default("scaler_value_request_count")
    return default(name)


def resolve_prices(gpu: Any, settings: Any = None, overrides: Iterable[Any] = ()) -> ResolvedPrices:
    """The prices for `gpu` (a catalog GpuSpec): the catalog's, replaced by the profile's overrides.

    Args:
        gpu: catalog entry with `id`, `pod_prices` (provider, cloud, usd_per_hour, as_of, source)
            and `serverless` (tier, flex_usd_per_s, active_usd_per_s, as_of, source,
            ambiguous_note) or None.
        settings: the profile's billing section (pod_cloud, pod_provider); None → defaults.
        overrides: the profile's `prices:` entries (gpu, pod_usd_per_hour, flex_usd_per_s,
            active_usd_per_s); those for other GPUs are ignored.

    Returns:
        ResolvedPrices. Missing prices stay None; they raise only when a billing mode needs them.
    """
    gpu_id = str(_get(gpu, "id"))
    cloud = _setting(settings, "pod_cloud")
    provider = str(_setting(settings, "pod_provider"))
    pod = _pick_pod_price(_get(gpu, "pod_prices", []) or [], cloud, provider)
    serverless = _get(gpu, "serverless")
    prices = ResolvedPrices(
        gpu_id=gpu_id,
        pod_cloud=cloud,
        pod_provider=provider,
        pod_usd_per_gpu_hour=None if pod is None else float(_get(pod, "usd_per_hour")),
        pod_price_label=("none in the catalog" if pod is None else f"{provider} on-demand"
                         if _get(pod, "cloud") == "on-demand" else f"{provider} {cloud} cloud on-demand"),
        pod_price_as_of=None if pod is None else _str_or_none(_get(pod, "as_of")),
        pod_price_source=None if pod is None else _str_or_none(_get(pod, "source")),
        serverless_tier=_str_or_none(_get(serverless, "tier")),
        flex_usd_per_gpu_s=_float_or_none(_get(serverless, "flex_usd_per_s")),
        active_usd_per_gpu_s=_float_or_none(_get(serverless, "active_usd_per_s")),
        serverless_as_of=_str_or_none(_get(serverless, "as_of")),
        serverless_source=_str_or_none(_get(serverless, "source")),
        serverless_note=_str_or_none(_get(serverless, "ambiguous_note")),
    )
    updates: dict[str, Any] = {}
    override_source = None
    for override in overrides:
        if str(_get(override, "gpu")) != gpu_id:
            continue
        override_source = override
        for field_in, field_out in (
            ("pod_usd_per_hour", "pod_usd_per_gpu_hour"),
            ("flex_usd_per_s", "flex_usd_per_gpu_s"),
            ("active_usd_per_s", "active_usd_per_gpu_s"),
        ):
            value = _get(override, field_in)
            if value is None:
                continue
            if not (value >= 0 and math.isfinite(value)):
                raise PlannerError(f"prices: {field_in} for {gpu_id} must be a finite number >= 0, got {value}")
            updates[field_out] = float(value)
    if updates:
        if "pod_usd_per_gpu_hour" in updates:
            updates.update(pod_price_label="profile override (negotiated rate)", pod_price_as_of=None,
                           pod_price_source=_str_or_none(_get(override_source, "source")) or "profile prices:")
        if "flex_usd_per_gpu_s" in updates or "active_usd_per_gpu_s" in updates:
            updates.update(serverless_source="profile prices:" if prices.serverless_source is None
                           else f"profile prices: (catalog: {prices.serverless_source})")
        updates["overridden"] = sorted(k for k in updates if k.endswith(("_hour", "_s")))
        prices = prices.model_copy(update=updates)
    return prices


def _pick_pod_price(pod_prices: Sequence[Any], cloud: str, provider: str) -> Any | None:
    """The newest price of `provider` on `cloud` (case-insensitive provider match).

    Providers without Runpod's secure/community split list their price as cloud "on-demand":
    for them that entry is used whichever cloud the profile names.
    """
    of_provider = [p for p in pod_prices if str(_get(p, "provider", "")).lower() == provider.lower()
                   and _get(p, "usd_per_hour") is not None]
    matching = [p for p in of_provider if _get(p, "cloud") == cloud]
    if not matching:
        matching = [p for p in of_provider if _get(p, "cloud") == "on-demand"]
    if not matching:
        return None
    return max(matching, key=lambda p: str(_get(p, "as_of") or ""))


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


# ----------------------------------------------------------------------------------------------
# Settings checks and the cold-start model
# ----------------------------------------------------------------------------------------------


def validate_settings(settings: Any) -> None:
    """Raise PlannerError for billing settings that cannot describe a real endpoint.

    The profile's pydantic model checks its fields; this also checks CLI overrides merged into
    plain mappings, and the relations between fields (max workers below active workers).
    """
    for name in ("idle_timeout_seconds", "container_start_seconds", "engine_warmup_seconds",
                 "cached_start_seconds", "pod_provisioning_delay_seconds"):
        value = _setting(settings, name)
        if not (value >= 0 and math.isfinite(value)):
            raise PlannerError(f"{setting_path(name)} must be a finite number of seconds >= 0, got {value}")
    if not _setting(settings, "pod_billing_granularity_seconds") > 0:
        raise PlannerError(f"{setting_path('pod_billing_granularity_seconds')} must be > 0 (1 = per second)")
    if not _setting(settings, "model_load_bytes_per_second") > 0:
        raise PlannerError(f"{setting_path('model_load_bytes_per_second')} must be > 0 (bytes per second)")
    active, max_workers = int(_setting(settings, "active_workers")), int(_setting(settings, "max_workers"))
    if active < 0:
        raise PlannerError(f"{setting_path('active_workers')} must be >= 0, got {active}")
    if max_workers < 1:
        raise PlannerError(f"{setting_path('max_workers')} must be >= 1, got {max_workers}")
    if max_workers < active:
        raise PlannerError(
            f"max workers ({max_workers}) is below active workers ({active}): max workers counts "
            f"active workers too; raise {setting_path('max_workers')} or lower the active workers"
        )
    scaler = _setting(settings, "scaler")
    if scaler not in ("queue-delay", "request-count"):
        raise PlannerError(f"{setting_path('scaler')} must be 'queue-delay' or 'request-count', got {scaler!r}")
    value = _setting(settings, "scaler_value")
    if not (value > 0 and math.isfinite(value)):
        unit = "seconds of queue delay" if scaler == "queue-delay" else "requests per worker"
        raise PlannerError(f"{setting_path('scaler_value')} must be > 0 ({unit}), got {value}")
    if int(_setting(settings, "max_concurrency_per_worker")) < 1:
        raise PlannerError(f"{setting_path('max_concurrency_per_worker')} must be >= 1")


def setting(settings: Any, name: str) -> Any:
    """Public accessor: billing setting `name` from the profile's section, else its sourced default."""
    return _setting(settings, name)


class ColdStart(BaseModel):
    """How long a serverless worker takes from start (billing begins) to ready, and why."""

    model_config = ConfigDict(extra="forbid")

    cached: bool = Field(description="cached-model / FlashBoot shortcut used")
    container_start_s: float
    weights_load_s: float = Field(description="weights bytes / model_load_bytes_per_second")
    engine_warmup_s: float
    total_s: float


def cold_start(weights_bytes: int, settings: Any = None) -> ColdStart:
    """Cold start of one worker: container start + weights / load bandwidth + engine warm-up.

    With `cached_model` (Runpod's cached models / FlashBoot revival keep the model and the
    engine's state on the host) the whole start is `cached_start_seconds` instead.

    Args:
        weights_bytes: bytes of weights the worker loads (the whole model; every GPU of a
            tensor-parallel worker reads its shard from the same host storage, so the host's load
            bandwidth is what bounds it).
        settings: the profile's billing section; None → sourced defaults.
    """
    if weights_bytes < 0:
        raise PlannerError(f"weights bytes must be >= 0, got {weights_bytes}")
    if bool(_setting(settings, "cached_model")):
        total = float(_setting(settings, "cached_start_seconds"))
        return ColdStart(cached=True, container_start_s=0.0, weights_load_s=0.0, engine_warmup_s=0.0,
                         total_s=total)
    container = float(_setting(settings, "container_start_seconds"))
    load = weights_bytes / float(_setting(settings, "model_load_bytes_per_second"))
    warmup = float(_setting(settings, "engine_warmup_seconds"))
    return ColdStart(cached=False, container_start_s=container, weights_load_s=load,
                     engine_warmup_s=warmup, total_s=container + load + warmup)


def cold_start_seconds(weights_bytes: int, settings: Any = None) -> float:
    """Seconds from a serverless worker's start to its first served request (see `cold_start`)."""
    return cold_start(weights_bytes, settings).total_s


# ----------------------------------------------------------------------------------------------
# Billing arithmetic
# ----------------------------------------------------------------------------------------------


def billed_seconds(duration_s: float, granularity_s: float = 1.0) -> float:
    """Duration rounded up to whole billing units ("rounded up to the nearest second")."""
    if duration_s <= 0:
        return 0.0
    units = math.ceil(duration_s / granularity_s - _ROUNDING_SLACK_S)
    return units * granularity_s


class WorkerCost(BaseModel):
    """One billing line: the workers of one kind."""

    model_config = ConfigDict(extra="forbid")

    kind: WorkerKind
    num_workers: int
    usd_per_gpu_s: float
    cost_usd: float
    billed_gpu_seconds: float
    busy_gpu_seconds: float = Field(description="GPU-seconds with at least one request in flight (the engine "
                                    "running steps); says nothing of how full the running batch is")
    idle_usd: float = Field(description="spend on billed GPU-seconds with no request in flight (cold starts included)")
    cold_starts: int
    cold_start_seconds: float


class CostBreakdown(BaseModel):
    """The money side of one simulated run.

    `cost_per_month_usd` scales the horizon's cost to a 730-hour month, assuming the simulated
    horizon is representative and repeats (`month_extrapolation` says so in words).
    """

    model_config = ConfigDict(extra="forbid")

    cost_usd: float
    cost_per_month_usd: float
    cost_per_million_output_tokens_usd: float | None
    cost_per_1000_requests_usd: float | None
    horizon_s: float
    billed_gpu_seconds: float
    busy_gpu_seconds: float = Field(description="GPU-seconds with at least one request in flight (the engine "
                                    "running steps); says nothing of how full the running batch is")
    utilization: float | None = Field(
        description="busy_gpu_seconds / billed_gpu_seconds: the share of billed time with any request in "
        "flight. Not how full the GPUs are: one request keeps a GPU 'in flight', so this reads near 100% at "
        "almost any load; compare the mean running batch with max_num_seqs (SimMetrics.batch_size_mean)")
    idle_usd: float = Field(description="spend on billed GPU-seconds with no request in flight (cold starts included)")
    cold_starts: int
    cold_start_seconds: float
    cold_start_usd: float
    output_tokens: int
    num_requests: int
    lines: list[WorkerCost]
    prices: ResolvedPrices
    month_extrapolation: str


def cost_of(
    workers: Sequence[WorkerSpanLike],
    prices: ResolvedPrices,
    horizon_s: float,
    *,
    output_tokens: int = 0,
    num_requests: int = 0,
    end_s: float | None = None,
    pod_billing_granularity_s: float = 1.0,
) -> CostBreakdown:
    """Turn the simulator's worker spans into USD.

    Args:
        workers: spans with kind "pod" | "active" | "flex", started_at, ready_at, stopped_at
            (None = still running), busy_s and gpus.
        prices: from `resolve_prices`.
        horizon_s: the traffic horizon; the per-month figure scales cost by a month / horizon.
        output_tokens: output tokens served (for USD per million output tokens).
        num_requests: requests served (for USD per 1,000 requests).
        end_s: when spans with stopped_at None stop being billed (default: horizon_s).
        pod_billing_granularity_s: pod billing unit (1 = per second).

    Returns:
        CostBreakdown for one horizon. A flex worker is billed from start to stop rounded up to a
        whole second (all of it: this horizon's traffic caused it); pods (rounded up to their
        granularity) and active workers (per second) are billed for their time inside
        [0, horizon_s], so the monthly figure of a fixed fleet is exactly rate × 730 h.
    """
    if horizon_s <= 0:
        raise PlannerError(f"horizon must be > 0 seconds to price a run, got {horizon_s}")
    stop_default = horizon_s if end_s is None else end_s
    lines: list[WorkerCost] = []
    cold_start_usd = 0.0
    for kind in ("pod", "active", "flex"):
        spans = [w for w in workers if w.kind == kind]
        if not spans:
            continue
        rate = {"pod": lambda: prices.pod_usd_per_hour(1) / 3600.0,
                "active": lambda: prices.active_usd_per_s(1),
                "flex": lambda: prices.flex_usd_per_s(1)}[kind]()
        granularity = pod_billing_granularity_s if kind == "pod" else 1.0
        cost = billed = busy = idle = cold_s = 0.0
        num_cold = 0
        for span in spans:
            stop = stop_default if span.stopped_at is None else span.stopped_at
            start = span.started_at
            if kind != "flex":
                # Always-on capacity is counted inside the horizon only: past it (the run draining
                # its last requests) is the next repetition's time, already in the monthly figure.
                start, stop = min(start, horizon_s), min(stop, horizon_s)
            span_billed_s = billed_seconds(stop - start, granularity)
            span_busy_s = min(max(span.busy_s, 0.0), span_billed_s)
            cost += rate * span.gpus * span_billed_s
            billed += span_billed_s * span.gpus
            busy += span_busy_s * span.gpus
            idle += rate * span.gpus * (span_billed_s - span_busy_s)
            ready = stop if span.ready_at is None else min(span.ready_at, stop)  # None: stopped while starting
            start_delay = max(ready - start, 0.0)
            if kind == "flex" or (kind == "active" and start_delay > 0):
                num_cold += 1
                cold_s += start_delay
                cold_start_usd += rate * span.gpus * start_delay
        lines.append(WorkerCost(kind=kind, num_workers=len(spans), usd_per_gpu_s=rate, cost_usd=cost,
                                billed_gpu_seconds=billed, busy_gpu_seconds=busy, idle_usd=idle,
                                cold_starts=num_cold, cold_start_seconds=cold_s))
    total = sum(line.cost_usd for line in lines)
    billed_total = sum(line.billed_gpu_seconds for line in lines)
    busy_total = sum(line.busy_gpu_seconds for line in lines)
    return CostBreakdown(
        cost_usd=total,
        cost_per_month_usd=per_month(total, horizon_s),
        cost_per_million_output_tokens_usd=total / output_tokens * 1e6 if output_tokens > 0 else None,
        cost_per_1000_requests_usd=total / num_requests * 1e3 if num_requests > 0 else None,
        horizon_s=horizon_s,
        billed_gpu_seconds=billed_total,
        busy_gpu_seconds=busy_total,
        utilization=busy_total / billed_total if billed_total > 0 else None,
        idle_usd=sum(line.idle_usd for line in lines),
        cold_starts=sum(line.cold_starts for line in lines),
        cold_start_seconds=sum(line.cold_start_seconds for line in lines),
        cold_start_usd=cold_start_usd,
        output_tokens=int(output_tokens),
        num_requests=int(num_requests),
        lines=lines,
        prices=prices,
        month_extrapolation=(
            f"cost for the {horizon_s / 3600:.3g} h horizon × {SECONDS_PER_MONTH / horizon_s:.4g}: {MONTH_ASSUMPTION}"
        ),
    )


def price_outcome(
    outcome: Any,
    prices: ResolvedPrices,
    horizon_s: float,
    *,
    pod_billing_granularity_s: float = 1.0,
) -> CostBreakdown:
    """The cost of a simulated run: its worker spans priced (`cost_of`), per completed request and
    per output token actually produced (completed requests' tokens), the same everywhere."""
    records = outcome.records
    completed = ~np.isnan(np.asarray(records.finished_at, dtype=np.float64))
    metrics = getattr(outcome, "metrics", None)
    end_s = getattr(metrics, "simulated_seconds", None)
    return cost_of(
        outcome.workers,
        prices,
        float(horizon_s),
        output_tokens=int(np.asarray(records.output_tokens)[completed].sum()),
        num_requests=int(np.count_nonzero(completed)),
        end_s=None if end_s is None else float(end_s),
        pod_billing_granularity_s=float(pod_billing_granularity_s),
    )


def headline(cost: CostBreakdown) -> dict[str, Any]:
    """The cost fields `planner simulate --json` adds at its top level (issue #6)."""
    return {
        "cost_usd": cost.cost_usd,
        "cost_per_month_usd": cost.cost_per_month_usd,
        "cost_per_million_output_tokens_usd": cost.cost_per_million_output_tokens_usd,
        "cost_per_1000_requests_usd": cost.cost_per_1000_requests_usd,
        "cold_starts": cost.cold_starts,
        "cold_start_seconds": cost.cold_start_seconds,
        "billed_gpu_seconds": cost.billed_gpu_seconds,
        "busy_gpu_seconds": cost.busy_gpu_seconds,
        "utilization": cost.utilization,
        "idle_usd": cost.idle_usd,
    }


# ----------------------------------------------------------------------------------------------
# Assumptions
# ----------------------------------------------------------------------------------------------



def _measured_origin(entry: SourcedDefault, model: str | None, gpu_ids: Sequence[str | None]) -> str:
    """Where a default measured on one (model, GPU) comes from, and for which GPUs it is an estimate.

    Several GPUs share one text (an optimizer report names every GPU its plans use); one GPU keeps
    the single-GPU wording `planner compare` and `simulate --billing` print.
    """
    m, g = entry.measured_on  # type: ignore[misc]
    names: list[str | None] = [gpu_id for gpu_id in gpu_ids if gpu_id] or [None]
    same_model = (model or "").lower() == m
    measured_here = same_model and g in [(n or "").lower() for n in names]
    others = [n for n in names if not (measured_here and (n or "").lower() == g)]
    if not others:
        return f"measured for {m} on {g}, this run's model and GPU: {entry.source}"
    if measured_here:
        return (f"measured for {m} on {g} ({entry.source}); applied as an estimate to "
                f"{', '.join(str(n) for n in others)}: {entry.elsewhere}")
    where = ", ".join(n or "this GPU" for n in others)
    target = f"{model or 'this model'} on {where}"
    return f"estimated for {target}: measured for {m} on {g} only ({entry.source}); {entry.elsewhere}"


def assumptions(
    settings: Any = None,
    prices: ResolvedPrices | None = None,
    *,
    serverless: bool = True,
    model: str | None = None,
    pods: bool = True,
    gpu_ids: Sequence[str] | None = None,
) -> list[str]:
    """The estimated or dated inputs a billed run relied on, one line each, for "Assumptions".

    Args:
        settings: the profile's billing section (a field the user set explicitly is theirs, not
            an assumption); None → all defaults.
        prices: the prices used (their dates and any tier ambiguity are listed; its gpu_id says
            which GPU a measured default is applied to).
        serverless: include the serverless-only settings (cold start, scaler).
        model: the model's preset id (ModelSpec.name): a default measured on one model and GPU
            (`SourcedDefault.measured_on`) is an estimate for any other; None → unknown, so
            an estimate too.
        pods: include the pod-only lines (provisioning delay, pod price).
        gpu_ids: the GPUs the serverless settings apply to, named once in a default measured on
            one GPU; None → prices' GPU.
    """
    names = ["pod_provisioning_delay_seconds"] if pods else []
    if serverless:
        names += ["container_start_seconds", "model_load_bytes_per_second", "engine_warmup_seconds",
                  "cached_model", "cached_start_seconds"]
        if bool(_setting(settings, "cached_model")):
            names = [n for n in names if n not in ("container_start_seconds", "model_load_bytes_per_second",
                                                   "engine_warmup_seconds")]
        else:
            names.remove("cached_start_seconds")
    lines: list[str] = []
    for name in names:
        if _lookup(settings, name)[1]:
            continue  # the user's own figure, not an assumption
        entry = BILLING_DEFAULTS[name]
        origin = entry.source if entry.estimated else f"default from {entry.source}"
        if entry.measured_on is not None:
            where = list(gpu_ids) if gpu_ids is not None else [prices.gpu_id if prices is not None else None]
            origin = _measured_origin(entry, model, where)
        lines.append(f"{setting_path(name)} = {entry.value:g} ({origin})" if isinstance(entry.value, float)
                     else f"{setting_path(name)} = {entry.value} ({origin})")
    lines.append(MONTH_ASSUMPTION)
    if prices is not None:
        lines += price_assumptions(prices, pods=pods, serverless=serverless)
    return lines


def price_assumptions(
    prices: ResolvedPrices, *, pods: bool = True, serverless: bool = True, name_gpu: bool = False
) -> list[str]:
    """The dated prices of one GPU, one line each: the pod price if pods, the serverless tier if serverless.

    name_gpu starts each line with the GPU id (for a list that covers several GPUs).
    """
    lines: list[str] = []
    who = f"{prices.gpu_id}: " if name_gpu else ""
    if pods and prices.pod_usd_per_gpu_hour is not None:
        lines.append(f"{who}pod price {prices.pod_usd_per_gpu_hour:g} USD/GPU-hour: {prices.pod_price_label}"
                     + (f", as of {prices.pod_price_as_of}" if prices.pod_price_as_of else "")
                     + (f" ({prices.pod_price_source})" if prices.pod_price_source else ""))
    if serverless and prices.flex_usd_per_gpu_s is not None:
        lines.append(
            f"{who}serverless tier {prices.serverless_tier or '?'}: flex {prices.flex_usd_per_gpu_s:g} USD/s, "
            f"active {prices.active_usd_per_gpu_s if prices.active_usd_per_gpu_s is not None else 'n/a'} USD/s"
            + (f", as of {prices.serverless_as_of}" if prices.serverless_as_of else "")
            + "; active prices are the last published ones (2025-08-25), newer docs quote them on request"
        )
        if prices.serverless_note:
            lines.append(f"serverless tier for {prices.gpu_id} is ambiguous: {prices.serverless_note}")
    return lines
