"""The planning loop's window on the world: a typed `PlanningBackend` and its catalog implementation.

Everything `plan()` needs from the catalog, the simulator and the price lists goes through these
methods, so tests run the whole loop on hand-made numbers (tests/plan_doubles.py). Each method's
docstring says when the loop calls it, as vLLM's scheduler interface does.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Protocol

from planner import capacity
from planner.assumption import Assumption
from planner.billing import ResolvedPrices
from planner.capacity import CandidateCheck, CapacityCache, CapacityResult, CapacityTask
from planner.errors import PlannerError
from planner.inputs import catalog, models
from planner.inputs.profile import Profile
from planner.traffic import Workload


class PlanningBackend(Protocol):
    """What the planning loop asks of the world, in the order it asks."""

    def check_names(self, profile: Profile) -> None:
        """Once, first: refuse an unknown model or candidate GPU (PlannerError) before any work."""

    def check_candidate(self, profile: Profile, gpu_id: str, tensor_parallel_size: int,
                        prompt_p50: int, tokens_p99: int) -> CandidateCheck:
        """Once per (GPU, TP) candidate while the world is prepared: does it fit, and can it meet
        the SLO unloaded (no simulation)."""

    def gpu_fingerprint(self, gpu_id: str) -> str:
        """Once per fitting GPU while the capacity tasks are made: a hash of its catalog entry
        for the capacity cache key ("" when it has none)."""

    def capacities(self, tasks: Sequence[CapacityTask], *, cache: CapacityCache, workers: int,
                   progress: Callable[[int, int], None] | None = None) -> list[CapacityResult]:
        """Once per run (unless the profile gives measured capacities): every (candidate, bucket)
        capacity, from the cache or by simulation; `progress(answered, total)` as answers come in
        (passed only when the caller draws progress)."""

    def resolve_prices(self, profile: Profile, gpu_id: str) -> ResolvedPrices:
        """Once per candidate GPU while the world is prepared."""

    def scale_up_seconds(self, profile: Profile, gpu_id: str, tensor_parallel_size: int) -> float:
        """Once per serverless pool whenever the MILP's inputs are built (every solve): the seconds
        billed per flex scale-up beyond busy time."""

    def simulate_fleet(self, profile: Profile, gpu_id: str, tensor_parallel_size: int, workload: Workload, *,
                       pods: int, active_workers: int = 0, max_workers: int = 0, seed: int = 0,
                       **schedule: Any) -> Any:
        """Once per endpoint of every plan verified (each refinement round, each traffic draw, each
        alternative): simulate its pods and serverless workers on the arrivals routed to it.
        Scheduled pods come as `pod_schedule` (pods per slot), `pod_schedule_slot_s` and
        `pod_provision_s`, a progress fraction callback as `progress` (each passed only when used).
        Returns something with `records` (arrival_at, first_token_at, finished_at) and `workers`
        (spans), like planner.sim.SimOutcome."""

    def engine_settings(self, profile: Profile, gpu_id: str, tensor_parallel_size: int) -> dict[str, Any]:
        """Once per entry of the chosen plan, at the end: the deploy settings."""

    def assumptions(self, profile: Profile, uses: Mapping[str, Collection[str]]) -> list[Assumption]:
        """Once, at the end: every estimated input the plans shown rely on (GPU -> billing modes used),
        each with the (GPU, mode) pairs it concerns."""


class CatalogBackend:
    """The real world: the GPU catalog, the simulator (through planner.capacity and planner.scenario)
    and the sourced prices."""

    def check_names(self, profile: Profile) -> None:
        """Refuse an unknown model or candidate GPU once, up front, with the catalog's close names.

        Without this each (GPU, TP) check would fail on its own and the error would repeat per
        candidate, or an unknown GPU would silently drop out of the plan.
        """
        try:
            models.get_model(profile.model.name)
        except PlannerError as err:
            raise PlannerError(f"model.name: {err}") from None
        unknown = []
        for gpu in dict.fromkeys(profile.candidates.gpus):
            try:
                catalog.get_gpu(gpu)
            except PlannerError as err:
                unknown.append(str(err))
        if unknown:
            raise PlannerError("candidates.gpus: " + "; ".join(unknown))

    def check_candidate(self, profile: Profile, gpu_id: str, tensor_parallel_size: int,
                        prompt_p50: int, tokens_p99: int) -> CandidateCheck:
        return capacity.check_candidate(profile, gpu_id, tensor_parallel_size, prompt_p50, tokens_p99)

    def gpu_fingerprint(self, gpu_id: str) -> str:
        return capacity.gpu_fingerprint(gpu_id)

    def capacities(self, tasks: Sequence[CapacityTask], *, cache: CapacityCache, workers: int,
                   progress: Callable[[int, int], None] | None = None) -> list[CapacityResult]:
        return capacity.capacities(tasks, cache=cache, workers=workers, progress=progress)

    def resolve_prices(self, profile: Profile, gpu_id: str) -> ResolvedPrices:
        return capacity.resolve_prices(profile, gpu_id)

    def scale_up_seconds(self, profile: Profile, gpu_id: str, tensor_parallel_size: int) -> float:
        return capacity.scale_up_seconds(profile, gpu_id, tensor_parallel_size)

    def simulate_fleet(self, profile: Profile, gpu_id: str, tensor_parallel_size: int, workload: Workload, *,
                       pods: int, active_workers: int = 0, max_workers: int = 0, seed: int = 0,
                       **schedule: Any) -> Any:
        return capacity.simulate_fleet(profile, gpu_id, tensor_parallel_size, workload, pods=pods,
                                       active_workers=active_workers, max_workers=max_workers, seed=seed, **schedule)

    def engine_settings(self, profile: Profile, gpu_id: str, tensor_parallel_size: int) -> dict[str, Any]:
        return capacity.engine_settings(profile, gpu_id, tensor_parallel_size)

    def assumptions(self, profile: Profile, uses: Mapping[str, Collection[str]]) -> list[Assumption]:
        return capacity.assumptions(profile, uses)


def check_names(profile: Profile) -> None:
    """`CatalogBackend().check_names(profile)`: the up-front check of the model and GPU names."""
    CatalogBackend().check_names(profile)
