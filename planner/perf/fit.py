"""The offline calibration fit: reproduces the H200 efficiency parameters from the measurement files.

Offline tooling (bench/calibration.py runs it and prints predicted vs measured for every point);
the planner itself only reads the fitted values from the catalog (`planner.inputs.calibration`).
Pure functions of the measurement dicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel

from planner.inputs.calibration import PerfCalibration

# ---------------------------------------------------------------------------------------------
# The fit. Pure functions of the measurement dicts (bench/calibration.py reads the files).
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FitPoint:
    """One measured point and the model's prediction for it."""

    kind: str  # "decode" | "prefill" | "mixed_increment" | "gemm" | "stream"
    label: str
    measured_s: float
    predicted_s: float
    in_target: bool  # inside the accuracy target (decode batch >= 8, prefill >= 512 tokens)

    @property
    def error(self) -> float:
        """Relative error, predicted / measured - 1."""
        return self.predicted_s / self.measured_s - 1.0


@dataclass(frozen=True)
class FitResult:
    """Fitted parameters (H200_FIT's keys) and every point's prediction."""

    params: dict[str, float]
    points: list[FitPoint]
    leave_one_context_out: list[FitPoint]


def fit_streaming_curve(streaming: Mapping[str, Any], peak_bandwidth_bytes_per_s: float) -> tuple[float, float]:
    """Fit t = kernel_fixed_s + bytes / (fraction x peak) to the M = 1 in-graph kernel times.

    Least squares on log(predicted / measured), so small and large kernels count alike.

    Returns:
        (kernel_fixed_s, stream_bandwidth_fraction).
    """
    from scipy.optimize import least_squares

    pts = [p for p in streaming["points"] if p["M"] == 1]
    w = np.array([p["weight_bytes"] for p in pts], float)
    t = np.array([p["per_kernel_in_graph_s"] for p in pts], float)

    def resid(x: np.ndarray) -> np.ndarray:
        return np.log((x[0] * 1e-6 + w / (x[1] * 1e12)) / t)

    sol = least_squares(resid, [5.0, 4.0], bounds=([0.0, 0.1], [100.0, 50.0]))
    return float(sol.x[0] * 1e-6), float(sol.x[1] * 1e12 / peak_bandwidth_bytes_per_s)


def _gemm_ceilings(ceilings: Mapping[str, float]) -> list[tuple[int, int, int, float]]:
    """(M, K, N, FLOP/s) of the measured GEMM ceilings (the keys name M x K x N)."""
    out = []
    for key, val in ceilings.items():
        if key.startswith("gemm_") and key.endswith("_TFLOPs"):
            m, k, n = (int(x) for x in key[5:-7].split("x"))
            out.append((m, k, n, float(val) * 1e12))
    return sorted(out)


def fit_flop_fraction(ceilings: Mapping[str, float], peak_flops_per_s: float) -> float:
    """Achieved / peak FLOP rate of the largest measured GEMM (its M, K, N all large).

    Smaller GEMMs reach less because streaming their weights still counts: the roofline of
    `StepTimeModel` reproduces that, with roofline_exponent fitted to the step data.
    """
    g = _gemm_ceilings(ceilings)
    m, k, n, rate = max(g, key=lambda x: x[0] * x[1] * x[2])
    return rate / peak_flops_per_s


def llama_shape_from_config(cfg: Mapping[str, int], name: str = "llama-3.1-8b (calibration)") -> Any:
    """A ModelSpec of the calibration file's Llama-shaped decoder."""
    from planner.inputs.models import ModelSpec

    return ModelSpec(
        name=name,
        num_hidden_layers=cfg["layers"],
        hidden_size=cfg["hidden"],
        intermediate_size=cfg["ffn"],
        num_attention_heads=cfg["heads"],
        num_key_value_heads=cfg["kv_heads"],
        head_dim=cfg["head_dim"],
        vocab_size=cfg["vocab"],
    )


def _predict_all(model_cls: Any, spec: Any, gpu: Any, data: Mapping[str, Any]) -> list[FitPoint]:
    """Predictions of a model built for (spec, gpu) against every point of the 8B file."""
    m = model_cls.create(spec, gpu)
    run = data["llama-3.1-8b"]
    out: list[FitPoint] = []
    for q in run["decode"]:
        ctx = np.full(q["batch"], q["context"], dtype=np.int64)
        out.append(FitPoint("decode", f"batch {q['batch']} context {q['context']}", q["seconds"],
                            m.step_seconds(ctx), q["batch"] >= 8))
    for q in run["prefill"]:
        out.append(FitPoint("prefill", f"batch {q['batch']} prompt {q['prompt']}", q["seconds"],
                            m.prefill_seconds(q["prompt"], q["batch"]), q["prompt"] >= 512))
    mixed = data["llama-3.1-8b-mixed-steps"]
    base = {(q["batch"], q["context"]): q["seconds"] for q in mixed["decode"]}
    for q in mixed["mixed"]:
        b, c, k = q["batch"], q["context"], q["prefill_chunk"]
        ctx = np.full(b, c, dtype=np.int64)
        pred = m.step_seconds(ctx, [(k, 0)]) - m.step_seconds(ctx)
        out.append(FitPoint("mixed_increment", f"batch {b} context {c} + chunk {k}",
                            q["seconds"] - base[(b, c)], pred, False))
    return out


# Parameters fitted to the 8B points, with their scale (the optimizer works in O(1) units) and bounds.
_STEP_PARAMS: dict[str, tuple[float, float, float]] = {
    "roofline_exponent": (1.0, 1.0, 64.0),
    "layer_fixed_s": (1e-6, 0.0, 500.0),
    "activation_passes": (1.0, 0.0, 500.0),
    "attention_flop_fraction": (1.0, 0.05, 1.0),
    "attention_unit_bytes_per_s": (1e9, 1.0, 1000.0),
}


def fit_h200(data: Mapping[str, Any], streaming: Mapping[str, Any], gpu: Any,
             exclude_context: int | None = None) -> dict[str, float]:
    """Fit the calibration to the H200 files.

    Steps: (1) the streaming curve gives kernel_fixed_s and stream_bandwidth_fraction; (2) the
    largest GEMM ceiling gives flop_fraction; (3) the five step parameters are fitted to the
    decode points, the prefills of >= 512 tokens and the mixed-step increments (log errors, equal
    weights); (4) eager_launch_s_per_layer is the 128-token prefill's time per layer (the only
    point where the host, not the GPU, sets the time).

    Args:
        data: the parsed h200-llama-3.1-8b.json.
        streaming: the parsed h200-weight-streaming.json.
        gpu: the H200 GpuSpec (peak bandwidth and FLOP rates; its calibration is ignored).
        exclude_context: leave out the decode and mixed points at this context (cross-validation).
    Returns:
        parameter name -> value (H200_FIT's keys).
    """
    from scipy.optimize import least_squares

    from planner.perf import StepTimeModel

    kernel_fixed_s, bw_frac = fit_streaming_curve(streaming, gpu.memory_bandwidth_bytes_per_s)
    flop_frac = fit_flop_fraction(data["ceilings"], gpu.flops_per_s("bf16"))
    spec = llama_shape_from_config(data["llama-3.1-8b"]["config"])
    run = data["llama-3.1-8b"]
    eager_per_layer = min(q["seconds"] for q in run["prefill"]) / spec.num_hidden_layers
    fixed = {
        "stream_bandwidth_fraction": bw_frac,
        "kernel_fixed_s": kernel_fixed_s,
        "flop_fraction": flop_frac,
        "eager_launch_s_per_layer": eager_per_layer,
    }
    names = list(_STEP_PARAMS)
    scales = np.array([_STEP_PARAMS[n][0] for n in names])

    def gpu_with(x: np.ndarray) -> Any:
        params = dict(fixed)
        params.update({n: float(v) for n, v in zip(names, x * scales)})
        return _GpuWithCalibration(gpu, PerfCalibration.from_fit(params, "fit in progress"))

    def resid(x: np.ndarray) -> np.ndarray:
        pts = _predict_all(StepTimeModel, spec, gpu_with(x), data)
        keep = [p for p in pts if _used_in_fit(p, exclude_context)]
        return np.array([math.log(p.predicted_s / p.measured_s) for p in keep])

    x0 = np.array([1.5, 40.0, 25.0, 0.5, 40.0])
    lo = [_STEP_PARAMS[n][1] for n in names]
    hi = [_STEP_PARAMS[n][2] for n in names]
    sol = least_squares(resid, x0, bounds=(lo, hi), x_scale="jac")
    out = dict(fixed)
    out.update({n: float(v) for n, v in zip(names, sol.x * scales)})
    return out


def _used_in_fit(p: FitPoint, exclude_context: int | None) -> bool:
    if p.kind == "prefill":
        return p.in_target
    if exclude_context is not None and f"context {exclude_context}" in p.label:
        return False
    return True


class _GpuWithCalibration:
    """A GpuSpec stand-in whose calibration is replaced (the fit tries parameter sets)."""

    def __init__(self, gpu: Any, calibration: PerfCalibration) -> None:
        self._gpu = gpu
        self.calibration = calibration

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gpu, name)


def with_calibration(gpu: Any, calibration: PerfCalibration) -> Any:
    """`gpu` with its calibration replaced (works for GpuSpec and test doubles)."""
    if isinstance(gpu, BaseModel):
        return gpu.model_copy(update={"calibration": calibration})
    return _GpuWithCalibration(gpu, calibration)


def evaluate(data: Mapping[str, Any], streaming: Mapping[str, Any], gpu: Any,
             params: Mapping[str, float]) -> FitResult:
    """Predictions of the model with `params` for every point, plus leave-one-context-out.

    The leave-one-context-out predictions refit the step parameters without the decode/mixed
    points of one context (512, 2048, 8192) and predict that context's points.
    """
    from planner.perf import StepTimeModel

    spec = llama_shape_from_config(data["llama-3.1-8b"]["config"])
    cal = PerfCalibration.from_fit(params, "fit")
    points = _predict_all(StepTimeModel, spec, with_calibration(gpu, cal), data)
    loo: list[FitPoint] = []
    contexts = sorted({q["context"] for q in data["llama-3.1-8b"]["decode"]})
    for c in contexts:
        p_c = fit_h200(data, streaming, gpu, exclude_context=c)
        pts = _predict_all(StepTimeModel, spec, with_calibration(gpu, PerfCalibration.from_fit(p_c, "loo")), data)
        loo += [p for p in pts if p.kind in ("decode", "mixed_increment") and f"context {c}" in p.label]
    return FitResult(params=dict(params), points=points, leave_one_context_out=loo)
