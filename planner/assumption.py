"""Assumptions as data: what an estimate is (topic, GPU, name, value, unit, source, what it concerns),
and the one place that words them.

Producers (billing's defaults and prices, the catalog's estimated specs and efficiencies, the
optimizer's method) return `Assumption` items; `render_lines` turns a list of them into the
report's lines. Nothing parses a line back: the optimizer groups the step-time efficiencies of
several GPUs by their data, not by their wording.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Topic = Literal[
    "setting",  # a billing default the run relied on (name: its profile path)
    "month",  # the month convention monthly figures scale to
    "pod_price",  # a GPU's dated pod price
    "serverless_price",  # a GPU's dated serverless tier
    "ambiguous",  # a price whose tier is not certain
    "gpu_spec",  # an estimated catalog figure of a GPU (memory, interconnect, ...)
    "efficiency",  # an estimated step-time efficiency parameter of a GPU
    "calibration",  # a GPU whose step times run on the user's `planner calibrate` fit
    "calibration_warning",  # that fit used outside the setups it was fitted on
    "method",  # how the planner computed something (capacities, demand, flex workers)
    "note",  # anything else worth listing
]
BillingModeOrAny = Literal["pod", "serverless", "*"]


class Assumption(BaseModel):
    """One estimated, dated or derived input a figure relied on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: Topic
    name: str = Field(description="what is assumed: a setting's profile path, a parameter, a price")
    gpu: str | None = Field(None, description="the GPU it is about (None: not GPU-specific)")
    value: bool | int | float | str | None = Field(None, description="the figure assumed (None: a statement without one)")
    unit: str = ""
    source: str = Field("", description="where the figure comes from, or why it is an estimate")
    concerns: list[tuple[str, str]] = Field(
        default_factory=list,
        description="(GPU, billing mode or '*') pairs of the plans it concerns; empty: the whole run",
    )


# Step-time efficiency parameters as a reader wants them: label, scale, unit.
_EFFICIENCY_LABELS: dict[str, tuple[str, float, str]] = {
    "gemm_scale": ("GEMM time scale", 1.0, ""),
    "attention_scale": ("attention time scale", 1.0, ""),
    "layer_fixed_s": ("per-layer", 1e6, " us"),
    "step_overhead_s": ("per-step overhead", 1e3, " ms"),
}


def _per(unit: str) -> str:
    """"USD per GPU-hour" -> "per GPU-hour" (the figure is printed in dollars)."""
    return unit.removeprefix("USD ")


def _figure(value: bool | int | float | str | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def render(item: Assumption, *, name_gpu: bool = True) -> str:
    """One assumption in words. `name_gpu=False` leaves the GPU out of price lines (a list about one GPU)."""
    who = f"{item.gpu}: " if item.gpu and name_gpu else ""
    t = item.topic
    if t == "setting":
        return f"{item.name} = {_figure(item.value)} ({item.source})"
    if t == "month":
        return (f"monthly cost = horizon cost scaled to a {_figure(item.value)}-hour month, "
                "assuming the simulated traffic repeats all month") + (f" ({item.source})" if item.source else "")
    if t == "pod_price":  # dollars like every other figure: "$3.99 per GPU-hour"
        return f"{who}pod price ${_figure(item.value)} {_per(item.unit)}: {item.source}"
    if t == "serverless_price":
        return f"{who}{item.name}: flex ${_figure(item.value)} {_per(item.unit)}, {item.source}"
    if t == "ambiguous":
        return f"{item.name} for {item.gpu} is ambiguous: {item.source}"
    if t == "gpu_spec":
        return f"{item.gpu}: {item.name} is estimated ({item.source})"
    if t == "calibration":
        return f"{item.gpu} runs on the user's calibration: {item.source}"
    if t == "calibration_warning":
        return f"WARNING: {item.gpu}'s calibration is used outside what it was fitted on: {item.source}"
    if t == "efficiency":
        return f"{item.gpu}: efficiency {item.name} = {item.value} is estimated ({item.source})"
    return f"{item.name}: {item.source}"  # method, note


def _efficiency_figures(items: Sequence[Assumption]) -> str:
    out = []
    for item in items:
        label, scale, unit = _EFFICIENCY_LABELS.get(item.name, (item.name.replace("_", " "), 1.0, ""))
        out.append(f"{label} {float(item.value or 0.0) * scale:.3g}{unit}")
    return ", ".join(out)


def _is_number(value: bool | int | float | str | None) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def grouped(items: Iterable[Assumption]) -> list[tuple[str, list[Assumption]]]:
    """The report's lines, each with the items it words (in order of first appearance).

    A GPU's step-time efficiencies of one source become one line ("h100-sxm: step-time
    efficiencies: bandwidth fraction 0.989, FLOP fraction 0.759, ...; source"), and GPUs with the
    same figures and source share it; every other item is a line of its own.
    """
    items = list(items)
    by_gpu: dict[tuple[str, str], list[Assumption]] = {}
    order: list[tuple[str, str] | int] = []  # a group key, or the index of an item on its own
    for index, item in enumerate(items):
        if item.topic != "efficiency" or item.gpu is None or not _is_number(item.value):
            order.append(index)
            continue
        key = (item.gpu, item.source)
        if key not in by_gpu:
            by_gpu[key] = []
            order.append(key)
        by_gpu[key].append(item)
    shared: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (figures, source) -> group keys
    for key, group in by_gpu.items():
        shared.setdefault((_efficiency_figures(group), key[1]), []).append(key)
    out: list[tuple[str, list[Assumption]]] = []
    for entry in order:
        if isinstance(entry, int):
            out.append((render(items[entry]), [items[entry]]))
            continue
        content = (_efficiency_figures(by_gpu[entry]), entry[1])
        keys = shared[content]
        if keys[0] != entry:
            continue
        names = {item.name for item in by_gpu[entry]}
        what = "step-time" if names <= {"step_overhead_s"} else "step-time efficiencies:"
        members = [item for key in keys for item in by_gpu[key]]
        out.append((f"{', '.join(k[0] for k in keys)}: {what} {content[0]}; {content[1]}", members))
    return out


def render_lines(items: Iterable[Assumption]) -> list[str]:
    """The report's lines for these items (see `grouped`)."""
    return [line for line, _ in grouped(items)]
