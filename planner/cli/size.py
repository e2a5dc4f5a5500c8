"""`planner size`: will this model fit, and with how many concurrent requests? Both memory views."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from planner.inputs.sections import BLOCK_SIZES, MAX_SEQS, MAX_TOKENS
from planner.inputs.catalog import GpuSpec, get_gpu, load_catalog
from planner.cli._app import app, emit_json, handle_errors
from planner.cli._app import (
    GpuMemoryUtilizationOption, GpusOption, JsonOption, KvCacheDtypeOption, ModelOption, OptionalTpOption,
    PrecisionOption, QuantizationOption,
)
from planner.errors import PlannerError
from planner.memory import SizeReport, check_positive, size_report
from planner.inputs.models import get_model, param_counts
from planner.inputs.precision import kv_cache_bytes_per_element
from planner.units import GB, GIB, MIB

@app.command("size")
@handle_errors
def size(
    model: ModelOption,
    precision: PrecisionOption = None,
    quantization: QuantizationOption = "none",
    kv_cache_dtype: KvCacheDtypeOption = "auto",
    context: Annotated[int, typer.Option(help="Tokens per request for the sizing rule.")] = 4096,
    concurrency: Annotated[int, typer.Option(help="Concurrent requests for the sizing rule.")] = 1,
    overhead: Annotated[float, typer.Option(help="Overhead fraction of the sizing rule (0.15 = 15%).")] = 0.15,
    gpu: GpusOption = None,
    tensor_parallel_size: OptionalTpOption = None,
    gpu_memory_utilization: GpuMemoryUtilizationOption = None,
    max_model_len: Annotated[Optional[int], typer.Option(help="Tokens per request the engine must hold. Default: --context.")] = None,
    max_num_seqs: Annotated[Optional[int], typer.Option(help="Engine's running sequences per step. Default: vLLM's for the GPU.")] = None,
    max_num_batched_tokens: Annotated[Optional[int], typer.Option(help="Engine's tokens per step. Default: vLLM's for the GPU.")] = None,
    block_size: Annotated[Optional[int], typer.Option(help="Tokens per KV block. Default 16.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Memory needed by a model: the quick sizing rule and, per GPU, what a vLLM-like engine gets."""
    for name, value in (("--context", context), ("--concurrency", concurrency),
                        ("--tensor-parallel-size", tensor_parallel_size), ("--max-model-len", max_model_len),
                        ("--max-num-seqs", max_num_seqs), ("--max-num-batched-tokens", max_num_batched_tokens),
                        ("--block-size", block_size)):
        check_positive(name, value, at_most=MAX_SEQS if name == "--concurrency" else MAX_TOKENS)
    if block_size is not None and block_size not in BLOCK_SIZES:
        raise PlannerError(f"--block-size must be one of {', '.join(map(str, BLOCK_SIZES))} (vLLM's), got {block_size}")
    if not 0 <= overhead <= 10:
        raise PlannerError(f"--overhead must be a fraction >= 0 (e.g. 0.15), got {overhead}")
    if gpu_memory_utilization is not None and not 0 < gpu_memory_utilization <= 1:
        raise PlannerError(f"--gpu-memory-utilization must be in (0, 1], got {gpu_memory_utilization}")
    spec = get_model(model)
    gpus: list[GpuSpec] = _gpus(gpu)
    report = size_report(
        spec, gpus, context=context, concurrency=concurrency, overhead=overhead,
        precision=precision, quantization=quantization, kv_cache_dtype=kv_cache_dtype,
        tensor_parallel_size=tensor_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len, max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens, block_size=block_size,
    )
    if json_out:
        emit_json(report)
    else:
        typer.echo(render_size(report, spec))


def _gpus(gpu: str | None) -> list[GpuSpec]:
    """Every catalog GPU, one id or YAML path, or a comma-separated list of them."""
    if not gpu:
        return list(load_catalog().values())
    parts = [gpu] if gpu.endswith((".yaml", ".yml")) and "," not in gpu else [p.strip() for p in gpu.split(",") if p.strip()]
    if not parts:
        raise PlannerError("--gpu is empty: give a catalog id (see `planner catalog`) or a GPU YAML path")
    return [get_gpu(p) for p in parts]


def _gb(n: float) -> str:
    return f"{n / GB:,.2f} GB"


def _gib(n: float) -> str:
    return f"({n / GIB:,.2f} GiB)"


def render_size(report: SizeReport, spec) -> str:  # noqa: ANN001 (ModelSpec)
    """The readable table: sizing-rule breakdown, then one line per GPU."""
    counts = param_counts(spec)
    kv_elem = kv_cache_bytes_per_element(report.kv_cache_dtype, None if report.quantization != "none" else report.precision)
    kv_name = report.kv_cache_dtype if report.kv_cache_dtype != "auto" else f"auto = {'fp32' if kv_elem == 4 else 'bf16/fp16'}"
    weights_name = report.precision if report.quantization == "none" else f"{report.quantization} ({report.precision})"
    active = f", {counts.active / 1e9:,.2f} B active" if counts.active != counts.total else ""
    lines = [
        f"{spec.name}: {counts.total / 1e9:,.2f} B parameters{active}; weights {weights_name}, KV cache {kv_name}",
        "",
        f"Sizing rule: weights + KV for {report.concurrency:,} request(s) of {report.context:,} tokens, "
        f"+ {report.overhead_fraction:.0%} overhead (GB = 1e9 B)",
        f"  {'weights':<30}{_gb(report.weights_bytes):>14}  {_gib(report.weights_bytes)}",
        f"  {'KV cache per token':<30}{report.kv_bytes_per_token:>11,} B",
        f"  {'KV cache per request':<30}{_gb(report.kv_bytes_per_request):>14}  ({report.kv_bytes_per_request / MIB:,.1f} MiB)",
        f"  {f'KV cache x {report.concurrency:,}':<30}{_gb(report.kv_cache_bytes):>14}  {_gib(report.kv_cache_bytes)}",
        f"  {f'overhead {report.overhead_fraction:.0%}':<30}{_gb(report.overhead_bytes):>14}  {_gib(report.overhead_bytes)}",
        f"  {'total':<30}{_gb(report.total_bytes):>14}  {_gib(report.total_bytes)}",
        "",
        f"Engine view (vLLM-like): usable memory x gpu_memory_utilization - weights/TP - activations - "
        f"non-torch -> KV blocks of {report.block_size} tokens; max_model_len {report.max_model_len:,}",
        f"  {'gpu':<15}{'TP':>3} {'fits':>5} {'usable GiB':>11} {'weights/GPU GB':>15} {'act. GB/GPU':>12} "
        f"{'KV GB/GPU':>10} {'KV tokens':>11} {'max conc.':>10} {'rule TP':>8}",
    ]
    for g in report.gpus:
        usable = f"{g.memory_bytes_usable / GIB:,.2f}{'*' if g.memory_usable_estimated else ' '}"
        lines.append(
            f"  {g.gpu:<15}{g.tensor_parallel_size:>3} {'yes' if g.fits else 'no':>5} {usable:>11} "
            f"{g.weights_bytes_per_gpu / GB:>15,.2f} {g.activation_peak_bytes / GB:>12,.2f} "
            f"{g.kv_cache_bytes_per_gpu / GB:>10,.2f} {g.kv_cache_tokens:>11,} {g.max_concurrency:>9,.2f}x "
            f"{g.rule_tensor_parallel_size or '>8':>8}"
        )
    lines.append(
        "  rule TP: smallest TP at which the sizing rule per GPU ((weights + KV) / TP x (1 + overhead)) "
        "fits the usable memory."
    )
    if any(g.memory_usable_estimated for g in report.gpus):
        lines.append("  * usable memory estimated by a stated rule (gpu_catalog/README.md); the others are measured.")
    misses = [g for g in report.gpus if not g.fits]
    for g in misses:
        lines.append(f"  {g.gpu}: does not fit: {g.reason}")
    fitting = [g for g in report.gpus if g.fits]
    if fitting:
        ok = [g.gpu for g in fitting if g.concurrency_fits]
        short = [g.gpu for g in fitting if not g.concurrency_fits]
        want = f"{report.concurrency:,} concurrent request(s) of {report.context:,} tokens"
        lines.append(f"  {want}: fit at once on {', '.join(ok) if ok else 'none of them'}"
                     + (f"; not on {', '.join(short)} (KV cache or max_num_seqs too small)" if short else ""))
    refuse = [g for g in fitting if g.starts_at_default_max_model_len is False]
    for g in refuse:
        lines.append(
            f"  {g.gpu}: `vllm serve` without --max-model-len would refuse to start: it takes the model's maximum, "
            f"{g.default_max_model_len:,} tokens, and the KV cache holds {g.kv_cache_tokens:,}; "
            f"pass --max-model-len {report.max_model_len}")
    return "\n".join(lines)
