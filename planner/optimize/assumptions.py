"""The assumptions of a plan (and of its alternatives), one line per fact naming its GPUs."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from planner import billing
from planner.errors import PlannerError
from planner.optimize.result import (
    PlanEntry,
)

if TYPE_CHECKING:
    from planner.capacity import Concerns
from planner.optimize.backend import PlanningBackend
from planner.optimize.world import _World

_EFFICIENCY_LABELS: dict[str, tuple[str, float, str]] = {
    "stream_bandwidth_fraction": ("bandwidth fraction", 1.0, ""),
    "flop_fraction": ("FLOP fraction", 1.0, ""),
    "roofline_exponent": ("roofline exponent", 1.0, ""),
    "kernel_fixed_s": ("per-kernel", 1e6, " us"),
    "layer_fixed_s": ("per-layer", 1e6, " us"),
    "activation_passes": ("activation passes", 1.0, ""),
    "attention_flop_fraction": ("attention FLOP fraction", 1.0, ""),
    "attention_unit_bytes_per_s": ("attention unit", 1e-9, " GB/s"),
    "eager_launch_s_per_layer": ("eager launch per layer", 1e6, " us"),
    "host_overhead_s": ("host overhead per step", 1e3, " ms"),
}
_EFFICIENCY_LINE = re.compile(r"^(?P<gpu>[^:]+): efficiency (?P<name>\w+) = (?P<value>\S+) is estimated \((?P<source>.*)\)$")


def collapse_gpu_lines(items: Sequence[tuple[str, Concerns]]) -> list[tuple[str, Concerns]]:
    """Lines that differ only by GPU become one line naming the GPUs; each keeps what it concerns.

    The catalog's assumptions list each estimated efficiency of each GPU on its own line with its
    source; a budget reader needs the figures once: "h100-sxm: step-time efficiencies: bandwidth
    fraction 0.989, FLOP fraction 0.759, per-layer 75 us, ...; derived from ...", and GPUs with
    the same figures and source share that line. Parameters with a different source (the
    host-overhead setting) get their own line, shared by the GPUs. Other lines pass through in
    order; the collapsed lines take the place of each group's first line and concern every GPU of
    the group (`capacity.Concerns`), so a line shared by the plan's GPU and an alternative's
    counts for the plan. (Billing's serverless settings name their GPUs at the source:
    `billing.assumptions(gpu_ids=...)`.)
    """
    groups: dict[tuple[str, str], list[tuple[str, float]]] = {}
    concerns: dict[tuple[str, str], set[tuple[str, str]]] = {}
    order: list[tuple[str, str] | int] = []  # a group's key, or the index of an item passed through
    for index, (line, about) in enumerate(items):
        m = _EFFICIENCY_LINE.match(line)
        try:
            value = float(m["value"]) if m else None
        except ValueError:
            value = None
        if m is None or value is None:
            order.append(index)
            continue
        key = (m["gpu"].strip(), m["source"])
        if key not in groups:
            groups[key] = []
            concerns[key] = set()
            order.append(key)
        groups[key].append((m["name"], value))
        concerns[key] |= about

    def figures(items: list[tuple[str, float]]) -> str:
        out = []
        for name, value in items:
            label, scale, unit = _EFFICIENCY_LABELS.get(name, (name.replace("_", " "), 1.0, ""))
            out.append(f"{label} {value * scale:.3g}{unit}")
        return ", ".join(out)

    # GPUs whose figures and source are the same share one line.
    merged: dict[tuple[str, str], list[str]] = {}
    merged_concerns: dict[tuple[str, str], set[tuple[str, str]]] = {}
    first: dict[tuple[str, str], tuple[str, str]] = {}
    for key, group in groups.items():
        content = (figures(group), key[1])
        merged.setdefault(content, []).append(key[0])
        merged_concerns.setdefault(content, set()).update(concerns[key])
        first.setdefault(content, key)
    out: list[tuple[str, Concerns]] = []
    for entry in order:
        if isinstance(entry, int):
            out.append(items[entry])
            continue
        content = (figures(groups[entry]), entry[1])
        if first[content] != entry:
            continue
        names = {name for name, _ in groups[entry]}
        what = "step-time" if names <= {"host_overhead_s"} else "step-time efficiencies:"
        out.append((f"{', '.join(merged[content])}: {what} {content[0]}; {content[1]}",
                    frozenset(merged_concerns[content])))
    return out


def collapse_efficiency_lines(lines: Sequence[str]) -> list[str]:
    """`collapse_gpu_lines` for plain lines (what they concern unknown)."""
    return [line for line, _ in collapse_gpu_lines([(line, frozenset()) for line in lines])]


def _uses(entries: Sequence[PlanEntry]) -> dict[str, set[str]]:
    """GPU id -> the billing modes these plan lines use it in (sorted by GPU id)."""
    out: dict[str, set[str]] = {}
    for e in sorted(entries, key=lambda e: e.gpu):
        out.setdefault(e.gpu, set()).add(e.billing)
    return out


def _assumptions(
    world: _World, backend: PlanningBackend, plan_entries: Sequence[PlanEntry], shown_entries: Sequence[PlanEntry]
) -> tuple[list[str], list[str]]:
    """Every estimated input behind the answer, for the report's Assumptions section.

    Returns (the chosen plan's lines, the lines only the alternatives shown need). A line counts
    for the plan when it concerns a (GPU, billing mode) the plan uses, or the whole run.
    """
    opt = world.profile.optimizer
    plan_uses = _uses(plan_entries)
    all_uses = _uses([*plan_entries, *shown_entries])

    def for_plan(about: Concerns) -> bool:
        return not about or any(gpu in plan_uses and (mode == "*" or mode in plan_uses[gpu]) for gpu, mode in about)

    plan_lines: list[str] = []
    alt_lines: list[str] = []
    try:
        raw = [(item, frozenset()) if isinstance(item, str) else item
               for item in backend.assumptions(world.profile, all_uses)]
        for line, about in collapse_gpu_lines(raw):
            if line == billing.MONTH_ASSUMPTION:
                continue  # said below with the horizon
            (plan_lines if for_plan(about) else alt_lines).append(line)
    except PlannerError as err:
        plan_lines.append(f"catalog assumptions unavailable: {err}")
    if world.measured:
        src = getattr(world.profile.capacity, "source", None) or "no source given"
        plan_lines.append(f"capacities: measured by the user (profile capacity section; {src}), not simulated")
    else:
        cv = next((c.burstiness_cv for c in world.capacity_results if c.burstiness_cv), None)
        n = next((c.num_requests for c in world.capacity_results if c.num_requests), None)
        plan_lines.append(
            f"capacities: simulated, one replica, {n} requests per bisection step, gamma arrivals "
            f"with CV {cv if cv is None else round(cv, 2)} (the profile's burstiness within one-minute windows); "
            "short runs start empty, so they can be optimistic: the plan is verified on the whole horizon"
        )
    plan_lines.append(
        f"demand: the {opt.demand_percentile:.0%} quantile of one-minute rates in each "
        f"{opt.slot_seconds:g} s slot; lower demand levels at their busiest minute; replicas loaded "
        f"to {opt.headroom:.0%} of capacity"
    )
    flex = ("flex workers in the MILP: billed for their level's time plus (cold start + idle timeout) per "
            "scale-up; the reported cost is the simulated billing of the endpoint's autoscaler")
    plan_serverless = any("serverless" in modes for modes in plan_uses.values())
    (plan_lines if plan_serverless else alt_lines).append(flex)
    plan_lines.append(
        f"{billing.MONTH_ASSUMPTION} (simulated horizon: {world.workload.horizon_s:g} s)"
    )
    return plan_lines, alt_lines


