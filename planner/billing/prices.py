"""Which price applies: a GPU's catalog prices resolved against the profile's billing settings and overrides."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

# The month convention lives with the units (traffic and billing both scale to it).
from planner.billing.defaults import PodCloud, default
from planner.errors import PlannerError

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


def _override_gpu_id(name: str) -> str:
    """A `prices:` entry's GPU: its id, or the id inside a GPU YAML it names by path."""
    if not name.endswith((".yaml", ".yml")):
        return name
    from planner.inputs.catalog import get_gpu

    return get_gpu(name).id


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
        if _override_gpu_id(str(_get(override, "gpu"))) != gpu_id:
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


