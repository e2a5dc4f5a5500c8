"""Apply a GPU's `benchmark_calibration` corrections (planner.inputs.bench_calibration) to a
step-time model: GEMM time x gemm_scale, attention time x attention_scale, plus step_overhead_s
per step; everything else in a step as the model has it."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from planner.assumption import Assumption, render
from planner.errors import PlannerError
from planner.inputs.bench_calibration import Corrections


@runtime_checkable
class CorrectableModel(Protocol):
    """A step-time model that applies corrections itself."""

    def with_corrections(self, gemm_scale: float, attention_scale: float, step_overhead_s: float) -> Any:
        """A copy whose GEMM time is x gemm_scale, attention x attention_scale, plus
        step_overhead_s per step."""
        ...


def corrected(model: Any, corrections: Corrections) -> Any:
    """`model` with `corrections` applied.

    A model with a `with_corrections` method applies them itself. `StepTimeModel` (the kernel-table
    model) is corrected by multiplying its compiled GEMM rows (layers and LM head) by gemm_scale and
    its attention grids by attention_scale, and adding step_overhead_s to its host time per step:
    the same step times as `StepTimeModel.create` with those scales multiplied in, exactly the
    corrected sums (tests/test_calibrate_cli.py checks it on the step breakdown).

    Raises:
        PlannerError: a model of another kind.
    """
    if corrections.is_identity:
        return model
    if isinstance(model, CorrectableModel):
        return model.with_corrections(corrections.gemm_scale, corrections.attention_scale,
                                      corrections.step_overhead_s)
    # NOTE: the model's class is taken from the model, not imported: step_time imports this module.
    constants = {k: v for k, v in vars(model).items() if not k.startswith("_")}
    g, a = corrections.gemm_scale, corrections.attention_scale
    if all(hasattr(model, k) for k in ("gemm_rows", "head_rows", "dec_grid", "pre_row", "host_s")):
        # StepTimeModel: its compiled GEMM rows and attention grids already carry the catalog's
        # scales, so the corrections multiply them (and the scales it reports).
        constants.update(
            gemm_rows=[x * g for x in model.gemm_rows], head_rows=[x * g for x in model.head_rows],
            gemm_scale=getattr(model, "gemm_scale", 1.0) * g,
            dec_grid=model.dec_grid * a, pre_row=[x * a for x in model.pre_row],
            pre_floor=getattr(model, "pre_floor", 0.0) * a,
            attention_scale=getattr(model, "attention_scale", 1.0) * a,
            host_s=model.host_s + corrections.step_overhead_s,
        )
        return type(model)(**constants)
    raise PlannerError(f"cannot apply a calibration to a {type(model).__name__}: it has no with_corrections()")


def calibration_assumption_items(gpu: Any, model: str, tensor_parallel_size: int | None = None,
                                 precision: str | None = None, quantization: str = "none",
                                 kv_cache_dtype: str = "auto", tables_vllm_version: str | None = None) -> list[Assumption]:
    """The assumptions of a GPU that runs on the user's calibration (none for a catalog GPU): what
    was fitted to what, and a warning when this setup is not the one it was fitted on, or when the
    step model's kernel tables (`tables_vllm_version`) are not the vLLM version it was fitted with."""
    block = getattr(gpu, "benchmark_calibration", None)
    if block is None:
        return []
    items = [Assumption(topic="calibration", name="the user's calibration", gpu=gpu.id, source=block.summary())]
    outside = block.outside_validity(model, tensor_parallel_size, precision, quantization, kv_cache_dtype)
    fitted_tables = block.step_model_vllm_version
    if tables_vllm_version and fitted_tables and tables_vllm_version != fitted_tables:
        outside.append(f"step-time tables of vLLM {tables_vllm_version} (fitted on tables of vLLM {fitted_tables})")
    if outside:
        items.append(Assumption(topic="calibration_warning", name="calibration used outside its fit", gpu=gpu.id,
                                source="; ".join(outside)))
    return items


def calibration_assumptions(gpu: Any, model: str, tensor_parallel_size: int | None = None,
                            precision: str | None = None, quantization: str = "none",
                            kv_cache_dtype: str = "auto", tables_vllm_version: str | None = None) -> list[str]:
    """`calibration_assumption_items` in words, one line each."""
    return [render(item) for item in calibration_assumption_items(
        gpu, model, tensor_parallel_size, precision, quantization, kv_cache_dtype, tables_vllm_version)]


def with_gpu_calibration(model: Any, gpu: Any, spec_name: str, tensor_parallel_size: int,
                         precision: str | None, quantization: str, kv_cache_dtype: str) -> Any:
    """`model` with the GPU's `benchmark_calibration` applied (unchanged without one); when the
    setup is not the one the corrections were fitted on, the model's notes say so."""
    block = getattr(gpu, "benchmark_calibration", None)
    if block is None:
        return model
    out = corrected(model, block.corrections)
    if out is model:
        out = type(model)(**{k: v for k, v in vars(model).items() if not k.startswith("_")})
    out.notes = [*getattr(model, "notes", []), *calibration_assumptions(
        gpu, spec_name, tensor_parallel_size, precision, quantization, kv_cache_dtype,
        getattr(model, "vllm_version", None))]
    return out
