"""The `planner optimize` report: report.md, a self-contained report.html, plots, plan.json, deploy/.

Everything is drawn into a temporary folder beside the destination and moved in only when all of
it is written (planner.report.files.write_folder), so an error never leaves half a report.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from planner.billing import HOURS_PER_MONTH
from planner.inputs.profile import Profile
from planner.report import deploy as deploy_mod
from planner.report.files import check_output_dir, write_folder
from planner.units import format_usd


def _pct(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x * 100:.{digits}f}%"


def _num(x: float | None, fmt: str = "{:.3f}") -> str:
    return "n/a" if x is None else fmt.format(x)


# ------------------------------------------------------------------------------------ plots ---


def _figures(result: Any, arts: Any) -> dict[str, bytes]:
    """PNG bytes of each plot: demand vs capacity, latency distributions, costs, alternatives."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    out: dict[str, bytes] = {}

    def save(name: str, fig: Any) -> None:
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=110)
        plt.close(fig)
        out[name] = buf.getvalue()

    # Demand vs provisioned capacity.
    d = result.demand
    rates = np.asarray(d.rate_per_s, dtype=float).sum(axis=1) if d.rate_per_s else np.zeros(0)
    t_min = np.arange(len(rates)) * d.window_s / 60.0
    fig, ax = plt.subplots(figsize=(9, 3.6))
    users = getattr(result, "users", None) is not None  # a closed loop: demand and capacity in users
    unit = "users" if users else "requests/s"
    ax.step(t_min, rates, where="post", label=f"demand ({unit} per {d.window_s:g} s window)", color="#4477aa")
    prov = np.asarray(arts.provisioned_per_window, dtype=float) if arts is not None else np.zeros(0)
    if len(prov) == len(rates) and len(prov):
        ax.step(t_min, prov, where="post", label="planned capacity (sum of replicas' SLO capacity)", color="#cc6677")
        ax.step(t_min, prov * result_headroom(result), where="post", linestyle="--", color="#cc6677",
                alpha=0.6, label="planned load limit (capacity x headroom)")
    ax.set_xlabel("minutes from start")
    ax.set_ylabel(unit)
    ax.set_title("Demand vs provisioned capacity")
    top = max(float(rates.max()) if len(rates) else 1.0, float(prov.max()) if len(prov) else 0.0)
    ax.set_ylim(0, top * 1.35)
    ax.legend(fontsize=7, loc="upper left", ncol=3, framealpha=0.9)
    save("demand.png", fig)

    # TTFT / TPOT distributions.
    if arts is not None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
        for ax, values, slo, label in (
            (axes[0], arts.ttft_s, result_slo(result, "ttft"), "TTFT (s)"),
            (axes[1], arts.tpot_s, result_slo(result, "tpot"), "TPOT (s)"),
        ):
            v = np.asarray(values, dtype=float)
            v = v[np.isfinite(v) & (v > 0)]
            if len(v):
                bins = np.geomspace(max(v.min(), 1e-4), max(v.max(), v.min() * 1.01), 50)
                ax.hist(v, bins=bins, color="#88ccee", edgecolor="#4477aa")
                ax.set_xscale("log")
            if slo:
                ax.axvline(slo, color="#cc6677", linestyle="--", label=f"SLO {slo:g} s")
                ax.legend(fontsize=8)
            ax.set_xlabel(label)
            ax.set_ylabel("requests")
        fig.suptitle("Latency of the plan, simulated on the horizon")
        save("latency.png", fig)

    # Cost breakdown.
    lines = result.verification.cost_lines
    if lines:
        fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(lines)))
        names = list(lines)
        monthly = [lines[n] * result.cost_per_month_usd / result.cost_usd if result.cost_usd else 0 for n in names]
        ax.barh(names, monthly, color="#117733")
        ax.set_xlabel("USD per month")
        ax.set_title("Cost breakdown of the plan")
        save("cost.png", fig)

    # Alternatives.
    alts = [a for a in result.alternatives if a.cost_per_month_usd is not None]
    if alts:
        fig, ax = plt.subplots(figsize=(8, 0.6 + 0.6 * len(alts)))
        labels = [a.kind.replace("_", " ") for a in alts]
        costs = [a.cost_per_month_usd for a in alts]
        colors = ["#ddcc77" if a.kind != "optimized" else "#117733" for a in alts]
        bars = ax.barh(labels, costs, color=colors)
        for i, a in enumerate(alts):
            if _misses_target(a):  # cheap but too slow: hatched, red edge, said in the label
                bars[i].set_hatch("//")
                bars[i].set_edgecolor("#cc3311")
            ax.text(costs[i], i, _bar_label(a, result.slo_target), va="center", fontsize=8,
                    color="#cc3311" if _misses_target(a) else "black")
        ax.set_xlim(0, max(costs) * 2.0)
        ax.set_xlabel("USD per month (simulated)")
        ax.set_title("Alternatives" + (" (hatched: misses the SLO target)" if any(map(_misses_target, alts)) else ""))
        save("alternatives.png", fig)
    return out


def _misses_target(alt: Any) -> bool:
    """An alternative simulated below the SLO attainment target (unsimulated ones are not judged)."""
    return alt.slo_attainment is not None and not alt.verified


def _bar_label(alt: Any, slo_target: float) -> str:
    """The text beside an alternative's bar: cost, SLO attainment, and whether it misses the target."""
    return (f"  {format_usd(alt.cost_per_month_usd)}/mo, SLO {_pct(alt.slo_attainment)}"
            + (f" (below the {_pct(slo_target, 0)} target)" if _misses_target(alt) else ""))


def result_headroom(result: Any) -> float:
    return float(getattr(result, "headroom", None) or 0.9)


def result_slo(result: Any, which: str) -> float | None:
    return getattr(result, f"slo_{which}_s", None)


# ---------------------------------------------------------------------------------- markdown ---


def _plan_table(result: Any) -> list[str]:
    unit = "users" if getattr(result, "users", None) is not None else "req/s"
    rows = [f"| GPU | TP | billing | count | active | max flex | GPUs | traffic share | capacity/replica ({unit}) | MILP cost (horizon) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for e in result.plan:
        caps = ", ".join(f"{b}: {v:.2f}" for b, v in e.capacity_per_s.items())
        rows.append(
            f"| {e.gpu} | {e.tensor_parallel_size} | {e.billing} | {e.count} | {e.active_workers if e.billing != 'pod' else '-'} "
            f"| {e.max_flex_workers if e.billing != 'pod' else '-'} | {e.gpus} | {_pct(e.traffic_share)} | {caps} | {format_usd(e.milp_cost_usd)} |"
        )
    return rows


def _alternatives_table(result: Any) -> list[str]:
    rows = ["| plan | cost / month | USD per million output tokens | SLO attainment | savings of the optimized mix |",
            "|---|---|---|---|---|"]
    for a in result.alternatives:
        if not a.feasible:
            rows.append(f"| {a.name} | infeasible | | | {a.note or ''} |")
            continue
        sav = "-" if a.kind == "optimized" else (f"{a.savings_of_optimized_pct:.1f}%" if a.savings_of_optimized_pct is not None else "n/a")
        note = f" ({a.note})" if a.note else ""
        rows.append(
            f"| {a.name}{note} | {format_usd(a.cost_per_month_usd)} | {format_usd(a.usd_per_million_output_tokens)} "
            f"| {_pct(a.slo_attainment)}{' (below target)' if _misses_target(a) else ''} | {sav} |"
        )
    return rows


_ALT_LABELS = {"single_gpu_pods": "the cheapest single-GPU pods plan", "all_serverless": "the all-serverless plan"}


def render_markdown(result: Any, images: dict[str, str] | None = None) -> str:
    """The report as markdown; `images` maps plot names to the links to use (files or data URIs)."""
    images = images or {}
    v = result.verification
    md: list[str] = [
        f"# Capacity plan: {result.profile}",
        "",
        f"Model **{result.model}**, seed {result.seed}, horizon {result.horizon_s:g} s "
        f"({v.num_requests:,} requests). SLO: {result.slo_attainment_target_text}.",
        "",
        "## Answer",
        "",
        f"**{result.plan_text}** for **{format_usd(result.cost_per_month_usd)} per month** "
        f"({format_usd(result.usd_per_million_output_tokens)} per million output tokens), " + (
            "SLO attainment **not simulated** (unverified; see the note)."
            if result.slo_attainment is None
            else f"SLO attainment **{_pct(result.slo_attainment)}** in simulation "
            f"({'meets' if result.verified else 'MISSES'} the {_pct(result.slo_target, 0)} target)."
        ),
        "",
    ]
    for a in result.alternatives:
        if a.kind != "optimized" and a.feasible and a.cost_per_month_usd and a.savings_of_optimized_pct is not None:
            md.append(
                f"- vs {_ALT_LABELS.get(a.kind, a.kind)} ({a.name.split(': ', 1)[-1]}, "
                f"{format_usd(a.cost_per_month_usd)}/month, SLO {_pct(a.slo_attainment)}"
                + (f", below the {_pct(result.slo_target, 0)} target" if _misses_target(a) else "")
                + "): "
                f"{'saves' if a.savings_of_optimized_pct >= 0 else 'costs'} "
                f"{abs(a.savings_of_optimized_pct):.1f}%"
            )
    md.append("")
    md += [f"> {n}" for n in result.notes] + ([""] if result.notes else [])
    md += ["## Plan", ""] + _plan_table(result) + [""]
    md += ["## Alternatives", ""] + _alternatives_table(result) + [""]
    md += [
        "Costs are the simulated billing of each plan on the horizon's arrivals (pods for the whole "
        "horizon, serverless workers from start to stop, cold starts included), scaled to a "
        f"{HOURS_PER_MONTH:g}-hour month.",
        "",
    ]
    if "alternatives.png" in images:
        md += [f"![alternatives]({images['alternatives.png']})", ""]
    md += ["## Demand and capacity", ""]
    if "demand.png" in images:
        md += [f"![demand vs capacity]({images['demand.png']})", ""]
    md += [
        f"Each {result.demand.slot_seconds:g} s slot is planned for the {result.demand_percentile_text} "
        "of its one-minute rates (bursts count), split into demand levels so that serverless "
        "workers can cover the busy minutes only.",
        "",
        "## Latency (simulated)",
        "",
        f"| TTFT p50 | TTFT p99 | TPOT p50 | TPOT p99 | cold starts |",
        "|---|---|---|---|---|",
        f"| {_num(v.ttft_p50_s)} s | {_num(v.ttft_p99_s)} s | {_num(v.tpot_p50_s, '{:.4f}')} s | {_num(v.tpot_p99_s, '{:.4f}')} s | {v.cold_starts} |",
        "",
    ]
    if "latency.png" in images:
        md += [f"![latency]({images['latency.png']})", ""]
    md += ["## Cost breakdown", "", "| line | USD (horizon) | USD per month |", "|---|---|---|"]
    scale = result.cost_per_month_usd / result.cost_usd if result.cost_usd else 0.0
    for name, usd in v.cost_lines.items():
        md.append(f"| {name} | {format_usd(usd)} | {format_usd(usd * scale)} |")
    md.append("")
    if "cost.png" in images:
        md += [f"![cost]({images['cost.png']})", ""]
    md += ["## Rounds (solve, then verify by simulation)", "",
           "| round | plan | MILP $/month | simulated $/month | SLO attainment | tightened next |", "|---|---|---|---|---|---|"]
    for r in result.rounds:
        tight = ", ".join(f"{k} x{f:.2f}" for k, f in r.tightened.items()) or "-"
        md.append(f"| {r.round} | {r.plan} | {format_usd(r.milp_cost_per_month_usd)} | {format_usd(r.cost_per_month_usd)} | {_pct(r.slo_attainment)} | {tight} |")
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
        f"simulation {result.simulate_seconds:.1f} s, MILP {result.solve_seconds:.2f} s).",
        "",
    ]
    return "\n".join(md)


class _View:
    """The result with a few derived texts the templates use."""

    def __init__(self, result: Any, headroom: float, ttft: float | None, tpot: float | None, pct: float) -> None:
        self._r = result
        self.headroom = headroom
        self.slo_ttft_s = ttft
        self.slo_tpot_s = tpot
        from planner.optimize.result import describe  # noqa: PLC0415

        self.plan_text = describe(result.plan)
        self.slo_attainment_target_text = (
            f"TTFT <= {ttft:g} s and TPOT <= {tpot:g} s for {result.slo_target:.0%} of requests"
            if ttft is not None and tpot is not None
            else f"{result.slo_target:.0%} attainment"
        )
        self.demand_percentile_text = f"{pct:.0%} quantile"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._r, name)


# -------------------------------------------------------------------------------------- html ---


def _md_to_html(md: str) -> str:
    """A small markdown renderer for what render_markdown emits (headings, tables, code, lists)."""
    out: list[str] = []
    lines = md.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            block = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                block.append(lines[i])
                i += 1
            out.append("<pre><code>" + html.escape("\n".join(block)) + "</code></pre>")
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            i -= 1
            head, body = rows[0], [r for r in rows[2:]]
            out.append("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body]
            out.append("</tbody></table>")
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            i -= 1
            out.append("<ul>" + "".join(items) + "</ul>")
        elif line.startswith("> "):
            out.append(f"<p class='note'>{_inline(line[2:])}</p>")
        elif line.startswith("!["):
            alt, _, rest = line[2:].partition("](")
            out.append(f"<p><img alt='{html.escape(alt)}' src='{rest.rstrip(')')}'></p>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        i += 1
    return "\n".join(out)


def _inline(text: str) -> str:
    import re  # noqa: PLC0415

    t = html.escape(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
    t = re.sub(r"_(.+?)_", r"<em>\1</em>", t) if t.startswith("_") else t
    return t


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #117733}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#f3f3f3}pre{background:#f6f8fa;padding:.8em;overflow-x:auto}img{max-width:100%}
.note{background:#fff3cd;padding:.5em .8em;border-left:4px solid #ddcc77}
"""


def render_html(md_with_data_uris: str, title: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>\n"
        + _md_to_html(md_with_data_uris)
        + "\n</body></html>\n"
    )


# ------------------------------------------------------------------------------------ writer ---


def write_report(result: Any, arts: Any, directory: str | Path, *, profile: Profile | None = None) -> list[Path]:
    """Write the whole report into `directory` (created; files there with the same names replaced).

    Args:
        result: planner.optimize.result.OptimizeResult.
        arts: planner.optimize.result.PlanArtifacts (latency arrays, provisioned capacity), or None.
        directory: destination folder.
        profile: only for a result from before OptimizeResult carried its SLO thresholds,
            headroom and demand percentile (the text renders from the result alone).
    Returns:
        The files written.
    """
    directory = Path(directory)
    view = _View(result, *_text_inputs(result, profile))
    check_report_dir(directory)

    def fill(tmp: Path) -> None:
        figures = _figures(view, arts)
        for name, data in figures.items():
            (tmp / name).write_bytes(data)
        (tmp / "report.md").write_text(render_markdown(view, {k: k for k in figures}))
        uris = {k: "data:image/png;base64," + base64.b64encode(v).decode() for k, v in figures.items()}
        (tmp / "report.html").write_text(render_html(render_markdown(view, uris), f"Capacity plan: {result.profile}"))
        (tmp / "plan.json").write_text(result.model_dump_json(indent=2) + "\n")
        dep = tmp / "deploy"
        dep.mkdir()
        for rel, (text, _executable) in deploy_mod.deploy_files(result.deploy, result.profile).items():
            (dep / rel).write_text(text)

    # The whole folder is drawn in a temporary folder and moved in at the end (files.write_folder).
    return write_folder(directory, fill, what="--report", executable=lambda rel: rel.suffix == ".sh")


def _text_inputs(result: Any, profile: Profile | None) -> tuple[float, float | None, float | None, float]:
    """(headroom, SLO TTFT s, SLO TPOT s, demand percentile): the result's own fields, else the
    profile's (a plan.json written before the fields existed), else the defaults."""
    def pick(own: float | None, from_profile: float | None, default: float | None) -> float | None:
        return own if own is not None else from_profile if from_profile is not None else default

    headroom = pick(getattr(result, "headroom", None), profile.optimizer.headroom if profile else None, 0.9)
    ttft = pick(getattr(result, "slo_ttft_seconds", None), profile.slo.ttft_seconds if profile else None, None)
    tpot = pick(getattr(result, "slo_tpot_seconds", None), profile.slo.tpot_seconds if profile else None, None)
    pct = pick(getattr(result, "demand_percentile", None),
               profile.optimizer.demand_percentile if profile else None, 0.99)
    return float(headroom or 0.9), ttft, tpot, float(pct or 0.99)


def check_report_dir(directory: str | Path) -> Path:
    """Refuse an unusable report folder up front (a file, an unwritable place, an empty name)."""
    return check_output_dir(directory, "--report")
