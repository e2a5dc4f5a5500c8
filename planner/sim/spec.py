"""Inputs of a simulation run: what one replica is (ReplicaSetup) and what the fleet is (FleetSpec)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from planner.sim.scheduler import SchedulerConfig
from planner.sim.step_models import StepTimeModelLike


@dataclass(frozen=True)
class ReplicaSetup:
    """One engine replica: its step-time model, KV pool size and engine limits.

    Attributes:
        step_model: anything with step_seconds / decode_run_seconds (planner.perf.StepTimeModel).
        num_gpu_blocks: KV blocks of block_size tokens (planner.memory.view(...).num_gpu_blocks).
        engine_args: planner.memory.EngineArgs, a SchedulerConfig, or anything with max_num_seqs,
            max_num_batched_tokens, max_model_len, block_size, enable_chunked_prefill.
        tensor_parallel_size: GPUs per replica (a worker's default `gpus`).
        gpu_id: catalog id, for reports.
    """

    step_model: StepTimeModelLike
    num_gpu_blocks: int
    engine_args: Any
    tensor_parallel_size: int = 1
    gpu_id: str = ""

    @property
    def scheduler_config(self) -> SchedulerConfig:
        if isinstance(self.engine_args, SchedulerConfig):
            return self.engine_args
        return SchedulerConfig.from_engine_args(self.engine_args)


class FleetSpec(BaseModel):
    """The fleet to simulate.

    `pods` dedicated replicas are ready from t = 0 for the whole run, unless `pod_schedule` gives
    a count per slot of `pod_schedule_slot_s` seconds (slot 0 from t = 0; the last count holds
    after); scale-ups take `pod_provision_s` to become ready (started that much before the slot
    when `pod_prewarm`), scale-downs drain the newest pods. `serverless` is handed to
    `planner.sim.serverless.attach(fleet, serverless)`, which adds its autoscaler.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    pods: int = Field(1, ge=0, description="Dedicated replicas for the whole run (ignored when pod_schedule is set).")
    pod_schedule: list[int] | None = Field(None, description="Pods per slot; overrides `pods`.")
    pod_schedule_slot_s: float = Field(3600.0, gt=0, description="Slot length of pod_schedule, seconds.")
    pod_provision_s: float = Field(0.0, ge=0, description="Seconds a scaled-up pod takes to become ready.")
    pod_prewarm: bool = Field(False, description="Start scale-ups pod_provision_s before their slot.")
    pod_max_outstanding: int | None = Field(
        None, ge=1, description="Cap on requests a pod holds (None: the router pushes without limit)."
    )
    serverless: Any = Field(None, description="planner.sim.serverless spec, or None.")

    @model_validator(mode="after")
    def _check(self) -> "FleetSpec":
        if self.pod_schedule is not None:
            if not self.pod_schedule or any(c < 0 for c in self.pod_schedule):
                raise ValueError("pod_schedule must be a non-empty list of counts >= 0")
        return self

    @property
    def initial_pods(self) -> int:
        return self.pod_schedule[0] if self.pod_schedule is not None else self.pods

    @property
    def max_pods(self) -> int:
        return max(self.pod_schedule) if self.pod_schedule is not None else self.pods
