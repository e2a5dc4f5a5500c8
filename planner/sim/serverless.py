"""A serverless endpoint on the fleet: active and flex workers, a scaler, idle timeout, cold starts.

Covers: Runpod-style endpoint semantics (Runpod's docs, serverless/endpoints/endpoint-configurations.mdx): `active_workers` always
on (ready at t = 0, never stopped); flex workers started by the scaler, billed from start (cold
start included) until they stop after `idle_timeout_s` without work; at most `max_workers`
workers in all (active included); each worker holds at most `max_concurrency_per_worker`
requests (Runpod's vLLM worker MAX_CONCURRENCY), the rest wait in the endpoint (fleet) queue and
that wait shows in TTFT.

Scenario: `simulate()` calls `attach(fleet, spec)` when `FleetSpec.serverless` is set. attach
starts the active workers and registers a `ServerlessAutoscaler` (a FleetObserver):
- queue delay: when the oldest queued request has waited `scaler_value` seconds, add a flex
  worker (more if the queue still outnumbers what the starting workers will take); when the
  endpoint has no live worker at all, a queued request starts one at once (scale from zero);
- request count: keep ceil((queued + in progress on serverless workers) / scaler_value) workers;
- a flex worker idle for `idle_timeout_s` stops (a request arriving meanwhile keeps it).
With `overflow_only` (pods for the base load, serverless for the bursts) the router sends a
request to a serverless worker only when no pod takes it, so flex workers serve bursts and then
idle out instead of sharing the base load.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from planner.sim.fleet import Fleet, FleetObserver
from planner.sim.replica import Replica, WorkerState
from planner.sim.request import Request

_EPS_S = 1e-9


class ServerlessSpec(BaseModel):
    """One serverless endpoint, resolved to numbers (`planner.scenario.serverless_spec` builds it from a
    profile's billing settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    active_workers: int = Field(0, ge=0, description="Always-on workers, ready from t = 0.")
    max_workers: int = Field(3, ge=1, description="Cap on live workers, active ones included.")
    idle_timeout_s: float = Field(5.0, ge=0, description="A flex worker idle this long stops.")
    scaler: Literal["queue-delay", "request-count"] = "queue-delay"
    scaler_value: float = Field(4.0, gt=0, description="queue-delay: seconds; request-count: requests per worker.")
    cold_start_s: float = Field(0.0, ge=0, description="Start to ready of a flex worker (billed).")
    max_concurrency_per_worker: int | None = Field(
        30, ge=1, description="Requests one worker holds at once (None: no cap)."
    )
    gpus: int | None = Field(None, ge=1, description="GPUs per worker (None: the replica's tensor_parallel_size).")
    overflow_only: bool = Field(False, description="Serverless workers take a request only when no pod does.")

    @model_validator(mode="after")
    def _max_covers_active(self) -> ServerlessSpec:
        if self.max_workers < self.active_workers:
            raise ValueError(
                f"max_workers ({self.max_workers}) is below active_workers ({self.active_workers}); "
                "max workers counts active workers too"
            )
        return self


def attach(fleet: Fleet, spec: ServerlessSpec) -> ServerlessAutoscaler:
    """Start the endpoint's active workers and its autoscaler on `fleet` (called by simulate())."""
    if not isinstance(spec, ServerlessSpec):
        spec = ServerlessSpec.model_validate(spec)
    scaler = ServerlessAutoscaler(fleet, spec)
    fleet.observers.append(scaler)
    for _ in range(spec.active_workers):
        fleet.add_worker("active", ready_delay_s=0.0, gpus=spec.gpus, max_outstanding=spec.max_concurrency_per_worker)
    return scaler


class ServerlessAutoscaler(FleetObserver):
    """Adds flex workers as the scaler says and stops them after the idle timeout.

    Attributes:
        spec: the endpoint.
        num_scale_ups: flex workers started.
    """

    def __init__(self, fleet: Fleet, spec: ServerlessSpec):
        self.fleet = fleet
        self.spec = spec
        self.num_scale_ups = 0
        self._timer_due: float | None = None  # when the pending queue-delay check fires

    # --- what the endpoint has ------------------------------------------------------------------
    def _live(self) -> list[Replica]:
        return [w for w in self.fleet.workers if w.kind != "pod" and w.state != WorkerState.STOPPED]

    def _can_add(self, live: list[Replica]) -> bool:
        return len(live) < self.spec.max_workers

    def _add_flex(self) -> None:
        self.num_scale_ups += 1
        self.fleet.add_worker(
            "flex", ready_delay_s=self.spec.cold_start_s, gpus=self.spec.gpus,
            max_outstanding=self.spec.max_concurrency_per_worker,
        )

    def _starting_room(self, live: list[Replica]) -> float:
        """Requests the workers still starting will take when ready."""
        starting = sum(1 for w in live if w.state == WorkerState.STARTING)
        cap = self.spec.max_concurrency_per_worker
        return math.inf if (starting and cap is None) else starting * (cap or 0)

    # --- scalers ----------------------------------------------------------------------------------
    def _evaluate(self) -> None:
        if self.spec.scaler == "request-count":
            self._request_count()
        else:
            self._queue_delay()

    def _request_count(self) -> None:
        """workers = ceil((queued + in progress) / scaler_value), capped at max_workers."""
        fleet = self.fleet
        live = self._live()
        in_progress = sum(w.num_outstanding for w in live)
        wanted = min(self.spec.max_workers, math.ceil((fleet.num_queued + in_progress) / self.spec.scaler_value - _EPS_S))
        for _ in range(wanted - len(live)):
            self._add_flex()

    def _queue_delay(self) -> None:
        """Add workers while the oldest queued request has waited past the threshold."""
        fleet = self.fleet
        queue = fleet.queue
        if not queue:
            return
        live = self._live()
        if not fleet.live_workers() and self._can_add(live):
            # Scale from zero: nothing could ever serve the queue, so a worker starts at once.
            self._add_flex()
            live = self._live()
        threshold = self.spec.scaler_value
        now = fleet.env.now
        while (
            queue
            and fleet.oldest_queued_wait_s() >= threshold - _EPS_S
            and self._can_add(live)
            and self._starting_room(live) < len(queue)
        ):
            self._add_flex()
            live = self._live()
        if queue and now - queue[0].arrival_at < threshold - _EPS_S:
            self._arm(queue[0].arrival_at + threshold)

    def _arm(self, due: float) -> None:
        if self._timer_due is not None and self._timer_due <= due + _EPS_S:
            return  # an earlier check is pending; it re-arms for later requests
        self._timer_due = due
        self.fleet.env.process(self._check_at(due))

    def _check_at(self, due: float):
        env = self.fleet.env
        yield env.timeout(max(0.0, due - env.now))
        if self._timer_due is not None and abs(self._timer_due - due) <= _EPS_S:
            self._timer_due = None
            self._queue_delay()

    def _idle_timeout(self, worker: Replica, idle_since: float):
        yield self.fleet.env.timeout(self.spec.idle_timeout_s)
        # Still idle since the same moment: no request came in the meantime.
        if worker.state == WorkerState.READY and worker.num_outstanding == 0 and worker.idle_since == idle_since:
            self.fleet.stop_worker(worker)

    # --- fleet hooks --------------------------------------------------------------------------------
    def on_arrival(self, fleet: Fleet, request: Request) -> None:
        if self.spec.scaler == "request-count":
            # The arriving request counts as queued until dispatched: evaluate after dispatch too.
            live = self._live()
            in_progress = sum(w.num_outstanding for w in live)
            wanted = min(self.spec.max_workers,
                         math.ceil((fleet.num_queued + in_progress + 1) / self.spec.scaler_value - _EPS_S))
            if self.spec.overflow_only and self._pods_take_it(fleet):
                return
            for _ in range(wanted - len(live)):
                self._add_flex()

    def on_queued(self, fleet: Fleet, request: Request) -> None:
        self._evaluate()

    def on_worker_ready(self, fleet: Fleet, worker: Replica) -> None:
        # The fleet hands the queue to the new worker right after this hook: look again once it has.
        fleet.env.process(self._evaluate_after_dispatch())

    def _evaluate_after_dispatch(self):
        yield self.fleet.env.timeout(0.0)
        if self.fleet.queue:
            self._evaluate()

    def on_worker_stopped(self, fleet: Fleet, worker: Replica) -> None:
        if fleet.queue:
            self._evaluate()

    def on_worker_idle(self, fleet: Fleet, worker: Replica) -> None:
        if worker.kind == "flex" and worker.idle_since is not None:
            fleet.env.process(self._idle_timeout(worker, worker.idle_since))

    @staticmethod
    def _pods_take_it(fleet: Fleet) -> bool:
        return any(
            w.kind == "pod" and w.state == WorkerState.READY
            and (w.max_outstanding is None or w.num_outstanding < w.max_outstanding)
            for w in fleet.workers
        )
