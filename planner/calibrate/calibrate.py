"""`planner calibrate` as a function: read the result files, check they describe the setup named
by the arguments, replay each in the simulator, fit the corrections, and say where they hold.

No file is written here: the CLI hands `CalibrationResult` to planner.report to write the GPU YAML.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from planner.calibrate.bench_results import (
    VllmBenchResult,
    gpu_names_match,
    model_names_match,
    read_result_files,
)
from planner.inputs.bench_calibration import (
    CORRECTION_NAMES,
    BenchmarkCalibration,
    CalibratedFile,
    CalibrationValidity,
    Corrections,
    FittedCorrection,
)
from planner.perf.corrections import corrected
from planner.calibrate.fit import FitOutcome, fit_corrections
from planner.calibrate.replay import DEFAULT_MAX_REQUESTS, METRICS, make_replay
from planner.errors import PlannerError


class CalibrationRequest(BaseModel):
    """What the user calibrates: the GPU, model and engine settings the benchmarked server ran."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu: str = Field(description="catalog id or GPU YAML path of the benchmarked GPU")
    model: str = Field(description="preset id or config.json path")
    tensor_parallel_size: int = Field(1, ge=1)
    precision: str | None = None
    quantization: str = "none"
    kv_cache_dtype: str = "auto"
    serving: dict[str, Any] = Field(default_factory=dict, description="engine args in vLLM's names")
    vllm_version: str | None = Field(None, description="the server's vLLM version, when the files lack it")
    fit: tuple[str, ...] = CORRECTION_NAMES
    metrics: tuple[str, ...] = Field(METRICS, description="measured means the fit uses (ttft, tpot, itl); "
                                     "the others are shown, not fitted")
    calibrated_id: str | None = Field(None, description="id of the calibrated GPU entry; default <gpu>-calibrated")
    seed: int = 0
    bootstrap_samples: int = Field(400, ge=0)
    max_requests: int = Field(DEFAULT_MAX_REQUESTS, ge=1)
    leave_one_out: bool = True


class CalibrationResult(BaseModel):
    """What `planner calibrate --json` prints: the fit, the block written into the GPU YAML, and
    warnings (a one-file fit, a vLLM version other than the step-time tables', bounds hit)."""

    model_config = ConfigDict(extra="forbid")

    gpu_id: str = Field(description="catalog id of the base GPU")
    source_gpu: str = Field(description="the --gpu argument (an id or a GPU YAML path)")
    calibrated_id: str
    model: str
    tensor_parallel_size: int
    fit: FitOutcome
    calibration: BenchmarkCalibration
    warnings: list[str] = Field(default_factory=list)


def _resolve_model(name: str) -> str | None:
    """A model name or HF id to its preset id, or None."""
    from planner.inputs.models import _preset_alias, list_presets

    key = name.strip().lower()
    return key if key in list_presets() else _preset_alias(key)


def check_runs(runs: Sequence[VllmBenchResult], gpu: Any, model: str, tensor_parallel_size: int,
               quantization: str) -> None:
    """Every run must describe the setup being calibrated: its model_id the model, and its
    --metadata gpu / tensor_parallel_size / quantization, when present, the arguments.

    Raises:
        PlannerError: the first disagreement, naming the file and both values.
    """
    base = gpu.benchmark_calibration.base_gpu if getattr(gpu, "benchmark_calibration", None) else None
    for run in runs:
        if not model_names_match(run.model_id, model, _resolve_model):
            raise PlannerError(
                f"{run.source}: model_id {run.model_id!r} is not the model {model!r} given with --model: "
                "calibrate each model separately, with its own result files"
            )
        if run.gpu is not None and not gpu_names_match(run.gpu, gpu.id, gpu.name, (base,) if base else ()):
            raise PlannerError(
                f"{run.source}: --metadata gpu={run.gpu!r} is not the GPU {gpu.id!r} given with --gpu: "
                "pass the GPU the benchmark ran on"
            )
        tp = run.tensor_parallel_size()
        if tp is not None and tp != tensor_parallel_size:
            raise PlannerError(
                f"{run.source}: --metadata tensor_parallel_size={tp} but --tp is {tensor_parallel_size}: "
                "pass the TP the server ran"
            )
        q = run.quantization
        if q is not None and (q.lower() if q.lower() not in ("null", "") else "none") != quantization.lower():
            raise PlannerError(
                f"{run.source}: --metadata quantization={q!r} but --quantization is {quantization!r}: "
                "pass the quantization the server ran"
            )


def _base_gpu(gpu: Any) -> Any:
    """The GPU the corrections are fitted on: a calibrated entry without its corrections, under its
    base id, so a recalibration starts from the model itself, not from the last fit."""
    block = getattr(gpu, "benchmark_calibration", None)
    if block is None:
        return gpu
    return gpu.model_copy(update={"benchmark_calibration": None, "id": block.base_gpu})


def setup_builder(request: CalibrationRequest, gpu: Any) -> tuple[Any, Callable[[Corrections], Any]]:
    """The replica the runs are replayed on, and corrections -> that replica with them applied.

    Raises:
        PlannerError: unknown model, or the model does not fit the GPUs (as `planner simulate`).
    """
    from planner.inputs.sections import ModelSection, ServingSection
    from planner.scenario import replica_setup

    model = ModelSection(name=request.model, precision=request.precision,
                         quantization=request.quantization, kv_cache_dtype=request.kv_cache_dtype)
    serving = ServingSection(**request.serving)
    base = replica_setup(SimpleNamespace(model=model, serving=serving), gpu, request.tensor_parallel_size)

    def build(corrections: Corrections) -> Any:
        return replace(base, step_model=corrected(base.step_model, corrections))

    return base, build


def _versions(runs: Sequence[VllmBenchResult], given: str | None) -> list[str]:
    found = sorted({v for v in (r.vllm_version for r in runs) if v})
    if given and found and given not in found:
        raise PlannerError(
            f"--vllm-version {given} but the files record vllm_version {', '.join(found)}: "
            "drop --vllm-version or fix the files' --metadata"
        )
    return found or ([given] if given else [])


def _tables_version(step_model: Any) -> str | None:
    """The vLLM version of the kernel tables the step-time model uses (None: a model without one)."""
    return getattr(step_model, "vllm_version", None)


def calibrate(request: CalibrationRequest, files: Sequence[str | Path],
              progress: Callable[[], None] | None = None) -> CalibrationResult:
    """Fit the step-time corrections of one setup to `files`.

    Raises:
        PlannerError: bad files (one line naming the file), a mismatch between a file and the
        arguments, or a setup the simulator cannot run.
    """
    from planner.inputs.catalog import get_gpu

    gpu = get_gpu(request.gpu)
    base_gpu = _base_gpu(gpu)
    runs = read_result_files([str(f) for f in files])
    check_runs(runs, gpu, request.model, request.tensor_parallel_size, request.quantization)
    versions = _versions(runs, request.vllm_version)
    base, build = setup_builder(request, base_gpu)
    unknown = [m for m in request.metrics if m not in METRICS]
    if unknown or not request.metrics:
        raise PlannerError(f"--metrics: {', '.join(unknown) or 'nothing'} is not one of {', '.join(METRICS)}: "
                           "give a comma-separated subset")
    replays = [make_replay(run, seed=request.seed, max_requests=request.max_requests, metrics=request.metrics)
               for run in runs]
    outcome = fit_corrections(replays, build, names=tuple(request.fit), bootstrap_samples=request.bootstrap_samples,
                              leave_one_out=request.leave_one_out, seed=request.seed, progress=progress)
    warnings = list(outcome.notes)
    tables = _tables_version(base.step_model)
    if tables and versions and any(v != tables for v in versions):
        warnings.append(f"the files ran vLLM {', '.join(versions)} but the step-time tables are vLLM {tables}: "
                        "the corrections absorb the difference for this setup only")
    if not versions:
        warnings.append("no vLLM version recorded (pass --metadata vllm_version=... to vllm bench serve, "
                        "or --vllm-version here): the calibration cannot warn when vLLM changes")
    if any(r.lengths_estimated for r in replays):
        warnings.append("some files have no per-request lengths: replayed at their mean lengths "
                        "(run vllm bench serve with --save-detailed)")
    calibrated_id = request.calibrated_id or f"{base_gpu.id}-calibrated"
    from planner.inputs.models import get_model

    spec = get_model(request.model)
    block = BenchmarkCalibration(
        base_gpu=base_gpu.id,
        corrections=outcome.corrections,
        fitted=[FittedCorrection(name=v.name, value=v.value, std_error=v.std_error, low=v.low, high=v.high,
                                 determined=v.determined) for v in outcome.values],
        valid_for=CalibrationValidity(
            model=spec.name, tensor_parallel_size=request.tensor_parallel_size,
            precision=request.precision or getattr(spec, "default_dtype", None),
            quantization=request.quantization, kv_cache_dtype=request.kv_cache_dtype,
            vllm_versions=versions,
        ),
        step_model_vllm_version=tables,
        results=[CalibratedFile(file=Path(run.source.split("#", 1)[0]).name, run=run.run_index + 1,
                                sha256=run.sha256, date=run.date, vllm_version=run.vllm_version,
                                traffic=rep.traffic, requests=len(rep.prompt_tokens))
                 for run, rep in zip(runs, replays)],
        rms_error_before=outcome.rms_error_before,
        rms_error_after=outcome.rms_error_after,
        rms_error_held_out=outcome.rms_error_held_out,
        weakly_determined=outcome.weakly_determined,
        fitted_on=_dt.date.today().isoformat(),
        method="planner calibrate: least squares on the relative errors of mean "
               + "/".join(m.upper() for m in METRICS if m in request.metrics) + ", " + outcome.uncertainty_method,
    )
    return CalibrationResult(gpu_id=base_gpu.id, source_gpu=request.gpu, calibrated_id=calibrated_id, model=spec.name,
                             tensor_parallel_size=request.tensor_parallel_size, fit=outcome,
                             calibration=block, warnings=warnings)


def calibrated_gpu(result: CalibrationResult) -> dict[str, Any]:
    """The GPU YAML's content: the base catalog entry under the calibrated id, with the
    `benchmark_calibration` block; every field the catalog loader reads, nothing else."""
    from planner.inputs.catalog import get_gpu

    base = _base_gpu(get_gpu(result.source_gpu))
    entry = base.model_dump(mode="json", exclude={"benchmark_calibration"})
    block = result.calibration
    c = block.corrections
    entry["id"] = result.calibrated_id
    entry["name"] = f"{base.name} (calibrated: {block.valid_for.model}, TP {block.valid_for.tensor_parallel_size})"
    entry["sources"] = [*base.sources, (
        f"planner calibrate on {block.fitted_on}: {len(block.results)} vllm bench serve run(s) of "
        f"{block.valid_for.model} (sha256 in benchmark_calibration.results); GEMM x{c.gemm_scale:.3f}, "
        f"attention x{c.attention_scale:.3f}, +{c.step_overhead_s * 1e3:.2f} ms per step")]
    entry["benchmark_calibration"] = block.model_dump(mode="json")
    return entry
