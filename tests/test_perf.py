"""Physics of the step-time model (planner/perf/) and the `planner perf` command."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from planner.inputs.calibration import PerfCalibration
from planner.inputs.catalog import get_gpu
from planner.cli import app
from planner.errors import PlannerError
from planner.memory import (
    default_engine_args,
    engine_view,
    kv_bytes_per_token,
    min_tensor_parallel_size,
    weight_bytes_breakdown,
    weights_bytes_per_gpu,
)
from planner.inputs.models import get_model
from planner.perf import StepTimeModel
from planner.perf.summary import perf_memory, perf_report

H200 = get_gpu("h200")
H100 = get_gpu("h100-sxm")
L8B = get_model("llama-3.1-8b")
L70B = get_model("llama-3.1-70b")


def _model(spec=L8B, gpu=H200, **kw) -> StepTimeModel:
    return StepTimeModel.create(spec, gpu, **kw)


def _ctx(batch: int, context: int) -> np.ndarray:
    return np.full(batch, context, dtype=np.int64)


# ---------------------------------------------------------------------------------------- growth


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 512), context=st.integers(0, 32768), extra=st.integers(1, 4096))
def test_decode_grows_with_context(batch: int, context: int, extra: int) -> None:
    # never faster with more context (flat while the attention kernel is launch-bound)
    m = _model()
    assert m.step_seconds(_ctx(batch, context + extra)) >= m.step_seconds(_ctx(batch, context))


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 512), context=st.integers(0, 32768), more=st.integers(1, 256))
def test_decode_grows_with_batch(batch: int, context: int, more: int) -> None:
    m = _model()
    assert m.step_seconds(_ctx(batch + more, context)) >= m.step_seconds(_ctx(batch, context))


@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 64), chunk=st.integers(1, 8192), done=st.integers(0, 8192))
def test_adding_a_prefill_chunk_costs_time(batch: int, chunk: int, done: int) -> None:
    m = _model()
    ctx = _ctx(batch, 1000)
    assert m.step_seconds(ctx, [(chunk, done)]) > m.step_seconds(ctx)
    # a chunk later in its prompt attends over more tokens
    assert m.step_seconds(ctx, [(chunk, done + 1000)]) > m.step_seconds(ctx, [(chunk, done)])


def test_prefill_grows_with_prompt_and_batch() -> None:
    m = _model()
    times = [m.prefill_seconds(p) for p in (512, 1024, 2048, 4096, 8192)]
    assert all(b > a for a, b in zip(times, times[1:]))
    assert m.prefill_seconds(512, batch=8) > m.prefill_seconds(512)


# ---------------------------------------------------------------------------------------- roofline


def test_small_batch_memory_bound_large_batch_compute_bound() -> None:
    m = _model()
    assert m.breakdown(_ctx(1, 512)).bound == "memory"
    assert m.breakdown(_ctx(8, 512)).bound == "memory"
    assert m.breakdown(_ctx(512, 512)).bound == "compute"
    assert m.breakdown(np.zeros(0, dtype=np.int64), [(4096, 0)]).bound == "compute"


def test_large_batch_short_context_is_above_pure_streaming() -> None:
    """Batch 256 at 512 tokens costs well above (weights + K/V) / bandwidth: the compute term."""
    m = _model()
    b = m.breakdown(_ctx(256, 512))
    streaming_only = (b.weight_bytes + b.kv_bytes) / m.bw_achieved
    assert b.total_s > 1.2 * streaming_only
    assert b.gemm_s > b.gemm_stream_s  # the measured GEMMs at 256 rows take longer than streaming


def test_batch_one_is_dominated_by_streaming_plus_fixed_costs() -> None:
    m = _model()
    b = m.breakdown(_ctx(1, 512))
    # the measured GEMMs at one row stream the weights, at most ~1.6x slower than the best streaming
    assert b.gemm_stream_s * 0.95 <= b.gemm_s <= 1.6 * b.gemm_stream_s
    assert b.layer_fixed_s > 0.1 * b.total_s  # the small kernels matter at batch 1


# ---------------------------------------------------------------------------------------- GPUs, TP, formats


def test_h200_beats_h100_by_about_the_bandwidth_ratio_when_memory_bound() -> None:
    ratio_bw = H200.memory_bandwidth_bytes_per_s / H100.memory_bandwidth_bytes_per_s
    big = _model(L70B, H100).step_seconds(_ctx(8, 1024)) / _model(L70B, H200).step_seconds(_ctx(8, 1024))
    assert ratio_bw * 0.9 < big <= ratio_bw
    # a small model's fixed kernel costs do not scale with bandwidth: a smaller gain
    small = _model(L8B, H100).step_seconds(_ctx(8, 1024)) / _model(L8B, H200).step_seconds(_ctx(8, 1024))
    assert 1.0 < small < big


def test_tp2_roughly_halves_a_memory_bound_step_plus_allreduces() -> None:
    one = _model(L70B, H200).breakdown(_ctx(8, 1024))
    two = _model(L70B, H200, tensor_parallel_size=2).breakdown(_ctx(8, 1024))
    assert two.allreduce_s > 0 and one.allreduce_s == 0
    assert two.weight_bytes == pytest.approx(one.weight_bytes / 2, rel=0.01)
    assert two.kv_bytes == pytest.approx(one.kv_bytes / 2, rel=0.01)
    # half the streaming work, the same per-layer fixed costs, plus the all-reduces
    expected = (one.total_s - one.layer_fixed_s) / 2 + one.layer_fixed_s + two.allreduce_s
    assert two.total_s == pytest.approx(expected, rel=0.1)
    assert 0.5 * one.total_s < two.total_s < 0.7 * one.total_s


def test_pcie_allreduces_cost_more_than_nvlink() -> None:
    nv = _model(L70B, get_gpu("a100-80gb-sxm"), tensor_parallel_size=4).breakdown(_ctx(32, 1024))
    pcie = _model(L70B, get_gpu("a100-80gb-pcie"), tensor_parallel_size=4).breakdown(_ctx(32, 1024))
    assert pcie.allreduce_s > nv.allreduce_s


def test_fp8_weights_cut_decode_but_by_less_than_half_at_batch_one() -> None:
    bf16 = _model(L8B, H200).step_seconds(_ctx(1, 512))
    fp8 = _model(L8B, H200, quantization="fp8").step_seconds(_ctx(1, 512))
    assert 0.5 * bf16 < fp8 < 0.85 * bf16
    # and fp8 runs the fp8 tensor rate: a compute-bound prefill gets faster too
    assert _model(L8B, H200, quantization="fp8").prefill_seconds(8192) < 0.8 * _model(L8B, H200).prefill_seconds(8192)


def test_awq_quarters_bytes_but_pays_dequantization_when_compute_bound() -> None:
    bf16 = _model(L70B, H200)
    awq = _model(L70B, H200, quantization="awq")
    assert awq.step_seconds(_ctx(1, 512)) < 0.5 * bf16.step_seconds(_ctx(1, 512))
    assert awq.prefill_seconds(8192) > bf16.prefill_seconds(8192)  # weight-only: 16-bit rate, dequant cost


def test_fp8_kv_cache_halves_kv_bytes() -> None:
    auto = _model(L8B, H200).breakdown(_ctx(64, 4096))
    fp8 = _model(L8B, H200, kv_cache_dtype="fp8").breakdown(_ctx(64, 4096))
    assert fp8.kv_bytes == pytest.approx(auto.kv_bytes / 2)
    assert fp8.total_s < auto.total_s


def test_weight_and_kv_bytes_match_memory_module() -> None:
    b = _model(L8B, H200).breakdown(_ctx(1, 0))
    wb = weight_bytes_breakdown(L8B)
    streamed = wb.total - wb.embedding - wb.norms  # embedding rows are gathered, norms negligible
    assert b.weight_bytes == pytest.approx(streamed, rel=1e-6)
    # the calibration file's own figure for the same shape
    assert b.weight_bytes == pytest.approx(15_009_841_152, rel=1e-4)
    kv = _model(L8B, H200).breakdown(_ctx(3, 99)).kv_bytes
    assert kv == pytest.approx(3 * 100 * kv_bytes_per_token(L8B))


# ---------------------------------------------------------------------------------------- MoE


def test_moe_streams_only_the_experts_the_batch_touches() -> None:
    spec = get_model("mixtral-8x7b")
    m = _model(spec, H200)
    assert m.touched_experts(1) == pytest.approx(2)
    assert m.touched_experts(2) == pytest.approx(8 * (1 - (1 - 2 / 8) ** 2))
    assert m.touched_experts(1000) == pytest.approx(8, rel=1e-6)
    one = m.breakdown(_ctx(1, 512)).weight_bytes
    many = m.breakdown(_ctx(64, 512)).weight_bytes
    wb = weight_bytes_breakdown(spec)
    assert one < 0.4 * wb.total  # 2 of 8 experts
    assert many == pytest.approx(wb.total - wb.embedding - wb.norms, rel=0.01)  # all of them
    assert m.step_seconds(_ctx(1, 512)) < _model(spec, H200).step_seconds(_ctx(64, 512))


def test_moe_with_many_experts_grows_with_batch_as_experts_get_touched() -> None:
    m = _model(get_model("qwen3-30b-a3b"), H200)
    t = [m.step_seconds(_ctx(b, 512)) for b in (1, 4, 16, 64)]
    assert all(b > a for a, b in zip(t, t[1:]))
    assert t[1] / t[0] > 1.2  # batch 4 touches ~4x the experts of batch 1


# ---------------------------------------------------------------------------------------- other shapes


@pytest.mark.parametrize("name,tp", [("gemma-2-9b", 1), ("deepseek-v3", 8), ("gpt-oss-120b", 1),
                                     ("qwen2.5-7b", 2), ("llama-3.2-1b", 1)])
def test_decode_run_matches_repeated_steps(name: str, tp: int) -> None:
    m = _model(get_model(name), H200, tensor_parallel_size=tp)
    ctx = np.array([5, 130, 4090, 4100, 9000], dtype=np.int64)
    run = m.decode_run_seconds(ctx, 20)
    steps = [m.step_seconds(ctx + s) for s in range(20)]
    assert run == pytest.approx(steps, rel=1e-9)


def test_sliding_window_caps_attention() -> None:
    m = _model(get_model("gemma-2-9b"), H200)
    # past the window only the full-attention layers keep growing: slower growth than below it
    below = m.step_seconds(_ctx(32, 4000)) - m.step_seconds(_ctx(32, 2000))
    above = m.step_seconds(_ctx(32, 10000)) - m.step_seconds(_ctx(32, 8000))
    assert 0 < above < below


def test_split_kv_attention_is_accepted_and_changes_nothing() -> None:
    # the measured vLLM attention kernels already split long contexts
    base = _model(L8B, H200)
    split = _model(L8B, H200, attention_split_kv=True)
    assert split.step_seconds(_ctx(1, 16384)) == base.step_seconds(_ctx(1, 16384))


def test_host_overhead_adds_per_step() -> None:
    a = _model(L8B, H200).step_seconds(_ctx(8, 512))
    b = _model(L8B, H200, host_overhead_s=0.002).step_seconds(_ctx(8, 512))
    assert b - a == pytest.approx(0.002)


def test_gpu_without_tables_uses_the_transfer_rule() -> None:
    cal = PerfCalibration()
    assert cal.value("gemm_scale") == 1.0
    double = SimpleNamespace(id="x", memory_bandwidth_bytes_per_s=2e12, calibration=None,
                             flops_per_s=lambda d: 500e12, interconnect=None)
    m = StepTimeModel.create(L8B, double)
    assert m.estimated and "estimated" in m.kernel_source
    assert m.step_seconds(_ctx(8, 512)) > _model(L8B, H200).step_seconds(_ctx(8, 512))


def test_empty_step_is_free_and_run_of_nothing_is_zeros() -> None:
    m = _model()
    assert m.step_seconds(np.zeros(0, dtype=np.int64)) == 0.0
    assert list(m.decode_run_seconds(np.zeros(0, dtype=np.int64), 3)) == [0.0, 0.0, 0.0]
    assert len(m.decode_run_seconds(_ctx(2, 5), 0)) == 0


# ---------------------------------------------------------------------------------------- errors


def test_bad_tensor_parallel_size_is_a_planner_error() -> None:
    with pytest.raises(PlannerError):
        _model(L8B, H200, tensor_parallel_size=3)
    with pytest.raises(PlannerError, match="interconnect"):
        _model(L8B, get_gpu("h100-nvl"), tensor_parallel_size=2)


def test_bad_format_is_a_planner_error() -> None:
    with pytest.raises(PlannerError):
        _model(L8B, H200, quantization="nf4")
    with pytest.raises(PlannerError):
        _model(L8B, H200, precision="fp8", quantization="awq")
    with pytest.raises(PlannerError):
        perf_report(L8B, H200, batch=0, context=10)


# ---------------------------------------------------------------------------------------- CLI


runner = CliRunner()


def test_cli_json_has_the_issue_fields() -> None:
    res = runner.invoke(app, ["perf", "--model", "llama-3.1-8b", "--gpu", "h200", "--batch", "64",
                              "--context", "512", "--prefill-chunk", "512", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in ("decode_step_seconds", "decode_tokens_per_second", "prefill_seconds", "mixed_step_seconds",
                "decode_bound", "breakdown"):
        assert key in out
    assert out["prompt_tokens"] == 512  # defaults to --context
    bd = out["breakdown"]
    for key in ("weight_bytes", "kv_bytes", "flops", "layer_fixed_s", "fixed_s", "gemm_s", "attention_s"):
        assert bd[key] > 0
    assert bd["kernel_fixed_s"] == 0.0  # inside the measured GEMM times
    assert out["vllm_version"] == "0.24.0" and not out["step_times_estimated"]
    assert "kernel measurements on h200" in out["kernel_tables"]
    assert out["decode_tokens_per_second"] == pytest.approx(64 / out["decode_step_seconds"])
    assert out["mixed_step_seconds"] > out["decode_step_seconds"]


def test_cli_table_and_errors() -> None:
    res = runner.invoke(app, ["perf", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--batch", "8",
                              "--context", "2048", "--tp", "2", "--quantization", "fp8"])
    assert res.exit_code == 0, res.output
    assert "decode step" in res.stdout and "all-reduces" in res.stdout
    bad = runner.invoke(app, ["perf", "--model", "llama-3.1-8b", "--gpu", "h200", "--batch", "8",
                              "--context", "-5"])
    assert bad.exit_code == 2
    assert "--context" in bad.output and "Traceback" not in bad.output
    bad_tp = runner.invoke(app, ["perf", "--model", "llama-3.1-8b", "--gpu", "h200", "--batch", "8",
                                 "--context", "5", "--tp", "3"])
    assert bad_tp.exit_code == 2


# ---------------------------------------------------------------------------------------- memory fit

L4 = get_gpu("l4")
L405B = get_model("llama-3.1-405b")


def test_weights_that_cannot_fit_are_flagged_but_still_timed() -> None:
    r = perf_report(L405B, L4, batch=1, context=1024)
    assert r.decode_step_seconds > 0  # a what-if timing, not a refusal
    assert not r.fits and not r.memory.fits and not r.memory.weights_fit
    view = r.memory.engine_view
    assert view.weights_bytes_per_gpu == weights_bytes_per_gpu(L405B, 1) > view.requested_bytes
    assert view.requested_bytes == int(L4.memory_bytes_usable * 0.9)
    assert r.memory.max_decode_batch == 0 and not r.memory.decode_batch_fits
    assert r.memory.min_tensor_parallel_size is None  # 811 GB over 8 L4s still does not fit
    assert any("weights" in w and "l4" in w for w in r.warnings)
    # one message: the warning is the engine view's own reason
    assert r.warnings[0] == f"does not fit: {view.reason}" and "0.9 x 23.9 GB usable" in view.reason
    assert view.weights_fit is r.memory.weights_fit is False


def test_decode_batch_fit_matches_the_engine_views_blocks() -> None:
    ctx = 2048
    fit = perf_report(L8B, H200, batch=8, context=ctx)
    view = engine_view(L8B, H200, default_engine_args(H200, ctx + 1, L8B), 1)
    assert fit.memory.engine_view == view
    # full attention: each sequence of ctx + 1 tokens holds ceil((ctx + 1) / block_size) blocks
    most = view.num_gpu_blocks // -(-(ctx + 1) // view.block_size)
    assert fit.memory.max_decode_batch == most > 8
    assert fit.fits and fit.warnings == []
    assert perf_report(L8B, H200, batch=most, context=ctx).fits
    over = perf_report(L8B, H200, batch=most + 1, context=ctx)
    assert over.memory.weights_fit and not over.memory.decode_batch_fits and not over.fits
    assert any(f"--batch {most + 1:,}" in w for w in over.warnings)
    assert over.memory.min_tensor_parallel_size == 2  # twice the KV per token per GPU at TP 2


def test_prompt_and_mixed_step_fit() -> None:
    r = perf_report(L8B, L4, batch=1, context=100, prompt_tokens=120_000)
    assert r.memory.decode_batch_fits and not r.memory.prompt_fits and not r.fits
    assert r.memory.engine_view.kv_cache_tokens < 120_000
    assert any("120,000-token prompt" in w for w in r.warnings)
    # a full decode batch leaves the blocks the last sequence could not take: a chunk fits in them
    # exactly (chunks here stay under the 8,192-token step budget, so the engine view is unchanged)
    one = perf_report(L8B, H200, batch=1, context=8000).memory
    most = one.max_decode_batch
    spare = one.engine_view.num_gpu_blocks - most * -(-8001 // 16)
    assert 0 < spare * 16 < 8192 - most
    fits = perf_report(L8B, H200, batch=most, context=8000, prefill_chunk=spare * 16)
    assert fits.fits and fits.memory.mixed_step_fits is True
    over = perf_report(L8B, H200, batch=most, context=8000, prefill_chunk=spare * 16 + 1)
    assert over.memory.decode_batch_fits and over.memory.mixed_step_fits is False and not over.fits
    assert any("chunk" in w for w in over.warnings)


def test_suggested_tp_is_memory_min_tensor_parallel_size() -> None:
    r = perf_report(L70B, H100, batch=1, context=4095)
    expected = min_tensor_parallel_size(L70B, H100, default_engine_args(H100, 4096, L70B))
    assert expected is not None and expected > 1
    assert not r.fits and r.memory.min_tensor_parallel_size == expected
    assert any(f"--tp {expected} would fit" in w for w in r.warnings)
    assert perf_report(L70B, H100, batch=1, context=4095, tensor_parallel_size=expected).fits
    assert not perf_report(L70B, H100, batch=1, context=4095, tensor_parallel_size=expected // 2).fits


def test_gpu_memory_utilization_is_used() -> None:
    assert perf_report(L8B, L4, batch=1, context=1024).fits
    low = perf_report(L8B, L4, batch=1, context=1024, gpu_memory_utilization=0.5)
    assert not low.memory.weights_fit and low.memory.gpu_memory_utilization == 0.5
    with pytest.raises(PlannerError, match="gpu_memory_utilization"):
        perf_report(L8B, L4, batch=1, context=1024, gpu_memory_utilization=1.5)


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 2048), c1=st.integers(0, 131071), c2=st.integers(0, 131071))
def test_batch_fits_exactly_up_to_max_decode_batch(batch: int, c1: int, c2: int) -> None:
    lo, hi = sorted((c1, c2))
    a = perf_memory(L8B, H100, batch=batch, context=lo, prompt_tokens=1)
    b = perf_memory(L8B, H100, batch=batch, context=hi, prompt_tokens=1)
    assert a.decode_batch_fits == (batch <= a.max_decode_batch)
    assert b.max_decode_batch <= a.max_decode_batch  # longer sequences never fit more of them


def test_context_and_prompt_above_the_models_maximum_are_refused() -> None:
    limit = L8B.max_position_embeddings
    assert perf_report(L8B, H200, batch=1, context=limit - 1).decode_step_seconds > 0
    assert perf_report(L8B, H200, batch=1, context=10, prompt_tokens=limit).prefill_seconds > 0
    with pytest.raises(PlannerError, match="--context 131,072 .*131,072"):
        perf_report(L8B, H200, batch=1, context=limit)
    with pytest.raises(PlannerError, match="--prompt"):
        perf_report(L8B, H200, batch=1, context=10, prompt_tokens=limit + 1)
    with pytest.raises(PlannerError, match="--prefill-chunk"):
        perf_report(L8B, H200, batch=1, context=10, prefill_chunk=limit + 1)
    mistral = get_model("mistral-7b")
    with pytest.raises(PlannerError, match="32,768"):
        perf_report(mistral, H200, batch=1, context=40_000)


def test_cli_reports_memory_fit_and_refuses_too_long_context() -> None:
    base = ["perf", "--model", "llama-3.1-405b", "--gpu", "l4", "--batch", "1", "--context", "1024"]
    res = runner.invoke(app, base)
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("WARNING: does not fit")
    assert "fits in memory" in res.stdout and "NO:" in res.stdout
    out = json.loads(runner.invoke(app, base + ["--json"]).stdout)
    assert out["fits"] is False and out["warnings"] and out["memory"]["weights_fit"] is False
    v = out["memory"]["engine_view"]
    assert v["weights_fit"] is False and out["warnings"][0] == f"does not fit: {v['reason']}"
    fixed = v["weights_bytes_per_gpu"] + v["activation_peak_bytes"] + v["non_torch_bytes"]
    assert f"NO: weights + activations {fixed / 1e9:,.1f} GB/GPU > {v['requested_bytes'] / 1e9:,.1f} GB/GPU" in res.stdout
    ok = runner.invoke(app, ["perf", "--model", "llama-3.1-8b", "--gpu", "h200", "--batch", "8", "--context", "512"])
    assert ok.exit_code == 0 and "WARNING" not in ok.stdout and "yes:" in ok.stdout
    for args in (["--context", "99999999"], ["--context", "10", "--prompt", "200000"]):
        bad = runner.invoke(app, ["perf", "--model", "llama-3.1-8b", "--gpu", "h200", "--batch", "1", *args])
        assert bad.exit_code == 2
        assert "131,072" in bad.output and "Traceback" not in bad.output
        assert len(bad.output.strip().splitlines()) == 1
    util = runner.invoke(app, ["perf", "--model", "llama-3.1-8b", "--gpu", "h200", "--batch", "1", "--context", "10",
                               "--gpu-memory-utilization", "1.5"])
    assert util.exit_code == 2 and "--gpu-memory-utilization" in util.output


def test_small_token_rates_keep_significant_digits() -> None:
    from planner.cli.perf import _rate

    assert _rate(0.36551) == "0.366" and _rate(0.0012345) == "0.00123" and _rate(12.345) == "12.3"
    assert _rate(6058.4) == "6,058" and _rate(0.0) == "0"
    res = runner.invoke(app, ["perf", "--model", "llama-3.1-405b", "--gpu", "l4", "--batch", "1", "--context", "1024"])
    line = next(li for li in res.stdout.splitlines() if li.startswith("decode tokens/s"))
    shown = float(line.split()[-1])
    *_, value, unit = next(li for li in res.stdout.splitlines() if li.startswith("decode step")).split()
    step_s = float(value.replace(",", "")) * {"ms": 1e-3, "s": 1.0}[unit]  # a 2.7 s step reads "2.74 s"
    assert shown == pytest.approx(1 / step_s, rel=2e-3) and shown > 0


# ---------------------------------------------------------------------------------------- every preset


@pytest.mark.parametrize("name", sorted(__import__("planner.inputs.models", fromlist=["list_presets"]).list_presets()))
def test_every_preset_gives_finite_growing_times(name: str) -> None:
    spec = get_model(name)
    tp = next(t for t in (1, 2, 4, 8) if spec.num_attention_heads % t == 0 and
              (spec.uses_mla or spec.num_key_value_heads % t == 0 or t % spec.num_key_value_heads == 0))
    m = StepTimeModel.create(spec, H200, tensor_parallel_size=tp)
    small, large = m.step_seconds(_ctx(1, 100)), m.step_seconds(_ctx(64, 4000))
    assert 0 < small < large < 10
    assert 0 < m.prefill_seconds(1024) < 10
    assert m.breakdown(_ctx(4, 100)).weight_bytes > 0


GEMMA = StepTimeModel.create(get_model("gemma-2-9b"), H200)


@settings(max_examples=25, deadline=None)
@given(ctx=st.lists(st.integers(0, 12000), min_size=1, max_size=40), steps=st.integers(1, 300))
def test_decode_run_equals_repeated_steps_for_any_contexts(ctx: list[int], steps: int) -> None:
    arr = np.array(ctx, dtype=np.int64)
    run = GEMMA.decode_run_seconds(arr, steps)
    for s in {0, steps // 2, steps - 1}:
        assert run[s] == pytest.approx(GEMMA.step_seconds(arr + s), rel=1e-9)


# ---------------------------------------------------------------------------------------- fast paths
# step_seconds and decode_run_seconds take shortcuts (Python sums for small batches, a run as one or
# two arithmetic sequences); _reference_step_seconds / _reference_decode_run_seconds compute the
# same physics plainly. They must agree to float rounding on any input.

FAST_PATH_MODELS = {
    "dense": _model(L8B, H200),
    "dense-h100": _model(L8B, H100),
    "split-kv": _model(L8B, H200, attention_split_kv=True),
    "sliding": GEMMA,
    "sliding-split-kv": _model(get_model("gemma-2-9b"), H200, attention_split_kv=True),
    "moe": _model(get_model("qwen3-30b-a3b"), H200),
    "tp2-host": _model(get_model("qwen2.5-7b"), H200, tensor_parallel_size=2, host_overhead_s=0.001),
    "mla-tp8": _model(get_model("deepseek-v3"), H200, tensor_parallel_size=8),
}
_contexts = st.lists(st.one_of(st.integers(0, 6000), st.integers(0, 131071)), min_size=0, max_size=120)


def _close(fast, ref) -> None:
    assert np.shape(fast) == np.shape(ref)
    np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=0)


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(FAST_PATH_MODELS)), ctx=_contexts,
       chunks=st.lists(st.tuples(st.integers(1, 8192), st.integers(0, 131071)), max_size=3))
def test_step_seconds_fast_path_equals_reference(name: str, ctx: list[int],
                                                 chunks: list[tuple[int, int]]) -> None:
    m = FAST_PATH_MODELS[name]
    arr = np.array(ctx, dtype=np.int64)
    _close(m.step_seconds(arr, chunks), m._reference_step_seconds(arr, chunks))


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(FAST_PATH_MODELS)), ctx=_contexts, steps=st.integers(0, 600))
def test_decode_run_fast_path_equals_reference(name: str, ctx: list[int], steps: int) -> None:
    m = FAST_PATH_MODELS[name]
    arr = np.array(ctx, dtype=np.int64)
    run = m.decode_run_seconds(arr, steps)
    _close(run, m._reference_decode_run_seconds(arr, steps))
    assert run.dtype == np.float64


@pytest.mark.parametrize("name", sorted(FAST_PATH_MODELS))
def test_decode_run_fast_path_in_every_regime(name: str) -> None:
    """The run's regimes: one sequence dominant throughout (the longest one scanned alone), all
    sequences' bytes dominant throughout, the two crossing during the run; for sliding windows,
    below the window throughout, at it throughout, crossing it; batch sizes around the switch from
    Python to numpy sums."""
    m = FAST_PATH_MODELS[name]
    w = m.window or 4096
    cases = [([5000], 50), ([100] * 64, 50), ([8000] + [0] * 99, 3000), ([3000, 10, w - 1], 900),
             ([w, 5000, 90000], 40), ([0] * 48, 5), ([7] * 49, 5), ([1] * 300, 1), ([100, 200], 9000),
             # one token either side of the window: the longest sequence reaches it at the last
             # step, or passes it; the shortest one has reached it at the first step, or not yet
             ([w - 100, w - 2], 2), ([w - 100, w - 1], 2), ([w - 1, w + 500], 3), ([w - 2, w + 500], 3),
             ([w - 2] * 60, 2), ([w - 1] * 60, 2), ([w - 1] * 60, 1)]
    for ctx, steps in cases:
        arr = np.array(ctx, dtype=np.int64)
        run = m.decode_run_seconds(arr, steps)
        _close(run, m._reference_decode_run_seconds(arr, steps))
        for s in {0, steps // 2, steps - 1}:
            assert run[s] == pytest.approx(m.step_seconds(arr + s), rel=1e-12)


def test_decode_run_returns_a_fresh_array_each_call() -> None:
    m = FAST_PATH_MODELS["dense"]
    ctx = np.array([10, 20], dtype=np.int64)
    first = m.decode_run_seconds(ctx, 16)
    first += 1.0  # the caller may write into its result (the shared step index stays intact)
    _close(m.decode_run_seconds(ctx, 16), m._reference_decode_run_seconds(ctx, 16))


# The simulator's forms: a model whose decode attention depends on the contexts only through their
# count and sum takes those two numbers instead of the array; a step is the same floats, a decode
# run the same piecewise-linear times (to float rounding) given as lines.
SUMMED_MODELS = {k: v for k, v in FAST_PATH_MODELS.items() if v.decode_depends_on_context_sum}


def _expand(pieces: list[tuple[int, float, float]], steps: int) -> np.ndarray:
    out = np.zeros(steps)
    for i, (k0, first, slope) in enumerate(pieces):
        k1 = pieces[i + 1][0] if i + 1 < len(pieces) else steps
        assert k0 < k1 <= steps
        out[k0:k1] = first + slope * np.arange(k1 - k0)
    return out


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(SUMMED_MODELS)), ctx=_contexts,
       chunks=st.lists(st.tuples(st.integers(1, 8192), st.integers(0, 131071)), max_size=3),
       steps=st.integers(1, 3000))
def test_summed_forms_equal_the_array_forms(name: str, ctx: list[int], chunks: list[tuple[int, int]],
                                            steps: int) -> None:
    m = SUMMED_MODELS[name]
    arr = np.array(ctx, dtype=np.int64)
    assert m.step_seconds_summed(len(ctx), sum(ctx), chunks) == m.step_seconds(arr, chunks)
    assert m.step_seconds_summed(len(ctx), sum(ctx), chunks) == m.step_seconds(arr, chunks)  # cached chunks
    if ctx:
        pieces = m.decode_run_pieces(len(ctx), sum(ctx), steps)
        assert pieces[0][0] == 0
        _close(_expand(pieces, steps), m.decode_run_seconds(arr, steps))


@pytest.mark.parametrize("name", sorted(SUMMED_MODELS))
def test_decode_run_pieces_across_the_grid(name: str) -> None:
    """Runs whose mean context crosses one or many points of the measured grid, or starts past it."""
    m = SUMMED_MODELS[name]
    for ctx, steps in (([1000, 1040], 60), ([0, 0], 5000), ([0], 70000), ([200000], 50), ([1] * 64, 3000)):
        pieces = m.decode_run_pieces(len(ctx), sum(ctx), steps)
        _close(_expand(pieces, steps), m.decode_run_seconds(np.array(ctx, dtype=np.int64), steps))
    assert len(m.decode_run_pieces(1, 0, 5000)) > 5


def test_sliding_window_models_need_the_contexts() -> None:
    assert set(FAST_PATH_MODELS) - set(SUMMED_MODELS) == {"sliding", "sliding-split-kv"}
    with pytest.raises(PlannerError):
        GEMMA.step_seconds_summed(2, 100)
    with pytest.raises(PlannerError):
        GEMMA.decode_run_pieces(2, 100, 5)
    assert GEMMA.step_seconds_summed(0, 0, [(100, 0)]) == GEMMA.step_seconds(np.zeros(0, dtype=np.int64), [(100, 0)])
