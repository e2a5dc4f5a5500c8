"""Validation against real vLLM benchmark runs: `python bench/silicon.py`.

NVIDIA's aiconfigurator-core 0.12.0 ships silicon_sample.csv: end-to-end vLLM benchmark runs (a closed
loop of `concurrency` clients at fixed ISL/OSL; mean TTFT and mean TPOT) on H100, H200 and B200.
bench/data/silicon_vllm_agg.csv keeps its vLLM aggregated-serving rows whose model has a planner
preset (`python -m planner.perf.refresh_tables` writes it). Each distinct configuration (duplicates
across engine versions merged: their mean) is simulated as that benchmark ran: one replica at the
row's TP and format, `users` = concurrency, fixed ISL, 10 requests per user with the first wave
at t = 0 included, no think time. Printed: measured vs planner mean TTFT and mean TPOT per row and
summaries by GPU, model, TP and engine version.

Output lengths: with exactly OSL tokens each, the simulated users phase-lock (the requests that
prefill in one step finish in one step and come back together, so every prompt waits behind a
whole group's prefill); the measured TTFTs rule that out (docs/perf.md). By default the output
lengths are spread uniformly by +-5% around OSL (`--output-spread`, the mean stays OSL), which lets
the users drift apart; `--output-spread 0` is the exact-length protocol, and `--sensitivity`
prints the summaries for spreads 0, 1%, 5% and 10% side by side.

H100 rows are the only ones anything was fitted to (the step model's two engine constants,
`--fit`); H200 and B200 rows are the test set and are summarised separately. A row whose measured
mean TTFT exceeds 5 s is overloaded (its KV cache cannot hold that many sequences): the planner must
predict a mean TTFT above 2 s for it.

    python bench/silicon.py                 # all rows, 2 worker processes, progress on stderr
    python bench/silicon.py --sample 6      # a few rows (what the test suite runs)
    python bench/silicon.py --fit           # refit the two engine constants on the H100 rows
    python bench/silicon.py --sensitivity   # the summaries at output spreads 0, 1%, 5%, 10%
    python bench/silicon.py --bound         # what the two constants could reach at best (diagnostic)
    python bench/silicon.py --json out.json
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data" / "silicon_vllm_agg.csv"
OVERLOADED_MEASURED_S = 5.0
OVERLOADED_PREDICTED_S = 2.0
TRAIN_GPUS = ("h100-sxm",)
TEST_GPUS = ("h200", "b200")
OUTPUT_SPREAD = 0.05
SENSITIVITY_SPREADS = (0.0, 0.01, 0.05, 0.10)

# aiconfigurator's names -> planner presets / catalog ids
MODEL_PRESETS = {
    "meta-llama/Llama-3.1-70B": "llama-3.1-70b",
    "meta-llama/Llama-3.1-70B-Instruct": "llama-3.1-70b",
    "nvidia/Llama-3.1-8B-Instruct-FP8": "llama-3.1-8b",
    "meta-llama/Llama-3.1-8B-Instruct": "llama-3.1-8b",
    "openai/gpt-oss-120b": "gpt-oss-120b",
    "Qwen/Qwen3-32B": "qwen3-32b",
    "Qwen/Qwen3-235B-A22B-FP8": "qwen3-235b-a22b",
}
SYSTEMS = {"h100_sxm": "h100-sxm", "h200_sxm": "h200", "b200_sxm": "b200"}
# vLLM schedules asynchronously by default since 0.14 (vllm-project/vllm#27614; 0.13 servers log no
# "Asynchronous scheduling is enabled" unless asked, 0.15 ones do): each run is simulated with
# the default of the version it ran.
ASYNC_SCHEDULING_DEFAULT_SINCE = (0, 14)


@dataclass
class Row:
    model: str
    gpu: str
    tp: int
    precision: str | None
    quantization: str
    isl: int
    osl: int
    users: int
    ttft_ms: float
    tpot_ms: float
    versions: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    pred_ttft_ms: float = float("nan")
    pred_tpot_ms: float = float("nan")
    error: str = ""

    @property
    def overloaded(self) -> bool:
        return self.ttft_ms > OVERLOADED_MEASURED_S * 1e3

    @property
    def ttft_err(self) -> float:
        return self.pred_ttft_ms / self.ttft_ms - 1.0

    @property
    def tpot_err(self) -> float:
        return self.pred_tpot_ms / self.tpot_ms - 1.0

    @property
    def version(self) -> str:
        return "/".join(self.versions) or "?"

    @property
    def async_scheduling(self) -> bool:
        """The scheduling its engine ran by default: async unless every recorded version of the
        run predates the release that turned it on (an unrecorded one: the planner's engine)."""
        known = [tuple(int(x) for x in v.split(".")[:2]) for v in self.versions if v != "?"]
        return not known or any(v >= ASYNC_SCHEDULING_DEFAULT_SINCE for v in known)


def planner_format(model: str, precision: str, gemm_quant: str) -> tuple[str | None, str] | None:
    """(precision, quantization) of a row in the planner's words; None: a format it lacks."""
    if model == "gpt-oss-120b":
        return None, "none"  # its native MXFP4 experts (the csv labels the run fp4/nvfp4)
    if gemm_quant == "fp8":
        return None, "fp8"
    if gemm_quant == "" and precision in ("", "bf16"):
        return "bf16", "none"
    return None


def load_rows(path: Path = DATA) -> tuple[list[Row], dict[str, int]]:
    """Distinct configurations of the csv (duplicates merged by their mean) and why rows were left out."""
    merged: dict[tuple, list[dict[str, str]]] = {}
    skipped: dict[str, int] = defaultdict(int)
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["backend"] != "vllm" or r["mode"] != "agg":
                continue
            model, gpu = MODEL_PRESETS.get(r["model_path"]), SYSTEMS.get(r["system"])
            if model is None or gpu is None:
                skipped["no preset or no catalog GPU"] += 1
                continue
            if r["attention_dp_size"] not in ("", "1", "0") or r["moe_ep_size"] not in ("", "1", "0"):
                skipped["attention data parallel / expert parallel (not modelled)"] += 1
                continue
            fmt = planner_format(model, r["precision"], r["gemm_quant_mode"])
            if fmt is None:
                skipped[f"{r['gemm_quant_mode']} weights (no planner format)"] += 1
                continue
            key = (model, gpu, int(r["tp_size"]), fmt[0] or "", fmt[1], int(r["isl"]), int(r["osl"]),
                   int(r["batch_size"]))
            merged.setdefault(key, []).append(r)
    rows = []
    for (model, gpu, tp, prec, quant, isl, osl, users), rs in sorted(merged.items()):
        rows.append(Row(model, gpu, tp, prec or None, quant, isl, osl, users,
                        statistics.fmean(float(r["silicon_ttft_ms"]) for r in rs),
                        statistics.fmean(float(r["silicon_tpot_ms"]) for r in rs),
                        sorted({r["backend_version"] or "?" for r in rs}), [r["id"] for r in rs]))
    return rows, dict(skipped)


def simulate_row(row: Row, requests_per_user: int = 10, overrides: dict[str, float] | None = None,
                 output_spread: float = OUTPUT_SPREAD) -> Row:
    """The planner's closed-loop simulation of one row (mean TTFT and TPOT, ms)."""
    from planner.errors import PlannerError  # noqa: PLC0415
    from planner.perf import StepTimeModel  # noqa: PLC0415
    from planner.scenario import bench_closed_loop, model_replica_setup  # noqa: PLC0415

    try:
        # room for the longest output of the spread (a longer request would be refused)
        longest = row.isl + round(row.osl * (1.0 + output_spread))
        setup = model_replica_setup(row.model, row.gpu, row.tp, precision=row.precision,
                                    quantization=row.quantization, max_model_len=longest,
                                    async_scheduling=row.async_scheduling)
        if overrides:  # the fit's probes: the same replica with other engine constants
            from planner.catalog import get_gpu  # noqa: PLC0415
            from planner.models import get_model  # noqa: PLC0415

            step = StepTimeModel.create(get_model(row.model), get_gpu(row.gpu), row.tp, row.precision,
                                        row.quantization, **overrides)
            setup = replace(setup, step_model=step)
        out = bench_closed_loop(
            row.model, row.gpu, row.tp, users=row.users, prompt_tokens=row.isl, output_tokens=row.osl,
            requests_per_user=requests_per_user, setup=setup, output_spread=output_spread,
        )
        row.pred_ttft_ms = out.mean_ttft_s * 1e3
        row.pred_tpot_ms = out.mean_tpot_s * 1e3
    except PlannerError as err:
        row.error = str(err)
    return row


def run(rows: list[Row], workers: int, requests_per_user: int = 10,
        overrides: dict[str, float] | None = None, output_spread: float = OUTPUT_SPREAD) -> list[Row]:
    """Simulate every row in a process pool; progress on stderr when it is a terminal."""
    done: list[Row] = []
    t0 = time.perf_counter()
    show = sys.stderr.isatty()
    args = [(r, requests_per_user, overrides, output_spread) for r in rows]
    if workers <= 1:
        results = (simulate_row(*a) for a in args)
        for i, r in enumerate(results, 1):
            done.append(r)
            if show:
                print(f"\r{i}/{len(rows)} rows, {time.perf_counter() - t0:.0f} s", end="", file=sys.stderr)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(simulate_row, *a) for a in args]
            for i, fut in enumerate(futures, 1):
                done.append(fut.result())
                if show:
                    print(f"\r{i}/{len(rows)} rows, {time.perf_counter() - t0:.0f} s", end="", file=sys.stderr)
    if show:
        print(file=sys.stderr)
    return done


def summarize(rows: list[Row]) -> dict[str, Any]:
    """The issue's figures for a set of rows: TPOT over all rows, TTFT over the non-overloaded ones,
    overloaded rows predicted overloaded."""
    ok = [r for r in rows if not r.error and not math.isnan(r.pred_tpot_ms)]
    calm = [r for r in ok if not r.overloaded]
    over = [r for r in ok if r.overloaded]
    tpot = [abs(r.tpot_err) for r in ok]
    ttft = [abs(r.ttft_err) for r in calm]
    return {
        "rows": len(rows),
        "simulated": len(ok),
        "tpot_median_abs_error": statistics.median(tpot) if tpot else None,
        "tpot_median_error": statistics.median(r.tpot_err for r in ok) if ok else None,
        "tpot_within_20pct": (sum(e <= 0.2 for e in tpot) / len(tpot)) if tpot else None,
        "ttft_median_abs_error": statistics.median(ttft) if ttft else None,
        "ttft_median_error": statistics.median(r.ttft_err for r in calm) if calm else None,
        "overloaded_rows": len(over),
        "overloaded_predicted": sum(r.pred_ttft_ms > OVERLOADED_PREDICTED_S * 1e3 for r in over),
    }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _line(name: str, s: dict[str, Any]) -> str:
    return (f"| {name} | {s['simulated']} | {_pct(s['tpot_median_abs_error'])} | {_pct(s['tpot_median_error'])} | "
            f"{_pct(s['tpot_within_20pct'])} | {_pct(s['ttft_median_abs_error'])} | {_pct(s['ttft_median_error'])} | "
            f"{s['overloaded_predicted']}/{s['overloaded_rows']} |")


HEADER = ("| rows | n | TPOT median abs error | TPOT median error | TPOT within 20% | "
          "TTFT median abs error (not overloaded) | TTFT median error | overloaded predicted > 2 s |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|")


def report(rows: list[Row]) -> str:
    out = ["| model | GPU | TP | format | ISL | OSL | users | vLLM | TTFT ms | planner | error | TPOT ms | planner | error |",
           "|---|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        fmt = r.quantization if r.quantization != "none" else (r.precision or "default")
        if r.error:
            out.append(f"| {r.model} | {r.gpu} | {r.tp} | {fmt} | {r.isl} | {r.osl} | {r.users} | {r.version} | "
                       f"{r.ttft_ms:.1f} | - | {r.error} | {r.tpot_ms:.2f} | - | - |")
            continue
        flag = " (overloaded)" if r.overloaded else ""
        out.append(f"| {r.model} | {r.gpu} | {r.tp} | {fmt} | {r.isl} | {r.osl} | {r.users} | {r.version} | "
                   f"{r.ttft_ms:.1f}{flag} | {r.pred_ttft_ms:.1f} | {r.ttft_err:+.1%} | {r.tpot_ms:.2f} | "
                   f"{r.pred_tpot_ms:.2f} | {r.tpot_err:+.1%} |")
    out += ["", "Summary (test set = H200 and B200 rows; H100 rows were used to fit two engine constants):", "", HEADER]
    out.append(_line("test: H200 + B200", summarize([r for r in rows if r.gpu in TEST_GPUS])))
    out.append(_line("fit: H100", summarize([r for r in rows if r.gpu in TRAIN_GPUS])))
    for title, key in (("GPU", lambda r: r.gpu), ("model", lambda r: r.model), ("TP", lambda r: f"TP {r.tp}"),
                       ("engine version", lambda r: r.version)):
        groups: dict[str, list[Row]] = defaultdict(list)
        for r in rows:
            groups[key(r)].append(r)
        out += ["", f"By {title}:", "", HEADER]
        out += [_line(k, summarize(v)) for k, v in sorted(groups.items())]
    return "\n".join(out)


def _linear_tpots(rows: list[Row], workers: int, output_spread: float) -> tuple[Any, Any, Any, Any]:
    """Both engine constants add to every step, so a row's simulated mean TPOT is (to first order)
    linear in them: three simulations of `rows` give (TPOT at zero constants, d TPOT / d
    layer_fixed_s, d TPOT / d step_overhead_s, measured TPOT), arrays in ms and ms/s."""
    import numpy as np  # noqa: PLC0415

    probe = {"layer_fixed_s": 20e-6, "step_overhead_s": 1e-3}

    def tpots(overrides: dict[str, float]) -> np.ndarray:
        copies = [replace(r) for r in rows]
        return np.array([r.pred_tpot_ms for r in run(copies, workers, overrides=overrides,
                                                      output_spread=output_spread)], dtype=float)

    base = tpots({"layer_fixed_s": 0.0, "step_overhead_s": 0.0})
    d_layer = (tpots({"layer_fixed_s": probe["layer_fixed_s"], "step_overhead_s": 0.0}) - base) / probe["layer_fixed_s"]
    d_step = (tpots({"layer_fixed_s": 0.0, "step_overhead_s": probe["step_overhead_s"]}) - base) / probe["step_overhead_s"]
    return base, d_layer, d_step, np.array([r.tpot_ms for r in rows], dtype=float)


def fit(rows: list[Row], workers: int, output_spread: float = OUTPUT_SPREAD) -> dict[str, float]:
    """Fit layer_fixed_s and step_overhead_s on the H100 rows: least squares on
    log(predicted / measured) of the rows' linear TPOTs (`_linear_tpots`)."""
    import numpy as np  # noqa: PLC0415
    from scipy.optimize import least_squares  # noqa: PLC0415

    train = [r for r in rows if r.gpu in TRAIN_GPUS and not r.overloaded]
    base, d_layer, d_step, meas = _linear_tpots(train, workers, output_spread)
    ok = np.isfinite(base)

    def residual(p: np.ndarray) -> np.ndarray:
        return np.log((base[ok] + d_layer[ok] * p[0] * 1e-6 + d_step[ok] * p[1] * 1e-3) / meas[ok])

    sol = least_squares(residual, [20.0, 0.5], bounds=([0.0, 0.0], [200.0, 10.0]))
    result = {"layer_fixed_s": float(sol.x[0]) * 1e-6, "step_overhead_s": float(sol.x[1]) * 1e-3,
              "rows": int(ok.sum()), "median_abs_error": float(np.median(np.abs(np.exp(residual(sol.x)) - 1)))}
    return result


BOUND_LAYER_US = (0.0, 60.0, 0.5)  # the grid the bound searches: layer_fixed_s in us (from, to, step)
BOUND_STEP_MS = (0.0, 3.0, 0.05)  # step_overhead_s in ms


def bound(rows: list[Row], workers: int, output_spread: float = OUTPUT_SPREAD) -> str:
    """What the two engine constants could reach at best, as a table: for each GPU, the pair
    chosen on that GPU's own rows to maximise the share within +-20% (a diagnostic that looks at
    the answers: never a fit the planner uses), and the floor (both constants 0: the measured
    kernels and the scheduling alone). A row whose floor is already more than 20% too slow
    cannot come within 20% for any non-negative constants."""
    import numpy as np  # noqa: PLC0415

    ok_rows = [r for r in rows if not r.error]
    base, d_layer, d_step, meas = _linear_tpots(ok_rows, workers, output_spread)
    lay = np.arange(BOUND_LAYER_US[0], BOUND_LAYER_US[1] + 1e-9, BOUND_LAYER_US[2]) * 1e-6
    stp = np.arange(BOUND_STEP_MS[0], BOUND_STEP_MS[1] + 1e-9, BOUND_STEP_MS[2]) * 1e-3
    gpus = np.array([r.gpu for r in ok_rows])
    models = np.array([r.model for r in ok_rows])
    finite = np.isfinite(base) & np.isfinite(d_layer) & np.isfinite(d_step)
    out = ["| rows | n | floor: TPOT median abs error | floor: within 20% | floor already > 20% too slow | "
           "best pair for this GPU's own rows (layer_fixed_s, step_overhead_s) | then: TPOT median abs error | "
           "then: within 20% |", "|---|---:|---:|---:|---:|---|---:|---:|"]
    best_within: dict[str, int] = {}
    for gpu in sorted(set(gpus)):
        sel = finite & (gpus == gpu)
        b, dl, ds, m = base[sel], d_layer[sel], d_step[sel], meas[sel]
        # errors for every pair of the grid at once: (layer, step, row)
        err = np.abs((b + dl * lay[:, None, None] + ds * stp[None, :, None]) / m - 1.0)
        within = (err <= 0.2).sum(axis=2)
        med = np.median(err, axis=2)
        # most rows within 20%; among those, the smallest median error
        score = within - med / (med.max() + 1.0)
        i, j = np.unravel_index(int(np.argmax(score)), score.shape)
        floor = np.abs(b / m - 1.0)
        best_within[gpu] = int(within[i, j])
        out.append(f"| {gpu} | {sel.sum()} | {np.median(floor):.1%} | {np.mean(floor <= 0.2):.1%} | "
                   f"{int((b / m - 1.0 > 0.2).sum())} | {lay[i] * 1e6:.1f} us, {stp[j] * 1e3:.2f} ms | "
                   f"{med[i, j]:.1%} | {within[i, j] / sel.sum():.1%} |")
    test = [g for g in TEST_GPUS if g in best_within]
    n_test = int(sum((finite & (gpus == g)).sum() for g in test))
    if n_test:
        out.append(f"| test: {' + '.join(g.upper() for g in test)}, each GPU its own best pair | {n_test} | | | "
                   f"{int(sum(((base / meas - 1.0 > 0.2) & finite & (gpus == g)).sum() for g in test))} | | | "
                   f"{sum(best_within[g] for g in test) / n_test:.1%} |")
    out += ["", "| GPU | model | n | floor: TPOT median error | floor already > 20% too slow |", "|---|---|---:|---:|---:|"]
    for gpu, model in sorted(set(zip(gpus, models))):
        sel = finite & (gpus == gpu) & (models == model)
        out.append(f"| {gpu} | {model} | {sel.sum()} | {np.median(base[sel] / meas[sel] - 1.0):+.1%} | "
                   f"{int((base[sel] / meas[sel] - 1.0 > 0.2).sum())} |")
    return "\n".join(out)


def sensitivity(rows: list[Row], workers: int, requests_per_user: int) -> str:
    """The test-set and H100 summaries at each output spread of SENSITIVITY_SPREADS (a table)."""
    out = ["| output spread | rows | n | TPOT median abs error | TPOT median error | TPOT within 20% | "
           "TTFT median abs error (not overloaded) | TTFT median error | overloaded predicted > 2 s |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for spread in SENSITIVITY_SPREADS:
        copies = [replace(r) for r in rows]
        done = run(copies, workers, requests_per_user, output_spread=spread)
        label = "0 (exact lengths)" if spread == 0 else f"+-{spread:.0%}"
        for name, gpus in (("test: H200 + B200", TEST_GPUS), ("fit: H100", TRAIN_GPUS)):
            out.append(f"| {label} " + _line(name, summarize([r for r in done if r.gpu in gpus])))
        for model in sorted({r.model for r in done}):  # the harnesses differ between models
            out.append(f"| {label} " + _line(f"{model}, all GPUs", summarize([r for r in done if r.model == model])))
    return "\n".join(out)


DOCS = ROOT / "docs" / "perf.md"
DOCS_BEGIN = "<!-- bench/silicon.py --write-docs: begin -->"
DOCS_END = "<!-- bench/silicon.py --write-docs: end -->"
DOCS_SPREAD = "Sensitivity to the output-length spread (`python bench/silicon.py --sensitivity`):"


def write_docs(rows: list[Row], skipped: dict[str, int], seconds: float, workers: int,
               spread_table: str = "", output_spread: float = OUTPUT_SPREAD) -> None:
    """Replace the generated part of docs/perf.md's validation section with this run."""
    table = report(rows)
    summary, _, by = table.partition("\n\nSummary")
    text = DOCS.read_text()
    a, b = text.index(DOCS_BEGIN) + len(DOCS_BEGIN), text.index(DOCS_END)
    left = ", ".join(f"{v} {k}" for k, v in sorted(skipped.items()))
    if not spread_table and DOCS_SPREAD in text[a:b]:  # keep the last --sensitivity table
        old = text[a:b]
        spread_table = old[old.index(DOCS_SPREAD) + len(DOCS_SPREAD):].split("\n\n")[1]
    spread = (f"\n\n{DOCS_SPREAD}\n\n{spread_table}" if spread_table else "")
    block = (f"\n\n{len(rows)} distinct configurations ({sum(len(r.ids) for r in rows)} csv rows) simulated in "
             f"{seconds:.0f} s with {workers} worker processes, output lengths spread +-{output_spread:.0%}; "
             f"left out: {left}.\n\nSummary" + by + spread
             + "\n\n<details><summary>Every row: measured vs planner</summary>\n\n" + summary + "\n\n</details>\n\n")
    DOCS.write_text(text[:a] + block + text[b:])


BOUND_BEGIN = "<!-- bench/silicon.py --bound --write-docs: begin -->"
BOUND_END = "<!-- bench/silicon.py --bound --write-docs: end -->"


def write_bound(table: str) -> None:
    """Replace the bound's table in docs/perf.md with this run's."""
    text = DOCS.read_text()
    a, b = text.index(BOUND_BEGIN) + len(BOUND_BEGIN), text.index(BOUND_END)
    DOCS.write_text(text[:a] + "\n\n" + table + "\n\n" + text[b:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Planner vs real vLLM benchmark runs (silicon_sample.csv).")
    parser.add_argument("--csv", type=Path, default=DATA)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample", type=int, default=0, help="simulate only N rows spread over the table")
    parser.add_argument("--requests-per-user", type=int, default=10)
    parser.add_argument("--fit", action="store_true", help="refit the two engine constants on the H100 rows")
    parser.add_argument("--output-spread", type=float, default=OUTPUT_SPREAD,
                        help="output lengths uniform in OSL x [1 - s, 1 + s] (0: exact lengths)")
    parser.add_argument("--bound", action="store_true",
                        help="what the two engine constants could reach at best on each GPU's own rows "
                             "(a diagnostic, not a fit)")
    parser.add_argument("--sensitivity", action="store_true",
                        help="also print the summaries at output spreads 0, 1%%, 5%%, 10%%")
    parser.add_argument("--json", type=Path, help="also write the rows and summaries as JSON")
    parser.add_argument("--write-docs", action="store_true",
                        help="replace the validation section of docs/perf.md with this run's tables")
    args = parser.parse_args(argv)
    rows, skipped = load_rows(args.csv)
    if args.sample:
        step = max(1, len(rows) // args.sample)
        rows = rows[::step][: args.sample]
    if args.fit:
        print(json.dumps(fit(rows, args.workers, args.output_spread), indent=1))
        return 0
    if args.bound:
        table = bound(rows, args.workers, args.output_spread)
        print(table)
        if args.write_docs:
            write_bound(table)
        return 0
    t0 = time.perf_counter()
    rows = run(rows, args.workers, args.requests_per_user, output_spread=args.output_spread)
    seconds = time.perf_counter() - t0  # the validation itself, not the sensitivity runs below
    print(report(rows))
    spread_table = sensitivity(rows, args.workers, args.requests_per_user) if args.sensitivity else ""
    if spread_table:
        print("\n" + DOCS_SPREAD + "\n\n" + spread_table)
        print(f"(the sensitivity runs: {time.perf_counter() - t0 - seconds:.0f} s)")
    print(f"\nLeft out: {json.dumps(skipped)}")
    print(f"{len(rows)} configurations simulated in {seconds:.0f} s with {args.workers} workers")
    if args.write_docs:
        write_docs(rows, skipped, seconds, args.workers, spread_table, args.output_spread)
    if args.json:
        args.json.write_text(json.dumps({
            "rows": [asdict(r) for r in rows],
            "test": summarize([r for r in rows if r.gpu in TEST_GPUS]),
            "h100": summarize([r for r in rows if r.gpu in TRAIN_GPUS]),
            "skipped": skipped,
        }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
