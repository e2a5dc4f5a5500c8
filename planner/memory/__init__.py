"""GPU memory: weight bytes, KV-cache bytes per token, the seed guide's sizing rule and the engine
view (what a vLLM-like engine actually hands to the KV cache), and the smallest TP that fits.

Pure functions of (ModelSpec, GpuSpec, settings); no I/O. The optimizer calls `engine_view` for
every candidate, so the expensive parts (parameter counts, weight breakdowns) are cached.

vLLM behaviour followed here (V1 engine):
- available KV memory = total_memory x gpu_memory_utilization - weights - peak activations of the
  profiling pass - non-torch memory growth (vllm/v1/worker/gpu_worker.py determine_available_memory;
  total_memory is what cudaMemGetInfo reports, i.e. our `memory_bytes_usable`).
- CUDA graphs are captured after the KV cache is allocated and are not subtracted unless
  VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1 (default "0" in vllm/envs.py); they live in the
  (1 - gpu_memory_utilization) headroom, so they do not reduce the KV cache here either.
- num_blocks = available // (block_size x KV bytes per token of all layers); "GPU KV cache size" is
  num_blocks x block_size tokens; "Maximum concurrency for L tokens per request" is the KV memory
  over what one max_model_len request needs (sliding-window layers need at most
  cdiv(min(window - 1 + max_num_batched_tokens, L), block_size) + 1 blocks)
  (vllm/v1/core/kv_cache_utils.py, vllm/v1/kv_cache_interface.py).

Modules: weights (weights and KV bytes), engine_args (vLLM settings), view (`engine_view`: the KV cache after
weights/activations), sizing (the seed guide's rule and `planner size`).
"""

from planner.memory.engine_args import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_GPU_MEMORY_UTILIZATION,
    VLLM_DEFAULTS_SOURCE,
    EngineArgs,
    UsageContext,
    default_engine_args,
    resolve_engine_args,
    vllm_batch_defaults,
)
from planner.memory.view import (
    FORWARD_HIDDEN_BUFFERS,
    NON_TORCH_BYTES_TP1,
    NON_TORCH_BYTES_TP_MULTI,
    SAMPLER_BYTES_PER_LOGIT,
    EngineView,
    activation_peak_bytes,
    engine_view,
    min_tensor_parallel_size,
    non_torch_bytes,
    valid_tensor_parallel_sizes,
)
from planner.memory.sizing import (
    GpuFit,
    SizeReport,
    SizingRule,
    size_report,
    sizing_rule,
    sizing_rule_per_gpu,
)
from planner.memory.weights import (
    TENSOR_PARALLEL_SIZES,
    WeightBytes,
    check_positive,
    check_tensor_parallel,
    kv_bytes_for_tokens,
    kv_bytes_per_token,
    kv_bytes_per_token_per_layer,
    kv_heads_per_gpu,
    weight_bytes_breakdown,
    weights_bytes,
    weights_bytes_per_gpu,
)

__all__ = [
    "TENSOR_PARALLEL_SIZES",
    "WeightBytes",
    "weight_bytes_breakdown",
    "weights_bytes",
    "check_tensor_parallel",
    "kv_heads_per_gpu",
    "weights_bytes_per_gpu",
    "kv_bytes_per_token_per_layer",
    "kv_bytes_per_token",
    "kv_bytes_for_tokens",
    "check_positive",
    "VLLM_DEFAULTS_SOURCE",
    "DEFAULT_GPU_MEMORY_UTILIZATION",
    "DEFAULT_BLOCK_SIZE",
    "UsageContext",
    "EngineArgs",
    "vllm_batch_defaults",
    "default_engine_args",
    "resolve_engine_args",
    "FORWARD_HIDDEN_BUFFERS",
    "SAMPLER_BYTES_PER_LOGIT",
    "NON_TORCH_BYTES_TP1",
    "NON_TORCH_BYTES_TP_MULTI",
    "activation_peak_bytes",
    "non_torch_bytes",
    "EngineView",
    "engine_view",
    "valid_tensor_parallel_sizes",
    "min_tensor_parallel_size",
    "SizingRule",
    "sizing_rule",
    "GpuFit",
    "sizing_rule_per_gpu",
    "SizeReport",
    "size_report",
]
