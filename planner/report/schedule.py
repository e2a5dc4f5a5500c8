"""The optimize report's schedule parts: pods over time stacked by GPU type, what the solver proved, the
traffic draws, and the pod schedule as UTC start/stop times for deployment.

Kept apart from the report layout (optimize_report.py) so each can change alone; every function
takes the `OptimizeResult` and returns bytes or text.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from planner.units import format_usd


def schedule_figure(result: Any) -> bytes | None:
    """PNG: pods over time, stacked by GPU type (bands) with their total (a line), over the
    demand; None without a pod schedule. Stacked, a plan that swaps one pod's type by the hour
    reads as one band changing colour, and one that adds pods as a band growing."""
    scheduled = [e for e in result.plan if e.billing == "pod" and len(set(e.pods_per_slot)) > 1]
    if not scheduled:
        return None
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    d = result.demand
    rates = np.asarray(d.rate_per_s, dtype=float).sum(axis=1) if d.rate_per_s else np.zeros(0)
    hours = np.arange(len(rates)) * d.window_s / 3600.0
    fig, ax = plt.subplots(figsize=(9, 3.6))
    pods_ax = ax.twinx()
    ax.set_zorder(pods_ax.get_zorder() + 1)  # the demand line over the bands
    ax.patch.set_visible(False)
    ax.plot(hours, rates, color="#555555", linewidth=0.5, label="demand (requests/s, one-minute windows)")
    ax.set_xlabel("hours from start")
    ax.set_ylabel("requests/s")
    colors = ["#cc6677", "#4477aa", "#228833", "#ccbb44", "#aa3377", "#66ccee"]
    pod_lines = [e for e in result.plan if e.billing == "pod"]
    num_slots = max(len(e.pods_per_slot) for e in pod_lines)
    t = np.arange(num_slots + 1) * d.slot_seconds / 3600.0
    base = np.zeros(num_slots)
    for i, e in enumerate(pod_lines):
        pods = np.asarray(list(e.pods_per_slot) or [e.count], dtype=float)
        pods = np.concatenate([pods, np.full(num_slots - len(pods), pods[-1])])  # the last count holds
        top = base + pods
        label = f"{e.gpu}" + (f" TP{e.tensor_parallel_size}" if e.tensor_parallel_size > 1 else "") + " pods"
        pods_ax.fill_between(t, np.append(base, base[-1]), np.append(top, top[-1]), step="post",
                             color=colors[i % len(colors)], alpha=0.45, linewidth=0, label=label)
        base = top
    pods_ax.step(t, np.append(base, base[-1]), where="post", color="black", linewidth=1.0, label="pods in all")
    pods_ax.set_ylabel("pods (stacked)")
    pods_ax.set_ylim(0, max(1.0, float(base.max())) * 1.6)  # room for the legend above the bands
    pods_ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Pods over time, stacked by GPU type, over the demand")
    lines = ax.get_legend_handles_labels()
    more = pods_ax.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="upper left", ncol=3, framealpha=0.9)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def solver_lines(result: Any) -> list[str]:
    """Markdown: what the MILP solver proved and on which model; the plan over the traffic draws."""
    md: list[str] = []
    s = result.solver
    if s is not None:
        md += [f"MILP ({s.solver}): {s.text}. Model solved: {s.model_scope} "
               f"({s.num_variables:,} variables, {s.num_constraints:,} constraints). "
               f"Pods: {'a count per slot' if result.pod_schedule == 'per_slot' else 'fixed for the horizon'}.", ""]
    sc = result.scenarios
    if sc is not None and sc.num_scenarios > 1:
        md += ["| traffic draw | seed | simulated on | SLO attainment | cost per month |", "|---|---|---|---|---|"]
        for r in sc.runs:
            att = "n/a" if r.slo_attainment is None else f"{r.slo_attainment:.1%}"
            md.append(f"| {r.scenario} | {r.seed} | {r.simulated_on} | {att} | {format_usd(r.cost_per_month_usd)} |")
        md += ["", f"Over the {sc.num_scenarios} draws: SLO attainment min {_pct(sc.slo_attainment_min)}, median "
               f"{_pct(sc.slo_attainment_median)}, max {_pct(sc.slo_attainment_max)}; cost per month min "
               f"{format_usd(sc.cost_per_month_usd_min)}, median {format_usd(sc.cost_per_month_usd_median)}, max "
               f"{format_usd(sc.cost_per_month_usd_max)} (costs of sampled days are per month at those days' rate).", ""]
    return md


def schedule_lines(result: Any, image: str | None) -> list[str]:
    """Markdown: the pod schedule plot and, per scheduled pool, its UTC start/stop times."""
    md: list[str] = []
    if image:
        md += [f"[![pods over time, stacked by GPU type]({image})](schedule.png)", ""]  # linked, as the other plots
    for dep in result.deploy:
        text = schedule_text(dep)
        if text:
            md += [f"**{dep['gpu']} (TP{dep['tensor_parallel_size']}) pods**: " + text, ""]
    return md


def schedule_text(dep: dict[str, Any]) -> str:
    """One pool's schedule in words: '+1 Mon 05:59 UTC, -1 Mon 22:00 UTC, ...; repeats weekly'."""
    sched = dep.get("schedule")
    if not sched:
        return ""
    events = ", ".join(f"{'+' if ev['action'] == 'start' else '-'}{ev['pods']} at {ev['at_utc']} UTC" for ev in sched["events"])
    period_h = sched["repeats_every_s"] / 3600.0
    return f"{events}; repeats every {period_h:g} h ({sched['note']})."


def schedule_file(dep: dict[str, Any]) -> str | None:
    """deploy/<pool>.schedule.tsv: one row per start/stop, for a cron job or a scaler."""
    sched = dep.get("schedule")
    if not sched:
        return None
    rows = ["at_utc\taction\tpods\trunning_after\toffset_s"]
    rows += [f"{ev['at_utc']}\t{ev['action']}\t{ev['pods']}\t{ev['running_after']}\t{ev['offset_s']:g}" for ev in sched["events"]]
    return "\n".join(rows) + "\n"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"
