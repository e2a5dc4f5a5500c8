"""The corrections `planner calibrate` fits, and how they act on a step-time model.

Three numbers, each defined on a term of the step-time model, each bounded:

- `gemm_scale`: multiplies the time of every weight GEMM (dense, routed experts, LM head): the
  kernels a vendor library or a quantized format makes faster or slower than the tables/physics;
- `attention_scale`: multiplies attention time (prefill chunks and decode): the attention backend
  (FlashAttention, FlashInfer, Triton) and KV-cache dtype the user's server ran;
- `step_overhead_s`: seconds added to every engine step: the host work (scheduling, sampling,
  detokenisation, the API server) a synchronous engine does not hide behind the GPU.

Everything else in a step (norms and other small kernels, activation traffic, all-reduces) is left
as the model has it. The seam: `corrected(model, corrections)` returns a step-time model with the
corrections applied; `CorrectableModel` is anything that can do that for itself.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from planner.errors import PlannerError

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


@runtime_checkable
class CorrectableModel(Protocol):
    """A step-time model that applies corrections itself (the kernel-table model does)."""

    def with_corrections(self, gemm_scale: float, attention_scale: float, step_overhead_s: float) -> Any:
        """A copy whose GEMM time is × gemm_scale, attention × attention_scale, plus
        step_overhead_s per step."""
        ...


def corrected(model: Any, corrections: Corrections) -> Any:
    """`model` with `corrections` applied.

    A model with a `with_corrections` method applies them itself. planner.perf.StepTimeModel (the
    physics model) is corrected here by scaling its own constants: each GEMM's bytes and FLOP
    rate and the per-kernel fixed time by gemm_scale (a GEMM's time is homogeneous of degree one
    in those), the attention rates by attention_scale, and the host time per step by
    step_overhead_s; the result's step times are exactly the corrected sums.

    Raises:
        PlannerError: a model of another kind.
    """
    if corrections.is_identity:
        return model
    if isinstance(model, CorrectableModel):
        return model.with_corrections(corrections.gemm_scale, corrections.attention_scale,
                                      corrections.step_overhead_s)
    from planner.perf import StepTimeModel

    if not isinstance(model, StepTimeModel):
        raise PlannerError(f"cannot apply a calibration to a {type(model).__name__}: it has no with_corrections()")
    g, a = corrections.gemm_scale, corrections.attention_scale
    constants = {k: v for k, v in vars(model).items() if not k.startswith("_")}

    def gemm(x: Any) -> Any:
        return replace(x, weight_bytes=x.weight_bytes * g, flop_rate=x.flop_rate / g)

    constants.update(
        dense_gemms=tuple(gemm(x) for x in model.dense_gemms),
        moe_gemms=tuple(gemm(x) for x in model.moe_gemms),
        head=gemm(model.head),
        kernel_s=model.kernel_s * g,
        expert_bytes_each=model.expert_bytes_each * g,
        expert_rate=model.expert_rate / g,
        # Attention: prefill FLOPs and K/V reads, decode per-token streaming and the serial scan.
        attn_rate=model.attn_rate / a,
        kv_tok_layer=model.kv_tok_layer * a,
        decode_attn_s_per_token=model.decode_attn_s_per_token * a,
        unit_bw=model.unit_bw / a,
        host_s=model.host_s + corrections.step_overhead_s,
    )
    return StepTimeModel(**constants)
