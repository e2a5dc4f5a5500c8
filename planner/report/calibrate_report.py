"""What `planner calibrate` writes and prints: the calibrated GPU YAML and the per-file table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from planner.report.files import write_text

_METRICS = ("ttft", "tpot", "itl")
_HEADER = (
    "# GPU catalog entry written by `planner calibrate`: the base GPU's entry under a new id, with the\n"
    "# step-time corrections fitted to the benchmark runs listed under benchmark_calibration.results.\n"
    "# Use it anywhere a GPU is named: --gpu {path}, candidates.gpus: [{path}], prices: - gpu: {id}\n"
)


def gpu_yaml_text(entry: dict[str, Any], path: str | Path) -> str:
    """The YAML text of a calibrated GPU entry (planner.calibrate.calibrated_gpu)."""
    header = _HEADER.format(path=Path(path).name, id=entry["id"])
    return header + yaml.safe_dump(entry, sort_keys=False, allow_unicode=True, width=100)


def write_gpu_yaml(path: str | Path, entry: dict[str, Any]) -> Path:
    """Write the calibrated GPU entry atomically (the caller checked the path up front)."""
    return write_text(path, gpu_yaml_text(entry, path))


def _pct(errors: dict[str, float] | None, fitted: list[str] | None = None) -> str:
    """'+5% -3% -3%'; a metric the fit did not use in parentheses."""
    if not errors:
        return "-"

    def one(m: str) -> str:
        if m not in errors:
            return "  -"
        text = f"{round(errors[m] * 100):+d}%"
        return text if fitted is None or m in fitted else f"({text})"

    return " ".join(one(m) for m in _METRICS)


def _value(name: str, v: float | None) -> str:
    if v is None:
        return "?"
    return f"{v * 1e3:.2f} ms" if name == "step_overhead_s" else f"{v:.3f}"


def render_calibration(result: Any, written: Path | None = None) -> str:
    """The text `planner calibrate` prints: corrections, error per file before/after, warnings."""
    fit, block = result.fit, result.calibration
    v = block.valid_for
    versions = ", ".join(v.vllm_versions) or "not recorded"
    lines = [
        f"Calibration of {result.gpu_id} for {v.model} (TP {v.tensor_parallel_size}, quantization "
        f"{v.quantization}, KV cache {v.kv_cache_dtype}) from {len(fit.files)} run(s), vLLM {versions}",
        "",
        (f"Fitted corrections (95% interval: {fit.uncertainty_method.split(',')[0]}):" if fit.bootstrap_samples
         else "Fitted corrections:"),
    ]
    for val in fit.values:
        interval = f"[{_value(val.name, val.low)}, {_value(val.name, val.high)}]" if val.low is not None else f"(no interval: {fit.uncertainty_method.removeprefix('none').strip(' ()') or 'no resamples'})"
        flag = "" if val.determined else "   weakly determined"
        lines.append(f"  {val.name:<16} {_value(val.name, val.value):>10}  {interval}{flag}")
    unfitted = sorted({m.upper() for f in fit.files for m in f.before_error if m not in f.fitted_metrics})
    lines += ["", "Error per run, predicted / measured - 1 (mean TTFT TPOT ITL"
              + (f"; in parentheses: {', '.join(unfitted)}, shown but not fitted" if unfitted else "") + "):"]
    width = max(len(Path(f.source).name) for f in fit.files)
    held = any(f.held_out_error for f in fit.files)
    head = f"  {'run':<{width}}  {'before':<16} {'after':<16}" + (" held out (fit to the others)" if held else "")
    lines.append(head)
    for f in fit.files:
        row = (f"  {Path(f.source).name:<{width}}  {_pct(f.before_error, f.fitted_metrics):<16} "
               f"{_pct(f.after_error, f.fitted_metrics):<16}")
        if held:
            row += f" {_pct(f.held_out_error, f.fitted_metrics):<16}"
        lines.append(row + f"   ({f.traffic}; {f.requests_replayed} requests)")
    summary = f"RMS error: {fit.rms_error_before * 100:.1f}% before, {fit.rms_error_after * 100:.1f}% after"
    if fit.rms_error_held_out is not None:
        summary += f", {fit.rms_error_held_out * 100:.1f}% leave-one-file-out"
    lines += ["", summary]
    if written is not None:
        lines.append(f"Wrote {written} (GPU id {result.calibrated_id}): pass --gpu {written}, or list it under "
                     "candidates.gpus in a profile")
    for w in result.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines)
