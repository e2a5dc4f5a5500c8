"""A `Candidate`: one (GPU, tensor-parallel size) replica of a profile's model, built once.

Everything that follows from (profile, GPU, TP) alone is derived here and nowhere else: the
resolved vLLM engine arguments, the engine view (KV blocks, concurrency, whether it fits), the
step-time model, the simulator's `ReplicaSetup`, the serverless endpoint spec (with its cold
start), the scale-up time billed per flex worker, and the deploy settings a report prints.
`planner simulate`, `planner compare`, the capacity search and the optimizer all build their
replicas through it, so they simulate and price the same thing.

Layer: above sim/ and billing/ (it joins the engine with the billing settings), below capacity/,
compare/ and optimize/.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from planner import billing
from planner.errors import PlannerError
from planner.inputs.catalog import GpuSpec, get_gpu
from planner.inputs.model_spec import ModelSpec
from planner.inputs.models import get_model
from planner.inputs.profile import Profile
from planner.inputs.sections import ModelSection, ServingSection
from planner.memory import EngineArgs, EngineView, engine_view, resolve_engine_args, weights_bytes
from planner.perf import StepTimeModel
from planner.sim.benchmark import ClosedLoopBench, closed_loop_bench
from planner.sim.serverless import ServerlessSpec
from planner.sim.spec import ReplicaSetup


def serverless_spec(
    settings: Any,
    weights_bytes: int,
    *,
    pods: int = 0,
    active_workers: int | None = None,
    max_workers: int | None = None,
    gpus: int | None = None,
) -> ServerlessSpec:
    """The serverless endpoint a profile's `billing:` section describes, resolved to numbers.

    The one rule for an endpoint beside pods: with pods in the same endpoint (`pods > 0`, the mix)
    the serverless workers take overflow only, so flex workers serve the bursts and idle out
    instead of sharing the base load.

    Args:
        settings: the profile's billing section or a flat mapping of billing settings (None:
            sourced defaults); checked with billing.validate_settings (PlannerError on bad values).
        weights_bytes: the model's weight bytes (the cold start loads them).
        pods: dedicated replicas beside the endpoint.
        active_workers, max_workers: worker counts that win over the settings' (None: the settings').
        gpus: GPUs per worker (None: the replica's tensor_parallel_size).
    """
    billing.validate_settings(settings)
    active = int(billing.setting(settings, "active_workers")) if active_workers is None else int(active_workers)
    cap = int(billing.setting(settings, "max_workers")) if max_workers is None else int(max_workers)
    return ServerlessSpec(
        active_workers=active,
        max_workers=cap,
        idle_timeout_s=float(billing.setting(settings, "idle_timeout_seconds")),
        scaler=billing.setting(settings, "scaler"),
        scaler_value=float(billing.setting(settings, "scaler_value")),
        cold_start_s=billing.cold_start_seconds(weights_bytes, settings),
        max_concurrency_per_worker=int(billing.setting(settings, "max_concurrency_per_worker")),
        gpus=gpus,
        overflow_only=pods > 0,
    )


class ServedModel(Protocol):
    """What a replica needs of a profile: its model and serving sections (a `Profile` has both;
    `planner calibrate` builds them from the command line)."""

    @property
    def model(self) -> ModelSection: ...

    @property
    def serving(self) -> ServingSection: ...


@dataclass(frozen=True)
class Candidate:
    """One (GPU, TP) replica of a model with its serving settings.

    Build with `Candidate.build(profile, gpu, tensor_parallel_size)` (or `Candidate.for_model`
    without a profile); the expensive parts (the step-time model) are computed on first use.
    """

    spec: ModelSpec
    gpu: GpuSpec
    tensor_parallel_size: int
    engine_args: EngineArgs
    view: EngineView
    model_name: str  # as the profile names it (a preset id or a config.json path)
    precision: str | None = None
    quantization: str = "none"
    kv_cache_dtype: str = "auto"
    repo: str | None = None  # the checkpoint to deploy, when the profile names one

    @classmethod
    def build(cls, profile: ServedModel, gpu: str | GpuSpec, tensor_parallel_size: int = 1) -> Candidate:
        """A replica of the profile's model section with its serving section.

        Raises:
            PlannerError: unknown model or GPU, a TP size the model's heads do not split over,
                or bad serving settings. A model that does not fit is not an error here (`fits`).
        """
        m = profile.model
        return cls.for_model(m.name, gpu, tensor_parallel_size, precision=m.precision, quantization=m.quantization,
                             kv_cache_dtype=m.kv_cache_dtype, serving=profile.serving,
                             repo=getattr(m, "repo", None))

    @classmethod
    def for_model(cls, model: str | ModelSpec, gpu: str | GpuSpec, tensor_parallel_size: int = 1, *,
                  precision: str | None = None, quantization: str = "none", kv_cache_dtype: str = "auto",
                  serving: Any = None, repo: str | None = None, **engine_overrides: Any) -> Candidate:
        """A replica of `model` (preset id, config.json path or ModelSpec) without a profile.

        Args:
            serving: a profile's serving section or a dict of vLLM engine settings (None: defaults).
            engine_overrides: vLLM engine settings that win over `serving` (max_model_len,
                gpu_memory_utilization, max_num_seqs, max_num_batched_tokens, block_size, ...).
        """
        spec = get_model(model) if isinstance(model, str) else model
        gpu_spec = get_gpu(gpu) if isinstance(gpu, str) else gpu
        tp = int(tensor_parallel_size)
        engine_args = resolve_engine_args(gpu_spec, serving, spec, **engine_overrides)
        view = engine_view(spec, gpu_spec, engine_args, tp, precision, quantization, kv_cache_dtype)
        return cls(spec=spec, gpu=gpu_spec, tensor_parallel_size=tp, engine_args=engine_args, view=view,
                   model_name=model if isinstance(model, str) else spec.name, precision=precision,
                   quantization=quantization, kv_cache_dtype=kv_cache_dtype, repo=repo)

    @property
    def gpu_id(self) -> str:
        return self.gpu.id

    @property
    def fits(self) -> bool:
        """The model fits one replica with room for at least one request's KV cache."""
        return bool(self.view.fits)

    @cached_property
    def weights_bytes(self) -> int:
        """The model's weight bytes at the profile's precision (what a cold start loads)."""
        return int(weights_bytes(self.spec, self.precision, self.quantization))

    @cached_property
    def step_model(self) -> StepTimeModel:
        """The step-time model of this replica (raises PlannerError when the model does not fit)."""
        self._require_fit()
        return StepTimeModel.create(self.spec, self.gpu, self.tensor_parallel_size, self.precision,
                                    self.quantization, self.kv_cache_dtype)

    def _require_fit(self) -> None:
        if not self.fits:
            raise PlannerError(
                f"{self.spec.name} does not fit one replica of {self.tensor_parallel_size} x {self.gpu.id}: "
                f"{self.view.reason}; raise --tensor-parallel-size, lower serving.max_model_len, or pick a larger GPU"
            )

    def replica_setup(self) -> ReplicaSetup:
        """The simulator's input for one replica: step times, KV blocks, engine limits."""
        self._require_fit()
        return ReplicaSetup(
            step_model=self.step_model,
            num_gpu_blocks=self.view.num_gpu_blocks,
            engine_args=self.engine_args,
            tensor_parallel_size=self.tensor_parallel_size,
            gpu_id=self.gpu.id,
        )

    def serverless_spec(self, settings: Any, *, pods: int, active_workers: int, max_workers: int) -> ServerlessSpec:
        """A plan's endpoint of this replica: the billing settings (a profile's `billing` section)
        with the plan's worker counts (max workers raised to cover the active ones)."""
        return serverless_spec(settings, self.weights_bytes, pods=pods, active_workers=active_workers,
                               max_workers=max(max_workers, active_workers, 1), gpus=self.tensor_parallel_size)

    def scale_up_seconds(self, settings: Any) -> float:
        """Seconds a flex worker is billed per scale-up beyond its busy time: cold start + idle timeout
        under the billing settings (a profile's `billing` section)."""
        cold = billing.cold_start_seconds(self.weights_bytes, settings)
        return float(cold) + float(billing.setting(settings, "idle_timeout_seconds"))

    def engine_settings(self) -> dict[str, Any]:
        """The resolved vLLM engine arguments and model settings to deploy this replica with."""
        data: dict[str, Any] = self.engine_args.model_dump()
        data.update(tensor_parallel_size=self.tensor_parallel_size, model=self.model_name,
                    quantization=self.quantization, kv_cache_dtype=self.kv_cache_dtype, precision=self.precision,
                    repo=self.repo, max_concurrency=getattr(self.view, "max_concurrency", None))
        return data


def replica_setup(profile: ServedModel, gpu: str | GpuSpec, tensor_parallel_size: int = 1) -> ReplicaSetup:
    """One replica of the profile's model on `tensor_parallel_size` GPUs of type `gpu`.

    Raises:
        PlannerError: unknown model/GPU, or the model does not fit (the message says why and what to change).
    """
    return Candidate.build(profile, gpu, tensor_parallel_size).replica_setup()


def model_replica_setup(model: str | ModelSpec, gpu: str | GpuSpec, tensor_parallel_size: int = 1, *,
                        precision: str | None = None, quantization: str = "none", kv_cache_dtype: str = "auto",
                        serving: Any = None, **engine_overrides: Any) -> ReplicaSetup:
    """One replica of `model` (preset id, config.json path or ModelSpec) without a profile
    (`Candidate.for_model`'s arguments).

    Raises:
        PlannerError: unknown model/GPU, or the model does not fit (the message says why and what to change).
    """
    return Candidate.for_model(model, gpu, tensor_parallel_size, precision=precision, quantization=quantization,
                               kv_cache_dtype=kv_cache_dtype, serving=serving, **engine_overrides).replica_setup()


def model_weights_bytes(profile: Profile) -> int:
    """Bytes of the profile's model weights at its precision (what a cold start loads)."""
    m = profile.model
    return int(weights_bytes(get_model(m.name), m.precision, m.quantization))


def bench_closed_loop(
    model: Any,
    gpu: Any,
    tensor_parallel_size: int = 1,
    *,
    users: int,
    prompt_tokens: int,
    output_tokens: int,
    requests_per_user: int = 10,
    quantization: str = "none",
    precision: str | None = None,
    kv_cache_dtype: str = "auto",
    think_time_s: float = 0.0,
    setup: ReplicaSetup | None = None,
    jump: bool = True,
    output_spread: float = 0.0,
    seed: int = 0,
    **engine_overrides: Any,
) -> ClosedLoopBench:
    """Simulate `vllm bench serve --max-concurrency users` with fixed ISL/OSL on ONE replica of
    `model` on `gpu` (`planner.sim.closed_loop_bench` on `model_replica_setup`'s replica).

    Args:
        model: preset id (e.g. "llama-3.1-70b"), config.json path or ModelSpec.
        gpu: catalog id (e.g. "h200-sxm") or GpuSpec.
        tensor_parallel_size, quantization, precision, kv_cache_dtype: the replica, as in a profile.
        users, prompt_tokens, output_tokens, requests_per_user, think_time_s: the loop.
        setup: a ready ReplicaSetup instead of (model, gpu, ...) (e.g. one with a test step model).
        jump: the simulator's jump mode (exact; False steps one by one).
        output_spread, seed: output lengths spread uniformly by ± output_spread around
            output_tokens (0: exact lengths; planner.traffic.closed_loop.fixed_closed_loop).
        engine_overrides: vLLM settings (max_model_len, gpu_memory_utilization, max_num_seqs,
            max_num_batched_tokens, ...); unset ones take vLLM's defaults.
    """
    if setup is None:
        setup = model_replica_setup(model, gpu, tensor_parallel_size, precision=precision, quantization=quantization,
                                    kv_cache_dtype=kv_cache_dtype, **engine_overrides)
    return closed_loop_bench(setup, users=users, prompt_tokens=prompt_tokens, output_tokens=output_tokens,
                             requests_per_user=requests_per_user, think_time_s=think_time_s, jump=jump,
                             output_spread=output_spread, seed=seed)
