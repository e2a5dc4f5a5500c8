"""The billing assumptions a run relied on (defaults and prices used), for the report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from planner.assumption import Assumption, render
from planner.billing.defaults import BILLING_DEFAULTS, SourcedDefault
from planner.billing.prices import ResolvedPrices, _lookup, _setting, setting_path
from planner.units import HOURS_PER_MONTH


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


def assumption_items(
    settings: Any = None,
    prices: ResolvedPrices | None = None,
    *,
    serverless: bool = True,
    model: str | None = None,
    pods: bool = True,
    gpu_ids: Sequence[str] | None = None,
) -> list[Assumption]:
    """The estimated or dated inputs a billed run relied on, for "Assumptions".

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
    items: list[Assumption] = []
    for name in names:
        if _lookup(settings, name)[1]:
            continue  # the user's own figure, not an assumption
        entry = BILLING_DEFAULTS[name]
        origin = entry.source if entry.estimated else f"default from {entry.source}"
        if entry.measured_on is not None:
            where = list(gpu_ids) if gpu_ids is not None else [prices.gpu_id if prices is not None else None]
            origin = _measured_origin(entry, model, where)
        items.append(Assumption(topic="setting", name=setting_path(name), value=entry.value, source=origin))
    items.append(month_assumption())
    if prices is not None:
        items += price_assumption_items(prices, pods=pods, serverless=serverless)
    return items


def month_assumption(source: str = "") -> Assumption:
    """The month convention monthly figures scale to (`source`: what the horizon was, if said)."""
    return Assumption(topic="month", name="month", value=HOURS_PER_MONTH, unit="hours", source=source)


def assumptions(
    settings: Any = None,
    prices: ResolvedPrices | None = None,
    *,
    serverless: bool = True,
    model: str | None = None,
    pods: bool = True,
    gpu_ids: Sequence[str] | None = None,
) -> list[str]:
    """`assumption_items` in words, one line each (a list about one GPU: prices without its name)."""
    return [render(item, name_gpu=False) for item in assumption_items(
        settings, prices, serverless=serverless, model=model, pods=pods, gpu_ids=gpu_ids)]


def price_assumptions(
    prices: ResolvedPrices, *, pods: bool = True, serverless: bool = True, name_gpu: bool = False
) -> list[str]:
    """`price_assumption_items` in words; name_gpu starts each line with the GPU id."""
    return [render(item, name_gpu=name_gpu) for item in price_assumption_items(prices, pods=pods, serverless=serverless)]


def price_assumption_items(prices: ResolvedPrices, *, pods: bool = True, serverless: bool = True) -> list[Assumption]:
    """The dated prices of one GPU: the pod price if pods, the serverless tier if serverless."""
    items: list[Assumption] = []
    gpu = prices.gpu_id
    if pods and prices.pod_usd_per_gpu_hour is not None:
        items.append(Assumption(
            topic="pod_price", name="pod price", gpu=gpu, value=prices.pod_usd_per_gpu_hour, unit="USD per GPU-hour",
            source=prices.pod_price_label + (f", as of {prices.pod_price_as_of}" if prices.pod_price_as_of else "")
            + (f" ({prices.pod_price_source})" if prices.pod_price_source else "")))
    if serverless and prices.flex_usd_per_gpu_s is not None:
        active = prices.active_usd_per_gpu_s
        items.append(Assumption(
            topic="serverless_price", name=f"serverless tier {prices.serverless_tier or '?'}", gpu=gpu,
            value=prices.flex_usd_per_gpu_s, unit="USD per GPU-second",
            source=f"active {'n/a' if active is None else f'${active:g} per GPU-second'}"
            + (f", as of {prices.serverless_as_of}" if prices.serverless_as_of else "")
            + "; active prices are the last published ones (2025-08-25), newer docs quote them on request"))
        if prices.serverless_note:
            items.append(Assumption(topic="ambiguous", name="serverless tier", gpu=gpu, source=prices.serverless_note))
    return items
