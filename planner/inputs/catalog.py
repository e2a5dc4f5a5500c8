"""GPU catalog: `GpuSpec` (memory, bandwidth, dense tensor rates, interconnect, prices) loaded from
one YAML file per GPU in gpu_catalog/ (or a user's own YAML given by path).

Every figure carries its provenance: `sources` for the card, `notes[field]` for a figure that is
derived (e.g. a vendor's sparse rate / 2) or estimated, `estimated` listing those fields. A figure
no source gives is None, and whatever needs it raises PlannerError saying so.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from planner.errors import PlannerError, did_you_mean, validation_line
from planner.inputs.bench_calibration import BenchmarkCalibration
from planner.inputs.calibration import PerfCalibration
from planner.inputs.reading import load_yaml
from planner.inputs.strict import StrictInput
from planner.resources import data_dir
from planner.units import GIB


class Interconnect(StrictInput):
    """GPU-to-GPU link used by tensor parallelism.

    `bandwidth_bytes_per_s` is the vendor's aggregate bidirectional figure (NVLink 4: 900 GB/s);
    `per_direction_bytes_per_s` halves it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["nvlink", "pcie", "xgmi"]
    bandwidth_bytes_per_s: float | None = Field(None, gt=0)
    latency_s: float | None = Field(None, ge=0)
    estimated: bool = False
    note: str = ""

    @property
    def per_direction_bytes_per_s(self) -> float | None:
        return None if self.bandwidth_bytes_per_s is None else self.bandwidth_bytes_per_s / 2


class PodPrice(StrictInput):
    """An hourly price for one GPU in a pod / instance (USD per GPU-hour)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    cloud: Literal["secure", "community", "on-demand"] = Field(
        description="Runpod's Secure or Community Cloud; 'on-demand' for other providers"
    )
    usd_per_hour: float = Field(gt=0)
    as_of: str
    source: str
    estimated: bool = False
    note: str = ""


class ServerlessPrice(StrictInput):
    """Per-second serverless worker prices of the tier that offers this GPU (Runpod)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    tier: str
    flex_usd_per_s: float = Field(gt=0)
    active_usd_per_s: float | None = Field(None, gt=0)
    as_of: str
    source: str
    ambiguous_note: str = ""


class GpuSpec(StrictInput):
    """One GPU model: what the catalog YAML holds. SI units (bytes, bytes/s, FLOP/s, W, USD)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    vendor: Literal["nvidia", "amd"] = "nvidia"
    memory_gb: float = Field(gt=0, description="marketed size ('80 GB' = 80 GiB of chips)")
    memory_type: str = ""
    memory_bytes_usable: int = Field(gt=0, description="total the process sees (cudaMemGetInfo)")
    memory_usable_estimated: bool = True
    memory_usable_note: str = ""
    memory_bandwidth_bytes_per_s: float = Field(gt=0)
    bf16_flops_per_s: float | None = Field(None, gt=0, description="dense tensor-core rate")
    fp16_flops_per_s: float | None = Field(None, gt=0, description="dense, FP32 accumulate")
    fp8_flops_per_s: float | None = Field(None, gt=0)
    int8_ops_per_s: float | None = Field(None, gt=0)
    ecc: bool | None = None
    interconnect: Interconnect
    tdp_w: float | None = Field(None, gt=0)
    pod_prices: list[PodPrice] = Field(default_factory=list)
    serverless: ServerlessPrice | None = None
    calibration: PerfCalibration | None = None
    benchmark_calibration: BenchmarkCalibration | None = Field(
        None, description="step-time corrections fitted by `planner calibrate` to the user's own vLLM runs")
    estimated: list[str] = Field(default_factory=list, description="fields derived or estimated")
    notes: dict[str, str] = Field(default_factory=dict, description="field -> provenance note")
    sources: list[str] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id_is_slug(cls, v: str) -> str:
        if not v or any(c.isspace() for c in v):
            raise ValueError("id must be a non-empty slug like 'h100-sxm'")
        return v

    @property
    def memory_gib_usable(self) -> float:
        return self.memory_bytes_usable / GIB

    def flops_per_s(self, dtype: str) -> float:
        """Dense tensor rate for `dtype` ("bf16", "fp16", "fp8", "int8"); "fp32" has no tensor rate
        here.

        Raises:
            PlannerError: the rate is unpublished or the GPU lacks the format (names the GPU).
        """
        field = {"bf16": "bf16_flops_per_s", "fp16": "fp16_flops_per_s", "fp8": "fp8_flops_per_s",
                 "int8": "int8_ops_per_s"}.get(dtype)
        if field is None:
            raise PlannerError(f"no tensor-core rate for {dtype!r}: use bf16, fp16, fp8 or int8")
        value = getattr(self, field)
        if value is None:
            why = self.notes.get(field, "no published figure")
            raise PlannerError(
                f"GPU {self.id!r} has no dense {dtype} rate in the catalog ({why}): add "
                f"{field} to its YAML or pick another precision"
            )
        return float(value)

    def pod_price(self, cloud: str = "secure", provider: str = "runpod") -> PodPrice:
        """The pod price for `cloud` at `provider`.

        Raises:
            PlannerError: no such price in the catalog (names the GPU and the prices it has).
        """
        for price in self.pod_prices:
            if price.cloud == cloud and price.provider == provider:
                return price
        have = ", ".join(f"{p.provider}/{p.cloud}" for p in self.pod_prices) or "none"
        raise PlannerError(
            f"GPU {self.id!r} has no {provider} {cloud} pod price (catalog has: {have}): "
            f"add one under prices: in the profile or pick another cloud"
        )


def _catalog_dir(directory: str | Path | None) -> Path:
    return Path(directory) if directory is not None else data_dir("gpu_catalog")


def load_gpu_yaml(path: str | Path) -> GpuSpec:
    """Read one GPU YAML file.

    Raises:
        PlannerError: unreadable, malformed YAML, or a field that fails validation (named).
    """
    p = Path(path)
    raw = load_yaml(p, "GPU file")
    if not isinstance(raw, dict):
        raise PlannerError(f"GPU file {str(p)!r} must hold a mapping of fields")
    unknown = [k for k in raw if k not in GpuSpec.model_fields]
    if unknown:
        hint = did_you_mean(str(unknown[0]), GpuSpec.model_fields)
        hint = f" ({hint})" if hint else ""
        raise PlannerError(f"GPU file {str(p)!r}: unknown field {unknown[0]!r}{hint}: fix the key")
    try:
        return GpuSpec(**raw)
    except ValidationError as err:
        raise PlannerError(f"GPU file {str(p)!r}: {validation_line(err, 'file')}") from None


@lru_cache(maxsize=8)
def _load_catalog_cached(directory: str) -> dict[str, GpuSpec]:
    gpus: dict[str, GpuSpec] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        spec = load_gpu_yaml(path)
        if spec.id in gpus:
            raise PlannerError(f"GPU id {spec.id!r} appears twice in {directory}: make ids unique")
        gpus[spec.id] = spec
    return gpus


def load_catalog(directory: str | Path | None = None) -> dict[str, GpuSpec]:
    """All GPUs of a catalog folder (default: the shipped gpu_catalog/), keyed by id."""
    return dict(_load_catalog_cached(str(_catalog_dir(directory).resolve())))


def list_gpus(directory: str | Path | None = None) -> list[str]:
    """Ids of the catalog's GPUs."""
    return sorted(load_catalog(directory))


def get_gpu(id_or_yaml_path: str, directory: str | Path | None = None) -> GpuSpec:
    """A catalog GPU by id (case-insensitive) or a user's own GPU YAML by path.

    Raises:
        PlannerError: unknown id (listing close ids) or a bad YAML file.
    """
    if id_or_yaml_path.endswith((".yaml", ".yml")) or Path(id_or_yaml_path).is_file():
        return load_gpu_yaml(id_or_yaml_path)
    catalog = _load_catalog_cached(str(_catalog_dir(directory).resolve()))
    key = id_or_yaml_path.strip().lower()
    if key in catalog:
        return catalog[key]
    close = did_you_mean(key, catalog, n=4, cutoff=0.4)
    hint = f"{close} " if close else f"known: {', '.join(sorted(catalog))}; "
    raise PlannerError(
        f"unknown GPU {id_or_yaml_path!r}: {hint}see `planner catalog` or pass a GPU YAML path"
    )
