"""The `benchmark_calibration` block of a GPU YAML: corrections fitted by `planner calibrate`,
where they are valid, and which result files they came from (by SHA-256).

A GPU entry with this block is a catalog entry like any other (`--gpu my-gpu.yaml`,
`candidates.gpus: [my-gpu.yaml]`, `prices:`); its step times get the corrections, and every report
that uses it says so in its assumptions.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from planner.calibrate.corrections import Corrections


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
        None, description="vLLM version of the kernel tables the corrected step model used (None: physics model)")
    results: list[CalibratedFile] = Field(default_factory=list)
    rms_error_before: float | None = None
    rms_error_after: float | None = None
    rms_error_held_out: float | None = None
    weakly_determined: bool = False
    fitted_on: str | None = None
    method: str = ""
