"""The seed guide's sizing rule and `planner size`'s answer (both views for one model over GPUs)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from planner.errors import PlannerError
from planner.inputs.catalog import GpuSpec
from planner.inputs.models import ModelSpec, param_counts
from planner.inputs.precision import (
    activation_precision,
    check_kv_cache_dtype,
)
from planner.memory.engine_args import DEFAULT_BLOCK_SIZE, default_engine_args
from planner.memory.view import engine_view, valid_tensor_parallel_sizes
from planner.memory.weights import (
    check_positive,
    check_tensor_parallel,
    kv_bytes_for_tokens,
    kv_bytes_per_token,
    weight_bytes_breakdown,
    weights_bytes_per_gpu,
)

# ---------------------------------------------------------------------------------------------
# The sizing rule (seed guide)
# ---------------------------------------------------------------------------------------------


class SizingRule(BaseModel):
    """weights + KV(context x concurrency), plus an overhead fraction. Whole model, bytes."""

    model_config = ConfigDict(frozen=True)

    model: str
    precision: str
    quantization: str
    kv_cache_dtype: str
    params: int
    active_params: int
    weights_bytes: int
    kv_bytes_per_token: int
    context: int
    concurrency: int
    kv_bytes_per_request: int
    kv_cache_bytes: int
    overhead_fraction: float
    overhead_bytes: int
    total_bytes: int


def sizing_rule(
    spec: ModelSpec,
    context: int = 4096,
    concurrency: int = 1,
    overhead: float = 0.15,
    precision: str | None = None,
    quantization: str = "none",
    kv_cache_dtype: str = "auto",
) -> SizingRule:
    """The seed guide's quick sizing: (weights + KV for `concurrency` requests of `context` tokens)
    x (1 + overhead).

    Llama-3.1-8B bf16, 4,096 tokens, 50 users, 15%: (16.06 GB + 50 x 0.537 GB) x 1.15 = 49.3 GB.
    """
    check_positive("context", context)
    check_positive("concurrency", concurrency)
    if overhead < 0:
        raise PlannerError(f"overhead must be >= 0 (a fraction, e.g. 0.15), got {overhead}")
    check_kv_cache_dtype(kv_cache_dtype)
    wb = weight_bytes_breakdown(spec, precision, quantization)
    resolved_precision = activation_precision(precision, wb.quantization, spec.default_dtype)
    weights = wb.total
    per_request = kv_bytes_for_tokens(spec, context, kv_cache_dtype, 1, resolved_precision)
    kv_total = per_request * concurrency
    overhead_bytes = round((weights + kv_total) * overhead)
    counts = param_counts(spec)
    return SizingRule(
        model=spec.name,
        precision=wb.precision,
        quantization=wb.quantization,
        kv_cache_dtype=kv_cache_dtype,
        params=counts.total,
        active_params=counts.active,
        weights_bytes=weights,
        kv_bytes_per_token=kv_bytes_per_token(spec, kv_cache_dtype, 1, resolved_precision),
        context=context,
        concurrency=concurrency,
        kv_bytes_per_request=per_request,
        kv_cache_bytes=kv_total,
        overhead_fraction=overhead,
        overhead_bytes=overhead_bytes,
        total_bytes=weights + kv_total + overhead_bytes,
    )


# ---------------------------------------------------------------------------------------------
# `planner size`: both views for one model over one or more GPUs
# ---------------------------------------------------------------------------------------------


class GpuFit(BaseModel):
    """The engine view on one GPU type at the TP given, or the smallest TP that fits."""

    model_config = ConfigDict(frozen=True)

    gpu: str
    tensor_parallel_size: int
    fits: bool
    weights_bytes_per_gpu: int
    kv_cache_tokens: int
    max_concurrency: float
    memory_bytes_usable: int
    memory_usable_estimated: bool
    gpu_memory_utilization: float
    activation_peak_bytes: int
    non_torch_bytes: int
    kv_cache_bytes_per_gpu: int
    num_gpu_blocks: int
    max_num_seqs: int
    max_num_batched_tokens: int
    rule_tensor_parallel_size: int | None = Field(
        description="smallest TP at which the sizing rule's per-GPU bytes fit the usable memory"
    )
    rule_bytes_per_gpu: int = Field(description="sizing rule per GPU at rule_tensor_parallel_size (or TP 1)")
    reason: str = ""
    concurrency_fits: bool = Field(
        False, description="the engine holds the requested concurrency of context-token requests at once: "
        "their KV blocks fit and max_num_seqs allows them")
    default_max_model_len: int | None = Field(
        None, description="max_model_len vLLM takes when none is given: the model's maximum context")
    starts_at_default_max_model_len: bool | None = Field(
        None, description="whether `vllm serve` without --max-model-len would start here: vLLM refuses to "
        "start when the KV cache cannot hold one request of the model's maximum length (None: not checked)")


def sizing_rule_per_gpu(
    spec: ModelSpec,
    tensor_parallel_size: int,
    context: int = 4096,
    concurrency: int = 1,
    overhead: float = 0.15,
    precision: str | None = None,
    quantization: str = "none",
    kv_cache_dtype: str = "auto",
) -> int:
    """The sizing rule on each GPU of a TP group: (weights/GPU + KV/GPU x concurrency) x (1 + overhead)."""
    wb = weight_bytes_breakdown(spec, precision, quantization)
    act_precision = activation_precision(precision, wb.quantization)
    weights = weights_bytes_per_gpu(spec, tensor_parallel_size, precision, quantization)
    kv = kv_bytes_for_tokens(spec, context, kv_cache_dtype, tensor_parallel_size, act_precision) * concurrency
    return round((weights + kv) * (1 + overhead))


class SizeReport(SizingRule):
    """`planner size --json`: the sizing rule for the whole model plus the engine view per GPU."""

    max_model_len: int
    block_size: int
    gpus: list[GpuFit]


def size_report(
    spec: ModelSpec,
    gpus: list[GpuSpec],
    *,
    context: int = 4096,
    concurrency: int = 1,
    overhead: float = 0.15,
    precision: str | None = None,
    quantization: str = "none",
    kv_cache_dtype: str = "auto",
    tensor_parallel_size: int | None = None,
    gpu_memory_utilization: float | None = None,
    max_model_len: int | None = None,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    block_size: int | None = None,
) -> SizeReport:
    """Both memory views: the sizing rule (whole model) and, per GPU, the engine view at the given
    TP or the smallest of 1/2/4/8 that fits (the largest valid one, marked not fitting, if none does).

    max_model_len defaults to `context`.
    """
    rule = sizing_rule(spec, context, concurrency, overhead, precision, quantization, kv_cache_dtype)
    length = context if max_model_len is None else max_model_len
    if tensor_parallel_size is not None:
        check_tensor_parallel(spec, tensor_parallel_size)
    fits: list[GpuFit] = []
    args = None
    for gpu in gpus:
        args = default_engine_args(
            gpu, length, spec,
            gpu_memory_utilization=gpu_memory_utilization, max_num_seqs=max_num_seqs,
            max_num_batched_tokens=max_num_batched_tokens, block_size=block_size,
        )
        if tensor_parallel_size is not None:
            view = engine_view(spec, gpu, args, tensor_parallel_size, precision, quantization, kv_cache_dtype)
        else:
            view = None
            for tp in valid_tensor_parallel_sizes(spec):
                view = engine_view(spec, gpu, args, tp, precision, quantization, kv_cache_dtype)
                if view.fits:
                    break
        if view is None:  # only the search above can leave it unset
            raise PlannerError(f"{spec.name}: no tensor_parallel_size in 1, 2, 4, 8 splits its heads")
        blocks_per_request = -(-context // args.block_size)
        concurrency_fits = (view.fits and concurrency <= args.max_num_seqs
                            and view.num_gpu_blocks >= concurrency * blocks_per_request)
        default_len = spec.max_position_embeddings
        starts_default: bool | None = None
        if view.fits and default_len is not None and default_len > length:
            default_args = default_engine_args(
                gpu, default_len, spec,
                gpu_memory_utilization=gpu_memory_utilization, max_num_seqs=max_num_seqs,
                max_num_batched_tokens=max_num_batched_tokens, block_size=block_size,
            )
            starts_default = engine_view(spec, gpu, default_args, view.tensor_parallel_size, precision,
                                         quantization, kv_cache_dtype).fits
        rule_tp = None
        rule_bytes = 0
        for tp in valid_tensor_parallel_sizes(spec):
            rule_bytes = sizing_rule_per_gpu(spec, tp, context, concurrency, overhead, precision, quantization, kv_cache_dtype)
            if rule_bytes <= gpu.memory_bytes_usable:
                rule_tp = tp
                break
        fits.append(GpuFit(
            gpu=gpu.id,
            tensor_parallel_size=view.tensor_parallel_size,
            fits=view.fits,
            weights_bytes_per_gpu=view.weights_bytes_per_gpu,
            kv_cache_tokens=view.kv_cache_tokens,
            max_concurrency=view.max_concurrency,
            memory_bytes_usable=gpu.memory_bytes_usable,
            memory_usable_estimated=gpu.memory_usable_estimated,
            gpu_memory_utilization=args.gpu_memory_utilization,
            activation_peak_bytes=view.activation_peak_bytes,
            non_torch_bytes=view.non_torch_bytes,
            kv_cache_bytes_per_gpu=view.kv_cache_bytes_per_gpu,
            num_gpu_blocks=view.num_gpu_blocks,
            max_num_seqs=args.max_num_seqs,
            max_num_batched_tokens=args.max_num_batched_tokens,
            rule_tensor_parallel_size=rule_tp,
            rule_bytes_per_gpu=rule_bytes,
            reason=view.reason,
            concurrency_fits=concurrency_fits,
            default_max_model_len=default_len,
            starts_at_default_max_model_len=starts_default,
        ))
    return SizeReport(
        **rule.model_dump(),
        max_model_len=length,
        block_size=args.block_size if args is not None else (block_size or DEFAULT_BLOCK_SIZE),
        gpus=fits,
    )
