"""`planner perf`'s answer: step times of one model on one GPU at one batch and context, and
whether that setup fits the replica's memory (pure functions, no I/O).

The times come from `planner.perf.StepTimeModel`; the memory check only calls
`planner.memory.view` at vLLM's defaults for the GPU, nothing re-derived here.
`PerfReport` is what `planner perf --json` prints.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from planner.errors import PlannerError
from planner.inputs.calibration import PerfCalibration
from planner.memory import (
    TENSOR_PARALLEL_SIZES,
    EngineArgs,
    EngineView,
    default_engine_args,
    engine_view,
    valid_tensor_parallel_sizes,
    vllm_batch_defaults,
)
from planner.perf.step_time import PREFIX_CACHING_NOTE, StepBreakdown, StepTimeModel


class PerfMemory(BaseModel):
    """Does the timed setup fit one replica's memory? `planner.memory.view`'s answer.

    The view is vLLM's defaults for the GPU with max_model_len = context + 1 (a decoding sequence's
    tokens once the step has written the new token's K/V), max_num_seqs and max_num_batched_tokens
    raised where the timed step needs more. The step times do not depend on it: a setup that does
    not fit is still timed (a what-if), and the report says so.
    """

    model_config = ConfigDict(frozen=True)

    fits: bool = Field(description="weights fit, and the decode batch, the prompt and the mixed step fit the KV cache")
    weights_fit: bool = Field(
        description="weights + activations + non-torch memory per GPU within gpu_memory_utilization x usable memory"
    )
    decode_batch_fits: bool = Field(description="`batch` sequences of context + 1 tokens fit the KV cache")
    max_decode_batch: int = Field(
        description="sequences of context + 1 tokens the KV cache holds (vLLM's max concurrency)"
    )
    prompt_fits: bool = Field(description="one prompt of prompt_tokens fits the KV cache")
    mixed_step_fits: bool | None = Field(
        None, description="the decode batch plus one fresh prefill_chunk-token sequence fit the KV cache"
    )
    gpu_memory_utilization: float = Field(description="fraction of each GPU's usable memory the engine takes")
    min_tensor_parallel_size: int | None = Field(
        None, description="when it does not fit: smallest TP of 1, 2, 4, 8 at which all of it would (None: none)"
    )
    engine_view: EngineView = Field(description="per GPU, at max_model_len = context + 1")


class PerfReport(BaseModel):
    """What `planner perf` prints: step times for a batch at a context, with the breakdown."""

    model_config = ConfigDict(frozen=True)

    model: str
    gpu: str
    tensor_parallel_size: int
    weight_format: str = Field(description="resolved weight precision or quantization format")
    kv_cache_dtype: str
    batch: int
    context: int = Field(description="tokens already cached per decoding sequence")
    prompt_tokens: int
    prefill_chunk: int | None
    decode_step_seconds: float = Field(description="one decode step of `batch` sequences at `context`")
    decode_tokens_per_second: float = Field(description="batch / decode_step_seconds, per replica")
    prefill_seconds: float = Field(description="one fresh prompt of prompt_tokens, alone")
    prefill_host_bound: bool = Field(description="always False: the kernel-table model has no eager launch floor "
                                     "(kept for the JSON contract)")
    mixed_step_seconds: float | None = Field(
        None, description="the batch's decodes plus one prefill chunk of prefill_chunk tokens"
    )
    decode_bound: Literal["memory", "compute"]
    breakdown: StepBreakdown = Field(description="the decode step's terms")
    prefill_breakdown: StepBreakdown
    mixed_breakdown: StepBreakdown | None = None
    fits: bool = Field(description="the setup fits in memory (memory.fits); False: the times are a what-if")
    warnings: list[str] = Field(description="one line per memory limit the setup breaks")
    memory: PerfMemory
    assumptions: list[str] = Field(description="estimated inputs this answer used")
    calibration: PerfCalibration = Field(description="the GPU's correctable step-time terms, with sources")
    kernel_tables: str = Field("", description="where the kernel times come from (measured on this GPU, or "
                               "transferred from the measured GPUs: estimated)")
    step_times_estimated: bool = Field(False, description="this GPU has no kernel measurements: its step times are "
                                       "transferred from other GPUs by the rule in docs/perf.md")
    vllm_version: str = Field("", description="the vLLM version whose kernels were measured")


def check_lengths(spec: Any, context: int, prompt_tokens: int, prefill_chunk: int | None = None) -> None:
    """Refuse sequences longer than the model's position embeddings (the rule `planner size` applies
    through `memory.default_engine_args`), naming the `planner perf` option at fault.

    A decoding sequence holds context + 1 tokens once the step has written the new token, so
    --context may be at most max_position_embeddings - 1; a prompt or a fresh chunk at most
    max_position_embeddings. A model without max_position_embeddings is not checked.
    """
    limit = getattr(spec, "max_position_embeddings", None)
    if not limit:
        return
    name = getattr(spec, "name", "the model")
    if context + 1 > limit:
        raise PlannerError(
            f"--context {context:,} is too long for {name}: a decoding sequence holds context + 1 tokens and "
            f"the model's maximum context is {limit:,} (max_position_embeddings): give --context <= {limit - 1:,}"
        )
    for option, tokens in (("--prompt", prompt_tokens), ("--prefill-chunk", prefill_chunk or 0)):
        if tokens > limit:
            raise PlannerError(
                f"{option} {tokens:,} is longer than {name}'s maximum context of {limit:,} tokens "
                f"(max_position_embeddings): give at most {limit:,}"
            )


def perf_memory(
    spec: Any,
    gpu: Any,
    *,
    batch: int,
    context: int,
    prompt_tokens: int,
    prefill_chunk: int | None = None,
    tensor_parallel_size: int = 1,
    precision: str | None = None,
    quantization: str = "none",
    kv_cache_dtype: str = "auto",
    gpu_memory_utilization: float | None = None,
) -> PerfMemory:
    """Whether `batch` sequences at `context` (and the prompt, and the mixed step) fit one replica:
    `memory.engine_view` at vLLM's defaults for the GPU (see PerfMemory), nothing re-derived here."""

    def fit(tp: int) -> PerfMemory:
        default_tokens, default_seqs = vllm_batch_defaults(gpu)
        seqs = batch + (1 if prefill_chunk else 0)
        step_tokens = batch + (prefill_chunk or 0)

        def args(max_model_len: int) -> EngineArgs:
            return default_engine_args(
                gpu, max_model_len, spec, gpu_memory_utilization=gpu_memory_utilization,
                max_num_seqs=max(default_seqs, seqs), max_num_batched_tokens=max(default_tokens, step_tokens),
            )

        def view(max_model_len: int) -> EngineView:
            return engine_view(spec, gpu, args(max_model_len), tp, precision, quantization, kv_cache_dtype)

        decode_args = args(context + 1)
        decode = engine_view(spec, gpu, decode_args, tp, precision, quantization, kv_cache_dtype)
        weights_fit = decode.weights_fit
        kv = decode.kv_cache_bytes_per_gpu  # the same for every max_model_len below
        per_seq = decode.kv_bytes_per_max_len_request  # block-rounded, window-capped (vLLM's count)
        max_batch = kv // per_seq if per_seq else batch
        prompt = decode if prompt_tokens == context + 1 else view(prompt_tokens)
        mixed_fits = None
        if prefill_chunk:
            chunk = view(prefill_chunk)
            mixed_fits = weights_fit and batch * per_seq + chunk.kv_bytes_per_max_len_request <= kv
        batch_fits = weights_fit and batch <= max_batch
        prompt_fits = weights_fit and prompt.kv_bytes_per_max_len_request <= kv
        return PerfMemory(
            fits=batch_fits and prompt_fits and mixed_fits is not False,
            weights_fit=weights_fit,
            decode_batch_fits=batch_fits,
            max_decode_batch=max_batch,
            prompt_fits=prompt_fits,
            mixed_step_fits=mixed_fits,
            gpu_memory_utilization=decode_args.gpu_memory_utilization,
            engine_view=decode,
        )

    here = fit(tensor_parallel_size)
    if here.fits:
        return here
    # A larger TP the step-time model can also run: it needs the GPU's interconnect for TP > 1.
    ic = getattr(gpu, "interconnect", None)
    candidates = TENSOR_PARALLEL_SIZES if getattr(ic, "bandwidth_bytes_per_s", None) else (1,)
    better = next((tp for tp in valid_tensor_parallel_sizes(spec, candidates)
                   if tp != tensor_parallel_size and fit(tp).fits), None)
    return here.model_copy(update={"min_tensor_parallel_size": better})


def memory_warnings(m: PerfMemory, *, batch: int, context: int, prompt_tokens: int,
                    prefill_chunk: int | None) -> list[str]:
    """One readable line per memory limit the setup breaks, with what would fix it."""
    v = m.engine_view
    out: list[str] = []
    if not m.weights_fit:
        out.append(f"does not fit: {v.reason}")  # engine_view's own message
    else:
        if not m.decode_batch_fits:
            out.append(
                f"does not fit: the KV cache "
                f"({v.kv_cache_bytes_per_gpu / 1e9:,.2f} GB/GPU, {v.kv_cache_tokens:,} tokens) "
                f"holds {m.max_decode_batch:,} sequences of {context + 1:,} tokens, not --batch {batch:,}"
            )
        if not m.prompt_fits:
            out.append(
                f"does not fit: one {prompt_tokens:,}-token prompt needs more than the KV cache "
                f"({v.kv_cache_bytes_per_gpu / 1e9:,.2f} GB/GPU, {v.kv_cache_tokens:,} tokens)"
            )
        if m.mixed_step_fits is False and m.decode_batch_fits:
            out.append(
                f"does not fit: the KV cache holds the {batch:,} decoding sequences but not one more "
                f"{prefill_chunk:,}-token chunk beside them"
            )
    if out:
        hint = (f"--tp {m.min_tensor_parallel_size} would fit" if m.min_tensor_parallel_size
                else f"no tensor_parallel_size of 1, 2, 4, 8 fits it on {v.gpu}")
        out.append(f"the step times are a what-if: {hint} (see `planner size`)")
    return out


def perf_report(
    spec: Any,
    gpu: Any,
    *,
    batch: int,
    context: int,
    prompt_tokens: int | None = None,
    prefill_chunk: int | None = None,
    tensor_parallel_size: int = 1,
    precision: str | None = None,
    quantization: str = "none",
    kv_cache_dtype: str = "auto",
    host_overhead_s: float | None = None,
    attention_split_kv: bool | None = None,
    gpu_memory_utilization: float | None = None,
) -> PerfReport:
    """Step times of `spec` on `gpu` for `batch` sequences at `context` (and a prompt, a chunk),
    and whether that setup fits the replica's memory (`fits`, `warnings`: a setup that does not fit
    is still timed, as a what-if).

    Raises:
        PlannerError: non-positive sizes, a sequence longer than the model's context, or anything
            `StepTimeModel.create` rejects.
    """
    if batch < 1:
        raise PlannerError(f"--batch must be >= 1, got {batch}")
    if context < 0:
        raise PlannerError(f"--context must be >= 0, got {context}")
    prompt = context if prompt_tokens is None else prompt_tokens
    if prompt < 1:
        raise PlannerError(f"--prompt must be >= 1 (it defaults to --context), got {prompt}")
    if prefill_chunk is not None and prefill_chunk < 1:
        raise PlannerError(f"--prefill-chunk must be >= 1, got {prefill_chunk}")
    check_lengths(spec, context, prompt, prefill_chunk)
    model = StepTimeModel.create(
        spec, gpu, tensor_parallel_size, precision, quantization, kv_cache_dtype,
        host_overhead_s=host_overhead_s, attention_split_kv=attention_split_kv,
    )
    ctx = np.full(batch, context, dtype=np.int64)
    decode = model.breakdown(ctx)
    prefill_bd = model.breakdown(np.zeros(0, dtype=np.int64), [(prompt, 0)])
    prefill_s = model.prefill_seconds(prompt)
    mixed = model.breakdown(ctx, [(prefill_chunk, 0)]) if prefill_chunk else None
    cal = model.calibration
    assumptions = model_assumptions(model)
    memory = perf_memory(
        spec, gpu, batch=batch, context=context, prompt_tokens=prompt, prefill_chunk=prefill_chunk,
        tensor_parallel_size=model.tensor_parallel_size, precision=precision, quantization=quantization,
        kv_cache_dtype=kv_cache_dtype, gpu_memory_utilization=gpu_memory_utilization,
    )
    return PerfReport(
        model=model.spec_name,
        gpu=model.gpu_id,
        tensor_parallel_size=model.tensor_parallel_size,
        weight_format=model.weight_format,
        kv_cache_dtype=kv_cache_dtype,
        batch=batch,
        context=context,
        prompt_tokens=prompt,
        prefill_chunk=prefill_chunk,
        decode_step_seconds=decode.total_s,
        decode_tokens_per_second=batch / decode.total_s,
        prefill_seconds=prefill_s,
        prefill_host_bound=prefill_s > prefill_bd.total_s + 1e-12,
        mixed_step_seconds=mixed.total_s if mixed else None,
        decode_bound=decode.bound,
        breakdown=decode,
        prefill_breakdown=prefill_bd,
        mixed_breakdown=mixed,
        fits=memory.fits,
        warnings=memory_warnings(memory, batch=batch, context=context, prompt_tokens=prompt,
                                 prefill_chunk=prefill_chunk),
        memory=memory,
        assumptions=assumptions,
        calibration=cal,
        kernel_tables=model.kernel_source,
        step_times_estimated=model.estimated,
        vllm_version=model.vllm_version,
    )


def model_assumptions(model: StepTimeModel) -> list[str]:
    """What a step-time answer rests on: where its kernel times come from (estimated for a GPU
    without measurements), the estimated calibration terms and rules it used, what is not modelled."""
    lines = [f"{model.gpu_id}: step times from {model.kernel_source}"
             + (" (estimated)" if model.estimated and "estimated" not in model.kernel_source else "")]
    lines += model.calibration.assumptions(model.gpu_id) + list(dict.fromkeys(model.notes))
    lines.append(PREFIX_CACHING_NOTE)
    return lines
