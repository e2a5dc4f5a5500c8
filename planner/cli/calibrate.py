"""`planner calibrate`: fit the step-time model to your own `vllm bench serve --save-result` runs
and write the result as a GPU YAML every other command accepts."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from planner.calibrate.calibrate import CalibrationRequest, calibrate, calibrated_gpu
from planner.inputs.bench_calibration import CORRECTION_NAMES
from planner.cli._app import (
    GpuMemoryUtilizationOption, GpuOption, JsonOption, KvCacheDtypeOption, ModelOption, PrecisionOption,
    QuantizationOption, TpOption, app, emit_json, handle_errors,
)
from planner.errors import PlannerError
from planner.report.calibrate_report import render_calibration, write_gpu_yaml
from planner.report.files import check_output_path


def _fit_names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in CORRECTION_NAMES]
    if bad or not names:
        raise PlannerError(f"--fit: {', '.join(bad) or 'nothing'} is not one of {', '.join(CORRECTION_NAMES)}: "
                           "give a comma-separated subset")
    return names


def _counter() -> tuple[Any, Any]:
    """A stderr line counting simulated evaluations (the fit takes seconds to minutes)."""
    state = {"n": 0}

    def tick() -> None:
        state["n"] += 1
        sys.stderr.write(f"\rfitting: {state['n']} simulations of every run")
        sys.stderr.flush()

    def close() -> None:
        if state["n"]:
            sys.stderr.write("\n")

    return tick, close


@app.command("calibrate")
@handle_errors
def calibrate_cmd(
    results: Annotated[list[Path], typer.Argument(help="Result files of `vllm bench serve --save-result` (add --save-detailed for per-request lengths).", show_default=False)],
    gpu: GpuOption,
    model: ModelOption,
    tensor_parallel_size: TpOption = 1,
    precision: PrecisionOption = None,
    quantization: QuantizationOption = "none",
    kv_cache_dtype: KvCacheDtypeOption = "auto",
    max_model_len: Annotated[Optional[int], typer.Option("--max-model-len", min=1, help="The server's --max-model-len; default: the model's maximum.")] = None,
    gpu_memory_utilization: GpuMemoryUtilizationOption = None,
    max_num_seqs: Annotated[Optional[int], typer.Option("--max-num-seqs", min=1, help="The server's --max-num-seqs; default: vLLM's.")] = None,
    max_num_batched_tokens: Annotated[Optional[int], typer.Option("--max-num-batched-tokens", min=1, help="The server's --max-num-batched-tokens; default: vLLM's.")] = None,
    block_size: Annotated[int, typer.Option("--block-size", help="The server's KV block size, tokens.")] = 16,
    enable_chunked_prefill: Annotated[bool, typer.Option("--enable-chunked-prefill/--no-enable-chunked-prefill", help="Whether the server chunked long prompts.")] = True,
    async_scheduling: Annotated[bool, typer.Option("--async-scheduling/--no-async-scheduling", help="Whether the server planned each step while the previous one ran (vLLM's default in recent releases; --no-async-scheduling for a server that ran without it).")] = True,
    vllm_version: Annotated[Optional[str], typer.Option("--vllm-version", help="The server's vLLM version, when the files do not record it (--metadata vllm_version=...).")] = None,
    metrics: Annotated[str, typer.Option("--metrics", help="Measured means to fit, comma-separated: ttft, tpot, itl (the others are shown, not fitted; e.g. tpot,itl when the prompts were already in the server's prefix cache).")] = "ttft,tpot,itl",
    fit: Annotated[str, typer.Option("--fit", help="Corrections to fit, comma-separated: gemm_scale, attention_scale, step_overhead_s.")] = ",".join(CORRECTION_NAMES),
    calibrated_id: Annotated[Optional[str], typer.Option("--id", help="Id of the calibrated GPU entry; default: <gpu>-calibrated.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the calibrated GPU YAML here (e.g. my-gpu.yaml).")] = None,
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the 95% intervals: of the files, and of the requests within files saved with --save-detailed (0: none).")] = 400,
    seed: Annotated[int, typer.Option(help="Seed of the replayed arrival times and the bootstrap.")] = 0,
    json_out: JsonOption = False,
) -> None:
    """Fit GEMM, attention and per-step corrections of the step-time model to vllm bench serve runs.

    Each run is replayed in the simulator as vLLM's client sent it; the corrections (at most three,
    bounded) minimise the relative errors of the mean TTFT, TPOT and ITL. The GPU, model and engine
    arguments must be the ones the benchmarked server ran. docs/calibrate.md has the workflow.
    """
    if out is not None:
        check_output_path(out, "--out", suffix=".yaml", example="my-gpu.yaml")
    if gpu_memory_utilization is not None and not 0 < gpu_memory_utilization <= 1:
        raise PlannerError(f"--gpu-memory-utilization must be in (0, 1], got {gpu_memory_utilization}")
    serving = {"max_model_len": max_model_len, "gpu_memory_utilization": gpu_memory_utilization or 0.9,
               "max_num_seqs": max_num_seqs, "max_num_batched_tokens": max_num_batched_tokens,
               "block_size": block_size, "enable_chunked_prefill": enable_chunked_prefill,
               "async_scheduling": async_scheduling}
    request = CalibrationRequest(
        gpu=gpu, model=model, tensor_parallel_size=tensor_parallel_size, precision=precision,
        quantization=quantization, kv_cache_dtype=kv_cache_dtype, serving=serving, vllm_version=vllm_version,
        fit=_fit_names(fit), metrics=tuple(m.strip() for m in metrics.split(",") if m.strip()), calibrated_id=calibrated_id, seed=seed, bootstrap_samples=bootstrap,
    )
    tick, close = _counter() if (not json_out and sys.stderr.isatty()) else (None, lambda: None)
    try:
        result = calibrate(request, [str(p) for p in results], progress=tick)
    finally:
        close()
    written = write_gpu_yaml(out, calibrated_gpu(result)) if out is not None else None
    if json_out:
        emit_json(result)
    else:
        typer.echo(render_calibration(result, written))
