"""The `planner optimize` report: report.md, a self-contained report.html, plots, plan.json, deploy/.

Everything is rendered from the result (`OptimizeResult`, the same object plan.json holds), so a
report can be drawn again from plan.json alone. The Markdown is the report; report.html is that
Markdown rendered by markdown-it-py in a jinja2 page (planner.report.html_page) with the plots
inline. Everything is drawn into a temporary folder beside the destination and moved in only when
all of it is written (planner.report.files.write_folder), so an error never leaves half a report.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any


from planner.billing import HOURS_PER_MONTH
from planner.inputs.profile import Profile
from planner.optimize.result import alternatives_basis_usd_per_month, describe
from planner.report import deploy as deploy_mod
from planner.report import plan_plots
from planner.report.answer import ALTERNATIVE_LABELS, answer_markdown, pct, relative_cost, seconds, slo_of
from planner.report import schedule
from planner.report.files import check_output_dir, write_folder
from planner.report.finance_text import CSV_NAME, cost_lines_csv, finance_markdown
from planner.report.html_page import render_page
from planner.units import format_usd

PROFILE_COPY = "profile.yaml"


def _num(x: float | None, fmt: str = "{:.3f}") -> str:
    return "n/a" if x is None else fmt.format(x)


# ------------------------------------------------------------------------------------ plots ---


def _figures(result: Any, arts: Any) -> dict[str, bytes]:
    """PNG bytes of each plot: demand vs capacity, latency distributions, costs, alternatives."""
    users = getattr(result, "users", None) is not None  # a closed loop: demand and capacity in users
    out = {"demand.png": plan_plots.demand_figure(
        result.demand, None if arts is None else arts.provisioned_per_window, result.headroom or 0.9, result.horizon_s,
        unit="users" if users else "requests/s")}
    pods = schedule.schedule_figure(result)
    if pods is not None:
        out["schedule.png"] = pods
    if arts is not None:
        out["latency.png"] = plan_plots.latency_figure(arts.ttft_s, arts.tpot_s, result.slo_ttft_seconds,
                                                       result.slo_tpot_seconds)
    lines = result.verification.cost_lines
    if lines and result.cost_usd:
        out["cost.png"] = plan_plots.cost_figure(lines, result.cost_per_month_usd / result.cost_usd)
    alts = [a for a in result.alternatives if a.cost_per_month_usd is not None]
    if alts:
        out["alternatives.png"] = plan_plots.alternatives_figure(
            [_short_label(a) for a in alts], [a.cost_per_month_usd for a in alts],
            [_bar_label(a, result.slo_target) for a in alts], [a.kind == "optimized" for a in alts],
            [_misses_target(a) for a in alts], " (hatched: misses the SLO target)")
    return out


def _short_label(alt: Any) -> str:
    return {"single_gpu_pods": "one GPU type, pods", "all_serverless": "all serverless",
            "optimized": "this plan"}.get(alt.kind, alt.kind)


def _misses_target(alt: Any) -> bool:
    """An alternative simulated below the SLO attainment target (unsimulated ones are not judged)."""
    return alt.slo_attainment is not None and not alt.verified


def _bar_label(alt: Any, slo_target: float) -> str:
    """The text beside an alternative's bar: cost, SLO attainment, and whether it misses the target."""
    return (f"  {format_usd(alt.cost_per_month_usd)}/mo, SLO {pct(alt.slo_attainment)}"
            + (f" (below the {pct(slo_target, 0)} target)" if _misses_target(alt) else ""))


# ---------------------------------------------------------------------------------- markdown ---


def _plan_table(result: Any) -> list[str]:
    unit = "users" if getattr(result, "users", None) is not None else "req/s"
    rows = [f"| GPU | TP | billing | count | active | max flex | GPUs | traffic share | capacity/replica ({unit}) | MILP cost (horizon) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for e in result.plan:
        caps = ", ".join(f"{b}: {v:.2f}" for b, v in e.capacity_per_s.items())
        rows.append(
            f"| {e.gpu} | {e.tensor_parallel_size} | {e.billing} | {e.count} | {e.active_workers if e.billing != 'pod' else '-'} "
            f"| {e.max_flex_workers if e.billing != 'pod' else '-'} | {e.gpus} | {pct(e.traffic_share)} | {caps} | {format_usd(e.milp_cost_usd)} |"
        )
    return rows


def _alternatives_table(result: Any) -> list[str]:
    rows = ["| plan | cost / month | USD per million output tokens | SLO attainment | this plan against it |",
            "|---|---|---|---|---|"]
    for a in result.alternatives:
        label = ALTERNATIVE_LABELS.get(a.kind, a.kind)
        if not a.feasible:
            rows.append(f"| {label}: none | infeasible | | | {a.note or ''} |")
            continue
        against = "-" if a.kind == "optimized" or not a.cost_per_month_usd else \
            relative_cost(alternatives_basis_usd_per_month(result), a.cost_per_month_usd)
        note = f" ({a.note})" if a.note else ""
        rows.append(
            f"| {label}: {describe(a.plan)}{note} | {format_usd(a.cost_per_month_usd)} | {format_usd(a.usd_per_million_output_tokens)} "
            f"| {pct(a.slo_attainment)}{' (below target)' if _misses_target(a) else ''} | {against} |"
        )
    sampled = sorted({a.simulated_on for a in result.alternatives if a.simulated_on not in (None, "full horizon")})
    if sampled:
        rows += ["", f"All simulated on {', '.join(sampled)} of the run's own traffic draw, the optimized mix "
                     f"too, so they compare like with like; the answer's {format_usd(result.cost_per_month_usd)}/month "
                     "is its run over the whole horizon."]
    return rows


def _slo_text(result: Any) -> str:
    slo = slo_of(result)
    if slo is None or slo.ttft_seconds is None or slo.tpot_seconds is None:
        return f"{pct(result.slo_target, 0)} attainment"
    text = f"TTFT <= {slo.ttft_seconds:g} s and TPOT <= {slo.tpot_seconds:g} s for {pct(result.slo_target, 0)} of requests"
    limits = [f"p99 TTFT <= {slo.ttft_p99_seconds:g} s"] if slo.ttft_p99_seconds else []
    limits += [f"p99 TPOT <= {slo.tpot_p99_seconds:g} s"] if slo.tpot_p99_seconds else []
    return text + (f", and {' and '.join(limits)}" if limits else "")


def _img(images: dict[str, str], name: str, alt: str) -> list[str]:
    """A plot, linked to its PNG file beside the report (a phone opens it full size)."""
    if name not in images:
        return []
    return [f"[![{alt}]({images[name]})]({name})", ""]


def _tightened_text(tightened: dict[str, float]) -> str:
    """A round's tightened pools; more than three flex pools at one factor (a flex miss tightens
    every flex pool) in one phrase."""
    by_factor: dict[str, list[str]] = {}
    for name, value in tightened.items():
        by_factor.setdefault(f"x{value:.2f}", []).append(name)
    parts = []
    for factor, names in by_factor.items():
        if len(names) > 3 and all(n.endswith("-flex") for n in names):
            parts.append(f"{len(names)} flex pools {factor}")
        else:
            parts += [f"{n} {factor}" for n in names]
    return ", ".join(parts) or "-"


def render_markdown(result: Any, images: dict[str, str] | None = None, *, command: str | None = None) -> str:
    """The report as Markdown; `images` maps plot names to the links to use (files or data URIs)."""
    images = images or {}
    v = result.verification
    md: list[str] = [f"# Capacity plan: {result.profile}", ""]
    if result.description:
        md += [f"*{result.description.strip()}*", ""]
    md += [
        f"Model **{result.model}**, seed {result.seed}, horizon {result.horizon_s:g} s "
        f"({v.num_requests:,} requests). SLO: {_slo_text(result)}.",
        "",
    ]
    md += answer_markdown(result, slo_of(result), describe(result.plan))
    md += [f"> {n}" for n in result.notes] + ([""] if result.notes else [])
    if result.finance is not None:
        md += finance_markdown(result.finance, v.line_items)
    md += ["## Plan", ""] + _plan_table(result) + [""]
    md += ["## Alternatives", ""] + _alternatives_table(result) + [""]
    md += [
        "Costs are the simulated billing of each plan on the horizon's arrivals (pods "
        + ("from each start, provisioning included, until they stop after the slots their schedule gives "
           "them (draining included)"
           if getattr(result, "pod_schedule", "fixed") == "per_slot" else "for the whole horizon")
        + ", serverless workers from start to stop, cold starts included), scaled to a "
        f"{HOURS_PER_MONTH:g}-hour month.",
        "",
    ]
    md += _img(images, "alternatives.png", "alternatives")
    md += ["## Demand and capacity", ""] + _img(images, "demand.png", "demand vs capacity")
    md += schedule.schedule_lines(result, images.get("schedule.png")) + schedule.solver_lines(result)
    md += [
        f"Each {result.demand.slot_seconds:g} s slot is planned for the "
        f"{pct(result.demand_percentile or 0.99, 0)} quantile of its one-minute rates (bursts count), split into "
        "demand levels so that serverless workers can cover the busy minutes only.",
        "",
        "## Latency (simulated)",
        "",
        "| TTFT p50 | TTFT p99 | TPOT p50 | TPOT p99 | missed the SLO | of those, waited for a cold start | cold starts |",
        "|---|---|---|---|---|---|---|",
        f"| {seconds(v.ttft_p50_s)} | {seconds(v.ttft_p99_s)} | {seconds(v.tpot_p50_s)} | {seconds(v.tpot_p99_s)} "
        f"| {v.slo_misses:,} | {v.misses_after_cold_start:,} | {v.cold_starts} |",
        "",
    ]
    md += _img(images, "latency.png", "latency")
    md += ["## Cost breakdown", "", "| line | USD (horizon) | USD per month |", "|---|---|---|"]
    scale = result.cost_per_month_usd / result.cost_usd if result.cost_usd else 0.0
    for name, usd in v.cost_lines.items():
        md.append(f"| {name} | {format_usd(usd)} | {format_usd(usd * scale)} |")
    md.append("")
    md += _img(images, "cost.png", "cost")
    md += ["## Rounds (solve, then verify by simulation)", "",
           "| round | plan | MILP $/month | simulated $/month | SLO attainment | tightened next |", "|---|---|---|---|---|---|"]
    for r in result.rounds:
        tight = _tightened_text(r.tightened)
        md.append(f"| {r.round} | {r.plan} | {format_usd(r.milp_cost_per_month_usd)} | {format_usd(r.cost_per_month_usd)} | {pct(r.slo_attainment)} | {tight} |")
    md.append("")
    md += ["## Capacity of one replica under the SLO", ""]
    if getattr(result, "users", None) is not None:
        md += ["Closed loop: the most users one replica serves under the SLO (their request rate as simulated).", "",
               "| GPU | TP | max users | req/s at max users | source | probes |", "|---|---|---|---|---|---|"]
        for c in result.capacities:
            md.append(f"| {c['gpu_id']} | {c['tensor_parallel_size']} | {c.get('max_users') or 0:,} | "
                      f"{c['max_rate_per_s']:.3f} | {c['source']} | {c['evaluations']} |")
    else:
        md += ["| GPU | TP | bucket | max req/s | source | probes |", "|---|---|---|---|---|---|"]
        for c in result.capacities:
            md.append(f"| {c['gpu_id']} | {c['tensor_parallel_size']} | {c['bucket']} | {c['max_rate_per_s']:.3f} | {c['source']} | {c['evaluations']} |")
    rejected = [c for c in result.candidates if not c.get("fits")]
    if rejected:
        md += ["", "Candidates left out:", ""]
        md += [f"- {c['gpu_id']} tp{c['tensor_parallel_size']}: {c.get('reason')}" for c in rejected]
    md.append("")
    md += ["## Deploy", "", deploy_mod.deploy_text(result.deploy, result.profile), ""]
    md += ["## Assumptions", "", "### For the chosen plan", ""] + [f"- {a}" for a in result.assumptions] + [""]
    if result.alternative_assumptions:
        md += ["### For the alternatives shown (not already listed above)", ""]
        md += [f"- {a}" for a in result.alternative_assumptions] + [""]
    md += [
        "## Run",
        "",
        f"Wall time {result.wall_seconds:.1f} s (capacities {result.capacity_seconds:.1f} s, "
        f"simulation {result.simulate_seconds:.1f} s, MILP {result.solve_seconds:.2f} s), "
        f"planner {result.planner_version or 'version unknown'}.",
        "",
    ]
    if command:
        md += ["Command:", "", "```bash", command, "```", ""]
    md += [f"Files: [{PROFILE_COPY}]({PROFILE_COPY}) (the profile this plan answers), [plan.json](plan.json) "
           f"(the whole result), [{CSV_NAME}]({CSV_NAME}) (the cost lines), deploy/ (the deploy settings).", ""]
    return "\n".join(md)


# -------------------------------------------------------------------------------------- html ---


def render_html(md_with_data_uris: str, title: str, command: str | None = None) -> str:
    """report.html: the Markdown (plots as data URIs) rendered into the page template."""
    return render_page(md_with_data_uris, title=title, command=command)


# ------------------------------------------------------------------------------------ writer ---


def write_report(result: Any, arts: Any, directory: str | Path, *, profile: Profile | None = None,
                 profile_text: str | None = None, command: str | None = None) -> list[Path]:
    """Write the whole report into `directory` (created; files there with the same names replaced).

    Args:
        result: planner.optimize.result.OptimizeResult (it carries everything the text needs).
        arts: planner.optimize.result.PlanArtifacts (latency arrays, provisioned capacity), or None.
        directory: destination folder.
        profile: the Profile; fills what an older result lacks (SLO, headroom) and, without
            `profile_text`, is written as profile.yaml.
        profile_text: the profile file as the user wrote it, copied to profile.yaml.
        command: the command line that made the plan, shown in the report.
    Returns:
        The files written.
    """
    directory = Path(directory)
    result = _with_profile(result, profile)
    check_report_dir(directory)
    if profile_text is None and profile is not None:
        import yaml  # noqa: PLC0415

        profile_text = ("# The profile as planner read it (defaults filled in).\n"
                        + yaml.safe_dump(profile.model_dump(mode="json", exclude_none=True), sort_keys=False))
    title = f"Capacity plan: {result.profile}"

    def fill(tmp: Path) -> None:
        figures = _figures(result, arts)
        for name, data in figures.items():
            (tmp / name).write_bytes(data)
        (tmp / "report.md").write_text(render_markdown(result, {k: k for k in figures}, command=command))
        uris = {k: "data:image/png;base64," + base64.b64encode(v).decode() for k, v in figures.items()}
        (tmp / "report.html").write_text(render_html(render_markdown(result, uris, command=command), title, command))
        (tmp / "plan.json").write_text(result.model_dump_json(indent=2) + "\n")
        scale = result.cost_per_month_usd / result.cost_usd if result.cost_usd else 0.0
        (tmp / CSV_NAME).write_text(cost_lines_csv(result.verification.line_items, scale))
        if profile_text is not None:
            (tmp / PROFILE_COPY).write_text(profile_text)
        dep = tmp / "deploy"
        dep.mkdir()
        for rel, (text, _executable) in deploy_mod.deploy_files(result.deploy, result.profile).items():
            (dep / rel).write_text(text)
        for e in result.deploy:
            pod_schedule = schedule.schedule_file(e)
            if pod_schedule is not None:
                (dep / f"{e['gpu']}-tp{e['tensor_parallel_size']}-pod.schedule.tsv").write_text(pod_schedule)

    # The whole folder is drawn in a temporary folder and moved in at the end (files.write_folder).
    return write_folder(directory, fill, what="--report", executable=lambda rel: rel.suffix == ".sh",
                        replace_dirs=("deploy",))


def _with_profile(result: Any, profile: Profile | None) -> Any:
    """A result from before it carried its SLO and optimizer settings (a plan.json written before
    those fields existed), completed from the profile."""
    if profile is None or result.slo_ttft_seconds is not None:
        return result
    return result.model_copy(update={
        "slo_ttft_seconds": profile.slo.ttft_seconds, "slo_tpot_seconds": profile.slo.tpot_seconds,
        "slo_ttft_p99_seconds": profile.slo.ttft_p99_seconds, "slo_tpot_p99_seconds": profile.slo.tpot_p99_seconds,
        "headroom": profile.optimizer.headroom, "demand_percentile": profile.optimizer.demand_percentile,
        "description": profile.description})


def check_report_dir(directory: str | Path) -> Path:
    """Refuse an unusable report folder up front (a file, an unwritable place, an empty name)."""
    return check_output_dir(directory, "--report")
