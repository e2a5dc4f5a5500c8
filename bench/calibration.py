"""Refit the step-time model to the shared H200 measurements and print predicted vs measured.

Usage:
    python bench/calibration.py [--data-dir bench/data] [--markdown] [--write]

Prints the fitted parameters, every measured point with the model's prediction and % error (decode
steps, prefills, mixed-step increments over the decode-only step of the same run, the GEMM and
weight-streaming micro-benchmarks), the summary the issue asks for (median / max absolute error for
decode batch >= 8 and prefills >= 512 tokens), and a leave-one-context-out check (refit without one
context's decode and mixed points, predict them).

--write rewrites the `calibration:` block of every gpu_catalog/*.yaml: the fit for the H200
(estimated: false), the derived rule for the other GPUs (estimated: true). Nothing else in those files
changes. Update H200_FIT in planner/inputs/calibration.py by hand if the fit moves (a test compares them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.calibration import (  # noqa: E402
    CALIBRATION_FILE,
    DERIVED_RULE,
    H200_FIT,
    PARAMETER_DESCRIPTIONS,
    FitPoint,
    PerfCalibration,
    _gemm_ceilings,
    evaluate,
    fit_h200,
)
from planner.catalog import get_gpu  # noqa: E402

FIT_SOURCE = (
    "fit: bench/calibration.py to " + CALIBRATION_FILE + " and h200-weight-streaming.json"
)


def _summary(points: list[FitPoint], kind: str) -> str:
    errs = [abs(p.error) * 100 for p in points if p.kind == kind and p.in_target]
    if not errs:
        return f"{kind}: no points"
    return f"{kind} (in target range, {len(errs)} points): median |error| {statistics.median(errs):.1f}%, max {max(errs):.1f}%"


def _table(points: list[FitPoint], markdown: bool) -> list[str]:
    rows = []
    if markdown:
        rows += ["| kind | point | measured ms | predicted ms | error | in target |", "|---|---|---:|---:|---:|---|"]
        for p in points:
            rows.append(f"| {p.kind} | {p.label} | {p.measured_s * 1e3:.3f} | {p.predicted_s * 1e3:.3f} | "
                        f"{p.error * 100:+.1f}% | {'yes' if p.in_target else ''} |")
    else:
        for p in points:
            rows.append(f"  {p.kind:16s} {p.label:34s} measured {p.measured_s * 1e3:9.3f} ms  "
                        f"predicted {p.predicted_s * 1e3:9.3f} ms  {p.error * 100:+6.1f}%{'  *' if p.in_target else ''}")
    return rows


def _micro(data: dict, streaming: dict, gpu, params: dict, markdown: bool) -> list[str]:
    """The GEMM ceilings and the streaming curve against the model's single-GEMM roofline."""
    bw = params["stream_bandwidth_fraction"] * gpu.memory_bandwidth_bytes_per_s
    f = params["flop_fraction"] * gpu.flops_per_s("bf16")
    n = params["roofline_exponent"]
    t0 = params["kernel_fixed_s"]
    out = ["| micro-benchmark | measured | predicted | error |", "|---|---:|---:|---:|"] if markdown else []
    for m, k, nn, rate in _gemm_ceilings(data["ceilings"]):
        s = t0 + 2 * k * nn / bw
        c = 2 * m * k * nn / f
        pred = 2 * m * k * nn / (s**n + c**n) ** (1 / n)
        label = f"GEMM {m}x{k}x{nn} TFLOP/s"
        out.append(f"| {label} | {rate / 1e12:.0f} | {pred / 1e12:.0f} | {pred / rate * 100 - 100:+.1f}% |" if markdown
                   else f"  {label:40s} measured {rate / 1e12:7.0f}  predicted {pred / 1e12:7.0f}  {pred / rate * 100 - 100:+6.1f}%")
    ceil = data["ceilings"]
    k, nn = 8192, 28672  # the README's "M = 1...512 rows against a 470 MB weight"
    # single launches: add the launch time the M = 1 point shows over the in-graph prediction
    launch = ceil.get("skinny_m1_us", 0.0) * 1e-6 - (t0 + 2 * k * nn / bw)
    for m in (1, 8, 32, 64, 128, 256, 512):
        key = f"skinny_m{m}_us"
        if key not in ceil:
            continue
        s = t0 + 2 * k * nn / bw
        c = 2 * m * k * nn / f
        pred = (s**n + c**n) ** (1 / n) + launch
        meas = ceil[key] * 1e-6
        label = f"skinny GEMM M={m} x 470 MB, us"
        out.append(f"| {label} | {meas * 1e6:.1f} | {pred * 1e6:.1f} | {pred / meas * 100 - 100:+.1f}% |" if markdown
                   else f"  {label:40s} measured {meas * 1e6:7.1f}  predicted {pred * 1e6:7.1f}  {pred / meas * 100 - 100:+6.1f}%")
    for p in streaming["points"]:
        if p["M"] != 1:
            continue
        pred = t0 + p["weight_bytes"] / bw
        meas = p["per_kernel_in_graph_s"]
        label = f"stream {p['weight_bytes'] / 1e6:.0f} MB kernel, us"
        out.append(f"| {label} | {meas * 1e6:.1f} | {pred * 1e6:.1f} | {pred / meas * 100 - 100:+.1f}% |" if markdown
                   else f"  {label:40s} measured {meas * 1e6:7.1f}  predicted {pred * 1e6:7.1f}  {pred / meas * 100 - 100:+6.1f}%")
    return out


def calibration_block(params: dict[str, float], measured: bool) -> dict:
    """The YAML `calibration:` mapping for one GPU."""
    block: dict = {}
    for name in PARAMETER_DESCRIPTIONS:
        if name == "host_overhead_s":
            default = PerfCalibration().host_overhead_s
            block[name] = {"value": 0.0, "source": default.source, "estimated": True}
            continue
        block[name] = {
            "value": float(f"{params[name]:.5g}"),
            "source": FIT_SOURCE if measured else DERIVED_RULE,
            "estimated": not measured,
        }
    block["attention_split_kv"] = False
    return block


def write_blocks(params: dict[str, float], catalog_dir: Path, measured_id: str = "h200") -> list[str]:
    """Replace the top-level `calibration:` block of each catalog YAML, leaving the rest as is."""
    written = []
    for path in sorted(catalog_dir.glob("*.yaml")):
        text = path.read_text()
        raw = yaml.safe_load(text)
        if not isinstance(raw, dict) or "id" not in raw:
            continue
        lines = text.splitlines(keepends=True)
        keep: list[str] = []
        skipping = False
        for line in lines:
            if line.startswith("calibration:"):
                skipping = True
                continue
            if skipping and line.strip() and not line[0].isspace() and not line.startswith("#"):
                skipping = False
            if not skipping:
                keep.append(line)
        if keep and not keep[-1].endswith("\n"):
            keep[-1] += "\n"
        measured = raw["id"] == measured_id
        header = ("# Step-time model efficiencies (docs/perf.md): fitted to the H200 measurements\n" if measured else
                  "# Step-time model efficiencies (docs/perf.md): derived from the H200 fit, estimated\n")
        block = yaml.safe_dump({"calibration": calibration_block(params, measured)}, sort_keys=False,
                               width=1000, allow_unicode=True)
        path.write_text("".join(keep) + header + block)
        written.append(path.name)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(ROOT / "bench" / "data"),
                    help="folder with h200-llama-3.1-8b.json and h200-weight-streaming.json "
                    "(default: the copies in bench/data; bench/data/README.md says where the originals are)")
    ap.add_argument("--markdown", action="store_true", help="print markdown tables (docs/perf.md)")
    ap.add_argument("--write", action="store_true", help="rewrite the calibration: blocks of gpu_catalog/*.yaml")
    args = ap.parse_args()
    data_dir = Path(args.data_dir)
    data = json.loads((data_dir / "h200-llama-3.1-8b.json").read_text())
    streaming = json.loads((data_dir / "h200-weight-streaming.json").read_text())
    gpu = get_gpu("h200")

    t = time.perf_counter()
    params = fit_h200(data, streaming, gpu)
    fit_s = time.perf_counter() - t
    result = evaluate(data, streaming, gpu, params)
    md = args.markdown

    print(f"# Fitted parameters (H200, fit took {fit_s:.2f} s)")
    if md:
        print("| parameter | value | in code (H200_FIT) | meaning |\n|---|---:|---:|---|")
    for name, value in params.items():
        code = H200_FIT.get(name, float("nan"))
        if md:
            print(f"| {name} | {value:.5g} | {code:.5g} | {PARAMETER_DESCRIPTIONS[name]} |")
        else:
            print(f"  {name:28s} {value:12.5g}   (H200_FIT {code:.5g})  {PARAMETER_DESCRIPTIONS[name]}")
    print()
    print("# Summary")
    for kind in ("decode", "prefill"):
        print(("- " if md else "  ") + _summary(result.points, kind))
    mixed = [abs(p.error) * 100 for p in result.points if p.kind == "mixed_increment"]
    print(("- " if md else "  ") + f"mixed-step increments ({len(mixed)} points): median |error| "
          f"{statistics.median(mixed):.1f}%, max {max(mixed):.1f}%")
    loo_dec = [abs(p.error) * 100 for p in result.leave_one_context_out if p.kind == "decode" and p.in_target]
    print(("- " if md else "  ") + f"leave-one-context-out, decode batch >= 8 ({len(loo_dec)} points): median "
          f"|error| {statistics.median(loo_dec):.1f}%, max {max(loo_dec):.1f}%")
    print()
    print("# Every point (* = inside the issue's target range)")
    print("\n".join(_table(result.points, md)))
    print()
    print("# Leave one context out (refit without that context's decode and mixed points)")
    print("\n".join(_table(result.leave_one_context_out, md)))
    print()
    print("# Micro-benchmarks against one GEMM's roofline (skinny GEMMs: single launches, offset by the M=1 point's launch time)")
    print("\n".join(_micro(data, streaming, gpu, params, md)))
    drift = {k: params[k] / H200_FIT[k] - 1 for k in params if k in H200_FIT and H200_FIT[k]}
    worst = max(drift.items(), key=lambda kv: abs(kv[1]))
    print()
    print(f"# Largest drift from planner/inputs/calibration.py H200_FIT: {worst[0]} {worst[1] * 100:+.2f}%")
    if args.write:
        names = write_blocks(params, ROOT / "gpu_catalog")
        print(f"# wrote calibration blocks: {', '.join(names)}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
