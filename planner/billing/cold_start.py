"""Serverless settings checks and the cold-start model (container start, weight load, engine warm-up)."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# The month convention lives with the units (traffic and billing both scale to it).
from planner.billing.prices import _setting, setting_path
from planner.errors import PlannerError

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


