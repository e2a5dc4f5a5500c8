"""The step-time model's correctable terms (`PerfCalibration`), as a GPU's catalog entry may carry them.

The step-time model (planner/perf/) sums vLLM's own measured kernel latencies (gpu_catalog/kernels/,
from aiconfigurator-core) plus the engine's costs outside those kernels. What stays to calibrate is
few numbers, each with its source and an `estimated` flag:

- `gemm_scale`, `attention_scale`: multipliers on the measured GEMM (and MoE) and attention times,
  1 = as measured (a `planner calibrate` run against your own engine may fit them);
- `layer_fixed_s`: per-layer time of vLLM's small fused kernels (norms, rotary + cache write,
  activation) beyond the tables; `step_overhead_s`: per-step time outside the GPU kernels. These two
  are the only constants fitted to end-to-end vLLM runs: silicon_sample.csv's H100 rows
  (bench/silicon.py --fit; docs/perf.md), and carried to every GPU.

A catalog entry without a calibration block gets these defaults.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ConfigDict, Field

from planner.inputs.strict import StrictInput

KERNEL_TABLES_SOURCE = "vLLM's measured kernel latencies (gpu_catalog/kernels/, aiconfigurator-core 0.12.0)"
H100_FIT_SOURCE = (
    "fitted to the H100 vLLM rows of aiconfigurator-core 0.12.0's silicon_sample.csv "
    "(bench/silicon.py --fit; H200 and B200 rows are the test set, docs/perf.md)"
)
# bench/silicon.py --fit prints these (docs/perf.md tabulates the fit).
H100_FIT: dict[str, float] = {"layer_fixed_s": 30.5e-6, "step_overhead_s": 0.0}


class CalibratedValue(StrictInput):
    """One parameter: its value, where it came from, and whether it is an estimate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(ge=0, description="every term is a scale or a time: >= 0")
    source: str
    estimated: bool


def _v(value: float, source: str, estimated: bool = False) -> CalibratedValue:
    return CalibratedValue(value=value, source=source, estimated=estimated)


_DESCRIPTIONS: dict[str, str] = {
    "gemm_scale": "multiplier on the measured GEMM and fused-MoE kernel times (1 = as measured)",
    "attention_scale": "multiplier on the measured attention kernel times (1 = as measured)",
    "layer_fixed_s": "per-layer time of the small fused kernels outside the tables (norms, rotary, "
    "activation), seconds",
    "step_overhead_s": "per-step time outside the GPU kernels (sampler, scheduler, input preparation "
    "not hidden behind the GPU), seconds",
}


class PerfCalibration(StrictInput):
    """Correctable terms of the kernel-table step-time model of one GPU (defaults: no correction,
    the H100 fit for the two engine constants)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gemm_scale: CalibratedValue = Field(
        default_factory=lambda: _v(1.0, KERNEL_TABLES_SOURCE), description=_DESCRIPTIONS["gemm_scale"])
    attention_scale: CalibratedValue = Field(
        default_factory=lambda: _v(1.0, KERNEL_TABLES_SOURCE), description=_DESCRIPTIONS["attention_scale"])
    layer_fixed_s: CalibratedValue = Field(
        default_factory=lambda: _v(H100_FIT["layer_fixed_s"], H100_FIT_SOURCE),
        description=_DESCRIPTIONS["layer_fixed_s"])
    step_overhead_s: CalibratedValue = Field(
        default_factory=lambda: _v(H100_FIT["step_overhead_s"], H100_FIT_SOURCE),
        description=_DESCRIPTIONS["step_overhead_s"])

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
        """A calibration whose given fields come from `fit` with one source (e.g. `planner calibrate`)."""
        fields = {k: _v(float(v), source, estimated) for k, v in fit.items() if k in _DESCRIPTIONS}
        return cls(**fields)


PARAMETER_DESCRIPTIONS: Mapping[str, str] = _DESCRIPTIONS
