"""Efficiency parameters of the step-time model (`PerfCalibration`), as each catalog entry carries them.

The step-time model (planner/perf/) is first-principles physics: bytes over bandwidth, FLOPs over a
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
H200 fit (the rule in `DERIVED_RULE`), marked estimated. `planner.perf.fit.fit_h200(...)` reproduces the fit (offline);
`bench/calibration.py` runs it and prints predicted vs measured for every point.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from planner.inputs.strict import StrictInput

# Cited by the path that ships with the repository (bench/data holds verbatim copies of the
# measurement files; bench/data/README.md says where the originals are) and the measurement.
CALIBRATION_FILE = "bench/data/h200-llama-3.1-8b.json (measured on an NVIDIA H200, 2026-11-26)"
STREAMING_FILE = "bench/data/h200-weight-streaming.json (measured on an NVIDIA H200, 2026-11-26)"

DERIVED_RULE = (
    "derived from the H200 fit (" + CALIBRATION_FILE + ") by the rule in docs/perf.md: same "
    "fraction of this GPU's peak bandwidth/FLOP rate, same fixed times per kernel and per layer (estimated)"
)


class CalibratedValue(StrictInput):
    """One efficiency parameter: its value, where it came from, and whether it is an estimate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(ge=0, description="every parameter is a fraction, a time, a rate or an exponent: >= 0")
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


class PerfCalibration(StrictInput):
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


