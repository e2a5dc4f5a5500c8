"""`planner perf`: step times of one model on one GPU: decode, prefill, mixed step, and why."""

from __future__ import annotations

from typing import Annotated, Optional

import numpy as np
import typer

from planner.inputs.sections import MAX_SEQS, MAX_TOKENS
from planner.memory import check_positive
from planner.inputs.catalog import get_gpu
from planner.cli._app import app, emit_json, handle_errors
from planner.cli._app import (
    GpuMemoryUtilizationOption, GpuOption, JsonOption, KvCacheDtypeOption, ModelOption, PrecisionOption,
    QuantizationOption, TpOption,
)
from planner.errors import PlannerError
from planner.inputs.models import get_model
from planner.perf import StepBreakdown
from planner.perf.summary import PerfReport, perf_report


@app.command("perf")
@handle_errors
def perf(
    model: ModelOption,
    gpu: GpuOption,
    batch: Annotated[int, typer.Option(help="Decoding sequences in the step.")],
    context: Annotated[int, typer.Option(help="Tokens already cached per decoding sequence.")],
    tensor_parallel_size: TpOption = 1,
    precision: PrecisionOption = None,
    quantization: QuantizationOption = "none",
    kv_cache_dtype: KvCacheDtypeOption = "auto",
    prompt: Annotated[Optional[int], typer.Option(help="Prompt tokens for prefill_seconds. Default: --context.")] = None,
    prefill_chunk: Annotated[Optional[int], typer.Option(help="Also time a mixed step: the batch's decodes plus one prefill chunk of this many tokens.")] = None,
    host_overhead_ms: Annotated[Optional[float], typer.Option(help="Engine time per step outside the GPU kernels, ms. Default: the GPU calibration's step_overhead_s (fitted on H100 vLLM runs).")] = None,
    gpu_memory_utilization: GpuMemoryUtilizationOption = None,
    split_kv_attention: Annotated[bool, typer.Option("--split-kv-attention", help="Accepted for old scripts; no effect: the measured vLLM attention kernels already split long contexts.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Time of one decode step, one prefill and (with --prefill-chunk) one mixed step."""
    if host_overhead_ms is not None and not 0 <= host_overhead_ms <= 1e6:
        raise PlannerError(f"--host-overhead-ms must be a number of milliseconds >= 0, got {host_overhead_ms}")
    # --context and --prompt are checked against the model's own maximum by perf_report.
    check_positive("--batch", batch, at_most=MAX_SEQS)
    check_positive("--prefill-chunk", prefill_chunk, at_most=MAX_TOKENS)
    if gpu_memory_utilization is not None and not 0 < gpu_memory_utilization <= 1:
        raise PlannerError(f"--gpu-memory-utilization must be in (0, 1], got {gpu_memory_utilization}")
    report = perf_report(
        get_model(model), get_gpu(gpu),
        batch=batch, context=context, prompt_tokens=prompt, prefill_chunk=prefill_chunk,
        tensor_parallel_size=tensor_parallel_size, precision=precision, quantization=quantization,
        kv_cache_dtype=kv_cache_dtype,
        host_overhead_s=None if host_overhead_ms is None else host_overhead_ms / 1e3,
        attention_split_kv=True if split_kv_attention else None,
        gpu_memory_utilization=gpu_memory_utilization,
    )
    if json_out:
        emit_json(report)
    else:
        typer.echo(render_perf(report))


def _ms(s: float) -> str:
    """Step times to the microsecond: in ms below a second, in s from a second up."""
    return f"{s * 1e3:,.3f} ms" if s < 1 else f"{s:,.3f} s"


def _rate(x: float) -> str:
    """Whole numbers with separators from 100 up; three significant digits below (0.366, 0.00123)."""
    if x >= 100:
        return f"{x:,.0f}"
    return np.format_float_positional(x, precision=3, unique=False, fractional=False, trim="-")


def _memory_row(r: PerfReport) -> str:
    m, v = r.memory, r.memory.engine_view
    util = f"at gpu_memory_utilization {m.gpu_memory_utilization:g}"
    if not m.weights_fit:
        return (f"NO: weights + activations {v.fixed_bytes_per_gpu / 1e9:,.1f} GB/GPU > "
                f"{v.requested_bytes / 1e9:,.1f} GB/GPU {util}")
    kv = (f"KV cache {v.kv_cache_tokens:,} tokens, room for {m.max_decode_batch:,} seqs of {r.context + 1:,} tokens "
          f"{util}")
    return ("yes: " if m.fits else "NO: ") + kv


def _breakdown_rows(b: StepBreakdown) -> list[tuple[str, str]]:
    return [
        ("  weights streamed per GPU", f"{b.weight_bytes / 1e9:,.2f} GB"),
        ("  K/V read per GPU", f"{b.kv_bytes / 1e9:,.3f} GB"),
        ("  FLOPs per GPU", f"{b.flops / 1e12:,.2f} TFLOP"),
        ("  GEMMs + MoE (measured kernels)", f"{_ms(b.gemm_s)}  (weights alone {_ms(b.gemm_stream_s)}, "
                                             f"FLOPs alone {_ms(b.gemm_compute_s)})"),
        ("  attention (measured kernels)", _ms(b.attention_s)),
        ("  tensor-parallel all-reduces", _ms(b.allreduce_s)),
        ("  activations (elementwise)", _ms(b.activation_s)),
        ("  fixed: small kernels per layer", _ms(b.layer_fixed_s)),
        ("  per-step overhead", _ms(b.host_overhead_s)),
    ]


def render_perf(r: PerfReport) -> str:
    """The readable table."""
    rows: list[tuple[str, str]] = [
        ("model", r.model),
        ("gpu", f"{r.gpu} x {r.tensor_parallel_size}" if r.tensor_parallel_size > 1 else r.gpu),
        ("weights / kv cache", f"{r.weight_format} / {r.kv_cache_dtype}"),
        ("step times", r.kernel_tables),
        ("fits in memory", _memory_row(r)),
        ("", ""),
        (f"decode step ({r.batch} seqs at {r.context:,} tokens)", _ms(r.decode_step_seconds)),
        ("decode tokens/s (one replica)", _rate(r.decode_tokens_per_second)),
        ("decode bound", r.decode_bound),
    ]
    rows += _breakdown_rows(r.breakdown)
    rows += [("", ""), (f"prefill ({r.prompt_tokens:,} tokens, alone)",
                        _ms(r.prefill_seconds))]
    rows += _breakdown_rows(r.prefill_breakdown)
    if r.mixed_step_seconds is not None and r.mixed_breakdown is not None:
        rows += [("", ""), (f"mixed step (+ {r.prefill_chunk:,}-token chunk)", _ms(r.mixed_step_seconds)),
                 ("  over the decode-only step", _ms(r.mixed_step_seconds - r.decode_step_seconds))]
    width = max(len(k) for k, _ in rows)
    lines = [f"WARNING: {w}" for w in r.warnings] + ([""] if r.warnings else [])
    lines += [f"{k:<{width}}  {v}" if k else "" for k, v in rows]
    if r.assumptions:
        lines += ["", "Assumptions:"] + [f"- {a}" for a in r.assumptions]
    return "\n".join(lines)
