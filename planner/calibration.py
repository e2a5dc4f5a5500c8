"""Efficiency parameters of the step-time model (`PerfCalibration`) and the fit that produces them.

The step-time model (planner/perf.py) is first-principles physics: bytes over bandwidth, FLOPs over a
FLOP rate, plus fixed costs. What physics cannot say is how close real kernels get to the datasheet,
so each GPU's catalog entry carries a few efficiency parameters, each with its source and an
`estimated` flag:

- the weight-streaming curve of one GEMV-like kernel: a fixed cost per kernel plus bytes at
  `stream_bandwidth_fraction` x peak bandwidth (fitted to h200-weight-streaming.json, not to the
  model points: a free fit of the 8B points cannot tell bandwidth from per-layer cost);
- the achieved FLOP rate of a large GEMM, `flop_fraction` x peak (the 8192^3 GEMM ceiling);
- five parameters fitted to the Llama-3.1-8B decode/prefill/mixed-step measurements: how sharply
  one GEMM turns from streaming- to compute-bound (`roofline_exponent`), the fixed cost of the
  small (non-GEMM) kernels of one layer, the elementwise activation traffic per token, the achieved
  attention FLOP fraction in prefill, and the rate one (sequence, KV head) reaches in a decode
  attention kernel that does not split the context;
- the host time per layer of an eager (no CUDA graph) forward pass, and the engine's host overhead
  per step (a setting).

GPUs without measurements use the same dimensionless fractions and the same fixed times as the
H200 fit (the rule in `DERIVED_RULE`), marked estimated. `fit_h200(...)` reproduces the fit;
`bench/calibration.py` runs it and prints predicted vs measured for every point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

# Cited by the path that ships with the repository (bench/data holds verbatim copies of the
# measurement files; bench/data/README.md says where the originals are) and the measurement.
CALIBRATION_FILE = "bench/data/h200-llama-3.1-8b.json (measured on an NVIDIA H200, 2026-11-26)"
STREAMING_FILE = "bench/data/h200-weight-streaming.json (measured on an NVIDIA H200, 2026-11-26)"

DERIVED_RULE = (
    "derived from the H200 fit (" + CALIBRATION_FILE + ") by the rule in docs/perf.md: same "
    "fraction of this GPU's peak bandwidth/FLOP rate, same fixed times per kernel and per layer (estimated)"
)


class CalibratedValue(BaseModel):
    """One efficiency parameter: its value, where it came from, and whether it is an estimate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float
    source: str
    estimated: bool


def _v(value: float, source: str, estimated: bool = True) -> CalibratedValue:
    return CalibratedValue(value=value, source=source, estimated=estimated)


# The H200 fit (bench/calibration.py prints it; docs/perf.md tabulates it). These are the defaults
# for a GPU entry without a calibration block, marked estimated there (DERIVED_RULE).
H200_FIT: dict[str, float] = {
    "stream_bandwidth_fraction": 0.98947,
    "kernel_fixed_s": 5.5296e-06,
    "flop_fraction": 0.75905,
    "roofline_exponent": 1.9740,
    "layer_fixed_s": 7.5015e-05,
    "activation_passes": 25.677,
    "attention_flop_fraction": 0.45271,
    "attention_unit_bytes_per_s": 5.0156e10,
    "eager_launch_s_per_layer": 3.8529e-04,
}

_DESCRIPTIONS: dict[str, str] = {
    "stream_bandwidth_fraction": "achieved / peak memory bandwidth of a large weight stream",
    "kernel_fixed_s": "fixed time of one GEMM kernel inside a CUDA graph, seconds",
    "flop_fraction": "achieved / dense peak FLOP rate of a large GEMM",
    "roofline_exponent": "n of the smooth roofline (stream^n + compute^n)^(1/n) of one GEMM; 64 or more = max",
    "layer_fixed_s": "fixed time of one layer's small kernels (norms, rope, activation, "
    "attention launch, residual adds), seconds",
    "activation_passes": "elementwise activation traffic per token per layer, in passes over "
    "(hidden + q/k/v + MLP width) activations",
    "attention_flop_fraction": "achieved / dense peak FLOP rate of prefill attention",
    "attention_unit_bytes_per_s": "K/V bytes per second one (sequence, KV head) reaches in a "
    "decode attention kernel that does not split the context",
    "eager_launch_s_per_layer": "host time to launch one layer's kernels eagerly (no CUDA graph), "
    "seconds: the floor of a small standalone prefill",
    "host_overhead_s": "engine host time per step not hidden behind the GPU (scheduling, "
    "sampling, detokenisation), seconds",
}

_HOST_OVERHEAD_SOURCE = (
    "setting, default 0: the calibration measured GPU time only, and engines that overlap "
    "scheduling with the GPU hide the host work (SGLang zero-overhead batch scheduler, "
    "lmsys.org/blog/2024-12-04-sglang-v0-4; TensorRT-LLM overlap scheduler, "
    "nvidia.github.io/TensorRT-LLM/features/overlap-scheduler.html; vLLM --async-scheduling); "
    "set it for a synchronous engine (estimated)"
)


def _derived(name: str) -> CalibratedValue:
    return _v(H200_FIT[name], DERIVED_RULE)


class PerfCalibration(BaseModel):
    """Fitted or derived efficiency parameters of one GPU for the step-time model.

    Each field is a `CalibratedValue` (value, source, estimated). The defaults are the H200 fit,
    marked estimated (the rule for GPUs without measurements); the H200 catalog entry carries the
    same numbers with estimated false and the fit as source.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    stream_bandwidth_fraction: CalibratedValue = Field(
        default_factory=lambda: _derived("stream_bandwidth_fraction"),
        description=_DESCRIPTIONS["stream_bandwidth_fraction"],
    )
    kernel_fixed_s: CalibratedValue = Field(
        default_factory=lambda: _derived("kernel_fixed_s"), description=_DESCRIPTIONS["kernel_fixed_s"]
    )
    flop_fraction: CalibratedValue = Field(
        default_factory=lambda: _derived("flop_fraction"), description=_DESCRIPTIONS["flop_fraction"]
    )
    roofline_exponent: CalibratedValue = Field(
        default_factory=lambda: _derived("roofline_exponent"), description=_DESCRIPTIONS["roofline_exponent"]
    )
    layer_fixed_s: CalibratedValue = Field(
        default_factory=lambda: _derived("layer_fixed_s"), description=_DESCRIPTIONS["layer_fixed_s"]
    )
    activation_passes: CalibratedValue = Field(
        default_factory=lambda: _derived("activation_passes"),
        description=_DESCRIPTIONS["activation_passes"],
    )
    attention_flop_fraction: CalibratedValue = Field(
        default_factory=lambda: _derived("attention_flop_fraction"),
        description=_DESCRIPTIONS["attention_flop_fraction"],
    )
    attention_unit_bytes_per_s: CalibratedValue = Field(
        default_factory=lambda: _derived("attention_unit_bytes_per_s"),
        description=_DESCRIPTIONS["attention_unit_bytes_per_s"],
    )
    attention_split_kv: bool = Field(
        False,
        description="the decode attention kernel splits long contexts across SMs (flash-decoding, "
        "FlashInfer, vLLM paged attention v2); False = the calibration's SDPA kernel, where one "
        "(sequence, KV head) scans its context alone",
    )
    eager_launch_s_per_layer: CalibratedValue = Field(
        default_factory=lambda: _derived("eager_launch_s_per_layer"),
        description=_DESCRIPTIONS["eager_launch_s_per_layer"],
    )
    host_overhead_s: CalibratedValue = Field(
        default_factory=lambda: _v(0.0, _HOST_OVERHEAD_SOURCE),
        description=_DESCRIPTIONS["host_overhead_s"],
    )

    def value(self, name: str) -> float:
        """The value of parameter `name`."""
        return float(getattr(self, name).value)

    def estimated_names(self) -> list[str]:
        """Names of the parameters that are estimates (for a report's Assumptions)."""
        return [n for n in _DESCRIPTIONS if getattr(self, n).estimated]

    def assumptions(self, gpu_id: str = "") -> list[str]:
        """The estimated parameters, one line per distinct source: names, values, source."""
        where = f"{gpu_id}: " if gpu_id else ""
        by_source: dict[str, list[str]] = {}
        for n in self.estimated_names():
            by_source.setdefault(getattr(self, n).source, []).append(f"{n} = {self.value(n):.4g}")
        return [f"{where}step-time {', '.join(items)} ({src})" for src, items in by_source.items()]

    @classmethod
    def from_fit(cls, fit: Mapping[str, float], source: str, estimated: bool = False) -> "PerfCalibration":
        """A calibration whose fitted fields all come from `fit` with one source."""
        fields = {k: _v(float(v), source, estimated) for k, v in fit.items() if k in _DESCRIPTIONS}
        return cls(**fields)


PARAMETER_DESCRIPTIONS: Mapping[str, str] = _DESCRIPTIONS


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
    from planner.models import ModelSpec

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
