"""The step model's correctable terms (`PerfCalibration`) and the cross-check against the eager H200
harness measurements (bench/data), which are no longer a fit source."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from planner.inputs.calibration import H100_FIT, PARAMETER_DESCRIPTIONS, PerfCalibration
from planner.inputs.catalog import get_gpu, load_catalog
from planner.inputs.models import get_model
from planner.perf import StepTimeModel

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_are_no_correction_and_the_h100_fit() -> None:
    cal = PerfCalibration()
    assert cal.value("gemm_scale") == 1.0 and cal.value("attention_scale") == 1.0
    for name, value in H100_FIT.items():
        assert cal.value(name) == value
        assert "H100" in getattr(cal, name).source and "silicon_sample.csv" in getattr(cal, name).source
    assert cal.estimated_names() == [] and cal.assumptions("h200") == []


def test_calibration_rejects_unknown_fields_and_reports_estimates() -> None:
    with pytest.raises(ValidationError):
        PerfCalibration(stream_bandwidth_fraction={"value": 0.9, "source": "x", "estimated": True})
    cal = PerfCalibration.from_fit({"gemm_scale": 1.1, "step_overhead_s": 0.002}, "my fit", estimated=True)
    assert set(cal.estimated_names()) == {"gemm_scale", "step_overhead_s"}
    assert cal.assumptions("l4") == ["l4: step-time gemm_scale = 1.1, step_overhead_s = 0.002 (my fit)"]
    assert set(PARAMETER_DESCRIPTIONS) == {"gemm_scale", "attention_scale", "layer_fixed_s", "step_overhead_s"}


def test_catalog_calibration_reaches_the_model() -> None:
    gpu = get_gpu("h200")
    assert all(g.calibration is None for g in load_catalog().values())  # no catalog entry overrides
    spec = get_model("llama-3.1-8b")
    ctx = np.full(8, 1000)
    base = StepTimeModel.create(spec, gpu, 1).step_seconds(ctx)
    slower = gpu.model_copy(update={"calibration": PerfCalibration.from_fit({"step_overhead_s": 0.001}, "x")})
    assert StepTimeModel.create(spec, slower, 1).step_seconds(ctx) == pytest.approx(base + 0.001)


def test_vllm_kernels_are_not_slower_than_the_eager_harness() -> None:
    """Cross-check (bench/calibration.py): the fused, CUDA-graphed vLLM kernels take at most the
    time the plain-PyTorch harness measured on the same H200, point by point."""
    sys.path.insert(0, str(ROOT / "bench"))
    from calibration import cross_check  # noqa: PLC0415

    rows = cross_check(json.loads((ROOT / "bench" / "data" / "h200-llama-3.1-8b.json").read_text()))
    assert len(rows) == 23
    assert all(r["ratio"] <= 1.0 for r in rows), [(r["point"], r["ratio"]) for r in rows if r["ratio"] > 1]
    assert all(r["ratio"] >= 0.4 for r in rows)
