"""The kernel tables (gpu_catalog/kernels/), their interpolation, the transfer rule for GPUs without
measurements, and the step-time model built on them."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.catalog import get_gpu
from planner.models import get_model
from planner.perf import StepTimeModel
from planner.perf import kernels as K
from planner.perf import transfer as T


def test_manifest_matches_the_shipped_tables_and_names_its_provenance():
    man = K.manifest()
    assert "Apache" in man["licence"] and "aiconfigurator-core 0.12.0" in man["source"]
    assert set(man["gpus"]) == {"h100-sxm", "h200", "b200", "l40s", "a100-80gb-sxm"}
    total = 0
    for gid, meta in man["gpus"].items():
        path = K.tables_dir() / f"{gid}.npz"
        data = path.read_bytes()
        total += len(data)
        assert hashlib.sha256(data).hexdigest() == meta["sha256"]
        assert meta["tables"]["gemm"]["vllm_version"]
    assert total < 10 * 2**20


def test_gemm_rows_hit_the_measured_points_and_never_fall_with_more_rows():
    t = K.measured_tables("h200")
    assert t is not None and t.measured
    with np.load(K.tables_dir() / "h200.npz") as z:
        m, n, k, arr = z["gemm_fp8_m"], z["gemm_fp8_n"], z["gemm_fp8_k"], z["gemm_fp8"]
        i, j = list(n).index(8192), list(k).index(8192)
        raw = {int(mm): float(arr[a, i, j]) for a, mm in enumerate(m)}
    row = t.gemm_row("fp8", 8192, 8192)
    assert np.all(np.diff(row) >= 0)
    # a grid point comes back as measured unless a larger m measured faster (then that time)
    at_4096 = row[K.M_GRID.index(4096)]
    assert at_4096 == pytest.approx(min(v for mm, v in raw.items() if mm >= 4096 and mm in K.M_GRID), rel=1e-6)
    # between grid points in n: between the neighbours (log-bilinear; the monotone envelope in m
    # may lift a point by a measurement's noise, a few percent)
    mid = t.gemm_row("fp8", 7000, 8192)
    lo, hi = t.gemm_row("fp8", 6144, 8192), t.gemm_row("fp8", 7168, 8192)
    assert np.all(mid <= np.maximum(lo, hi) * 1.03) and np.all(mid >= np.minimum(lo, hi) * 0.97)
    # beyond the grid: scaled with the size
    big = t.gemm_row("bf16", 131072, 8192)
    assert big[-1] == pytest.approx(t.gemm_row("bf16", 65536, 8192)[-1] * 2, rel=1e-9)


def test_gpus_without_tables_are_transferred_and_say_so():
    for gid in ("rtx-4090", "l4", "a100-40gb-sxm", "h100-pcie", "mi300x"):
        t = T.tables_for(get_gpu(gid))
        assert t is not None and not t.measured and "estimated" in t.source
        row = t.gemm_row("bf16", 4096, 4096)
        assert np.all(np.isfinite(row)) and np.all(row > 0)
    m = StepTimeModel.create(get_model("llama-3.1-8b"), get_gpu("rtx-4090"), 1)
    assert m.estimated and any("estimated" in n for n in m.notes)
    assert not StepTimeModel.create(get_model("llama-3.1-8b"), get_gpu("h100-sxm"), 1).estimated


def test_transfer_rule_scales_with_the_spec_sheet():
    # a slower-bandwidth copy of the same chip streams a decode GEMM proportionally slower
    a100 = get_gpu("a100-80gb-sxm")
    a100_40 = get_gpu("a100-40gb-sxm")
    t80 = T.tables_for(a100)
    t40 = T.tables_for(a100_40)
    m1 = K.M_GRID.index(1)
    ratio = t40.gemm_row("bf16", 16384, 16384)[m1] / t80.gemm_row("bf16", 16384, 16384)[m1]
    assert 1.1 < ratio < a100.memory_bandwidth_bytes_per_s / a100_40.memory_bandwidth_bytes_per_s * 1.1


def test_leave_one_gpu_out_covers_every_measured_gpu():
    rows = T.leave_one_out()
    assert {r["gpu"] for r in rows} == set(K.measured_gpu_ids())
    for r in rows:
        med, p90, n = r["gemm_bf16"]
        assert n > 100 and 0 <= med <= p90 and np.isfinite(p90)


def test_tensor_parallel_scaling_of_a_decode_step():
    # measured TPOT ratio TP2 / TP8 for Llama-3.1-70B fp8 on H200 at 4 clients, 1024/1024: ~1.75
    spec, gpu = get_model("llama-3.1-70b"), get_gpu("h200")
    ctx = np.full(4, 1536)
    t2 = StepTimeModel.create(spec, gpu, 2, None, "fp8").step_seconds(ctx)
    t8 = StepTimeModel.create(spec, gpu, 8, None, "fp8").step_seconds(ctx)
    assert t2 / t8 >= 1.6


def test_named_terms_scale_what_they_name():
    spec, gpu = get_model("llama-3.1-8b"), get_gpu("h200")
    ctx = np.full(16, 2000)
    base = StepTimeModel.create(spec, gpu, 1)
    bd = base.breakdown(ctx)
    g2 = StepTimeModel.create(spec, gpu, 1, gemm_scale=2.0).breakdown(ctx)
    a2 = StepTimeModel.create(spec, gpu, 1, attention_scale=2.0).breakdown(ctx)
    s = StepTimeModel.create(spec, gpu, 1, step_overhead_s=0.003).breakdown(ctx)
    assert g2.gemm_s == pytest.approx(2 * bd.gemm_s)
    assert a2.attention_s == pytest.approx(2 * bd.attention_s)
    assert s.total_s == pytest.approx(bd.total_s - bd.host_overhead_s + 0.003)


def test_the_per_layer_constant_follows_each_measured_gpus_kernel_floor():
    # The H100 fit is carried to another measured GPU by the ratio of the smallest bf16 GEMM time
    # its tables hold; GPUs without tables keep it; an explicit value is never rescaled.
    from planner.inputs.calibration import H100_FIT
    from planner.perf.compile import small_kernel_ratio

    spec = get_model("llama-3.1-8b")
    fit = H100_FIT["layer_fixed_s"]
    b200 = K.measured_tables("b200")
    ratio = b200.gemm_floor_s("bf16") / K.measured_tables("h100-sxm").gemm_floor_s("bf16")
    assert 0.5 < ratio < 1.0 and small_kernel_ratio(b200) == pytest.approx(ratio)
    assert StepTimeModel.create(spec, get_gpu("b200"), 1).layer_fixed_s == pytest.approx(fit * ratio)
    assert StepTimeModel.create(spec, get_gpu("h100-sxm"), 1).layer_fixed_s == pytest.approx(fit)
    assert StepTimeModel.create(spec, get_gpu("l4"), 1).layer_fixed_s == pytest.approx(fit)
    assert StepTimeModel.create(spec, get_gpu("b200"), 1, layer_fixed_s=20e-6).layer_fixed_s == pytest.approx(20e-6)
    assert any("kernel floor" in n for n in StepTimeModel.create(spec, get_gpu("b200"), 1).notes)


_MODELS = {}


def _model(name: str, gpu: str, tp: int, quant: str) -> StepTimeModel:
    key = (name, gpu, tp, quant)
    if key not in _MODELS:
        _MODELS[key] = StepTimeModel.create(get_model(name), get_gpu(gpu), tp, None, quant)
    return _MODELS[key]


CASES = [("llama-3.1-70b", "h200", 8, "fp8"), ("gpt-oss-120b", "b200", 2, "none"),
         ("qwen3-235b-a22b", "h100-sxm", 8, "fp8"), ("gemma-2-9b", "l4", 1, "none"),
         ("deepseek-v3", "h200", 8, "none"), ("qwen3-32b", "a100-40gb-sxm", 2, "none")]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(case=st.sampled_from(CASES),
       ctx=st.lists(st.integers(0, 20000), max_size=80),
       chunks=st.lists(st.tuples(st.integers(1, 9000), st.integers(0, 9000)), max_size=3),
       steps=st.integers(1, 300))
def test_fast_paths_equal_the_reference(case, ctx, chunks, steps):
    m = _model(*case)
    arr = np.asarray(ctx, dtype=np.int64)
    assert m.step_seconds(arr, chunks) == m._reference_step_seconds(arr, chunks)
    np.testing.assert_allclose(m.decode_run_seconds(arr, steps), m._reference_decode_run_seconds(arr, steps),
                               rtol=1e-12, atol=0)


def test_deploy_files_pin_the_vllm_release_the_tables_measured():
    from planner.report.deploy_names import VLLM_VERSION

    versions = {K.manifest()["gpus"][g]["tables"]["gemm"]["vllm_version"] for g in ("h100-sxm", "h200", "b200")}
    assert versions == {VLLM_VERSION}
