"""Build a real ReplicaSetup from a profile: engine limits, KV blocks (memory) and step times (perf).

Shared by `planner simulate`, capacity search and the optimizer so that all three simulate the
same replica. Loads the model preset and GPU catalog entry (explicit loaders); no SimPy here.
"""

from __future__ import annotations

from typing import Any

from planner.errors import PlannerError
from planner.sim.spec import ReplicaSetup


def replica_setup(profile: Any, gpu: Any, tensor_parallel_size: int = 1) -> ReplicaSetup:
    """One replica of the profile's model on `tensor_parallel_size` GPUs of type `gpu`.

    Args:
        profile: planner.inputs.profile.Profile (model and serving sections are used).
        gpu: a catalog id / YAML path, or a GpuSpec.
        tensor_parallel_size: GPUs per replica.
    Returns:
        ReplicaSetup with planner.perf.StepTimeModel, engine_view(...).num_gpu_blocks and the
        resolved memory.EngineArgs.
    Raises:
        PlannerError: unknown model/GPU, or the model does not fit (the message says why and what to change).
    """
    m = profile.model
    return model_replica_setup(
        m.name, gpu, tensor_parallel_size, precision=m.precision, quantization=m.quantization,
        kv_cache_dtype=m.kv_cache_dtype, serving=profile.serving,
    )


def model_replica_setup(
    model: Any,
    gpu: Any,
    tensor_parallel_size: int = 1,
    *,
    precision: str | None = None,
    quantization: str = "none",
    kv_cache_dtype: str = "auto",
    serving: Any = None,
    **engine_overrides: Any,
) -> ReplicaSetup:
    """One replica of `model` (preset id, config.json path or ModelSpec) without a profile.

    Args:
        model, gpu: a preset id / catalog id (or path), or the loaded spec.
        tensor_parallel_size, precision, quantization, kv_cache_dtype: as in a profile's model section.
        serving: a profile's serving section or a dict of vLLM engine settings (None: defaults).
        engine_overrides: vLLM engine settings that win over `serving` (max_model_len,
            gpu_memory_utilization, max_num_seqs, max_num_batched_tokens, block_size, ...).
    Raises:
        PlannerError: unknown model/GPU, or the model does not fit (the message says why and what to change).
    """
    from planner.inputs.catalog import get_gpu
    from planner.memory import engine_view, resolve_engine_args
    from planner.inputs.models import get_model
    from planner.perf import StepTimeModel

    spec = get_model(model) if isinstance(model, str) else model
    gpu_spec = get_gpu(gpu) if isinstance(gpu, str) else gpu
    tp = int(tensor_parallel_size)
    engine_args = resolve_engine_args(gpu_spec, serving, spec, **engine_overrides)
    view = engine_view(spec, gpu_spec, engine_args, tp, precision, quantization, kv_cache_dtype)
    if not view.fits:
        raise PlannerError(
            f"{spec.name} does not fit one replica of {tp} x {gpu_spec.id}: {view.reason}; "
            "raise --tensor-parallel-size, lower serving.max_model_len, or pick a larger GPU"
        )
    step_model = StepTimeModel.create(spec, gpu_spec, tp, precision, quantization, kv_cache_dtype)
    return ReplicaSetup(
        step_model=step_model,
        num_gpu_blocks=view.num_gpu_blocks,
        engine_args=engine_args,
        tensor_parallel_size=tp,
        gpu_id=gpu_spec.id,
    )
