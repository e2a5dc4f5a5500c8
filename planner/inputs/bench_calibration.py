"""The `benchmark_calibration` block of a GPU YAML: step-time corrections fitted by `planner
calibrate` to a user's own `vllm bench serve` runs, where they are valid, and which result files
they came from (by SHA-256).

Three corrections, each defined on a term of the step-time model, each bounded:

- `gemm_scale`: multiplies the time of every weight GEMM (dense, routed experts, LM head): the
  kernels a vendor library or a quantized format makes faster or slower than the model has them;
- `attention_scale`: multiplies attention time (prefill chunks and decode): the attention backend
  (FlashAttention, FlashInfer, Triton) and KV-cache dtype the user's server ran;
- `step_overhead_s`: seconds added to every engine step: the host work (scheduling, sampling,
  detokenisation, the API server) an engine does not hide behind the GPU.

A GPU entry with this block is a catalog entry like any other (`--gpu my-gpu.yaml`,
`candidates.gpus: [my-gpu.yaml]`, `prices:`); planner.perf applies the corrections to its step
times (planner/perf/corrections.py) and every report that uses it says so in its assumptions.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

CORRECTION_NAMES: tuple[str, ...] = ("gemm_scale", "attention_scale", "step_overhead_s")

# Bounds: a 4x error either way in a kernel family means the setup is not the one modelled (wrong
# GPU, wrong precision, a kernel falling back to a slow path): refuse to fit it away. 50 ms of host
# time per step is far beyond any engine's scheduler.
BOUNDS: dict[str, tuple[float, float]] = {
    "gemm_scale": (0.25, 4.0),
    "attention_scale": (0.25, 4.0),
    "step_overhead_s": (0.0, 0.05),
}


class Corrections(BaseModel):
    """Fitted corrections of one (GPU, model, TP, quantization) setup; identity by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gemm_scale: float = Field(1.0, ge=BOUNDS["gemm_scale"][0], le=BOUNDS["gemm_scale"][1],
                              description="multiplies weight-GEMM time")
    attention_scale: float = Field(1.0, ge=BOUNDS["attention_scale"][0], le=BOUNDS["attention_scale"][1],
                                   description="multiplies attention time")
    step_overhead_s: float = Field(0.0, ge=BOUNDS["step_overhead_s"][0], le=BOUNDS["step_overhead_s"][1],
                                   description="seconds added to every engine step")

    @property
    def is_identity(self) -> bool:
        return self.gemm_scale == 1.0 and self.attention_scale == 1.0 and self.step_overhead_s == 0.0

    def with_values(self, names: tuple[str, ...], values: Any) -> "Corrections":
        """A copy with `names` set to `values` (in order)."""
        return self.model_copy(update={n: float(v) for n, v in zip(names, values)})


class FittedCorrection(BaseModel):
    """One fitted value and its bootstrap spread."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    value: float
    std_error: float | None = Field(None, description="Gauss-Newton standard error")
    low: float | None = Field(None, description="2.5th percentile of the bootstrap")
    high: float | None = Field(None, description="97.5th percentile of the bootstrap")
    determined: bool = True


class CalibrationValidity(BaseModel):
    """The setup the corrections were fitted on; using them elsewhere gets a warning."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    tensor_parallel_size: int
    precision: str | None = None
    quantization: str = "none"
    kv_cache_dtype: str = "auto"
    vllm_versions: list[str] = Field(default_factory=list, description="vLLM version(s) the benchmarks ran")


class CalibratedFile(BaseModel):
    """One benchmark run the fit used."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    run: int = Field(1, description="1 unless the file holds several appended runs")
    sha256: str
    date: str | None = None
    vllm_version: str | None = None
    traffic: str = ""
    requests: int = 0


class BenchmarkCalibration(BaseModel):
    """Corrections of the step-time model fitted to a user's own `vllm bench serve` runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_gpu: str = Field(description="catalog id of the GPU the fit started from")
    corrections: Corrections
    fitted: list[FittedCorrection] = Field(default_factory=list)
    valid_for: CalibrationValidity
    step_model_vllm_version: str | None = Field(
        None, description="vLLM version of the kernel tables the corrected step model used")
    results: list[CalibratedFile] = Field(default_factory=list)
    rms_error_before: float | None = None
    rms_error_after: float | None = None
    rms_error_held_out: float | None = None
    weakly_determined: bool = False
    fitted_on: str | None = None
    method: str = ""

    def outside_validity(self, model: str, tensor_parallel_size: int | None = None, precision: str | None = None,
                         quantization: str = "none", kv_cache_dtype: str = "auto") -> list[str]:
        """What differs between the setup asked for and the one the corrections were fitted on
        (a TP or precision of None is not checked)."""
        v = self.valid_for
        pairs: list[tuple[str, Any, Any]] = [("model", model, v.model), ("quantization", quantization, v.quantization),
                                              ("KV cache dtype", kv_cache_dtype, v.kv_cache_dtype)]
        if tensor_parallel_size is not None:
            pairs.append(("TP", tensor_parallel_size, v.tensor_parallel_size))
        if precision is not None and v.precision is not None:  # None: the checkpoint's own
            pairs.append(("precision", precision, v.precision))
        return [f"{name} {asked} (fitted on {fitted})" for name, asked, fitted in pairs if asked != fitted]

    def summary(self) -> str:
        """One line: the corrections and what they were fitted on."""
        c, v = self.corrections, self.valid_for
        versions = f", vLLM {', '.join(v.vllm_versions)}" if v.vllm_versions else ""
        return (f"GEMM x{c.gemm_scale:.3f}, attention x{c.attention_scale:.3f}, +{c.step_overhead_s * 1e3:.2f} ms "
                f"per step, fitted by planner calibrate on {self.fitted_on or 'an unknown date'} to "
                f"{len(self.results)} vllm bench serve run(s) of {v.model} at TP {v.tensor_parallel_size}"
                f"{versions} (files by sha256 in the GPU YAML)")
